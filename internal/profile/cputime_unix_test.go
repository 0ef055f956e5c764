//go:build unix

package profile

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user+system) of the whole process, GC
// included: on a shared, loaded machine wall-clock ns/op mostly measures the
// other processes, CPU time does not.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
