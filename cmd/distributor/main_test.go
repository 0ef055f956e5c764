package main

import (
	"bytes"
	"flag"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/go-kit/log"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/memlimit"
)

// TestHelpListsEveryFlag: `distributor -help` documents every config flag,
// -config.file and -log.level, and exits 0.
func TestHelpListsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-help"}, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var c config.Config
	fs := flag.NewFlagSet("all", flag.ContinueOnError)
	c.RegisterFlags(fs)
	names := []string{"config.file", "log.level"}
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	for _, n := range names {
		if !strings.Contains(out.String(), "  -"+n+" ") && !strings.Contains(out.String(), "  -"+n+"\n") {
			t.Errorf("-help does not document -%s", n)
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if strings.TrimSpace(f.Usage) == "" {
			t.Errorf("-%s has no help text", f.Name)
		}
	})
}

func TestBadArgs(t *testing.T) {
	for _, args := range [][]string{
		{"-no-such-flag"},
		{"-log.level=loud"},
		{"-config.file", "/nonexistent/config.yaml"},
	} {
		var out bytes.Buffer
		if code := run(args, &out); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, out.String())
		}
	}
}

// Without GOMEMLIMIT or a container limit, an explicit in-flight budget
// sets the GC's target: the budget plus the process's headroom.
func TestMemoryLimitFollowsAnExplicitBudget(t *testing.T) {
	if os.Getenv("GOMEMLIMIT") != "" || memlimit.Cgroup() > 0 {
		t.Skip("a memory limit is set from outside here")
	}
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	setMemoryLimit(log.NewNopLogger(), 0)
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("no budget, no limit: the Go memory limit changed to %d", got)
	}
	setMemoryLimit(log.NewNopLogger(), 64<<20)
	if got := debug.SetMemoryLimit(-1); got != 64<<20+processHeadroom {
		t.Fatalf("Go memory limit %d, want the budget plus %d", got, processHeadroom)
	}
}
