package ingest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	segmentwriterv1 "github.com/grafana/pyroscope/api/gen/proto/go/segmentwriter/v1"
	"github.com/prometheus/client_golang/prometheus"
	collectorv1 "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/distributor"
	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/test/testutil/observed"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

// writerRecorder stands for the segment-writers: it records what the
// Router pushes (shard included).
type writerRecorder struct {
	mu   sync.Mutex
	reqs []*segmentwriterv1.PushRequest
}

func (w *writerRecorder) Push(_ context.Context, req *segmentwriterv1.PushRequest, _ []*placement.Instance) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reqs = append(w.reqs, req.CloneVT())
	return nil
}

func (w *writerRecorder) since(n int) []*segmentwriterv1.PushRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.reqs[n:])
}

func (w *writerRecorder) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.reqs)
}

type fixedRing struct{ r *placement.Ring }

func (f fixedRing) Ring() *placement.Ring { return f.r }

// pipelineToWriter is the real pipeline and Router, with the default
// limits changed by mod, in front of the ring the observed cases were
// recorded with: one writer with 4 tokens.
func pipelineToWriter(t testing.TB, mod func(*config.Limits)) (*distributor.Distributor, *writerRecorder) {
	t.Helper()
	lim := config.Defaults().Limits
	if mod != nil {
		mod(&lim)
	}
	w := &writerRecorder{}
	ring := placement.NewRing([]placement.Instance{{ID: "segment-writer-0", Addr: "127.0.0.1:9095", State: placement.Active, Tokens: 4}})
	router, err := distributor.NewRouter(fixedRing{ring}, w, distributor.RouterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := distributor.New(distributor.Config{}, defaultsOnly{lim}, router,
		func() int { return 1 }, prometheus.NewRegistry(), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	return d, w
}

// restamp moves every profile of an observed export to now (the ingestion
// window would refuse the recorded times) and encodes it as it came.
func restamp(t *testing.T, rq observed.OTLPRequest, now time.Time) []byte {
	t.Helper()
	var req collectorv1.ExportProfilesServiceRequest
	unmarshal, marshal := proto.Unmarshal, proto.Marshal
	if rq.Kind == "otlp-http-json" {
		unmarshal, marshal = protojson.Unmarshal, protojson.Marshal
	}
	if err := unmarshal(rq.Body, &req); err != nil {
		return rq.Body // not an export (the garbage case): as it is
	}
	for _, rp := range req.ResourceProfiles {
		for _, sp := range rp.ScopeProfiles {
			for _, p := range sp.Profiles {
				p.TimeUnixNano = uint64(now.UnixNano())
			}
		}
	}
	b, err := marshal(&req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func grpcConn(t testing.TB, url string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(strings.TrimPrefix(url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// TestOTLPObservedExports replays the 4 exports sent to a real Pyroscope v2
// distributor (HTTP protobuf, HTTP JSON, gRPC over h2c, not an export)
// through the server, the real pipeline and the Router, and compares every
// field of what reaches the writer with what Pyroscope's writer received:
// the answer, series labels, shard, sample types, period, duration, time,
// samples, and that google/pprof accepts the profile.
func TestOTLPObservedExports(t *testing.T) {
	d, w := pipelineToWriter(t, nil)
	ts := startServer(t, func(o *Options) { o.Pusher = d })
	client := collectorv1.NewProfilesServiceClient(grpcConn(t, ts.url))
	want := observed.OTLPOutcomes()
	reqs := observed.OTLPRequests()
	if len(reqs) != 4 {
		t.Fatalf("%d observed exports, want 4", len(reqs))
	}
	for _, rq := range reqs {
		t.Run(rq.Case, func(t *testing.T) {
			exp := want[rq.Case]
			now := time.Now()
			body := restamp(t, rq, now)
			before := w.count()
			switch rq.Kind {
			case "otlp-grpc":
				var req collectorv1.ExportProfilesServiceRequest
				if err := proto.Unmarshal(body, &req); err != nil {
					t.Fatal(err)
				}
				resp, err := client.Export(context.Background(), &req)
				if got := status.Code(err).String(); got != exp.Status {
					t.Fatalf("gRPC status %s (%v), Pyroscope answered %s", got, err, exp.Status)
				}
				if resp.GetPartialSuccess() != nil {
					t.Errorf("partial success %v", resp.GetPartialSuccess())
				}
			default:
				ct := "application/x-protobuf"
				if rq.Kind == "otlp-http-json" {
					ct = "application/json"
				}
				resp := post(t, ts.url+otlpHTTPPath, ct, body, nil)
				data, _ := io.ReadAll(resp.Body)
				if got := fmt.Sprint(resp.StatusCode); got != exp.Status {
					t.Fatalf("status %s (%s), Pyroscope answered %s", got, data, exp.Status)
				}
				if resp.StatusCode == 200 {
					if got := resp.Header.Get("Content-Type"); got != ct {
						t.Errorf("answer Content-Type %q, want %q", got, ct)
					}
					var r collectorv1.ExportProfilesServiceResponse
					unmarshal := proto.Unmarshal
					if ct == "application/json" {
						unmarshal = protojson.Unmarshal
					}
					if err := unmarshal(data, &r); err != nil || r.PartialSuccess != nil {
						t.Errorf("answer %q: %v, partial success %v", data, err, r.PartialSuccess)
					}
				}
			}
			got := w.since(before)
			if len(got) != len(exp.Outs) {
				t.Fatalf("%d profiles reached the writer, Pyroscope's got %d", len(got), len(exp.Outs))
			}
			for i, o := range exp.Outs {
				g := got[i]
				if l := labelStrings(g.Labels); !slices.Equal(l, o.Labels) {
					t.Errorf("labels\n got %q\nwant %q", l, o.Labels)
				}
				if g.Shard != o.Shard {
					t.Errorf("shard %d, want %d", g.Shard, o.Shard)
				}
				if g.TenantId != AnonymousTenant {
					t.Errorf("tenant %q", g.TenantId)
				}
				p := pprofcheck.Parse(t, g.Profile) // CheckValid: Pyroscope's was "ok"
				if o.CheckValid != "ok" {
					t.Errorf("Pyroscope's profile was not valid (%s); this one is", o.CheckValid)
				}
				var types []string
				for _, st := range p.SampleType {
					types = append(types, st.Type+"/"+st.Unit)
				}
				if !slices.Equal(types, o.SampleTypes) {
					t.Errorf("sample types %q, want %q", types, o.SampleTypes)
				}
				if per := fmt.Sprintf("%s/%s %d", p.PeriodType.Type, p.PeriodType.Unit, p.Period); per != o.Period {
					t.Errorf("period %q, want %q", per, o.Period)
				}
				if p.DurationNanos != o.DurationNanos {
					t.Errorf("duration %d, want %d", p.DurationNanos, o.DurationNanos)
				}
				if o.Time != "recent" || time.Duration(now.UnixNano()-p.TimeNanos).Abs() > time.Minute {
					t.Errorf("time %d, want recent (%s)", p.TimeNanos, o.Time)
				}
				if s := observed.Samples(p); !slices.Equal(s, o.Samples) {
					t.Errorf("samples\n got %q\nwant %q", s, o.Samples)
				}
			}
		})
	}
}
