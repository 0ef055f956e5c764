package distributor

import (
	"errors"
	"math"
	"runtime/debug"
	"sync/atomic"

	"github.com/pyrodist/pyrodist/internal/memlimit"
)

var errInflight = errors.New("in-flight budget exhausted")

// inflight is the process-wide budget of decompressed bytes held by requests
// (what Pyroscope lacks, its issue #5437): requests reserve as they inflate
// and release when they end; past the budget they are refused at once.
type inflight struct {
	max int64 // 0: unlimited
	cur atomic.Int64
}

func (f *inflight) reserve(n int64) bool {
	if f.max <= 0 {
		f.cur.Add(n)
		return true
	}
	for {
		c := f.cur.Load()
		if c+n > f.max {
			return false
		}
		if f.cur.CompareAndSwap(c, c+n) {
			return true
		}
	}
}

func (f *inflight) release(n int64) { f.cur.Add(-n) }

// charge is one request's share of the budget. Its profiles are processed
// concurrently, so it is safe for concurrent use.
type charge struct {
	f     *inflight
	total atomic.Int64
}

func (c *charge) reserve(n int) error {
	if !c.f.reserve(int64(n)) {
		return errInflight
	}
	c.total.Add(int64(n))
	return nil
}

func (c *charge) releaseAll() {
	c.f.release(c.total.Swap(0))
}

// defaultInflightBytes is a quarter of the Go memory limit, or of the cgroup
// memory limit when no Go limit is set; 0 (unlimited) when neither is known.
func defaultInflightBytes() int64 {
	if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 {
		return l / 4
	}
	if l := memlimit.Cgroup(); l > 0 {
		return l / 4
	}
	return 0
}
