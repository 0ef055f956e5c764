package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
)

// The API server checks the typed ingestion limits: enums, bounds and the
// relabel rules' field combinations (the regex itself only the operator can
// compile).
func TestIngestionLimitsValidation(t *testing.T) {
	c := startAPIServer(t)
	ctx := context.Background()
	n := 0
	create := func(il v1.IngestionLimits) error {
		n++
		pd := valid(fmt.Sprintf("il-%d", n))
		pd.Spec.Limits.Overrides = map[string]v1.TenantLimits{"team-a": {IngestionLimits: il}}
		return c.Create(ctx, pd)
	}

	good := v1.IngestionLimits{
		DisableLabelSanitization: ptr.To(false),
		RejectOlderThan:          &metav1.Duration{Duration: 24 * time.Hour},
		RejectNewerThan:          &metav1.Duration{},
		PushMaxConcurrency:       ptr.To[int32](0),
		IngestionTenantShardSize: ptr.To[int32](4),
		MaxSessionsPerSeries:     ptr.To[int32](16),
		IngestionRelabelingRules: []v1.RelabelRule{
			{SourceLabels: []string{"environment"}, Regex: ptr.To("secret"), Action: "drop"},
			{TargetLabel: ptr.To("powered_by"), Replacement: ptr.To("grafana-labs")},
			{Action: "labelmap", Regex: ptr.To("^process.executable.name$"), Replacement: ptr.To("service_name")},
			{Action: "hashmod", SourceLabels: []string{"pod"}, Modulus: ptr.To[int64](4), TargetLabel: ptr.To("shard")},
			{Action: "labeldrop", Regex: ptr.To("tmp_.*")},
		},
		IngestionRelabelingDefaultRulesPosition: "last",
		SampleTypeRelabelingRules:               []v1.SampleTypeRelabelRule{{Action: "drop", SourceLabels: []string{"__type__"}, Regex: ptr.To("alloc_.*")}},
	}
	if err := create(good); err != nil {
		t.Fatalf("valid limits refused: %v", err)
	}
	got := &v1.PyroscopeDistributor{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "il-1"}, got); err != nil {
		t.Fatal(err)
	}
	if a := got.Spec.Limits.Overrides["team-a"].IngestionRelabelingRules[1].Action; a != "replace" {
		t.Errorf("a rule without action defaults to %q, want replace", a)
	}

	for _, tc := range []struct {
		name string
		il   v1.IngestionLimits
		want string
	}{
		{"unknown action", v1.IngestionLimits{IngestionRelabelingRules: []v1.RelabelRule{{Action: "explode"}}}, "Unsupported value"},
		{"hashmod without modulus", v1.IngestionLimits{IngestionRelabelingRules: []v1.RelabelRule{{Action: "hashmod", TargetLabel: ptr.To("s")}}}, "a hashmod rule needs modulus"},
		{"zero modulus", v1.IngestionLimits{IngestionRelabelingRules: []v1.RelabelRule{{Action: "hashmod", TargetLabel: ptr.To("s"), Modulus: ptr.To[int64](0)}}}, "modulus"},
		{"lowercase without target", v1.IngestionLimits{IngestionRelabelingRules: []v1.RelabelRule{{Action: "lowercase", SourceLabels: []string{"a"}}}}, "need targetLabel"},
		{"labeldrop with more than regex", v1.IngestionLimits{IngestionRelabelingRules: []v1.RelabelRule{{Action: "labeldrop", Regex: ptr.To("a"), SourceLabels: []string{"b"}}}}, "take only regex"},
		{"uppercase with replacement", v1.IngestionLimits{IngestionRelabelingRules: []v1.RelabelRule{{Action: "uppercase", TargetLabel: ptr.To("a"), Replacement: ptr.To("b")}}}, "take no replacement"},
		{"keepequal with regex", v1.IngestionLimits{IngestionRelabelingRules: []v1.RelabelRule{{Action: "keepequal", TargetLabel: ptr.To("a"), Regex: ptr.To("b")}}}, "take only sourceLabels and targetLabel"},
		{"sample type replace", v1.IngestionLimits{SampleTypeRelabelingRules: []v1.SampleTypeRelabelRule{{Action: "replace"}}}, "Unsupported value"},
		{"position", v1.IngestionLimits{IngestionRelabelingDefaultRulesPosition: "end"}, "Unsupported value"},
		{"negative window", v1.IngestionLimits{RejectOlderThan: &metav1.Duration{Duration: -time.Hour}}, "rejectOlderThan must not be negative"},
		{"negative concurrency", v1.IngestionLimits{PushMaxConcurrency: ptr.To[int32](-1)}, "pushMaxConcurrency"},
		{"negative shard size", v1.IngestionLimits{IngestionTenantShardSize: ptr.To[int32](-1)}, "ingestionTenantShardSize"},
		{"negative label names", v1.IngestionLimits{MaxLabelNamesPerSeries: ptr.To[int32](-1)}, "maxLabelNamesPerSeries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := create(tc.il)
			if err == nil {
				t.Fatalf("accepted; want an error containing %q", tc.want)
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v; want Invalid containing %q", err, tc.want)
			}
		})
	}
}
