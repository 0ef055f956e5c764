package segmentwriter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	segmentwriterv1 "github.com/grafana/pyroscope/api/gen/proto/go/segmentwriter/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/metriclabel"
	"github.com/pyrodist/pyrodist/internal/placement"
)

// writer is a test double of a segment-writer: a real gRPC server on
// 127.0.0.1 that records every request and answers with handle's error.
type writer struct {
	segmentwriterv1.UnimplementedSegmentWriterServiceServer
	addr string

	mu     sync.Mutex
	got    []*segmentwriterv1.PushRequest
	handle func(ctx context.Context, req *segmentwriterv1.PushRequest) error
}

func (w *writer) Push(ctx context.Context, req *segmentwriterv1.PushRequest) (*segmentwriterv1.PushResponse, error) {
	w.mu.Lock()
	w.got = append(w.got, req.CloneVT())
	h := w.handle
	w.mu.Unlock()
	if h != nil {
		if err := h(ctx, req); err != nil {
			return nil, err
		}
	}
	return &segmentwriterv1.PushResponse{}, nil
}

func (w *writer) setHandle(h func(context.Context, *segmentwriterv1.PushRequest) error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.handle = h
}

func (w *writer) calls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.got)
}

func (w *writer) shards() []uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var s []uint32
	for _, r := range w.got {
		s = append(s, r.Shard)
	}
	return s
}

func startWriter(t *testing.T, fail codes.Code) *writer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{addr: lis.Addr().String()}
	if fail != codes.OK {
		w.handle = func(context.Context, *segmentwriterv1.PushRequest) error {
			return status.Error(fail, "writer says "+fail.String())
		}
	}
	s := grpc.NewServer()
	segmentwriterv1.RegisterSegmentWriterServiceServer(s, w)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return w
}

func instances(zone string, ws ...*writer) []*placement.Instance {
	var out []*placement.Instance
	for i, w := range ws {
		out = append(out, &placement.Instance{ID: fmt.Sprintf("w%d", i), Addr: w.addr, Zone: zone, Tokens: 4})
	}
	return out
}

func testConfig() Config {
	d := config.Defaults()
	return Config{SegmentWriter: d.SegmentWriter}
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func request() *segmentwriterv1.PushRequest {
	return &segmentwriterv1.PushRequest{
		TenantId:  "tenant-a",
		Labels:    []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: "svc"}},
		Profile:   []byte("not inspected by the double"),
		ProfileId: []byte("0123456789abcdef"),
		Shard:     7,
	}
}

func TestPushSuccess(t *testing.T) {
	w := startWriter(t, codes.OK)
	c := newClient(t, testConfig())
	if err := c.Push(context.Background(), request(), instances("", w)); err != nil {
		t.Fatal(err)
	}
	if w.calls() != 1 {
		t.Fatalf("writer got %d calls, want 1", w.calls())
	}
	got := w.got[0]
	if got.TenantId != "tenant-a" || got.Shard != 7 || string(got.ProfileId) != "0123456789abcdef" || len(got.Labels) != 2 {
		t.Fatalf("writer got %v", got)
	}
	if n := countSeries(c.metrics.sentBytes); n != 1 {
		t.Fatalf("sent bytes series = %d, want 1", n)
	}
}

func TestPushFailover(t *testing.T) {
	for _, tc := range []struct {
		name      string
		first     codes.Code
		wantCode  codes.Code
		wantMsg   string
		secondHit bool
	}{
		{"unavailable retries", codes.Unavailable, codes.OK, "", true},
		{"deadline exceeded retries", codes.DeadlineExceeded, codes.OK, "", true},
		{"resource exhausted retries", codes.ResourceExhausted, codes.OK, "", true},
		{"invalid argument returned unchanged", codes.InvalidArgument, codes.InvalidArgument, "writer says InvalidArgument", false},
		{"permission denied returned unchanged", codes.PermissionDenied, codes.PermissionDenied, "writer says PermissionDenied", false},
		{"unauthenticated returned unchanged", codes.Unauthenticated, codes.Unauthenticated, "writer says Unauthenticated", false},
		{"unknown becomes unavailable", codes.Unknown, codes.Unavailable, unavailableMsg, false},
		{"internal becomes unavailable", codes.Internal, codes.Unavailable, unavailableMsg, false},
		{"failed precondition becomes unavailable", codes.FailedPrecondition, codes.Unavailable, unavailableMsg, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w1, w2 := startWriter(t, tc.first), startWriter(t, codes.OK)
			c := newClient(t, testConfig())
			err := c.Push(context.Background(), request(), instances("", w1, w2))
			if st := status.Convert(err); st.Code() != tc.wantCode || (err != nil && st.Message() != tc.wantMsg) {
				t.Fatalf("err = %v, want %s %q", err, tc.wantCode, tc.wantMsg)
			}
			if w1.calls() != 1 {
				t.Fatalf("first writer got %d calls, want 1", w1.calls())
			}
			if hit := w2.calls() > 0; hit != tc.secondHit {
				t.Fatalf("second writer called = %v, want %v", hit, tc.secondHit)
			}
			if tc.secondHit && !slices.Equal(w2.shards(), []uint32{7}) {
				t.Fatalf("second writer got shards %v, want the same shard 7", w2.shards())
			}
		})
	}
}

func TestPushAtMostSixAttempts(t *testing.T) {
	var ws []*writer
	for range 8 {
		ws = append(ws, startWriter(t, codes.Unavailable))
	}
	c := newClient(t, testConfig())
	err := c.Push(context.Background(), request(), instances("", ws...))
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != unavailableMsg {
		t.Fatalf("err = %v, want Unavailable %q", err, unavailableMsg)
	}
	for i, w := range ws {
		want := 0
		if i < MaxAttempts {
			want = 1
		}
		if w.calls() != want {
			t.Errorf("writer %d got %d calls, want %d", i, w.calls(), want)
		}
		if want == 1 && !slices.Equal(w.shards(), []uint32{7}) {
			t.Errorf("writer %d got shards %v, want [7]", i, w.shards())
		}
	}
}

func TestPushNoCandidates(t *testing.T) {
	c := newClient(t, testConfig())
	err := c.Push(context.Background(), request(), nil)
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != unavailableMsg {
		t.Fatalf("err = %v", err)
	}
}

// A writer whose port is closed fails the attempt with a transport error,
// which moves on to the next candidate.
func TestPushConnectionRefusedFailsOver(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := &writer{addr: lis.Addr().String()}
	_ = lis.Close()
	w := startWriter(t, codes.OK)
	c := newClient(t, testConfig())
	if err := c.Push(context.Background(), request(), instances("", dead, w)); err != nil {
		t.Fatal(err)
	}
	if w.calls() != 1 {
		t.Fatalf("live writer got %d calls", w.calls())
	}
}

func TestPushContextDoneBetweenAttempts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w1, w2 := startWriter(t, codes.OK), startWriter(t, codes.OK)
	w1.setHandle(func(context.Context, *segmentwriterv1.PushRequest) error {
		cancel()
		return status.Error(codes.Unavailable, "going away")
	})
	c := newClient(t, testConfig())
	err := c.Push(ctx, request(), instances("", w1, w2))
	// Either the call itself saw the cancel (Canceled, returned unchanged)
	// or the loop did between attempts (ctx.Err() carrying code Canceled).
	if status.Code(err) != codes.Canceled {
		t.Fatalf("err = %v (code %s), want code Canceled", err, status.Code(err))
	}
	if w2.calls() != 0 {
		t.Fatal("second writer was called after the context ended")
	}
}

// Without a caller deadline a hung writer is still left for the next
// candidate: Push bounds the call itself.
func TestPushAttemptDeadlineWithoutCallerDeadline(t *testing.T) {
	frozen, w2 := startFrozenWriter(t), startWriter(t, codes.OK)
	cfg := testConfig()
	// Long enough that the bound (MaxAttempts times this) leaves time for
	// the probe (the connect timeout, 1 s) and another attempt.
	cfg.AttemptTimeout = 500 * time.Millisecond
	c := newClient(t, cfg)
	if err := c.Push(context.Background(), request(), instances("", frozen, w2)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w2.shards(), []uint32{7}) {
		t.Fatalf("second writer got shards %v, want [7]", w2.shards())
	}
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestCircuitBreakerOpensAndRecovers(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	w := startWriter(t, codes.Unavailable)
	cfg := testConfig()
	cfg.Now = clock.Now
	c := newClient(t, cfg)
	cands := instances("", w)
	push := func() error { return c.Push(context.Background(), request(), cands) }

	for i := range breakerMaxFailures {
		_ = push()
		if w.calls() != i+1 {
			t.Fatalf("attempt %d did not reach the writer", i+1)
		}
	}
	// Open: the writer is not called, the caller gets Unavailable at once.
	if err := push(); status.Code(err) != codes.Unavailable {
		t.Fatalf("err = %v", err)
	}
	if w.calls() != breakerMaxFailures {
		t.Fatalf("open breaker let a call through (%d calls)", w.calls())
	}
	if got := counterValue(c.metrics.rejected.WithLabelValues(w.addr)); got != 1 {
		t.Fatalf("circuit-open counter = %v, want 1", got)
	}
	clock.Add(breakerOpenFor - time.Millisecond)
	_ = push()
	if w.calls() != breakerMaxFailures {
		t.Fatal("breaker closed before its open period ended")
	}
	// Half-open after 1s: a failing trial opens it again.
	clock.Add(time.Millisecond)
	_ = push()
	if w.calls() != breakerMaxFailures+1 {
		t.Fatal("half-open breaker did not let a trial through")
	}
	_ = push()
	if w.calls() != breakerMaxFailures+1 {
		t.Fatal("failed trial did not reopen the breaker")
	}
	// The writer recovers: trials succeed and 5 of them close the breaker.
	w.setHandle(nil)
	clock.Add(breakerOpenFor)
	for range breakerTrials {
		if err := push(); err != nil {
			t.Fatal(err)
		}
	}
	cn := c.conns[w.addr]
	if cn.cb.state != breakerStateClosed {
		t.Fatalf("breaker state %d after %d successes, want closed", cn.cb.state, breakerTrials)
	}
}

// Request-specific errors never open a circuit; only Unavailable does.
func TestCircuitBreakerIgnoresClientErrors(t *testing.T) {
	w := startWriter(t, codes.InvalidArgument)
	c := newClient(t, testConfig())
	for range 2 * breakerMaxFailures {
		_ = c.Push(context.Background(), request(), instances("", w))
	}
	w.setHandle(func(context.Context, *segmentwriterv1.PushRequest) error {
		return status.Error(codes.ResourceExhausted, "slow down")
	})
	for range 2 * breakerMaxFailures {
		_ = c.Push(context.Background(), request(), instances("", w))
	}
	if w.calls() != 4*breakerMaxFailures {
		t.Fatalf("writer got %d calls, want %d: the breaker opened", w.calls(), 4*breakerMaxFailures)
	}
}

func TestBreakerHalfOpenAdmitsAtMostFiveTrials(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	b := newBreaker(clock.Now)
	for range breakerMaxFailures {
		g, err := b.allow()
		if err != nil {
			t.Fatal(err)
		}
		b.done(g, true)
	}
	if _, err := b.allow(); !errors.Is(err, errBreakerOpen) {
		t.Fatalf("err = %v, want open", err)
	}
	clock.Add(breakerOpenFor)
	var gens []uint64
	for range breakerTrials {
		g, err := b.allow()
		if err != nil {
			t.Fatal(err)
		}
		gens = append(gens, g)
	}
	if _, err := b.allow(); !errors.Is(err, errBreakerTooMany) {
		t.Fatalf("sixth trial: err = %v, want too many", err)
	}
	for _, g := range gens {
		b.done(g, false)
	}
	if g, err := b.allow(); err != nil {
		t.Fatalf("closed breaker rejected: %v", err)
	} else {
		b.done(g, false)
	}
	// A result from an older generation does not count.
	b.done(gens[0], true)
	b.done(gens[0], true)
	b.done(gens[0], true)
	if b.isOpen() {
		t.Fatal("stale results opened the breaker")
	}
}

func TestPoolDropsRemovedAddresses(t *testing.T) {
	w1, w2 := startWriter(t, codes.OK), startWriter(t, codes.OK)
	c := newClient(t, testConfig())
	c.SetAddresses([]string{w1.addr, w2.addr})
	if got := c.Addresses(); len(got) != 2 {
		t.Fatalf("pool has %v", got)
	}
	for _, w := range []*writer{w1, w2} {
		if err := c.Push(context.Background(), request(), instances("", w)); err != nil {
			t.Fatal(err)
		}
	}
	old := c.conns[w1.addr]
	c.SetAddresses([]string{w2.addr})
	if got := c.Addresses(); !slices.Equal(got, []string{w2.addr}) {
		t.Fatalf("pool has %v, want only %s", got, w2.addr)
	}
	if st := old.cc.GetState(); st != connectivity.Shutdown {
		t.Fatalf("dropped connection is %s, want SHUTDOWN", st)
	}
	// The dropped address's metric series are gone; the kept one's stay.
	if n := countSeries(c.metrics.sentBytes); n != 1 {
		t.Fatalf("sent-bytes series = %d, want 1", n)
	}
	// A candidate the ring no longer lists is still served (the snapshot may
	// lag), on a connection that is closed right after.
	if err := c.Push(context.Background(), request(), instances("", w1)); err != nil {
		t.Fatal(err)
	}
	if got := c.Addresses(); !slices.Equal(got, []string{w2.addr}) {
		t.Fatalf("pool kept %v", got)
	}
}

func TestZoneFallbackCounted(t *testing.T) {
	local, remote := startWriter(t, codes.Unavailable), startWriter(t, codes.OK)
	cfg := testConfig()
	cfg.Zone, cfg.PreferSameZone = "zone-a", true
	c := newClient(t, cfg)
	cands := []*placement.Instance{
		{ID: "local", Addr: local.addr, Zone: "zone-a"},
		{ID: "remote", Addr: remote.addr, Zone: "zone-b"},
	}
	if err := c.Push(context.Background(), request(), cands); err != nil {
		t.Fatal(err)
	}
	local.setHandle(nil)
	if err := c.Push(context.Background(), request(), cands); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(c.metrics.zoneFallback); got != 1 {
		t.Fatalf("fallback counter = %v, want 1", got)
	}
}

func countSeries(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 1000)
	c.Collect(ch)
	close(ch)
	return len(ch)
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// Pushes racing with pool changes never hit a connection closed under
// them: a dropped connection closes only after its last call.
func TestPoolChurnDuringPushes(t *testing.T) {
	w1, w2 := startWriter(t, codes.OK), startWriter(t, codes.OK)
	c := newClient(t, testConfig())
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				errs <- c.Push(context.Background(), request(), instances("", []*writer{w1, w2}[g%2]))
			}
		}()
	}
	for i := range 200 {
		if i%2 == 0 {
			c.SetAddresses([]string{w2.addr})
		} else {
			c.SetAddresses([]string{w1.addr, w2.addr})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("push during pool churn: %v", err)
		}
	}
}

func TestPushAfterClose(t *testing.T) {
	w := startWriter(t, codes.OK)
	c := newClient(t, testConfig())
	_ = c.Close()
	err := c.Push(context.Background(), request(), instances("", w))
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != unavailableMsg {
		t.Fatalf("err = %v", err)
	}
	if w.calls() != 0 || len(c.Addresses()) != 0 {
		t.Fatal("a closed client dialed")
	}
}

// The sent-bytes tenant label is capped: tenants past the cap, and invalid
// ones, are recorded as metriclabel.Other.
func TestSentBytesTenantsAreBounded(t *testing.T) {
	w := startWriter(t, codes.OK)
	cfg := testConfig()
	cfg.MaxMetricTenants = 2
	c := newClient(t, cfg)
	for _, tenant := range []string{"a", "b", "c", "d", "not/valid", "a"} {
		req := request()
		req.TenantId = tenant
		if err := c.Push(context.Background(), req, instances("", w)); err != nil {
			t.Fatal(err)
		}
	}
	ch := make(chan prometheus.Metric, 100)
	c.metrics.sentBytes.Collect(ch)
	close(ch)
	got := map[string]bool{}
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		for _, l := range pb.GetLabel() {
			if l.GetName() == "tenant" {
				got[l.GetValue()] = true
			}
		}
	}
	if len(got) != 3 || !got["a"] || !got["b"] || !got[metriclabel.Other] {
		t.Fatalf("tenant values %v, want a, b and %s", got, metriclabel.Other)
	}
}
