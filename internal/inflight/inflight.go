// Package inflight is the process-wide budget of bytes that requests hold
// in memory (bodies, inflated and decoded profiles, encoded outputs). Every
// path that reads client data charges one Charge per request as it goes and
// releases it when the request ends; past the budget a request is refused at
// once (429) instead of the process running out of memory. Pyroscope's
// distributor has no such bound.
package inflight

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime/debug"
	"sync/atomic"

	"github.com/pyrodist/pyrodist/internal/memlimit"
	"github.com/pyrodist/pyrodist/internal/profile"
)

// ExhaustedError is what a reservation past the budget returns.
type ExhaustedError struct{ Limit int64 }

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("the distributor is holding its limit of %s of profiles in flight; retry later", profile.IECBytes(uint64(e.Limit)))
}

// IsExhausted reports whether err is, or wraps, an ExhaustedError.
func IsExhausted(err error) bool {
	var e *ExhaustedError
	return errors.As(err, &e)
}

// Budget is the process-wide budget. Safe for concurrent use.
type Budget struct {
	max int64 // 0: unlimited
	cur atomic.Int64
}

// New makes a budget of max bytes; 0 derives it from the memory limit (a
// quarter of the Go memory limit, else of the cgroup's), and is unlimited
// when neither is known.
func New(max int64) *Budget {
	if max == 0 {
		max = defaultMax()
	}
	return &Budget{max: max}
}

func defaultMax() int64 {
	if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 {
		return l / 4
	}
	if l := memlimit.Cgroup(); l > 0 {
		return l / 4
	}
	return 0
}

// Max is the budget in bytes; 0: unlimited.
func (b *Budget) Max() int64 { return b.max }

// InUse is what requests hold now.
func (b *Budget) InUse() int64 { return b.cur.Load() }

func (b *Budget) reserve(n int64) bool {
	if b.max <= 0 {
		b.cur.Add(n)
		return true
	}
	for {
		c := b.cur.Load()
		if c+n > b.max {
			return false
		}
		if b.cur.CompareAndSwap(c, c+n) {
			return true
		}
	}
}

// Charge starts one request's share of the budget; a nil Budget gives a
// nil Charge, which charges nothing.
func (b *Budget) Charge() *Charge {
	if b == nil {
		return nil
	}
	return &Charge{b: b}
}

// Charge is one request's share of the budget. A request's profiles may be
// processed concurrently, so it is safe for concurrent use. A nil Charge
// charges nothing (callers without a budget).
type Charge struct {
	b    *Budget
	held atomic.Int64
}

// Reserve charges n more bytes, or returns an *ExhaustedError and charges
// nothing.
func (c *Charge) Reserve(n int) error {
	if c == nil || n <= 0 {
		return nil
	}
	if !c.b.reserve(int64(n)) {
		return &ExhaustedError{Limit: c.b.max}
	}
	c.held.Add(int64(n))
	return nil
}

// Held is what the charge holds now.
func (c *Charge) Held() int64 {
	if c == nil {
		return 0
	}
	return c.held.Load()
}

// Release gives back everything the charge holds; the charge can be used
// again afterwards.
func (c *Charge) Release() {
	if c == nil {
		return
	}
	c.b.cur.Add(-c.held.Swap(0))
}

// Free gives back n of the bytes the charge holds.
func (c *Charge) Free(n int) {
	if c == nil || n <= 0 {
		return
	}
	c.held.Add(-int64(n))
	c.b.cur.Add(-int64(n))
}

// Reader charges a body as its bytes arrive, Copies times each (what the
// reader's consumer makes of them: growing buffers, decoded copies). A read
// takes at most Step bytes; it is paid for before it blocks and what did not
// come is given back, so a stalled body holds no more than one step beyond
// what it sent. Past the budget Read fails with the *ExhaustedError.
type Reader struct {
	R      io.Reader
	C      *Charge
	Step   int
	Copies int
}

func (r *Reader) Read(p []byte) (int, error) {
	if len(p) > r.Step {
		p = p[:r.Step]
	}
	want := r.Copies * len(p)
	if err := r.C.Reserve(want); err != nil {
		return 0, err
	}
	n, err := r.R.Read(p)
	r.C.Free(r.Copies * (len(p) - n))
	return n, err
}
