// Package pprofcheck is the independent check every forwarded profile must
// pass: it parses with github.com/google/pprof/profile and passes CheckValid.
package pprofcheck

import (
	"testing"

	"github.com/google/pprof/profile"
)

// Parse parses b (raw or gzipped pprof) with google/pprof, fails the test
// unless it parses and passes CheckValid, and returns it.
func Parse(tb testing.TB, b []byte) *profile.Profile {
	tb.Helper()
	p, err := profile.ParseData(b)
	if err != nil {
		tb.Fatalf("profile does not parse with google/pprof: %v", err)
	}
	if err := p.CheckValid(); err != nil {
		tb.Fatalf("profile fails CheckValid: %v", err)
	}
	return p
}
