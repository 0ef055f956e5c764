package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
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
	"github.com/pyrodist/pyrodist/test/corpus"
	"github.com/pyrodist/pyrodist/test/testutil/slowclient"
)

// A push.v1 body is charged to the in-flight budget as connect reads it:
// over Connect and gRPC a body larger than the budget is refused with
// resource_exhausted without reaching the pipeline, and the budget is back
// to zero afterwards; with room, the same request passes.
func TestPushBodyChargesTheInflightBudget(t *testing.T) {
	now := time.Now()
	cp, _ := corpus.Get("cpu-16k")
	cp, err := cp.At(now)
	if err != nil {
		t.Fatal(err)
	}
	var samples []*pushv1.RawSample
	for range 4 { // a body of several chunks
		samples = append(samples, &pushv1.RawSample{RawProfile: cp.Gzipped})
	}
	req := &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: "app"}},
		Samples: samples,
	}}}
	bodySize := req.SizeVT()
	if bodySize < 2*bodyStep {
		t.Fatalf("request of %d bytes is too small for this test", bodySize)
	}
	limits := config.Defaults().Limits
	limits.IngestionBurstSizeMB = 1000
	limits.IngestionRateMB = 1000
	start := func(t *testing.T, budget int64) (*distributor.Distributor, *countingPusher, *testServer) {
		d, err := distributor.New(distributor.Config{MaxInflightBytes: budget}, defaultsOnly{limits},
			&recordingSender{}, func() int { return 1 }, prometheus.NewRegistry(), log.NewNopLogger())
		if err != nil {
			t.Fatal(err)
		}
		pusher := &countingPusher{next: d}
		return d, pusher, startServer(t, func(o *Options) { o.Pusher, o.Budget = pusher, d.Budget() })
	}

	protocols := clientProtocols(t)[:2] // Connect and gRPC
	for _, budget := range []struct {
		name string
		max  int64
		ok   bool
	}{
		{"tiny budget", 16 << 10, false},
		{"one step and a bit", pushBodyCopies*bodyStep + 1<<10, false},
		// Room for the body but not for connect's buffer and the decoded copy.
		{"the body twice", int64(2 * bodySize), false},
		{"room", 1 << 30, true},
	} {
		for _, proto := range protocols {
			t.Run(budget.name+"/"+proto.name, func(t *testing.T) {
				d, pusher, ts := start(t, budget.max)
				c := pushv1connect.NewPusherServiceClient(proto.client, ts.url, proto.opts...)
				_, err := c.Push(context.Background(), connect.NewRequest(req))
				switch {
				case budget.ok && err != nil:
					t.Fatalf("push: %v", err)
				case !budget.ok && connect.CodeOf(err) != connect.CodeResourceExhausted:
					t.Fatalf("err %v, want resource_exhausted", err)
				case !budget.ok && pusher.calls != 0:
					t.Fatal("a refused body reached the pipeline")
				}
				waitBudgetEmpty(t, d)
			})
		}
	}

	// The Connect refusal is an HTTP 429 with Connect's JSON error body.
	d, _, ts := start(t, 16<<10)
	body, _ := req.MarshalVT()
	resp, err := http.Post(ts.url+pushv1connect.PusherServicePushProcedure, "application/proto", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb struct{ Code string }
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	if resp.StatusCode != http.StatusTooManyRequests || eb.Code != "resource_exhausted" {
		t.Fatalf("status %d, code %q; want 429 resource_exhausted", resp.StatusCode, eb.Code)
	}
	waitBudgetEmpty(t, d)
}

// waitBudgetEmpty waits for the handler to return: the client may see the
// response before the server's deferred release has run.
func waitBudgetEmpty(t *testing.T, d *distributor.Distributor) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for d.Budget().InUse() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := d.Budget().InUse(); n != 0 {
		t.Fatalf("in-flight budget holds %d bytes after the request", n)
	}
}

// A client that declares a large body and trickles it holds the budget only
// for what it sent, so other clients are served meanwhile; once the grace
// period is over a body slower than the minimum rate is dropped, on push.v1
// and /ingest alike. (Charging the declared size up front refused every
// other client with 429 for as long as the trickle went on.)
func TestSlowBodiesHoldNoBudgetAndAreDropped(t *testing.T) {
	const budget = 4 << 20
	limits := config.Defaults().Limits
	limits.IngestionBurstSizeMB, limits.IngestionRateMB = 1000, 1000
	d, err := distributor.New(distributor.Config{MaxInflightBytes: budget}, defaultsOnly{limits},
		&recordingSender{}, func() int { return 1 }, prometheus.NewRegistry(), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(o *Options) {
		o.Pusher, o.Budget = d, d.Budget()
		o.MinBodyRate, o.BodyRateGrace = 8<<10, 500*time.Millisecond
	})
	addr := strings.TrimPrefix(ts.url, "http://")

	// Each declares half the budget: charged up front, two would hold it all.
	const slow = 8
	answers := make(chan string, slow)
	for i := range slow {
		path, ct := "/push.v1.PusherService/Push", "application/proto"
		if i%2 == 1 {
			path, ct = "/ingest?name=app.cpu&format=pprof", "application/octet-stream"
		}
		go func() { answers <- slowclient.Trickle(addr, path, ct, budget/2, 50*time.Millisecond, 30*time.Second) }()
	}
	time.Sleep(200 * time.Millisecond) // the trickles are under way
	if held := d.Budget().InUse(); held > slow*pushBodyCopies*bodyStep {
		t.Errorf("the trickling bodies hold %d bytes of the budget", held)
	}
	c := pushv1connect.NewPusherServiceClient(http.DefaultClient, ts.url)
	if _, err := c.Push(context.Background(), connect.NewRequest(pushRequest(smallProfile(t)))); err != nil {
		t.Fatalf("a normal push while bodies trickle: %v", err)
	}

	got := map[string]int{}
	for range slow {
		select {
		case line := <-answers:
			got[line]++
		case <-time.After(40 * time.Second):
			t.Fatalf("trickling bodies were not dropped: %v", got)
		}
	}
	// push.v1 over Connect says deadline_exceeded (504); /ingest says 408.
	if got["504 Gateway Timeout"] != slow/2 || got["408 Request Timeout"] != slow/2 {
		t.Fatalf("answers to the trickling bodies: %v", got)
	}
	waitBudgetEmpty(t, d)
}

// An h2c stream (gRPC) that trickles its message is dropped the same way.
func TestSlowGRPCStreamIsDropped(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.MinBodyRate, o.BodyRateGrace = 8<<10, 300*time.Millisecond })
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, ts.url+pushv1connect.PusherServicePushProcedure, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	go func() {
		// A gRPC frame header announcing 1 MB, then a byte at a time.
		_, _ = pw.Write([]byte{0, 0, 0x10, 0, 0})
		for i := 0; i < 200; i++ {
			time.Sleep(50 * time.Millisecond)
			if _, err := pw.Write([]byte{0}); err != nil {
				return
			}
		}
		pw.Close()
	}()
	resp, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if got := resp.Trailer.Get("Grpc-Status"); got != "4" { // DEADLINE_EXCEEDED
		t.Fatalf("grpc-status %q (%s), want 4", got, resp.Trailer.Get("Grpc-Message"))
	}
	_ = pw.CloseWithError(errors.New("done"))
}
