// Package logtail shows the end of a child process's log in a harness's
// failure messages, where the whole log would bury the cause.
package logtail

import (
	"os"
	"strings"
)

// Lines returns the last n lines of the file at path; when the file cannot
// be read it returns why, since it only ever ends up in a message.
func Lines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
