package ingest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
)

// A tenant whose ingestion hard limit is reached gets 429 on every ingest
// protocol, with Pyroscope's text, as for the rate limit
// (docs/compatibility.md#status-codes), and nothing reaches a writer.
func TestIngestionLimitStatusCodes(t *testing.T) {
	d, w := pipelineToWriter(t, func(l *config.Limits) {
		l.Usage.IngestionLimit = config.IngestionLimit{
			PeriodType: "day", PeriodLimitMB: 1024, LimitResetTime: 1737721086, LimitReached: true,
			Sampling: config.IngestionLimitSampling{NumRequests: 0, Period: time.Minute},
		}
	})
	ts := startServer(t, func(o *Options) { o.Pusher = d })
	const msg = "limit of 1.0 GiB/day reached, next reset at 2025-01-24T12:18:06Z"

	client := pushv1connect.NewPusherServiceClient(http.DefaultClient, ts.url)
	_, err := client.Push(context.Background(), connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: "svc"}},
		Samples: []*pushv1.RawSample{{RawProfile: smallProfile(t)}},
	}}}))
	if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), msg) {
		t.Fatalf("push.v1: %v", err)
	}

	mp, mpType := multipartBody(t, map[string][]byte{"profile": smallProfile(t)})
	b, _ := smallExport(1)
	for _, tc := range []struct {
		name, path, ct string
		body           []byte
	}{
		{"/ingest folded", "/ingest?name=a.cpu", "", []byte("main;a 10")},
		{"/ingest pprof", "/ingest?name=a", mpType, mp},
		{"OTLP HTTP", otlpHTTPPath, "application/x-protobuf", marshalExport(t, b.Req, false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, ts.url+tc.path, tc.ct, tc.body, nil)
			if resp.StatusCode != http.StatusTooManyRequests {
				data, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d (%s), want 429", resp.StatusCode, data)
			}
			var got string
			if tc.path == otlpHTTPPath {
				got = decodeStatus(t, resp).Message
			} else {
				data, _ := io.ReadAll(resp.Body)
				got = string(data)
			}
			if !strings.Contains(got, msg) {
				t.Fatalf("answer %q, want %q in it", got, msg)
			}
		})
	}
	if n := w.count(); n != 0 {
		t.Fatalf("%d profiles reached the writer", n)
	}
}
