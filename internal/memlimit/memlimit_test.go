package memlimit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v2 := write("v2", "536870912\n")
	unlimited := write("max", "max\n")
	v1huge := write("v1", "9223372036854771712\n")
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name  string
		paths []string
		want  int64
	}{
		{"v2 limit", []string{v2}, 512 << 20},
		{"v2 unlimited falls through to v1", []string{unlimited, v2}, 512 << 20},
		{"v1 no-limit sentinel", []string{v1huge}, 0},
		{"none readable", []string{missing}, 0},
	} {
		if got := fromFiles(tc.paths); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}
