package distributor

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/go-kit/log"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/internal/segmentwriter"
	"github.com/pyrodist/pyrodist/internal/usagegroups"
	"github.com/pyrodist/pyrodist/internal/usagelimits"
	"github.com/pyrodist/pyrodist/internal/validation"
	"github.com/pyrodist/pyrodist/test/corpus"
	"github.com/pyrodist/pyrodist/test/fakewriter/fakewritertest"
	"github.com/pyrodist/pyrodist/test/testutil/counters"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

// usageLimits are the defaults with f applied to the usage keys.
func usageLimits(t *testing.T, groups map[string]string, f func(*config.UsageLimits)) *config.Limits {
	t.Helper()
	l := defaultLimits()
	if groups != nil {
		g, err := usagegroups.Parse(groups)
		if err != nil {
			t.Fatal(err)
		}
		l.Usage.DistributorUsageGroups = *g
	}
	if f != nil {
		f(&l.Usage)
	}
	return l
}

// Pyroscope's values (pkg/distributor/distributor_test.go at 3fe6a45).
func hardLimit(reached bool, numRequests int) config.IngestionLimit {
	return config.IngestionLimit{
		PeriodType: "hour", PeriodLimitMB: 128, LimitResetTime: 1737721086, LimitReached: reached,
		Sampling: config.IngestionLimitSampling{NumRequests: numRequests, Period: time.Minute},
	}
}

func sampling(kv ...any) config.DistributorSampling {
	s := config.DistributorSampling{UsageGroups: config.UsageGroupSamplings{}}
	for i := 0; i < len(kv); i += 2 {
		s.UsageGroups[kv[i].(string)] = config.UsageGroupSampling{Probability: kv[i+1].(float64)}
	}
	return s
}

func annotationsOf(p *Profile) string {
	var s []string
	for _, a := range p.Annotations {
		s = append(s, a.Key+"="+a.Value)
	}
	return strings.Join(s, " ")
}

// TestUsageLimits runs one push per case through the pipeline and checks
// the answer, what was sent with which annotations and labels, and the
// discard counters, for each rule of the usage keys.
func TestUsageLimits(t *testing.T) {
	now := time.Now()
	raw := recentProfile(t, "cpu", now)
	labels := []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: "svc"}}
	throttledTenant := `pyroscope.ingest.throttled={"body":{"periodType":"hour","periodLimitMb":128,"limitResetTime":1737721086,"samplingPeriodSec":60,"samplingRequests":1,"usageGroup":""}}`
	for _, tc := range []struct {
		name      string
		limits    *config.Limits
		instances int
		draw      float64
		code      connect.Code // 0: success
		msg       string
		sent      int
		ann       string
		sampled   bool // __sampled__="true" on the sent profile
		discarded string
	}{
		{name: "no usage keys", limits: usageLimits(t, nil, nil), sent: 1},
		{name: "limit not reached", limits: usageLimits(t, nil, func(u *config.UsageLimits) { u.IngestionLimit = hardLimit(false, 0) }), sent: 1},
		{name: "limit reached, no sample", limits: usageLimits(t, nil, func(u *config.UsageLimits) { u.IngestionLimit = hardLimit(true, 0) }),
			code: connect.CodeResourceExhausted, msg: "limit of 128 MiB/hour reached, next reset at 2025-01-24T12:18:06Z",
			discarded: "ingest_limit_reached"},
		{name: "limit reached, sampled through", limits: usageLimits(t, nil, func(u *config.UsageLimits) { u.IngestionLimit = hardLimit(true, 1) }),
			instances: 3, draw: 0.3, sent: 1, ann: throttledTenant},
		{name: "limit reached, the draw misses 1/3", limits: usageLimits(t, nil, func(u *config.UsageLimits) { u.IngestionLimit = hardLimit(true, 1) }),
			instances: 3, draw: 0.34, code: connect.CodeResourceExhausted, msg: "limit of 128 MiB/hour reached, next reset at 2025-01-24T12:18:06Z",
			discarded: "ingest_limit_reached"},
		{name: "usage group limit reached", limits: usageLimits(t, map[string]string{"group-1": `{service_name="svc"}`}, func(u *config.UsageLimits) {
			u.IngestionLimit = hardLimit(false, 0)
			u.IngestionLimit.UsageGroups = config.UsageGroupIngestionLimits{"group-1": {PeriodLimitMB: 64, LimitReached: true}}
		}), code: connect.CodeResourceExhausted, msg: "limit of 64 MiB/hour reached for usage group {group-1 group-1}, next reset at 2025-01-24T12:18:06Z",
			discarded: "ingest_limit_reached"},
		{name: "tenant and usage group limits, both sampled through", limits: usageLimits(t, map[string]string{"group-1": `{service_name="svc"}`}, func(u *config.UsageLimits) {
			u.IngestionLimit = hardLimit(true, 100)
			u.IngestionLimit.UsageGroups = config.UsageGroupIngestionLimits{"group-1": {PeriodLimitMB: 64, LimitReached: true}}
		}), sent: 1, ann: `pyroscope.ingest.throttled={"body":{"periodType":"hour","periodLimitMb":128,"limitResetTime":1737721086,"samplingPeriodSec":60,"samplingRequests":100,"usageGroup":""}} ` +
			`pyroscope.ingest.throttled={"body":{"periodType":"hour","periodLimitMb":64,"limitResetTime":1737721086,"samplingPeriodSec":60,"samplingRequests":100,"usageGroup":"group-1"}}`},
		{name: "sampled out: success, nothing sent", limits: usageLimits(t, map[string]string{"app/${labels.service_name}": `{}`}, func(u *config.UsageLimits) {
			u.DistributorSampling = sampling("app/${labels.service_name}", 0.5)
		}), draw: 0.6, discarded: "dropped_by_sampling_rules"},
		{name: "sampling rule kept it", limits: usageLimits(t, map[string]string{"app/${labels.service_name}": `{}`}, func(u *config.UsageLimits) {
			u.DistributorSampling = sampling("app/${labels.service_name}", 0.5)
		}), draw: 0.5, sent: 1, ann: `pyroscope.ingest.sampled={"body":{"source":{"usageGroup":"app/svc","probability":0.5}}}`},
		{name: "lowest probability wins", limits: usageLimits(t, map[string]string{"a": `{}`, "b": `{service_name="svc"}`, "c": `{service_name="other"}`}, func(u *config.UsageLimits) {
			u.DistributorSampling = sampling("a", 0.9, "b", 0.2, "c", 0.0)
		}), draw: 0.3, discarded: "dropped_by_sampling_rules"},
		{name: "sampled out, kept stripped", limits: usageLimits(t, map[string]string{"g": `{}`}, func(u *config.UsageLimits) {
			u.DistributorSampling = sampling("g", 0.0)
			u.KeepStrippedProfiles = true
		}), draw: 0.5, sent: 1, sampled: true, ann: `pyroscope.ingest.sampled={"body":{"source":{"usageGroup":"g","probability":0}}}`,
			discarded: "dropped_by_sampling_rules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			reg := prometheus.NewRegistry()
			d, err := New(Config{MaxInflightBytes: 1 << 30}, staticLimits{tc.limits}, rec, func() int { return 1 }, reg, nil)
			if err != nil {
				t.Fatal(err)
			}
			d.usage.limiter = usagelimits.New(func() int { return tc.instances }, func() float64 { return tc.draw }, nil)
			err = d.Push(context.Background(), "t1", pushOne(labels, raw))
			if connect.CodeOf(err) != tc.code && !(tc.code == 0 && err == nil) || err != nil && tc.code == 0 {
				t.Fatalf("err %v, want code %v", err, tc.code)
			}
			if tc.msg != "" && err.(*connect.Error).Message() != tc.msg {
				t.Fatalf("message %q, want %q", err.(*connect.Error).Message(), tc.msg)
			}
			if len(rec.got) != tc.sent {
				t.Fatalf("sent %d, want %d", len(rec.got), tc.sent)
			}
			if tc.sent > 0 {
				p := rec.got[0]
				if got := annotationsOf(p); got != tc.ann {
					t.Fatalf("annotations\n%s\nwant\n%s", got, tc.ann)
				}
				out := pprofcheck.Parse(t, p.Pprof)
				hasSampled := false
				for _, l := range p.Labels {
					hasSampled = hasSampled || l.Name == "__sampled__" && l.Value == "true"
				}
				if hasSampled != tc.sampled || tc.sampled && (len(out.Sample) != 1 || len(out.Location) != 0) {
					t.Fatalf("__sampled__ %v, %d samples %d locations: want stripped %v", hasSampled, len(out.Sample), len(out.Location), tc.sampled)
				}
			}
			got := counters.Gather(t, reg, "pyroscope_discarded_samples_total")
			want := map[string]float64{}
			if tc.discarded != "" {
				want[fmt.Sprintf("pyroscope_discarded_samples_total{reason=%s,tenant=t1}", tc.discarded)] = 1
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("discarded %v, want %v", got, want)
			}
		})
	}
}

// The usage group counters: received bytes per group ("other" for a tenant
// without groups), discarded bytes per group and reason.
func TestUsageGroupMetrics(t *testing.T) {
	cp, _ := corpus.Get("cpu")
	cp, err := cp.At(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw := cp.Gzipped
	reg := prometheus.NewRegistry()
	l := usageLimits(t, map[string]string{"svc/${labels.service_name}": `{}`, "team-a": `{service_name=~"a|b"}`}, nil)
	rec := &recorder{}
	d, err := New(Config{MaxInflightBytes: 1 << 30}, staticLimits{l}, rec, func() int { return 1 }, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	push := func(tenant, svc string, data []byte) {
		_ = d.Push(context.Background(), tenant, pushOne([]*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: svc}}, data))
	}
	inflated := len(cp.Raw())
	push("t1", "a", raw)
	push("t1", "c", raw)
	bad := []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: "a"}, {Name: "x", Value: strings.Repeat("v", 3000)}}
	if err := d.Push(context.Background(), "t1", pushOne(bad, raw)); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("a too long label value: %v", err)
	}
	// Not pprof: refused before the groups' accounting, as in Pyroscope.
	if err := d.Push(context.Background(), "t1", pushOne(cpuLabels(), []byte("junk"))); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("junk: %v", err)
	}
	// Over a count limit while decoding: counted received, then discarded.
	few := *l
	few.MaxProfileStacktraceSamples = 1
	d.limits = staticLimits{&few}
	push("t3", "b", raw)
	d.limits = staticLimits{defaultLimits()}
	push("t2", "a", raw)

	got := counters.Gather(t, reg, "pyroscope_usage_group_received_decompressed_total", "pyroscope_usage_group_discarded_bytes_total")
	badCost := inflated + len("__name__process_cpuservice_namea") + 1 + 3000
	cost := inflated + len("__name__process_cpuservice_nameb")
	want := map[string]float64{
		`pyroscope_usage_group_received_decompressed_total{tenant=t1,type=process_cpu,usage_group=svc/a}`:       float64(2 * inflated),
		`pyroscope_usage_group_received_decompressed_total{tenant=t1,type=process_cpu,usage_group=team-a}`:      float64(2 * inflated),
		`pyroscope_usage_group_received_decompressed_total{tenant=t1,type=process_cpu,usage_group=svc/c}`:       float64(inflated),
		`pyroscope_usage_group_received_decompressed_total{tenant=t2,type=process_cpu,usage_group=other}`:       float64(inflated),
		`pyroscope_usage_group_discarded_bytes_total{reason=label_value_too_long,tenant=t1,usage_group=svc/a}`:  float64(badCost),
		`pyroscope_usage_group_discarded_bytes_total{reason=label_value_too_long,tenant=t1,usage_group=team-a}`: float64(badCost),
		`pyroscope_usage_group_received_decompressed_total{tenant=t3,type=process_cpu,usage_group=svc/b}`:       float64(inflated),
		`pyroscope_usage_group_received_decompressed_total{tenant=t3,type=process_cpu,usage_group=team-a}`:      float64(inflated),
		`pyroscope_usage_group_discarded_bytes_total{reason=samples_limit,tenant=t3,usage_group=svc/b}`:         float64(cost),
		`pyroscope_usage_group_discarded_bytes_total{reason=samples_limit,tenant=t3,usage_group=team-a}`:        float64(cost),
	}
	if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
		t.Fatalf("usage group counters\n%v\nwant\n%v", sorted(got), sorted(want))
	}
}

func sorted(m map[string]float64) []string {
	var s []string
	for k, v := range m {
		s = append(s, fmt.Sprintf("%s %v", k, v))
	}
	sort.Strings(s)
	return s
}

// A tenant without usage keys pays nothing for them: no allocation in the
// hooks before the rate limit and after it.
func TestUsageHooksAllocateNothingWhenUnset(t *testing.T) {
	d := newTestDistributor(t, defaultLimits(), &recorder{})
	l := defaultLimits()
	labels := cpuLabels()
	allocs := testing.AllocsPerRun(100, func() {
		var v verdict
		if d.admitTenant("t1", l, 100, &v) != nil || d.admitGroups("t1", l, labels, 100, &v) != nil || v.drop {
			t.Fatal("refused")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per profile", allocs)
	}
}

// Through the real router, segment-writer client and a segment-writer
// simulator: the annotations reach the writer's PushRequest as Pyroscope's
// distributor sends them (segmentwriter.v1 PushRequest.annotations).
func TestUsageAnnotationsReachTheWriter(t *testing.T) {
	w := fakewritertest.Start(t, fakewritertest.Config("sw-0", "", "127.0.0.1"))
	client, err := segmentwriter.New(segmentwriter.Config{SegmentWriter: config.Defaults().SegmentWriter}, prometheus.NewRegistry(), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	ring := routeRing{placement.NewRing([]placement.Instance{{ID: "sw-0", Addr: w.GRPCAddr(), State: placement.Active, Tokens: 4}})}
	router, err := NewRouter(ring, client, RouterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	l := usageLimits(t, map[string]string{"app/${labels.service_name}": `{}`}, func(u *config.UsageLimits) {
		u.IngestionLimit = hardLimit(true, 1)
		u.DistributorSampling = sampling("app/${labels.service_name}", 0.25)
	})
	d, err := New(Config{MaxInflightBytes: 1 << 30}, staticLimits{l}, router, func() int { return 1 }, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	d.usage.limiter = usagelimits.New(nil, func() float64 { return 0.1 }, nil)
	raw := recentProfile(t, "cpu", time.Now())
	if err := d.Push(context.Background(), "t1", pushOne(cpuLabels(), raw)); err != nil {
		t.Fatal(err)
	}
	// The window's one request is used: the next is refused.
	if err := d.Push(context.Background(), "t1", pushOne(cpuLabels(), raw)); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("second push: %v", err)
	}
	recs := w.Records()
	if len(recs) != 1 {
		t.Fatalf("%d pushes recorded, want 1", len(recs))
	}
	var got []string
	for _, a := range recs[0].Annotations {
		got = append(got, a.Name+"="+a.Value)
	}
	want := []string{
		`pyroscope.ingest.throttled={"body":{"periodType":"hour","periodLimitMb":128,"limitResetTime":1737721086,"samplingPeriodSec":60,"samplingRequests":1,"usageGroup":""}}`,
		`pyroscope.ingest.sampled={"body":{"source":{"usageGroup":"app/svc","probability":0.25}}}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("annotations at the writer\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Bytes a relabel rule drops count against the profile's usage groups too,
// as Pyroscope's distributor counts them (CountDiscardedBytes with
// dropped_by_relabel_rules), and equal what the tenant's counter shows.
func TestRelabelDropsCountPerUsageGroup(t *testing.T) {
	cp, _ := corpus.Get("cpu")
	cp, err := cp.At(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l := limitsWith(t, `ingestion_relabeling_rules: [{action: drop, source_labels: [environment], regex: secret}]`)
	g, err := usagegroups.Parse(map[string]string{"team-a": `{service_name="a"}`})
	if err != nil {
		t.Fatal(err)
	}
	l.Usage.DistributorUsageGroups = *g
	reg := prometheus.NewRegistry()
	d, err := New(Config{MaxInflightBytes: 1 << 30}, staticLimits{l}, &recorder{}, func() int { return 1 }, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	labels := []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "environment", Value: "secret"}, {Name: "service_name", Value: "a"}}
	if err := d.Push(context.Background(), "t1", pushOne(labels, cp.Gzipped)); err != nil {
		t.Fatalf("a profile dropped by relabel rules is acknowledged: %v", err)
	}
	reason := string(validation.DroppedByRelabelRules)
	got := counters.Gather(t, reg, "pyroscope_usage_group_discarded_bytes_total", "pyroscope_discarded_bytes_total")
	tenant := got[`pyroscope_discarded_bytes_total{reason=`+reason+`,tenant=t1}`]
	group := got[`pyroscope_usage_group_discarded_bytes_total{reason=`+reason+`,tenant=t1,usage_group=team-a}`]
	if tenant == 0 || group != tenant {
		t.Fatalf("relabel-dropped bytes: tenant %v, usage group team-a %v; want equal and above 0 (%v)", tenant, group, got)
	}
}
