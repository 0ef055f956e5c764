// Package integration runs the data plane as real processes on 127.0.0.x:
// fake segment-writers and distributors joined by memberlist, with pushes
// through push.v1 and /ingest, checked profile by profile against what the
// writers recorded.
package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Built once for the whole package.
var (
	fakewriterBin  string
	distributorBin string
	buildErr       error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pyrodist-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakewriterBin = filepath.Join(dir, "fakewriter")
	distributorBin = filepath.Join(dir, "distributor")
	buildErr = build(map[string]string{
		fakewriterBin:  "./test/cmd/fakewriter",
		distributorBin: "./cmd/distributor",
	})
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles the commands from the module root with the go that runs
// this test.
func build(targets map[string]string) error {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	for out, pkg := range targets {
		cmd := exec.Command(goBin, "build", "-o", out, pkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	return nil
}

// requireBinaries fails the test when the build failed or cmd/distributor
// does not take the flags this test drives it with.
func requireBinaries(t *testing.T) {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	out, _ := exec.Command(distributorBin, "-help").CombinedOutput()
	for _, f := range []string{"memberlist.join", "distributor.prefer-same-zone", "distributor.ring.instance-id"} {
		if !strings.Contains(string(out), f) {
			t.Fatalf("cmd/distributor has no -%s flag:\n%s", f, out)
		}
	}
}
