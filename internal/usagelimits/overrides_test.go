package usagelimits_test

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/overrides"
	"github.com/pyrodist/pyrodist/internal/usagegroups"
)

// An overrides file written as Pyroscope's tests and docs write these keys
// (testdata/pyroscope-overrides.yaml names its sources) loads into
// config.UsageLimits, and the other keys keep the defaults.
func TestPyroscopeOverridesParse(t *testing.T) {
	data, err := os.ReadFile("testdata/pyroscope-overrides.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defaults := config.Defaults().Limits
	tenants, _, err := overrides.Parse(data, defaults)
	if err != nil {
		t.Fatal(err)
	}
	u := tenants["user-1"].Usage
	il := u.IngestionLimit
	if il.PeriodType != "hour" || il.PeriodLimitMB != 128 || il.LimitResetTime != 1737721086 || !il.LimitReached ||
		il.Sampling.NumRequests != 100 || il.Sampling.Period != time.Minute ||
		il.UsageGroups["group-1"] != (config.UsageGroupIngestionLimit{PeriodLimitMB: 64, LimitReached: true}) {
		t.Fatalf("ingestion_limit %+v", il)
	}
	g := u.DistributorUsageGroups
	if g.Len() != 2 || g.Groups()["app/foo2"] != `{service_name="foo", namespace=~"bar.*"}` {
		t.Fatalf("distributor_usage_groups %v", g.Groups())
	}
	if len(u.DistributorSampling.UsageGroups) != 0 || tenants["user-1"].IngestionRateMB != defaults.IngestionRateMB {
		t.Fatalf("user-1 has keys it did not set: %+v", tenants["user-1"])
	}
	s := tenants["test-tenant"].Usage
	if s.DistributorSampling.UsageGroups["${labels.service_name}"].Probability != 0 ||
		s.DistributorSampling.UsageGroups["test-service-1"].Probability != 0.3 || s.KeepStrippedProfiles ||
		s.IngestionLimit.PeriodType != "" || s.DistributorUsageGroups.Len() != 0 {
		t.Fatalf("test-tenant %+v", s)
	}
	if defaults.Usage.IngestionLimit.UsageGroups != nil || defaults.Usage.DistributorUsageGroups.Len() != 0 {
		t.Fatalf("defaults changed: %+v", defaults.Usage)
	}
}

// A bad selector refuses the file, as Pyroscope's runtime config refuses it
// (the running distributor then keeps the previous overrides).
func TestBadUsageGroupRefusesOverrides(t *testing.T) {
	_, _, err := overrides.Parse([]byte("overrides:\n  t:\n    distributor_usage_groups:\n      app/foo: '????'\n"), config.Defaults().Limits)
	if err == nil {
		t.Fatal("a bad selector was accepted")
	}
}

// A tenant's usage keys decoded over a copy of the defaults replace the
// defaults' maps and groups in that copy only: the defaults and the other
// tenants keep theirs.
func TestOverridesDoNotChangeDefaults(t *testing.T) {
	defaults := config.Defaults().Limits
	groups, err := usagegroups.Parse(map[string]string{"x": `{}`})
	if err != nil {
		t.Fatal(err)
	}
	defaults.Usage.DistributorUsageGroups = *groups
	defaults.Usage.IngestionLimit.UsageGroups = config.UsageGroupIngestionLimits{"a": {PeriodLimitMB: 1}}
	defaults.Usage.DistributorSampling.UsageGroups = config.UsageGroupSamplings{"a": {Probability: 0.5}}
	tenants, _, err := overrides.Parse([]byte(`overrides:
  t1:
    ingestion_limit:
      usage_groups:
        b: {period_limit_mb: 2}
    distributor_sampling:
      usage_groups:
        b: {probability: 0.1}
    distributor_usage_groups:
      y: '{}'
  t2:
    ingestion_rate_mb: 1
`), defaults)
	if err != nil {
		t.Fatal(err)
	}
	keys := func(u config.UsageLimits) string {
		return fmt.Sprint(slices.Sorted(maps.Keys(u.IngestionLimit.UsageGroups)), slices.Sorted(maps.Keys(u.DistributorSampling.UsageGroups)),
			slices.Sorted(maps.Keys(u.DistributorUsageGroups.Groups())))
	}
	for _, tc := range []struct {
		name string
		u    config.UsageLimits
		want string
	}{
		{"defaults", defaults.Usage, "[a] [a] [x]"},
		{"t1", tenants["t1"].Usage, "[b] [b] [y]"},
		{"t2", tenants["t2"].Usage, "[a] [a] [x]"},
	} {
		if got := keys(tc.u); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
