// Package cputime gives benchmarks CPU-time figures: on a shared, loaded
// machine wall-clock ns/op mostly measures the other processes, CPU time
// does not.
package cputime

import (
	"testing"
	"time"
)

// Report adds process CPU time per op and MB of size bytes per CPU-second
// since cpu0 (a Process reading taken before the loop).
func Report(b *testing.B, cpu0 time.Duration, size int) {
	cpu := Process() - cpu0
	if cpu <= 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(size)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
}
