// Package memlimit reads the container's memory limit, which both the Go
// memory limit (cmd/distributor) and the pipeline's default in-flight budget
// (internal/distributor) derive from.
package memlimit

import (
	"os"
	"strconv"
	"strings"
)

// cgroupFiles are cgroup v2's and v1's limit files; the first that parses wins.
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// Cgroup returns the cgroup memory limit in bytes, or 0 when there is none
// ("max" in v2, a huge sentinel in v1) or it cannot be read.
func Cgroup() int64 { return fromFiles(cgroupFiles) }

func fromFiles(paths []string) int64 {
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		// v1 reports "no limit" as a page-rounded MaxInt64.
		if err == nil && v > 0 && v < 1<<60 {
			return v
		}
	}
	return 0
}
