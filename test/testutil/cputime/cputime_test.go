package cputime

import "testing"

func TestProcessAdvances(t *testing.T) {
	before := Process()
	if before == 0 {
		t.Skip("no process CPU clock on this platform")
	}
	x := 0
	for i := 0; Process() == before && i < 1e9; i++ {
		x += i
	}
	if Process() <= before {
		t.Fatalf("process CPU time did not advance (%d)", x)
	}
}
