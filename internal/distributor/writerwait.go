package distributor

import (
	"context"
	"sync"
	"time"
)

// WriterWait is, for one client request, the time during which at least
// one of its profiles was waiting on segment-writers. The request's
// latency less this is what the distributor itself adds: reading the body,
// waiting for CPU, the pipeline, and answering. Overlapping waits (a
// request's profiles are sent concurrently) count once.
type WriterWait struct {
	mu      sync.Mutex
	pending int
	since   time.Time
	total   time.Duration
}

type writerWaitKey struct{}

// WithWriterWait returns a context whose sends are timed into the returned
// WriterWait; the server wraps each push request with it.
func WithWriterWait(ctx context.Context) (context.Context, *WriterWait) {
	w := &WriterWait{}
	return context.WithValue(ctx, writerWaitKey{}, w), w
}

func writerWaitFrom(ctx context.Context) *WriterWait {
	w, _ := ctx.Value(writerWaitKey{}).(*WriterWait)
	return w
}

func (w *WriterWait) begin(now time.Time) {
	w.mu.Lock()
	if w.pending == 0 {
		w.since = now
	}
	w.pending++
	w.mu.Unlock()
}

func (w *WriterWait) end(now time.Time) {
	w.mu.Lock()
	if w.pending--; w.pending == 0 {
		w.total += now.Sub(w.since)
	}
	w.mu.Unlock()
}

// Total is the time waited so far; call it once the request is answered.
func (w *WriterWait) Total() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total
}
