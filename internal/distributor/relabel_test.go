package distributor

import (
	"context"
	"slices"
	"testing"
	"time"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/validation"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

// memProfile has four sample types and, with envs, one sample per env
// value carrying a sample label env=<value>.
func memProfile(now time.Time, envs ...string) []byte {
	p := &profilev1.Profile{
		SampleType: []*profilev1.ValueType{{Type: 1, Unit: 2}, {Type: 3, Unit: 4}, {Type: 5, Unit: 2}, {Type: 6, Unit: 4}},
		Mapping:    []*profilev1.Mapping{{Id: 1, HasFunctions: true}},
		Location: []*profilev1.Location{
			{Id: 1, MappingId: 1, Line: []*profilev1.Line{{FunctionId: 1}}},
			{Id: 2, MappingId: 1, Line: []*profilev1.Line{{FunctionId: 2}}},
		},
		Function:    []*profilev1.Function{{Id: 1, Name: 7}, {Id: 2, Name: 8}},
		StringTable: []string{"", "alloc_objects", "count", "alloc_space", "bytes", "inuse_objects", "inuse_space", "main", "work", "env"},
		TimeNanos:   now.UnixNano(),
	}
	if len(envs) == 0 {
		p.Sample = []*profilev1.Sample{{LocationId: []uint64{1}, Value: []int64{1, 2, 3, 4}}}
	}
	for i, env := range envs {
		p.StringTable = append(p.StringTable, env)
		p.Sample = append(p.Sample, &profilev1.Sample{
			LocationId: []uint64{uint64(i%2 + 1)},
			Value:      []int64{int64(i + 1), 10, 100, 1000},
			Label:      []*profilev1.Label{{Key: 9, Str: int64(len(p.StringTable) - 1)}},
		})
	}
	raw, _ := p.MarshalVT()
	return raw
}

func memLabels(extra ...string) []*typesv1.LabelPair {
	ls := []*typesv1.LabelPair{{Name: "__name__", Value: "memory"}, {Name: "service_name", Value: "svc"}}
	for i := 0; i+1 < len(extra); i += 2 {
		ls = append(ls, &typesv1.LabelPair{Name: extra[i], Value: extra[i+1]})
	}
	return ls
}

func limitsWith(t *testing.T, y string) *config.Limits {
	t.Helper()
	l := defaultLimits()
	if err := yaml.Unmarshal([]byte(y), l); err != nil {
		t.Fatal(err)
	}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	return l
}

func (m *metrics) relabelDiscards(t *testing.T, tenant string) (profiles, bytes float64) {
	t.Helper()
	reason := string(validation.DroppedByRelabelRules)
	var p, b dto.Metric
	if err := m.discardedProfiles.WithLabelValues(reason, tenant).Write(&p); err != nil {
		t.Fatal(err)
	}
	if err := m.discardedBytes.WithLabelValues(reason, tenant).Write(&b); err != nil {
		t.Fatal(err)
	}
	return p.GetCounter().GetValue(), b.GetCounter().GetValue()
}

func labelMap(ls []*typesv1.LabelPair) map[string]string {
	m := map[string]string{}
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

// TestIngestionRelabelRules: a tenant's rules change the labels of what is
// sent, before or after the default rules, and a drop discards the profile
// (or the samples of the dropped label sets) with Pyroscope's discard
// accounting and no error.
func TestIngestionRelabelRules(t *testing.T) {
	now := time.Now()
	t.Run("drop whole profile", func(t *testing.T) {
		rec := &recorder{}
		d := newTestDistributor(t, limitsWith(t, `ingestion_relabeling_rules: [{action: drop, source_labels: [environment], regex: secret}]`), rec)
		if err := d.Push(context.Background(), "t1", pushOne(memLabels("environment", "secret"), memProfile(now))); err != nil {
			t.Fatalf("a dropped profile is acknowledged, got %v", err)
		}
		if len(rec.got) != 0 {
			t.Fatalf("a dropped profile was sent: %v", rec.got[0].Labels)
		}
		if n, b := d.metrics.relabelDiscards(t, "t1"); n != 1 || b == 0 {
			t.Errorf("discards: %v profiles, %v bytes", n, b)
		}
		if err := d.Push(context.Background(), "t1", pushOne(memLabels("environment", "secrets"), memProfile(now))); err != nil || len(rec.got) != 1 {
			t.Fatalf("the regex is anchored: environment=secrets is kept (err %v, sent %d)", err, len(rec.got))
		}
	})
	t.Run("drop some sample label sets", func(t *testing.T) {
		rec := &recorder{}
		d := newTestDistributor(t, limitsWith(t, `ingestion_relabeling_rules: [{action: drop, source_labels: [env], regex: secret}]`), rec)
		if err := d.Push(context.Background(), "t1", pushOne(memLabels(), memProfile(now, "prod", "secret", "dev"))); err != nil {
			t.Fatal(err)
		}
		if len(rec.got) != 1 {
			t.Fatalf("sent %d profiles, want 1", len(rec.got))
		}
		out := pprofcheck.Parse(t, rec.got[0].Pprof)
		var envs []string
		for _, s := range out.Sample {
			envs = append(envs, s.Label["env"]...)
		}
		slices.Sort(envs)
		if !slices.Equal(envs, []string{"dev", "prod"}) {
			t.Errorf("samples left: %v", envs)
		}
		// Bytes of the dropped part only; the profile is not counted.
		if n, b := d.metrics.relabelDiscards(t, "t1"); n != 0 || b == 0 {
			t.Errorf("discards: %v profiles, %v bytes", n, b)
		}
	})
	t.Run("every sample label set dropped", func(t *testing.T) {
		rec := &recorder{}
		d := newTestDistributor(t, limitsWith(t, `ingestion_relabeling_rules: [{action: keep, source_labels: [env], regex: prod}]`), rec)
		if err := d.Push(context.Background(), "t1", pushOne(memLabels(), memProfile(now, "dev", "test"))); err != nil || len(rec.got) != 0 {
			t.Fatalf("err %v, sent %d", err, len(rec.got))
		}
		if n, b := d.metrics.relabelDiscards(t, "t1"); n != 1 || b == 0 {
			t.Errorf("discards: %v profiles, %v bytes", n, b)
		}
	})
	for _, tc := range []struct {
		name, limits string
		labels       []*typesv1.LabelPair
		want         map[string]string
	}{
		{"replace adds a label", `ingestion_relabeling_rules: [{action: replace, replacement: grafana-labs, target_label: powered_by}]`,
			memLabels(), map[string]string{"__name__": "memory", "powered_by": "grafana-labs", "service_name": "svc"}},
		{"tenant rules see the defaults' result", `ingestion_relabeling_rules: [{source_labels: [__delta__], target_label: delta, replacement: "was-$1"}]`,
			[]*typesv1.LabelPair{{Name: "__name__", Value: "godeltaprof_memory"}, {Name: "service_name", Value: "svc"}},
			map[string]string{"__name__": "memory", "__name_replaced__": "godeltaprof_memory", "__delta__": "false", "delta": "was-false", "service_name": "svc"}},
		{"defaults last see the tenant rules' result", "ingestion_relabeling_default_rules_position: last\ningestion_relabeling_rules: [{target_label: __name__, replacement: godeltaprof_memory}]",
			memLabels(), map[string]string{"__name__": "memory", "__name_replaced__": "godeltaprof_memory", "__delta__": "false", "service_name": "svc"}},
		{"defaults disabled", "ingestion_relabeling_default_rules_position: disabled\ningestion_relabeling_rules: [{action: labeldrop, regex: team}]",
			[]*typesv1.LabelPair{{Name: "__name__", Value: "godeltaprof_memory"}, {Name: "service_name", Value: "svc"}, {Name: "team", Value: "a"}},
			map[string]string{"__name__": "godeltaprof_memory", "service_name": "svc"}},
		{"labelmap sets service_name (Pyroscope's eBPF docs)", `ingestion_relabeling_rules: [{action: labelmap, regex: ^process.executable.name$, replacement: service_name}]`,
			[]*typesv1.LabelPair{{Name: "__name__", Value: "memory"}, {Name: "process.executable.name", Value: "nginx"}},
			map[string]string{"__name__": "memory", "process.executable.name": "nginx", "service_name": "nginx"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			d := newTestDistributor(t, limitsWith(t, tc.limits), rec)
			if err := d.Push(context.Background(), "t1", pushOne(tc.labels, memProfile(now))); err != nil {
				t.Fatal(err)
			}
			if len(rec.got) != 1 {
				t.Fatalf("sent %d profiles", len(rec.got))
			}
			got := labelMap(rec.got[0].Labels)
			if len(got) != len(tc.want) {
				t.Errorf("labels %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("labels %v, want %v", got, tc.want)
					break
				}
			}
			if rec.got[0].Service != got["service_name"] {
				t.Errorf("service %q, labels say %q", rec.got[0].Service, got["service_name"])
			}
		})
	}
}

// TestSampleTypeRelabelRules: sample types the rules drop leave the profile
// with their values; when none is left nothing is sent and the push
// succeeds (Pyroscope's docs example rules).
func TestSampleTypeRelabelRules(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name, rules string
		labels      []*typesv1.LabelPair
		want        []string
		values      []int64
	}{
		{"drop alloc", `[{action: drop, regex: alloc_.*, source_labels: [__type__]}]`, memLabels(), []string{"inuse_objects/count", "inuse_space/bytes"}, []int64{3, 4}},
		{"match on unit", `[{action: keep, regex: bytes, source_labels: [__unit__]}]`, memLabels(), []string{"alloc_space/bytes", "inuse_space/bytes"}, []int64{2, 4}},
		{"match on a series label", `[{action: drop, regex: "alloc_.*;my-service", source_labels: [__type__, service_name]}]`,
			[]*typesv1.LabelPair{{Name: "__name__", Value: "memory"}, {Name: "service_name", Value: "my-service"}}, []string{"inuse_objects/count", "inuse_space/bytes"}, []int64{3, 4}},
		{"other service untouched", `[{action: drop, regex: "alloc_.*;my-service", source_labels: [__type__, service_name]}]`,
			memLabels(), []string{"alloc_objects/count", "alloc_space/bytes", "inuse_objects/count", "inuse_space/bytes"}, []int64{1, 2, 3, 4}},
		{"nothing left", `[{action: keep, regex: cpu|wall, source_labels: [__type__]}]`, memLabels(), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := defaultLimits()
			if err := yaml.Unmarshal([]byte(tc.rules), &l.SampleTypeRelabelingRules); err != nil {
				t.Fatal(err)
			}
			if err := l.Validate(); err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			d := newTestDistributor(t, l, rec)
			if err := d.Push(context.Background(), "t1", pushOne(tc.labels, memProfile(now))); err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if len(rec.got) != 0 {
					t.Fatalf("a profile without sample types was sent")
				}
				return
			}
			if len(rec.got) != 1 {
				t.Fatalf("sent %d profiles", len(rec.got))
			}
			out := pprofcheck.Parse(t, rec.got[0].Pprof)
			if got := sampleTypes(out); !slices.Equal(got, tc.want) {
				t.Errorf("sample types %v, want %v", got, tc.want)
			}
			if got := totals(out, nil); !slices.Equal(got, tc.values) {
				t.Errorf("totals %v, want %v", got, tc.values)
			}
		})
	}
}
