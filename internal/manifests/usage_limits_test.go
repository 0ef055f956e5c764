package manifests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/config"
)

// A tenant's usage limits in the spec reach the distributor: render
// overrides.yaml, load it with the distributor's own loader, compare.
func TestUsageLimitsRoundTrip(t *testing.T) {
	pd := base("zone-a")
	reset := metav1.NewTime(time.Unix(1737721086, 0))
	pd.Spec.Limits.Overrides = map[string]v1.TenantLimits{
		"team-a": {Usage: &v1.UsageLimits{
			UsageGroups: map[string]string{
				"app/foo":                    `{service_name="foo"}`,
				"app/${labels.service_name}": `{namespace=~"bar.*"}`,
			},
			Sampling: map[string]v1.UsageGroupSampling{
				"app/foo":                    {Probability: "0.25"},
				"app/${labels.service_name}": {Probability: "1"},
				"app/baz":                    {Probability: "0"},
			},
			KeepStrippedProfiles: ptr.To(true),
			IngestionLimit: &v1.IngestionLimit{
				PeriodType: "day", PeriodLimitMB: 1024, LimitResetTime: &reset, LimitReached: true,
				Sampling: &v1.IngestionLimitSampling{NumRequests: 10, Period: &metav1.Duration{Duration: time.Minute}},
				UsageGroups: map[string]v1.UsageGroupIngestionLimit{
					"app/foo": {PeriodLimitMB: 64, LimitReached: true},
					"app/bar": {PeriodLimitMB: 32},
				},
			},
		}},
		"team-b": {Usage: &v1.UsageLimits{KeepStrippedProfiles: ptr.To(false)}},
	}
	d := mustBuild(t, pd)
	_, tenants := loadLikeDistributor(t, d, "zone-a")

	u := tenants.ForTenant("team-a").Usage
	if got := fmt.Sprint(u.DistributorUsageGroups.Groups()); got != fmt.Sprint(pd.Spec.Limits.Overrides["team-a"].Usage.UsageGroups) {
		t.Errorf("usage groups %s\n%s", got, d.ConfigMap.Data[OverridesFile])
	}
	wantSampling := config.UsageGroupSamplings{"app/foo": {Probability: 0.25}, "app/${labels.service_name}": {Probability: 1}, "app/baz": {Probability: 0}}
	if fmt.Sprint(u.DistributorSampling.UsageGroups) != fmt.Sprint(wantSampling) {
		t.Errorf("sampling %v, want %v", u.DistributorSampling.UsageGroups, wantSampling)
	}
	if !u.KeepStrippedProfiles {
		t.Error("keep_stripped_profiles lost")
	}
	wantLimit := config.IngestionLimit{
		PeriodType: "day", PeriodLimitMB: 1024, LimitResetTime: 1737721086, LimitReached: true,
		Sampling: config.IngestionLimitSampling{NumRequests: 10, Period: time.Minute},
		UsageGroups: config.UsageGroupIngestionLimits{
			"app/foo": {PeriodLimitMB: 64, LimitReached: true},
			"app/bar": {PeriodLimitMB: 32},
		},
	}
	if fmt.Sprintf("%+v", u.IngestionLimit) != fmt.Sprintf("%+v", wantLimit) {
		t.Errorf("ingestion_limit %+v, want %+v", u.IngestionLimit, wantLimit)
	}
	// Matching works on what was loaded.
	if n := u.DistributorUsageGroups.Len(); n != 2 {
		t.Errorf("%d groups loaded", n)
	}
	b := tenants.ForTenant("team-b").Usage
	if b.KeepStrippedProfiles || b.DistributorUsageGroups.Len() != 0 || b.IngestionLimit.LimitReached || len(b.DistributorSampling.UsageGroups) != 0 {
		t.Errorf("team-b %+v", b)
	}
	if strings.Contains(d.ConfigMap.Data[ConfigFileName], "usage") || strings.Contains(d.ConfigMap.Data[ConfigFileName], "ingestion_limit") {
		t.Errorf("usage limits in config.yaml:\n%s", d.ConfigMap.Data[ConfigFileName])
	}
}

func TestUsageLimitsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		u    *v1.UsageLimits
		want string
	}{
		{"bad selector", &v1.UsageLimits{UsageGroups: map[string]string{"g": "????"}}, `usage.usageGroups: failed to parse matchers for usage group "g"`},
		{"reserved group", &v1.UsageLimits{UsageGroups: map[string]string{"other": "{}"}}, `usage group name "other" is reserved`},
		{"probability over 1", &v1.UsageLimits{Sampling: map[string]v1.UsageGroupSampling{"g": {Probability: "1.5"}}}, "sampling[g].probability"},
		{"probability not a number", &v1.UsageLimits{Sampling: map[string]v1.UsageGroupSampling{"g": {Probability: "half"}}}, "sampling[g].probability"},
		{"negative limit", &v1.UsageLimits{IngestionLimit: &v1.IngestionLimit{PeriodType: "day", PeriodLimitMB: -1}}, "periodLimitMB must not be negative"},
		{"negative period", &v1.UsageLimits{IngestionLimit: &v1.IngestionLimit{PeriodType: "day", Sampling: &v1.IngestionLimitSampling{Period: &metav1.Duration{Duration: -time.Second}}}}, "sampling must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pd := base("zone-a")
			pd.Spec.Limits.Overrides = map[string]v1.TenantLimits{"t": {Usage: tc.u}}
			_, err := Build(pd, testFacts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q in it", err, tc.want)
			}
		})
	}
	pd := base("zone-a")
	pd.Spec.Limits.Defaults.Usage = &v1.UsageLimits{KeepStrippedProfiles: ptr.To(true)}
	if _, err := Build(pd, testFacts); err == nil || !strings.Contains(err.Error(), "per tenant") {
		t.Fatalf("usage in defaults: %v", err)
	}
}
