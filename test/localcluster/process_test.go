package localcluster

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStopPIDsStopsOnlyRecordedProcesses(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"logs", "pids"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := &Cluster{Dir: dir}
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
