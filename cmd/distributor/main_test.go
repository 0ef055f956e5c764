package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"

	"github.com/pyrodist/pyrodist/internal/config"
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
