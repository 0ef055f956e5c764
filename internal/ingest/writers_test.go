package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/go-kit/log"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/distributor"
	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/internal/segmentwriter"
	"github.com/pyrodist/pyrodist/test/fakewriter"
	"github.com/pyrodist/pyrodist/test/fakewriter/fakewritertest"
)

// The whole path (server, pipeline, router, segment-writer client) in
// front of segment-writer simulators that store a push on receipt and ack
// it later, as real writers ack after their segment flush. Durations are
// production's scaled down 25 times (1 s there is 40 ms here).
const (
	scaledAttempt      = 200 * time.Millisecond  // the 5 s attempt timeout
	scaledWriteTimeout = 1200 * time.Millisecond // the 30 s write timeout
	scaled7s           = 280 * time.Millisecond
	scaled35s          = 1400 * time.Millisecond
	clientsPerRun      = 21
)

type staticRing struct{ r *placement.Ring }

func (s staticRing) Ring() *placement.Ring { return s.r }

// startWriters starts n simulators, in parallel; they are alone in
// their memberlist clusters, so they leave them at once when stopped.
func startWriters(t *testing.T, n int) []*fakewriter.Writer {
	t.Helper()
	ws := make([]*fakewriter.Writer, n)
	var wg sync.WaitGroup
	for i := range ws {
		wg.Go(func() {
			cfg := fakewritertest.Config(fmt.Sprintf("sw-%d", i), "", "127.0.0.1")
			cfg.Memberlist.LeaveTimeout = 50 * time.Millisecond
			cfg.Memberlist.BroadcastTimeoutForLocalUpdatesOnShutdown = 50 * time.Millisecond
			w, err := fakewriter.New(cfg, nil)
			if err != nil {
				t.Error(err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := w.Start(ctx); err != nil {
				t.Error(err)
				return
			}
			ws[i] = w
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, w := range ws {
			if w != nil {
				wg.Add(1)
				go func() { defer wg.Done(); _ = w.Stop(context.Background()) }()
			}
		}
		wg.Wait()
	})
	if t.Failed() {
		t.FailNow()
	}
	return ws
}

// control posts a fault-injection request to every writer and forgets
// what they recorded.
func control(t *testing.T, ws []*fakewriter.Writer, query func(i int) string) {
	t.Helper()
	for i, w := range ws {
		for _, q := range []string{query(i), "reset"} {
			if q == "" {
				continue
			}
			resp, err := http.Post("http://"+w.HTTPAddr()+"/control/"+q, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("POST /control/%s: %s", q, resp.Status)
			}
		}
	}
}

func ackAfter(d time.Duration) func(int) string {
	return func(int) string { return "ack-delay?duration=" + d.String() }
}

// startWriterBacked serves the real pipeline in front of ws (every one of
// them a candidate of every profile).
func startWriterBacked(t *testing.T, ws []*fakewriter.Writer, writeTimeout time.Duration) *testServer {
	t.Helper()
	var insts []placement.Instance
	for i, w := range ws {
		insts = append(insts, placement.Instance{ID: fmt.Sprintf("sw-%d", i), Addr: w.GRPCAddr(), State: placement.Active, Tokens: 4})
	}
	cfg := segmentwriter.Config{SegmentWriter: config.Defaults().SegmentWriter}
	cfg.AttemptTimeout = scaledAttempt
	client, err := segmentwriter.New(cfg, prometheus.NewRegistry(), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	limits := defaultsOnly{config.Defaults().Limits}
	router, err := distributor.NewRouter(staticRing{placement.NewRing(insts)}, client, distributor.RouterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := distributor.New(distributor.Config{}, limits, router, func() int { return 1 }, prometheus.NewRegistry(), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, func(o *Options) {
		o.Pusher = d
		o.WriteTimeout = writeTimeout
	})
}

// outcome is what one client saw.
type outcome struct {
	req    string // the value of the request's own "req" label
	status int    // HTTP status; 0 when no answer came (a reset)
	code   string // connect code of an error answer
	err    error  // what the client library said
}

// statusSeen notes the HTTP status of the last response a client received,
// so that a Connect error can be told apart from a reset.
type statusSeen struct {
	rt     http.RoundTripper
	status int
}

func (s *statusSeen) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.rt.RoundTrip(r)
	if err == nil {
		s.status = resp.StatusCode
	}
	return resp, err
}

// pushClients runs clientsPerRun clients at once, push.v1 (Connect) and
// /ingest (pprof) alternately, each with its own connection and a
// profile labelled req=<its index>. timeout is the Connect client's
// deadline (0: none; /ingest has none).
func pushClients(t *testing.T, base string, timeout time.Duration) []outcome {
	t.Helper()
	prof := smallProfile(t)
	out := make([]outcome, clientsPerRun)
	var wg sync.WaitGroup
	for i := range clientsPerRun {
		wg.Go(func() {
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			seen := &statusSeen{rt: tr}
			hc := &http.Client{Transport: seen}
			o := outcome{req: strconv.Itoa(i)}
			if i%2 == 0 {
				c := pushv1connect.NewPusherServiceClient(hc, base)
				ctx := context.Background()
				if timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, timeout)
					defer cancel()
				}
				_, o.err = c.Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
					Labels: []*typesv1.LabelPair{
						{Name: "__name__", Value: "process_cpu"},
						{Name: "req", Value: o.req},
						{Name: "service_name", Value: "slow-writers"},
					},
					Samples: []*pushv1.RawSample{{RawProfile: prof}},
				}}}))
				o.status = seen.status
				if o.err != nil {
					o.code = connect.CodeOf(o.err).String()
				}
			} else {
				u := base + "/ingest?format=pprof&name=" + url.QueryEscape("slow-writers{req="+o.req+"}")
				resp, err := hc.Post(u, "application/octet-stream", bytes.NewReader(prof))
				if err != nil {
					o.err = err
				} else {
					o.status = resp.StatusCode
					if o.status != http.StatusOK {
						o.code = decodeErrorBody(t, resp.Body).Code
						o.err = errors.New(resp.Status)
					}
					resp.Body.Close()
				}
			}
			out[i] = o
		})
	}
	wg.Wait()
	return out
}

// tally sums up a run: acked, told failure with a status, reset; and per
// request how many writers stored its profile.
type tally struct {
	acked, failed, reset int
	gaveUp               int // push.v1 clients whose own deadline fired first
	codes                map[string]int
	copies               map[string]int // by req label
}

func tallyRun(outs []outcome, ws []*fakewriter.Writer) tally {
	tl := tally{codes: map[string]int{}, copies: map[string]int{}}
	for _, w := range ws {
		for _, r := range w.Records() {
			for _, l := range r.Labels {
				if l.Name == "req" {
					tl.copies[l.Value]++
				}
			}
		}
	}
	for _, o := range outs {
		switch {
		case o.err == nil:
			tl.acked++
		case o.status == 0 && connect.CodeOf(o.err) == connect.CodeDeadlineExceeded:
			tl.gaveUp++
		case o.status == 0:
			tl.reset++
		default:
			tl.failed++
			tl.codes[o.code]++
		}
	}
	return tl
}

func (tl tally) String() string {
	dup := 0
	for _, n := range tl.copies {
		if n > 1 {
			dup++
		}
	}
	return fmt.Sprintf("%d acked, %d told failure %v, %d gave up at their own deadline, %d reset; %d profiles stored on more than one writer",
		tl.acked, tl.failed, tl.codes, tl.gaveUp, tl.reset, dup)
}

// waitStored lets calls the distributor gave up on reach their writers
// (which store on receipt) before copies are counted.
func waitStored() { time.Sleep(100 * time.Millisecond) }

// expectAckedOnce: every request was acknowledged and stored exactly once.
func expectAckedOnce(t *testing.T, outs []outcome, tl tally) {
	t.Helper()
	for _, o := range outs {
		if n := tl.copies[o.req]; o.err != nil || n != 1 {
			t.Errorf("request %s: %v (status %d), stored on %d writers; want acked, stored once", o.req, o.err, o.status, n)
		}
	}
}

// TestSlowWriters runs 21 clients at once (push.v1 and /ingest) in front
// of six writers, all of them candidates of every profile, with a 30 s
// write timeout and a 5 s attempt timeout (scaled):
//   - writers acking at 7 s: every client is acked, each profile stored once;
//   - the same with push.v1 clients whose deadline (3 s) is shorter than the
//     ack: they get deadline_exceeded, and nothing is stored twice;
//   - writers acking at 35 s, beyond the write timeout: every client gets
//     504 before the server would reset it, nothing is stored twice;
//   - writers acking at 4.99 s to 5.1 s: every client is acked, each
//     profile stored once;
//   - every writer refusing (Unavailable): /ingest answers 503 with
//     Retry-After.
func TestSlowWriters(t *testing.T) {
	ws := startWriters(t, 6)
	ts := startWriterBacked(t, ws, scaledWriteTimeout)
	// run has the writers answer as query says, pushes from every client
	// with the given deadline and logs what came of it as what.
	run := func(t *testing.T, query func(int) string, timeout time.Duration, what string) ([]outcome, tally) {
		t.Helper()
		control(t, ws, query)
		outs := pushClients(t, ts.url, timeout)
		waitStored()
		tl := tallyRun(outs, ws)
		t.Logf("%s: %v", what, tl)
		return outs, tl
	}

	t.Run("ack at 7 s", func(t *testing.T) {
		outs, tl := run(t, ackAfter(scaled7s), 0, "writers acking at 7 s")
		expectAckedOnce(t, outs, tl)
	})

	t.Run("ack at 7 s, client deadline 3 s", func(t *testing.T) {
		outs, tl := run(t, ackAfter(scaled7s), 120*time.Millisecond, "writers acking at 7 s, push.v1 clients with a 3 s deadline")
		for i, o := range outs {
			n := tl.copies[o.req]
			if i%2 == 1 { // /ingest: no client deadline
				if o.err != nil || n != 1 {
					t.Errorf("request %s: %v (status %d), stored on %d writers; want acked, stored once", o.req, o.err, o.status, n)
				}
				continue
			}
			// The client's own deadline may fire before the server's answer
			// arrives: the code is what matters.
			if connect.CodeOf(o.err) != connect.CodeDeadlineExceeded || n > 1 {
				t.Errorf("request %s: %v, stored on %d writers; want deadline_exceeded, stored at most once", o.req, o.err, n)
			}
		}
	})

	t.Run("ack at 35 s, beyond the write timeout", func(t *testing.T) {
		outs, tl := run(t, ackAfter(scaled35s), 0, "writers acking at 35 s")
		for _, o := range outs {
			if n := tl.copies[o.req]; o.status != http.StatusGatewayTimeout || o.code != connect.CodeDeadlineExceeded.String() || n > 1 {
				t.Errorf("request %s: %v (status %d, code %q), stored on %d writers; want 504 deadline_exceeded, stored at most once", o.req, o.err, o.status, o.code, n)
			}
		}
	})

	t.Run("ack at 4.99 to 5.1 s", func(t *testing.T) {
		// 4.99, 4.995, 5, 5.01, 5.025, 5.1 s
		acks := []time.Duration{199600 * time.Microsecond, 199800 * time.Microsecond, 200 * time.Millisecond,
			200400 * time.Microsecond, 201 * time.Millisecond, 204 * time.Millisecond}
		outs, tl := run(t, func(i int) string { return ackAfter(acks[i])(i) }, 0, "writers acking at 4.99-5.1 s")
		expectAckedOnce(t, outs, tl)
	})

	t.Run("outage", func(t *testing.T) {
		control(t, ws, func(int) string { return "fail?code=Unavailable" })
		checkOutage(t, ts)
	})
}

// Behind a writer outage /ingest answers 503 with Retry-After, for pprof
// and text bodies alike, so that clients come back instead of dropping the
// profile (Pyroscope answers 422, which they take as final).
func checkOutage(t *testing.T, ts *testServer) {
	t.Helper()
	for _, body := range []struct {
		query string
		data  []byte
	}{
		{"format=pprof&name=outage", smallProfile(t)},
		{"name=outage.cpu", []byte("main;work 10")},
	} {
		resp := post(t, ts.url+"/ingest?"+body.query, "", body.data, nil)
		b := decodeErrorBody(t, resp.Body)
		resp.Body.Close()
		ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusServiceUnavailable || err != nil || ra <= 0 || b.Code != connect.CodeUnavailable.String() {
			t.Errorf("/ingest?%s: status %d, Retry-After %q, code %q (%s); want 503, a delay in seconds, unavailable",
				body.query, resp.StatusCode, resp.Header.Get("Retry-After"), b.Code, b.Message)
		}
	}
}

func TestIngestNoWriters(t *testing.T) {
	checkOutage(t, startWriterBacked(t, nil, scaledWriteTimeout))
}
