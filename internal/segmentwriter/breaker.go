package segmentwriter

import (
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Circuit breaker settings, as Pyroscope's segment-writer client has them
// (circuitBreakerConfig in pkg/segmentwriter/client/client.go at 3fe6a45):
// 3 consecutive failures open it for 1 s; then up to 5 trial
// requests, and 5 consecutive successes close it.
const (
	breakerMaxFailures = 3
	breakerOpenFor     = time.Second
	breakerTrials      = 5
)

var (
	errBreakerOpen     = status.Error(codes.Unavailable, "circuit breaker is open")
	errBreakerTooMany  = status.Error(codes.Unavailable, "circuit breaker: too many requests")
	breakerStateClosed = 0
	breakerStateOpen   = 1
	breakerStateHalf   = 2
)

// breaker is a per-connection circuit breaker. While it is open, attempts
// fail at once with Unavailable, which the failover loop treats as
// retryable, so the next candidate is tried without waiting on this one.
type breaker struct {
	now func() time.Time

	mu         sync.Mutex
	state      int
	generation uint64 // bumped on every state change; stale results are ignored
	failures   int    // consecutive, while closed
	openedAt   time.Time
	admitted   int // trial requests let through, while half-open
	successes  int // consecutive trial successes, while half-open
}

func newBreaker(now func() time.Time) *breaker {
	return &breaker{now: now}
}

// allow admits one request; it returns the generation to report back with
// done, or an Unavailable error when the breaker rejects the request.
func (b *breaker) allow() (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == breakerStateOpen {
		if b.now().Sub(b.openedAt) < breakerOpenFor {
			return 0, errBreakerOpen
		}
		b.setState(breakerStateHalf)
	}
	if b.state == breakerStateHalf {
		if b.admitted >= breakerTrials {
			return 0, errBreakerTooMany
		}
		b.admitted++
	}
	return b.generation, nil
}

// done records the outcome of a request admitted in generation gen.
func (b *breaker) done(gen uint64, failed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen != b.generation {
		return
	}
	switch b.state {
	case breakerStateClosed:
		if !failed {
			b.failures = 0
			return
		}
		if b.failures++; b.failures >= breakerMaxFailures {
			b.setState(breakerStateOpen)
		}
	case breakerStateHalf:
		if failed {
			b.setState(breakerStateOpen)
			return
		}
		if b.successes++; b.successes >= breakerTrials {
			b.setState(breakerStateClosed)
		}
	}
}

func (b *breaker) setState(s int) {
	b.state = s
	b.generation++
	b.failures, b.admitted, b.successes = 0, 0, 0
	if s == breakerStateOpen {
		b.openedAt = b.now()
	}
}

// isOpen reports whether requests are being rejected now (for metrics and tests).
func (b *breaker) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == breakerStateOpen && b.now().Sub(b.openedAt) < breakerOpenFor
}
