package profile

import (
	"testing"
	"time"

	"github.com/google/pprof/profile"
	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	"go.yaml.in/yaml/v3"

	"github.com/pyrodist/pyrodist/internal/config"
)

// SplitDropping accounts for what relabel rules drop as Pyroscope's
// VisitSampleSeries does: the whole size of a profile without sample labels
// (trace and span ids do not count as labels), the samples' sizes of a
// dropped group, and the profile itself only when nothing is left.
func TestSplitDroppingAccounting(t *testing.T) {
	now := time.Now()
	l := limits()
	if err := yaml.Unmarshal([]byte(`ingestion_relabeling_rules: [{action: drop, source_labels: [env], regex: "secret|"}]`), l); err != nil {
		t.Fatal(err)
	}
	// strings: 7 env, 8 secret, 9 prod, 10 span_id, 11 s1
	withLabels := func(labels ...[]*profilev1.Label) *profilev1.Profile {
		p := small(now)
		p.StringTable = append(p.StringTable, "env", "secret", "prod", "span_id", "s1")
		p.Sample = nil
		for i, ls := range labels {
			p.Sample = append(p.Sample, &profilev1.Sample{LocationId: []uint64{uint64(i%2 + 1)}, Value: []int64{int64(i + 1), 10}, Label: ls})
		}
		return p
	}
	env := func(v int64) []*profilev1.Label { return []*profilev1.Label{{Key: 7, Str: v}} }
	span := []*profilev1.Label{{Key: 10, Str: 11}}

	for _, tc := range []struct {
		name     string
		p        *profilev1.Profile
		outs     int
		whole    bool
		bytes    func(p *profilev1.Profile) int // computed before the split
		samples  int
		limitsOf *config.Limits
	}{
		{"no sample labels", small(now), 0, true, func(p *profilev1.Profile) int { return p.SizeVT() }, 0, l},
		{"only span ids", withLabels(span, span), 0, true, func(p *profilev1.Profile) int { return p.SizeVT() }, 0, l},
		{"one group of two", withLabels(env(8), env(9)), 1, false, func(p *profilev1.Profile) int { return p.Sample[0].SizeVT() }, 1, l},
		{"every group", withLabels(env(8), env(8)), 0, true, func(p *profilev1.Profile) int { return p.Sample[0].SizeVT() + p.Sample[1].SizeVT() }, 0, l},
		{"nothing dropped", withLabels(env(9)), 1, false, func(*profilev1.Profile) int { return 0 }, 1, limits()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.bytes(tc.p)
			outs, _, dropped, err := SplitDropping(tc.limitsOf, tc.p, series)
			if err != nil {
				t.Fatal(err)
			}
			if len(outs) != tc.outs || dropped.Profile != tc.whole || dropped.Bytes != want {
				t.Fatalf("%d outputs, dropped %+v; want %d outputs, whole %v, %d bytes", len(outs), dropped, tc.outs, tc.whole, want)
			}
			if tc.outs == 1 {
				if n := len(outs[0].Profile.Sample); n != tc.samples {
					t.Errorf("%d samples left, want %d", n, tc.samples)
				}
				b, _ := outs[0].Profile.MarshalVT()
				q, err := profile.ParseData(b)
				if err == nil {
					err = q.CheckValid()
				}
				if err != nil {
					t.Errorf("output invalid: %v", err)
				}
			}
		})
	}
}
