package segmentwriter

import (
	"context"
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	segmentwriterv1 "github.com/grafana/pyroscope/api/gen/proto/go/segmentwriter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Durations scaled down from production (1 s there is 40 ms here): the
// attempt timeout is 5 s, writers ack at about 5 s or at 7 s.
const (
	testAttempt = 200 * time.Millisecond
	ack5s       = 200 * time.Millisecond
	ack7s       = 280 * time.Millisecond
)

func deadlineConfig() Config {
	cfg := testConfig()
	cfg.AttemptTimeout = testAttempt
	return cfg
}

// ackAfter is a writer that has the profile on receipt (the double records
// it before calling handle) and acks after d, as a real writer acks only
// after its segment flush; a caller that gives up does not undo the store.
func ackAfter(d time.Duration) func(context.Context, *segmentwriterv1.PushRequest) error {
	return func(ctx context.Context, _ *segmentwriterv1.PushRequest) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// deadlines records the deadline each Push reached the writer with.
type deadlines struct {
	mu sync.Mutex
	d  []time.Time
}

func (r *deadlines) handle(next func(context.Context, *segmentwriterv1.PushRequest) error) func(context.Context, *segmentwriterv1.PushRequest) error {
	return func(ctx context.Context, req *segmentwriterv1.PushRequest) error {
		d, _ := ctx.Deadline()
		r.mu.Lock()
		r.d = append(r.d, d)
		r.mu.Unlock()
		if next == nil {
			return nil
		}
		return next(ctx, req)
	}
}

func (r *deadlines) all() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.d...)
}

// startFrozenWriter is a writer whose process has stopped answering: the
// connection is up, but no call (Push or health check) ever returns. It
// never stores anything.
func startFrozenWriter(t *testing.T) *writer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{addr: lis.Addr().String()}
	s := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, _ any, _ *grpc.UnaryServerInfo, _ grpc.UnaryHandler) (any, error) {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}))
	segmentwriterv1.RegisterSegmentWriterServiceServer(s, w)
	// Registered so that the interceptor holds probes too (an unknown
	// service would be answered before it).
	healthpb.RegisterHealthServer(s, health.NewServer())
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return w
}

// A healthy writer slower than the attempt timeout keeps its call: nobody
// else is asked, and the push succeeds, with or without a caller deadline.
func TestPushSlowWriterFinishes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deadline time.Duration // 0: none
	}{
		{"no caller deadline", 0},
		{"caller deadline that allows the ack", 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w1, w2 := startWriter(t, codes.OK), startWriter(t, codes.OK)
			w1.setHandle(ackAfter(ack7s))
			w2.setHandle(ackAfter(ack7s))
			c := newClient(t, deadlineConfig())
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			if err := c.Push(ctx, request(), instances("", w1, w2)); err != nil {
				t.Fatalf("push behind a writer acking at 7 s (scaled): %v; calls %d, %d", err, w1.calls(), w2.calls())
			}
			if w1.calls() != 1 || w2.calls() != 0 {
				t.Fatalf("calls %d, %d; want the slow writer's only", w1.calls(), w2.calls())
			}
		})
	}
}

// Writers acking at about the attempt timeout never get the same profile
// stored twice: each push lands on one writer and is acked.
func TestPushWritersAtAttemptTimeoutNoDuplicates(t *testing.T) {
	ws := []*writer{startWriter(t, codes.OK), startWriter(t, codes.OK), startWriter(t, codes.OK)}
	for _, w := range ws {
		// 4.99 s to 5.1 s (scaled), by request.
		w.setHandle(func(ctx context.Context, req *segmentwriterv1.PushRequest) error {
			i := binary.BigEndian.Uint64(req.ProfileId[8:])
			return ackAfter(ack5s-time.Millisecond+time.Duration(i%4)*3*time.Millisecond)(ctx, req)
		})
	}
	c := newClient(t, deadlineConfig())
	const clients = 21
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			req := request()
			req.ProfileId = make([]byte, 16)
			binary.BigEndian.PutUint64(req.ProfileId[8:], uint64(i))
			// Each client starts its candidates at another writer.
			cands := instances("", ws[i%3], ws[(i+1)%3], ws[(i+2)%3])
			errs[i] = c.Push(context.Background(), req, cands)
		})
	}
	wg.Wait()
	stored := map[string]int{}
	for _, w := range ws {
		w.mu.Lock()
		for _, r := range w.got {
			stored[string(r.ProfileId)]++
		}
		w.mu.Unlock()
	}
	failed, dup := 0, 0
	for i, err := range errs {
		id := make([]byte, 16)
		binary.BigEndian.PutUint64(id[8:], uint64(i))
		if err != nil {
			failed++
		}
		if stored[string(id)] > 1 {
			dup++
		}
	}
	if failed != 0 || dup != 0 {
		t.Fatalf("writers acking at about 5 s (scaled): %d of %d clients told failure, %d profiles stored on more than one writer", failed, clients, dup)
	}
}

// A writer that stops answering is left for the next candidate when the
// caller's deadline still leaves time for a full attempt, and the next
// writer's call carries the caller's remaining deadline, not the attempt
// timeout.
func TestPushHungWriterFailsOverWithinCallerDeadline(t *testing.T) {
	frozen, w2 := startFrozenWriter(t), startWriter(t, codes.OK)
	var seen deadlines
	w2.setHandle(seen.handle(nil))
	c := newClient(t, deadlineConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	want, _ := ctx.Deadline()
	if err := c.Push(ctx, request(), instances("", frozen, w2)); err != nil {
		t.Fatalf("push with a hung first writer: %v", err)
	}
	got := seen.all()
	if len(got) != 1 {
		t.Fatalf("second writer got %d calls, want 1", len(got))
	}
	// The server's deadline is its receive time plus the remaining time
	// the call carried: the caller's deadline, give or take the transit.
	if got[0].Before(want.Add(-testAttempt/2)) || got[0].After(want.Add(time.Second)) {
		t.Fatalf("second writer's call had deadline %v, want the caller's %v", got[0], want)
	}
	if got := counterValue(c.metrics.abandoned.WithLabelValues(frozen.addr)); got != 1 {
		t.Fatalf("abandoned counter = %v, want 1", got)
	}
}

// A caller deadline shorter than an attempt reaches the writer as it is,
// and no second writer is tried: there is no time for a full attempt.
func TestPushCallerDeadlineShorterThanAttempt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first func(t *testing.T) *writer
	}{
		{"slow writer", func(t *testing.T) *writer {
			w := startWriter(t, codes.OK)
			w.setHandle(ackAfter(time.Hour))
			return w
		}},
		{"hung writer", startFrozenWriter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w1, w2 := tc.first(t), startWriter(t, codes.OK)
			var seen deadlines
			if w1.handle != nil {
				w1.setHandle(seen.handle(w1.handle))
			}
			c := newClient(t, deadlineConfig())
			ctx, cancel := context.WithTimeout(context.Background(), testAttempt*3/2)
			defer cancel()
			want, _ := ctx.Deadline()
			err := c.Push(ctx, request(), instances("", w1, w2))
			if status.Code(err) != codes.DeadlineExceeded {
				t.Fatalf("err = %v, want the caller's DeadlineExceeded", err)
			}
			if w2.calls() != 0 {
				t.Fatal("a second writer was tried without time for a full attempt")
			}
			for _, d := range seen.all() {
				if d.Before(want.Add(-testAttempt/4)) || d.After(want.Add(time.Second)) {
					t.Fatalf("writer's call had deadline %v, want the caller's %v", d, want)
				}
			}
		})
	}
}
