package logtail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	if err := os.WriteFile(path, []byte("one\ntwo\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int]string{1: "three", 2: "two\nthree", 5: "one\ntwo\nthree"} {
		if got := Lines(path, n); got != want {
			t.Errorf("Lines(%d) = %q, want %q", n, got, want)
		}
	}
	if got := Lines(filepath.Join(t.TempDir(), "missing.log"), 3); !strings.Contains(got, "no such file") {
		t.Errorf("Lines of a missing file = %q, want the reason", got)
	}
}
