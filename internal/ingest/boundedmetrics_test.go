package ingest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/distributor"
)

// seriesCount is the number of series the registry exposes, histogram
// buckets included (+Inf, _sum and _count too), as a scrape sees them.
func seriesCount(t *testing.T, g prometheus.Gatherer) (total int, labelValues map[string]map[string]bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labelValues = map[string]map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetType() == dto.MetricType_HISTOGRAM {
				total += len(m.GetHistogram().GetBucket()) + 3
			} else {
				total++
			}
			for _, l := range m.GetLabel() {
				if labelValues[l.GetName()] == nil {
					labelValues[l.GetName()] = map[string]bool{}
				}
				labelValues[l.GetName()][l.GetValue()] = true
			}
		}
	}
	return total, labelValues
}

// pprofAt is a one-sample CPU profile taken at ts, gzipped.
func pprofAt(t *testing.T, ts time.Time) []byte {
	t.Helper()
	fn := &profile.Function{ID: 1, Name: "main"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10000000,
		TimeNanos:  ts.UnixNano(),
		Sample:     []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{10000000}}},
		Location:   []*profile.Location{loc},
		Function:   []*profile.Function{fn},
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pushBody(t *testing.T, name string, raw []byte) []byte {
	t.Helper()
	req := &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: name},
			{Name: "service_name", Value: "svc"},
		},
		Samples: []*pushv1.RawSample{{RawProfile: raw}},
	}}}
	b, err := req.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serve sends one request through the server's handler and returns its status.
func serve(h http.Handler, method, target, tenant, contentType string, body []byte) int {
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	r.Header.Set(OrgIDHeader, tenant)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// TestRejectedRequestsDoNotGrowMetrics: requests that are refused, from
// tenants and with profile names and HTTP methods that clients make up, add
// a bounded number of series however many there are, while tenants that
// push valid profiles, before or after them, keep series of their own.
func TestRejectedRequestsDoNotGrowMetrics(t *testing.T) {
	const attacks = 20000
	limits := config.Defaults().Distributor.InstanceLimits
	reg := prometheus.NewRegistry()
	d, err := distributor.New(distributor.Config{}, defaultsOnly{config.Defaults().Limits}, &recordingSender{},
		func() int { return 1 }, reg, log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(o *Options) {
		o.Pusher, o.Budget, o.Registerer, o.Gatherer, o.MultitenancyEnabled = d, d.Budget(), reg, reg, true
	})
	h := ts.Handler()
	const pushPath = "/push.v1.PusherService/Push"
	push := func(tenants ...string) {
		t.Helper()
		for _, tenant := range tenants {
			if code := serve(h, http.MethodPost, pushPath, tenant, "application/proto", pushBody(t, "process_cpu", pprofAt(t, time.Now()))); code != http.StatusOK {
				t.Fatalf("%s: valid push got %d", tenant, code)
			}
		}
	}
	push("team-a", "team-b")
	baseline, _ := seriesCount(t, reg)

	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string { return fmt.Sprintf("x%016x", rng.Uint64()) }
	ancient := pprofAt(t, time.Unix(1, 0))
	garbage := []byte("not a profile")
	attack := func(n int) {
		for i := range n {
			tenant := word()
			switch i % 4 {
			case 0: // undecodable profile: malformed_profile
				serve(h, http.MethodPost, pushPath, tenant, "application/proto", pushBody(t, word(), garbage))
			case 1: // decodes, outside the ingestion window
				serve(h, http.MethodPost, pushPath, tenant, "application/proto", pushBody(t, word(), ancient))
			case 2: // a method nobody serves
				serve(h, strings.ToUpper(word()), "/ingest", tenant, "", nil)
			case 3: // /ingest with an unknown profile type
				serve(h, http.MethodPost, "/ingest?name=app."+word(), tenant, "", []byte("main 1"))
			}
		}
	}
	start := time.Now()
	attack(attacks / 2)
	half, _ := seriesCount(t, reg)
	attack(attacks / 2)
	push("team-a", "team-b", "team-c")
	total, values := seriesCount(t, reg)
	t.Logf("%d rejected requests in %v: %d series before, %d after half of them, %d after all",
		attacks, time.Since(start).Round(time.Millisecond), baseline, half, total)

	// Refused requests admit at most half of the caps' values; past that
	// they add only the folded series, so the second half adds nothing.
	if total > half+100 {
		t.Errorf("series still grow: %d after %d requests, %d after %d", half, attacks/2, total, attacks)
	}
	if bound := 40000; total > bound {
		t.Errorf("%d series after %d rejected requests: want at most %d", total, attacks, bound)
	}
	if n, max := len(values["tenant"]), limits.MaxMetricTenants/2+3; n > max {
		t.Errorf("%d tenant values, want at most %d", n, max)
	}
	if n, max := len(values["type"]), limits.MaxMetricProfileNames/2+2; n > max {
		t.Errorf("%d type values, want at most %d", n, max)
	}
	if n := len(values["method"]); n > 3 { // GET, POST, __other__
		t.Errorf("%d method values, want at most 3", n)
	}
	for _, tenant := range []string{"team-a", "team-b", "team-c"} {
		if !values["tenant"][tenant] {
			t.Errorf("tenant %s has no series of its own", tenant)
		}
	}
	if !values["type"]["process_cpu"] {
		t.Error("profile type process_cpu has no series of its own")
	}
}
