package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/go-kit/log"
	"github.com/google/pprof/profile"
	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/distributor"
	"github.com/pyrodist/pyrodist/test/corpus"
	"github.com/pyrodist/pyrodist/test/testutil/observed"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

type recordingSender struct {
	mu  sync.Mutex
	out []*distributor.Profile
}

func (r *recordingSender) Send(_ context.Context, p *distributor.Profile) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := *p
	cp.Pprof = bytes.Clone(p.Pprof) // the bytes are the sender's only until Send returns
	r.out = append(r.out, &cp)
	return nil
}

type defaultsOnly struct{ l config.Limits }

func (d defaultsOnly) ForTenant(string) *config.Limits { return &d.l }

// recent rewrites the pprof in an observed /ingest body so its time_nanos is
// a minute ago (the corpus was recorded at a fixed time; the ingestion
// window would reject it later). Folded bodies carry no time.
func recent(t *testing.T, rq observed.Request) []byte {
	t.Helper()
	fix := func(b []byte) []byte {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(zr)
		var p profilev1.Profile
		if err := p.UnmarshalVT(raw); err != nil {
			t.Fatal(err)
		}
		p.TimeNanos = time.Now().Add(-time.Minute).UnixNano()
		out, _ := p.MarshalVT()
		return gzipped(out)
	}
	q, _ := url.ParseQuery(rq.Query)
	if q.Get("format") == "pprof" {
		return fix(rq.Body)
	}
	_, params, err := mime.ParseMediaType(rq.ContentType)
	if err != nil || params["boundary"] == "" {
		return rq.Body
	}
	var out bytes.Buffer
	mw := multipart.NewWriter(&out)
	_ = mw.SetBoundary(params["boundary"])
	mr := multipart.NewReader(bytes.NewReader(rq.Body), params["boundary"])
	for {
		part, err := mr.NextPart()
		if err != nil {
			break
		}
		data, _ := io.ReadAll(part)
		if part.FormName() == "profile" {
			data = fix(data)
		}
		w, _ := mw.CreatePart(part.Header)
		_, _ = w.Write(data)
	}
	_ = mw.Close()
	return out.Bytes()
}

// TestIngestThroughPipeline replays the observed /ingest cases through the
// real pipeline and checks what reaches the sender against what Pyroscope
// sent to its segment-writer: labels and normalized samples.
func TestIngestThroughPipeline(t *testing.T) {
	reqs, want := observed.Requests(), observed.Outcomes()
	sender := &recordingSender{}
	d, err := distributor.New(distributor.Config{}, defaultsOnly{config.Defaults().Limits}, sender,
		func() int { return 1 }, prometheus.NewRegistry(), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(o *Options) { o.Pusher = d })
	for _, rq := range reqs {
		if rq.Kind != "ingest" {
			continue
		}
		t.Run(rq.Case, func(t *testing.T) {
			exp := want[rq.Case]
			before := len(sender.out)
			resp := post(t, ts.url+"/ingest?"+rq.Query, rq.ContentType, recent(t, rq), nil)
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			got := sender.out[before:]
			if len(got) != len(exp.Outs) {
				t.Fatalf("%d profiles sent, Pyroscope sent %d", len(got), len(exp.Outs))
			}
			for i, p := range got {
				if l := labelStrings(p.Labels); !slices.Equal(l, exp.Outs[i].Labels) {
					t.Errorf("labels\n got %q\nwant %q", l, exp.Outs[i].Labels)
				}
				prof := pprofcheck.Parse(t, p.Pprof)
				var wantStacks []string
				for _, s := range exp.Outs[i].Samples {
					stack, rest, _ := strings.Cut(s, " | ")
					_, values, _ := strings.Cut(rest, "=> ")
					wantStacks = append(wantStacks, stack+" => "+values)
				}
				if s := stacks(prof); !slices.Equal(s, wantStacks) {
					t.Errorf("samples %q, want %q", s, wantStacks)
				}
			}
		})
	}
}

// /ingest names a pprof of unknown sample type after that type, a string
// from the client: one that is not UTF-8 is refused (422 for pprof bodies),
// it does not crash the request.
func TestIngestInvalidUTF8SampleType(t *testing.T) {
	d, err := distributor.New(distributor.Config{}, defaultsOnly{config.Defaults().Limits}, &recordingSender{},
		func() int { return 1 }, prometheus.NewRegistry(), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(o *Options) { o.Pusher = d })
	fn := &profile.Function{ID: 1, Name: "main"}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "x\xff", Unit: "count"}},
		Function:   []*profile.Function{fn},
		Location:   []*profile.Location{{ID: 1, Line: []profile.Line{{Function: fn}}}},
		TimeNanos:  time.Now().UnixNano(),
	}
	p.Sample = []*profile.Sample{{Location: p.Location, Value: []int64{1}}}
	var body bytes.Buffer
	if err := p.Write(&body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(ts.url+"/ingest?name=app&format=pprof", "application/octet-stream", &body)
	if err != nil {
		t.Fatalf("request failed (the handler panicked?): %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", resp.StatusCode)
	}
}

type slowSender struct{ d time.Duration }

func (s slowSender) Send(context.Context, *distributor.Profile) error {
	time.Sleep(s.d)
	return nil
}

// The added-latency histogram is a push's duration less its wait on the
// writers, on push.v1 and /ingest alike.
func TestAddedLatencyLeavesOutWriterWaits(t *testing.T) {
	const wait = 300 * time.Millisecond
	d, err := distributor.New(distributor.Config{}, defaultsOnly{config.Defaults().Limits}, slowSender{wait},
		func() int { return 1 }, prometheus.NewRegistry(), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	ts := startServer(t, func(o *Options) { o.Pusher, o.Registerer, o.Gatherer = d, reg, reg })
	cp, err := corpus.All()[0].At(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := pushv1connect.NewPusherServiceClient(http.DefaultClient, ts.url)
	if _, err := c.Push(context.Background(), connect.NewRequest(pushRequest(cp.Gzipped))); err != nil {
		t.Fatal(err)
	}
	if resp := post(t, ts.url+"/ingest?name=app.cpu", "", []byte("main;work 10"), nil); resp.StatusCode != 200 {
		t.Fatalf("/ingest: %d", resp.StatusCode)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	hist := func(name, route string) (count uint64, sum float64) {
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "route" && l.GetValue() == route {
						count += m.GetHistogram().GetSampleCount()
						sum += m.GetHistogram().GetSampleSum()
					}
				}
			}
		}
		return count, sum
	}
	for _, route := range []string{"push_v1_PusherService_Push", "ingest"} {
		n, total := hist("pyroscope_request_duration_seconds", route)
		an, added := hist("pyrodist_distributor_added_latency_seconds", route)
		if n != 1 || an != 1 {
			t.Fatalf("%s: %d request and %d added-latency observations, want 1 each", route, n, an)
		}
		if total < wait.Seconds() || added < 0 || added > total-wait.Seconds() {
			t.Errorf("%s: request %.3fs, added %.3fs: the %v writer wait is not left out", route, total, added, wait)
		}
	}
	if n, _ := hist("pyrodist_distributor_added_latency_seconds", "ready"); n != 0 {
		t.Error("a route that pushes nothing has added latency")
	}
}
