package localcluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newTestCluster is a Cluster with only its state directory, enough to start
// and stop processes.
func newTestCluster(t *testing.T) *Cluster {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"logs", "pids"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &Cluster{Dir: dir}
}

func TestStopPIDsStopsOnlyRecordedProcesses(t *testing.T) {
	c := newTestCluster(t)
	dir := c.Dir
	first, err := c.StartProcess("sleeper", nil, "/bin/sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	// A process that ignores SIGTERM must still be stopped (SIGKILL after the grace period).
	second, err := c.StartProcess("stubborn", nil, "/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.1; done")
	if err != nil {
		t.Fatal(err)
	}
	stopped, err := StopPIDs(dir, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// Newest first.
	if len(stopped) != 2 || stopped[0] != "stubborn" || stopped[1] != "sleeper" {
		t.Fatalf("stopped = %v, want [stubborn sleeper]", stopped)
	}
	for _, p := range []*Process{first, second} {
		select {
		case <-p.Exited():
		case <-time.After(5 * time.Second):
			t.Errorf("%s still running", p.Name)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "pids")); len(left) != 0 {
		t.Errorf("pid files left: %v", left)
	}
	// A second stop finds nothing to do.
	if again, err := StopPIDs(dir, time.Second); err != nil || len(again) != 0 {
		t.Errorf("second stop = %v, %v", again, err)
	}
}

// waitFor stops at once when the process it waits on dies, and otherwise
// reports what was not ready when time runs out.
func TestWaitFor(t *testing.T) {
	c := newTestCluster(t)
	p, err := c.StartProcess("quitter", nil, "/bin/sh", "-c", "echo bye; exit 1")
	if err != nil {
		t.Fatal(err)
	}
	notYet := func(context.Context) error { return errors.New("not listening") }
	start := time.Now()
	err = waitFor(context.Background(), time.Minute, p, "quitter", notYet)
	if err == nil || !strings.Contains(err.Error(), "quitter exited before it was ready") || !strings.Contains(err.Error(), "bye") {
		t.Fatalf("err = %v, want the exit and the log tail", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("waitFor took %s after the process had exited", d)
	}
	err = waitFor(context.Background(), 50*time.Millisecond, nil, "the thing", notYet)
	if err == nil || !strings.Contains(err.Error(), "the thing not ready") || !strings.Contains(err.Error(), "not listening") {
		t.Fatalf("err = %v, want what was not ready and the last error", err)
	}
}
