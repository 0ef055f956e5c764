package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/go-kit/log"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/distributor"
	"github.com/pyrodist/pyrodist/test/corpus"
)

// countingPusher notes whether a request reached the pipeline.
type countingPusher struct {
	next  Pusher
	calls int
}

func (c *countingPusher) Push(ctx context.Context, tenant string, req *pushv1.PushRequest) error {
	c.calls++
	return c.next.Push(ctx, tenant, req)
}

// /ingest inflates and decodes pprof before the pipeline sees it: with a
// small in-flight budget a large profile is refused with 429 while it is
// being converted (before it reaches the pipeline), and the budget is back to
// zero afterwards; a small one passes and leaves the budget at zero too.
func TestIngestChargesTheInflightBudget(t *testing.T) {
	now := time.Now()
	big, _ := corpus.Get("cpu-16k") // ~1 MB inflated
	big, err := big.At(now)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := corpus.Get("cpu") // ~42 KB inflated
	if small, err = small.At(now); err != nil {
		t.Fatal(err)
	}
	d, err := distributor.New(distributor.Config{MaxInflightBytes: 1 << 20}, defaultsOnly{config.Defaults().Limits},
		&recordingSender{}, func() int { return 1 }, prometheus.NewRegistry(), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	pusher := &countingPusher{next: d}
	ts := startServer(t, func(o *Options) { o.Pusher, o.Budget = pusher, d.Budget() })

	for _, tc := range []struct {
		name       string
		multipart  bool
		gz         []byte
		wantStatus int
		wantPushed int
	}{
		{"raw pprof, over budget", false, big.Gzipped, http.StatusTooManyRequests, 0},
		{"multipart, over budget", true, big.Gzipped, http.StatusTooManyRequests, 0},
		{"raw pprof, within budget", false, small.Gzipped, http.StatusOK, 1},
		{"multipart, within budget", true, small.Gzipped, http.StatusOK, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pusher.calls = 0
			url := ts.url + "/ingest?name=app.cpu&format=pprof"
			ct, body := "application/octet-stream", tc.gz
			if tc.multipart {
				url = ts.url + "/ingest?name=app.cpu"
				body, ct = multipartBody(t, map[string][]byte{"profile": tc.gz})
			}
			resp, err := http.Post(url, ct, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var eb errorBody
			_ = json.NewDecoder(resp.Body).Decode(&eb)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%+v), want %d", resp.StatusCode, eb, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusTooManyRequests && eb.Code != "resource_exhausted" {
				t.Fatalf("error body %+v, want resource_exhausted", eb)
			}
			if pusher.calls != tc.wantPushed {
				t.Fatalf("%d requests reached the pipeline, want %d", pusher.calls, tc.wantPushed)
			}
			if n := d.Budget().InUse(); n != 0 {
				t.Fatalf("in-flight budget holds %d bytes after the request", n)
			}
		})
	}
}
