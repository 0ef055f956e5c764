//go:build !linux

package placement

import "time"

func threadCPU() (time.Duration, bool) { return 0, false }
