package usagelimits

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/usagegroups"
)

// draws is a random source replaying fixed numbers.
type draws struct{ v []float64 }

func (d *draws) next() float64 {
	x := d.v[0]
	d.v = d.v[1:]
	return x
}

// clock is a settable time.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// Pyroscope's own values in pkg/distributor/distributor_test.go at 3fe6a45.
func reached(numRequests int) *config.IngestionLimit {
	return &config.IngestionLimit{
		PeriodType: "hour", PeriodLimitMB: 128, LimitResetTime: 1737721086, LimitReached: true,
		Sampling: config.IngestionLimitSampling{NumRequests: numRequests, Period: time.Minute},
	}
}

func TestCheckTenant(t *testing.T) {
	l := New(nil, func() float64 { return 0 }, nil)
	if a, err := l.CheckTenant("t", nil); a != nil || err != nil {
		t.Fatalf("no limit: %v %v", a, err)
	}
	notReached := reached(0)
	notReached.LimitReached = false
	if a, err := l.CheckTenant("t", notReached); a != nil || err != nil {
		t.Fatalf("limit not reached: %v %v", a, err)
	}
	_, err := l.CheckTenant("t", reached(0))
	if err == nil || err.Error() != "limit of 128 MiB/hour reached, next reset at 2025-01-24T12:18:06Z" {
		t.Fatalf("err %v", err)
	}
	a, err := l.CheckTenant("t2", reached(1))
	if err != nil || a == nil {
		t.Fatalf("the sample's first request: %v %v", a, err)
	}
	want := `{"body":{"periodType":"hour","periodLimitMb":128,"limitResetTime":1737721086,"samplingPeriodSec":60,"samplingRequests":1,"usageGroup":""}}`
	if a.Key != "pyroscope.ingest.throttled" || a.Value != want {
		t.Fatalf("annotation %s=%s, want %s", a.Key, a.Value, want)
	}
}

// The sampler admits a request while the window has some left and the
// draw is under num_requests / distributors; windows restart after period.
func TestSampler(t *testing.T) {
	start := time.Unix(1737721086, 0)
	for _, tc := range []struct {
		name      string
		instances int
		draws     []float64
		steps     []time.Duration // time of each request since start
		want      string          // a = admitted, r = refused
	}{
		{"one distributor: the first n of each window", 1, []float64{.9, .9, .9, .9, .9, .9},
			[]time.Duration{0, time.Second, 2 * time.Second, time.Minute, time.Minute + time.Second, time.Minute + 2*time.Second}, "aaraar"},
		{"four distributors: p = 2/4", 4, []float64{.6, .4, .49, .1, .0},
			[]time.Duration{0, 1, 2, 3, 4}, "raarr"},
		{"no healthy count: as one", 0, []float64{.99, .99, .99}, []time.Duration{0, 1, 2}, "aar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &draws{v: tc.draws}
			c := &clock{t: start}
			l := New(func() int { return tc.instances }, d.next, c.now)
			var got strings.Builder
			for _, at := range tc.steps {
				c.t = start.Add(at)
				_, err := l.CheckTenant("t", reached(2))
				if err == nil {
					got.WriteByte('a')
				} else {
					got.WriteByte('r')
				}
			}
			if got.String() != tc.want {
				t.Fatalf("got %s, want %s", got.String(), tc.want)
			}
		})
	}
}

func TestSamplerForgetsIdleTenants(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	l := New(nil, func() float64 { return 0 }, c.now)
	_, _ = l.CheckTenant("old", reached(1))
	c.t = c.t.Add(trackerMaxAge + sweepEvery + time.Second)
	_, _ = l.CheckTenant("new", reached(1))
	if _, ok := l.trackers["old"]; ok || len(l.trackers) != 1 {
		t.Fatalf("trackers %v", l.trackers)
	}
}

func TestCheckGroups(t *testing.T) {
	lim := reached(0)
	lim.LimitReached = false
	lim.UsageGroups = config.UsageGroupIngestionLimits{
		"group-1":                    {PeriodLimitMB: 64, LimitReached: true},
		"group-2":                    {PeriodLimitMB: 32, LimitReached: false},
		"svc/${labels.service_name}": {PeriodLimitMB: 16, LimitReached: true},
		"svc/b":                      {PeriodLimitMB: 8, LimitReached: false},
	}
	for _, tc := range []struct {
		name   string
		groups []usagegroups.Name
		want   string // the error, "" for admitted
	}{
		{"no groups", nil, ""},
		{"a group without a limit", []usagegroups.Name{nm("group-3", "group-3")}, ""},
		{"a group under its limit", []usagegroups.Name{nm("group-2", "group-2")}, ""},
		{"a group over its limit", []usagegroups.Name{nm("group-2", "group-2"), nm("group-1", "group-1")},
			"limit of 64 MiB/hour reached for usage group {group-1 group-1}, next reset at 2025-01-24T12:18:06Z"},
		{"a dynamic group by its configured name", []usagegroups.Name{nm("svc/${labels.service_name}", "svc/a")},
			"limit of 16 MiB/hour reached for usage group {svc/${labels.service_name} svc/a}, next reset at 2025-01-24T12:18:06Z"},
		{"a dynamic group's resolved name first", []usagegroups.Name{nm("svc/${labels.service_name}", "svc/b")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(nil, func() float64 { return 0 }, nil)
			_, err := l.CheckGroups("t", lim, tc.groups)
			if got := errString(err); got != tc.want {
				t.Fatalf("err %q, want %q", got, tc.want)
			}
		})
	}

	// Under a reached limit with a sample, the group's annotation.
	lim.Sampling.NumRequests = 100
	l := New(nil, func() float64 { return 0 }, nil)
	a, err := l.CheckGroups("t", lim, []usagegroups.Name{nm("group-1", "group-1")})
	want := `{"body":{"periodType":"hour","periodLimitMb":64,"limitResetTime":1737721086,"samplingPeriodSec":60,"samplingRequests":100,"usageGroup":"group-1"}}`
	if err != nil || a == nil || a.Value != want {
		t.Fatalf("annotation %v, err %v; want %s", a, err, want)
	}
}

func nm(configured, resolved string) usagegroups.Name {
	return usagegroups.Name{Configured: configured, Resolved: resolved}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Pyroscope's TestDistributor_shouldSample cases.
func TestSample(t *testing.T) {
	cfg := func(kv map[string]float64) *config.DistributorSampling {
		c := &config.DistributorSampling{UsageGroups: config.UsageGroupSamplings{}}
		for k, v := range kv {
			c.UsageGroups[k] = config.UsageGroupSampling{Probability: v}
		}
		return c
	}
	dyn := "${labels.service_name}"
	for _, tc := range []struct {
		name   string
		groups []usagegroups.Name
		cfg    *config.DistributorSampling
		draw   float64
		keep   bool
		source *Source
	}{
		{"no config", nil, nil, .5, true, nil},
		{"no matching rule", []usagegroups.Name{nm("group1", "group1")}, cfg(map[string]float64{"group2": .5}), .9, true, nil},
		{"probability 1", []usagegroups.Name{nm("group1", "group1")}, cfg(map[string]float64{"group1": 1}), .99, true, &Source{"group1", 1}},
		{"dynamic rule by configured name", []usagegroups.Name{nm("configured-name", "resolved-name")}, cfg(map[string]float64{"configured-name": 1}), .5, true, &Source{"resolved-name", 1}},
		{"probability 0", []usagegroups.Name{nm("group1", "group1")}, cfg(map[string]float64{"group1": 0}), .01, false, &Source{"group1", 0}},
		{"draw at the probability keeps", []usagegroups.Name{nm("group1", "group1")}, cfg(map[string]float64{"group1": .25}), .25, true, &Source{"group1", .25}},
		{"draw over the probability drops", []usagegroups.Name{nm("group1", "group1")}, cfg(map[string]float64{"group1": .25}), .26, false, &Source{"group1", .25}},
		{"lowest probability wins", []usagegroups.Name{nm("group1", "group1"), nm("group2", "group2"), nm("group3", "group3")},
			cfg(map[string]float64{"group1": .3, "group2": .1, "group3": .7}), .2, false, &Source{"group2", .1}},
		{"static after dynamic", []usagegroups.Name{nm(dyn, "test_service"), nm("test_service", "test_service")},
			cfg(map[string]float64{dyn: 1, "test_service": 0}), .5, false, &Source{"test_service", 0}},
		{"static before dynamic", []usagegroups.Name{nm("test_service", "test_service"), nm(dyn, "test_service")},
			cfg(map[string]float64{dyn: 1, "test_service": 0}), .5, false, &Source{"test_service", 0}},
		{"a dynamic group's resolved name has a rule", []usagegroups.Name{nm(dyn, "test_service")},
			cfg(map[string]float64{dyn: 1, "test_service": 0}), .5, false, &Source{"test_service", 0}},
		{"a static choice is kept over a lower dynamic one", []usagegroups.Name{nm("a", "a"), nm(dyn, "svc")},
			cfg(map[string]float64{"a": .5, dyn: .1}), .3, true, &Source{"a", .5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(nil, func() float64 { return tc.draw }, nil)
			keep, src := l.Sample(tc.cfg, tc.groups)
			if keep != tc.keep || (src == nil) != (tc.source == nil) || src != nil && *src != *tc.source {
				t.Fatalf("keep %v source %+v, want %v %+v", keep, src, tc.keep, tc.source)
			}
		})
	}
}

func TestSampledAnnotation(t *testing.T) {
	a := Sampled(&Source{UsageGroup: "app/foo", Probability: 0.5})
	want := `{"body":{"source":{"usageGroup":"app/foo","probability":0.5}}}`
	if a.Key != "pyroscope.ingest.sampled" || a.Value != want {
		t.Fatalf("%s=%s, want %s", a.Key, a.Value, want)
	}
	var v struct {
		Body struct {
			Source Source `json:"source"`
		} `json:"body"`
	}
	if err := json.Unmarshal([]byte(Sampled(&Source{"g", 1}).Value), &v); err != nil || v.Body.Source.Probability != 1 {
		t.Fatalf("%+v %v", v, err)
	}
}

// Pyroscope's TestProfileStripper cases in spirit: one sample of the
// totals of the valid samples, no symbols, a valid pprof.
func TestStripToTotals(t *testing.T) {
	p := &profilev1.Profile{
		SampleType:  []*profilev1.ValueType{{Type: 1, Unit: 2}, {Type: 3, Unit: 4}},
		PeriodType:  &profilev1.ValueType{Type: 3, Unit: 4},
		Period:      10,
		Comment:     []int64{7},
		StringTable: []string{"", "samples", "count", "cpu", "nanoseconds", "main", "f", "a comment"},
		Function:    []*profilev1.Function{{Id: 1, Name: 5}, {Id: 2, Name: 6}},
		Mapping:     []*profilev1.Mapping{{Id: 1}},
		Location: []*profilev1.Location{
			{Id: 1, MappingId: 1, Line: []*profilev1.Line{{FunctionId: 1}}},
			{Id: 2, MappingId: 1, Line: []*profilev1.Line{{FunctionId: 2}}},
		},
		Sample: []*profilev1.Sample{
			{LocationId: []uint64{1}, Value: []int64{1, 10}, Label: []*profilev1.Label{{Key: 5, Str: 6}}},
			{LocationId: []uint64{2, 1}, Value: []int64{2, 20}},
			{LocationId: []uint64{2}, Value: []int64{-1, 5}}, // dropped by normalization: not counted
			{LocationId: []uint64{2}, Value: []int64{4}},     // value count mismatch: not counted
		},
	}
	StripToTotals(p)
	b, err := p.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	got, err := profile.ParseData(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.CheckValid(); err != nil {
		t.Fatal(err)
	}
	if len(got.Sample) != 1 || got.Sample[0].Value[0] != 3 || got.Sample[0].Value[1] != 30 ||
		len(got.Sample[0].Location) != 0 || len(got.Location) != 0 || len(got.Function) != 0 {
		t.Fatalf("stripped to %v", got)
	}
	if got.SampleType[0].Type != "samples" || got.SampleType[1].Unit != "nanoseconds" || got.PeriodType.Type != "cpu" ||
		len(got.Comments) != 1 || got.Comments[0] != "a comment" {
		t.Fatalf("types %v period %v comments %v", got.SampleType, got.PeriodType, got.Comments)
	}
	if strings.Join(p.StringTable, ",") != ",samples,count,cpu,nanoseconds,a comment" {
		t.Fatalf("string table %q", p.StringTable)
	}
}
