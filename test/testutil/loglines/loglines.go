// Package loglines is a go-kit logger for tests that keeps every line, to
// look for what a component logged.
package loglines

import (
	"fmt"
	"strings"
	"sync"
)

// Lines keeps each Log call as one line; the zero value is ready and safe
// for concurrent use.
type Lines struct {
	mu    sync.Mutex
	lines []string
}

// Log keeps kv as one line.
func (l *Lines) Log(kv ...any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprint(kv...))
	return nil
}

// Count returns how many lines contain substr.
func (l *Lines) Count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

// Contain says whether a line contains substr.
func (l *Lines) Contain(substr string) bool { return l.Count(substr) > 0 }

// String returns the lines kept, one a line.
func (l *Lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
