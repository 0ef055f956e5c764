package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
)

// The schema and CEL rules of spec.limits.overrides[].usage, as a real
// kube-apiserver applies them. (Group names and selectors are checked by
// the operator: TestUsageLimitsErrors in internal/manifests.)
func TestUsageLimitsValidation(t *testing.T) {
	c := startAPIServer(t)
	ctx := context.Background()
	good := func() *v1.UsageLimits {
		return &v1.UsageLimits{
			UsageGroups: map[string]string{"app/${labels.service_name}": `{service_name=~".+"}`},
			Sampling:    map[string]v1.UsageGroupSampling{"app/foo": {Probability: "0.25"}, "app/bar": {Probability: "1"}, "app/baz": {Probability: ".5"}},
			IngestionLimit: &v1.IngestionLimit{
				PeriodType: "day", PeriodLimitMB: 100, LimitReached: true,
				Sampling:    &v1.IngestionLimitSampling{NumRequests: 10, Period: &metav1.Duration{Duration: time.Minute}},
				UsageGroups: map[string]v1.UsageGroupIngestionLimit{"app/foo": {PeriodLimitMB: 10, LimitReached: true}},
			},
			KeepStrippedProfiles: ptr.To(true),
		}
	}
	// The shipped sample, which shows the usage keys, is accepted.
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", "profiling_v1alpha1_pyroscopedistributor.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sample := &v1.PyroscopeDistributor{}
	if err := yaml.UnmarshalStrict(raw, sample); err != nil {
		t.Fatal(err)
	}
	sample.Namespace = "default"
	if sample.Spec.Limits.Overrides["big-tenant"].Usage == nil {
		t.Fatal("the sample shows no usage keys")
	}
	if err := c.Create(ctx, sample); err != nil {
		t.Fatalf("the sample: %v", err)
	}

	for i, tc := range []struct {
		name     string
		mutate   func(*v1.UsageLimits)
		defaults bool   // set in spec.limits.defaults instead
		want     string // "" accepted, else in the refusal
	}{
		{name: "valid", mutate: func(*v1.UsageLimits) {}},
		{name: "probability over 1", mutate: func(u *v1.UsageLimits) { u.Sampling["g"] = v1.UsageGroupSampling{Probability: "1.01"} }, want: "sampling.g.probability"},
		{name: "negative probability", mutate: func(u *v1.UsageLimits) { u.Sampling["g"] = v1.UsageGroupSampling{Probability: "-0.5"} }, want: "sampling.g.probability"},
		{name: "probability not a number", mutate: func(u *v1.UsageLimits) { u.Sampling["g"] = v1.UsageGroupSampling{Probability: "half"} }, want: "sampling.g.probability"},
		{name: "unknown period type", mutate: func(u *v1.UsageLimits) { u.IngestionLimit.PeriodType = "fortnight" }, want: "periodType"},
		{name: "negative limit", mutate: func(u *v1.UsageLimits) { u.IngestionLimit.PeriodLimitMB = -1 }, want: "periodLimitMB"},
		{name: "negative group limit", mutate: func(u *v1.UsageLimits) {
			u.IngestionLimit.UsageGroups["g"] = v1.UsageGroupIngestionLimit{PeriodLimitMB: -1}
		}, want: "periodLimitMB"},
		{name: "negative num requests", mutate: func(u *v1.UsageLimits) { u.IngestionLimit.Sampling.NumRequests = -1 }, want: "numRequests"},
		{name: "negative period", mutate: func(u *v1.UsageLimits) { u.IngestionLimit.Sampling.Period = &metav1.Duration{Duration: -time.Minute} }, want: "sampling.period"},
		{name: "in defaults", mutate: func(*v1.UsageLimits) {}, defaults: true, want: "limits.defaults cannot set usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pd := valid(strings.ReplaceAll(strings.ReplaceAll(tc.name, " ", "-"), "'", "") + "-" + string(rune('a'+i)))
			u := good()
			tc.mutate(u)
			if tc.defaults {
				pd.Spec.Limits.Defaults.Usage = u
			} else {
				pd.Spec.Limits.Overrides = map[string]v1.TenantLimits{"team-a": {Usage: u}}
			}
			err := c.Create(ctx, pd)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err %v, want %q in it", err, tc.want)
			}
		})
	}
}
