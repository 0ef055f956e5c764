package manifests

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
)

func rulesYAML(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The typed ingestion limits render into config.yaml (defaults) and
// overrides.yaml (per tenant), and the distributor's own loader reads back
// what the spec says.
func TestIngestionLimitsRoundTrip(t *testing.T) {
	pd := base("zone-a")
	pd.Spec.Limits.Defaults.IngestionLimits = v1.IngestionLimits{
		IngestionBodyLimit: ptr.To(resource.MustParse("64Mi")),
		RejectOlderThan:    &metav1.Duration{Duration: 2 * time.Hour},
		SampleTypeRelabelingRules: []v1.SampleTypeRelabelRule{
			{Action: "drop", SourceLabels: []string{"__type__"}, Regex: ptr.To("alloc_.*")},
		},
	}
	pd.Spec.Limits.Overrides = map[string]v1.TenantLimits{
		"team-a": {IngestionLimits: v1.IngestionLimits{
			IngestionBodyLimit:        ptr.To(resource.MustParse("0")),
			DisableLabelSanitization:  ptr.To(false),
			RejectOlderThan:           &metav1.Duration{Duration: 24 * time.Hour},
			RejectNewerThan:           &metav1.Duration{},
			PushMaxConcurrency:        ptr.To[int32](1),
			MaxLabelNamesPerSeries:    ptr.To[int32](40),
			MaxProfileSize:            ptr.To(resource.MustParse("8Mi")),
			MaxSessionsPerSeries:      ptr.To[int32](4),
			MaxProfileStacktraceDepth: ptr.To[int32](0),
			IngestionTenantShardSize:  ptr.To[int32](3),
			IngestionRelabelingRules: []v1.RelabelRule{
				{Action: "drop", SourceLabels: []string{"environment"}, Regex: ptr.To("secret")},
				{Action: "replace", TargetLabel: ptr.To("powered_by"), Replacement: ptr.To("grafana-labs")},
				{Action: "replace", SourceLabels: []string{"pod"}, TargetLabel: ptr.To("pod"), Replacement: ptr.To("")},
				{Action: "hashmod", SourceLabels: []string{"pod", "ns"}, Separator: ptr.To("/"), Modulus: ptr.To[int64](8), TargetLabel: ptr.To("shard")},
			},
			IngestionRelabelingDefaultRulesPosition: "last",
		}},
		"team-b": {IngestionLimits: v1.IngestionLimits{
			SampleTypeRelabelingRules: []v1.SampleTypeRelabelRule{{Action: "keep", SourceLabels: []string{"__type__"}, Regex: ptr.To("cpu|wall")}},
		}},
	}
	d := mustBuild(t, pd)
	c, tenants := loadLikeDistributor(t, d, "zone-a")

	if c.Limits.IngestionBodyLimitMB != 64 || time.Duration(c.Limits.RejectOlderThan) != 2*time.Hour || len(c.Limits.SampleTypeRelabelingRules) != 1 {
		t.Errorf("defaults: body %v MiB, older %v, %d sample type rules", c.Limits.IngestionBodyLimitMB, c.Limits.RejectOlderThan, len(c.Limits.SampleTypeRelabelingRules))
	}
	a := tenants.ForTenant("team-a")
	if a.IngestionBodyLimitMB != 0 || a.DisableLabelSanitization || time.Duration(a.RejectOlderThan) != 24*time.Hour || a.RejectNewerThan != 0 ||
		a.PushMaxConcurrency != 1 || a.IngestionTenantShardSize != 3 || a.IngestionRelabelingDefaultRulesPosition != "last" ||
		a.MaxLabelNamesPerSeries != 40 || a.MaxProfileSizeBytes != 8<<20 || a.MaxSessionsPerSeries != 4 || a.MaxProfileStacktraceDepth != 0 ||
		a.MaxLabelValueLength != c.Limits.MaxLabelValueLength {
		t.Errorf("team-a: %+v", a)
	}
	wantRules := `- source_labels: [environment]
  regex: secret
  action: drop
- target_label: powered_by
  replacement: grafana-labs
  action: replace
- source_labels: [pod]
  target_label: pod
  replacement: ""
  action: replace
- source_labels: [pod, ns]
  separator: /
  modulus: 8
  target_label: shard
  action: hashmod
`
	if got := rulesYAML(t, a.IngestionRelabelingRules); got != wantRules {
		t.Errorf("team-a rules:\n%s\nwant:\n%s", got, wantRules)
	}
	if got := rulesYAML(t, a.SampleTypeRelabelingRules); got != rulesYAML(t, c.Limits.SampleTypeRelabelingRules) {
		t.Errorf("team-a keeps the default sample type rules, got:\n%s", got)
	}
	b := tenants.ForTenant("team-b")
	if got := rulesYAML(t, b.SampleTypeRelabelingRules); got != "- source_labels: [__type__]\n  regex: cpu|wall\n  action: keep\n" {
		t.Errorf("team-b sample type rules:\n%s", got)
	}
	if b.IngestionBodyLimitMB != 64 || time.Duration(b.RejectOlderThan) != 2*time.Hour {
		t.Errorf("team-b should keep the defaults: %+v", b)
	}
	if o := d.Overrides.Data[OverridesFile]; !strings.Contains(o, "reject_older_than: 1d") {
		t.Errorf("overrides.yaml should write durations as Pyroscope does:\n%s", o)
	}
}

func TestIngestionLimitsRefused(t *testing.T) {
	for name, il := range map[string]v1.IngestionLimits{
		"regex":                   {IngestionRelabelingRules: []v1.RelabelRule{{Action: "drop", Regex: ptr.To("(")}}},
		"sample action":           {SampleTypeRelabelingRules: []v1.SampleTypeRelabelRule{{Action: "replace"}}},
		"hashmod":                 {IngestionRelabelingRules: []v1.RelabelRule{{Action: "hashmod", TargetLabel: ptr.To("x")}}},
		"negative body":           {IngestionBodyLimit: ptr.To(resource.MustParse("-1Mi"))},
		"negative age":            {RejectOlderThan: &metav1.Duration{Duration: -time.Minute}},
		"fractional profile size": {MaxProfileSize: ptr.To(resource.MustParse("0.5"))},
	} {
		pd := base("zone-a")
		pd.Spec.Limits.Overrides = map[string]v1.TenantLimits{"t": {IngestionLimits: il}}
		if _, err := Build(pd, testFacts); err == nil || !strings.Contains(err.Error(), "spec.limits.overrides[t]") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
