package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
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
)

// A push.v1 body is charged to the in-flight budget before connect reads
// it: over Connect (Content-Length known) and gRPC (length unknown, charged
// chunk by chunk) a body larger than the budget is refused with
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
	if bodySize < 2*pushBodyChunk {
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

	protocols := []struct {
		name   string
		client *http.Client
		opts   []connect.ClientOption
	}{
		{"connect", http.DefaultClient, nil},
		{"grpc", h2cClient(t), []connect.ClientOption{connect.WithGRPC()}},
	}
	for _, budget := range []struct {
		name string
		max  int64
		ok   bool
	}{
		{"tiny budget", 16 << 10, false},
		{"one chunk and a bit", pushBodyChunk + 1<<10, false},
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
