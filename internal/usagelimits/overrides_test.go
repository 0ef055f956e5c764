package usagelimits_test

import (
	"os"
	"testing"
	"time"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/overrides"
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
	tenants, err := overrides.Parse(data, defaults)
	if err != nil {
		t.Fatal(err)
	}
	u := tenants["user-1"].Usage
	il := u.IngestionLimit
	if il == nil || il.PeriodType != "hour" || il.PeriodLimitMB != 128 || il.LimitResetTime != 1737721086 || !il.LimitReached ||
		il.Sampling.NumRequests != 100 || il.Sampling.Period != time.Minute ||
		il.UsageGroups["group-1"] != (config.UsageGroupIngestionLimit{PeriodLimitMB: 64, LimitReached: true}) {
		t.Fatalf("ingestion_limit %+v", il)
	}
	g := u.DistributorUsageGroups
	if g.Len() != 2 || g.Groups()["app/foo2"] != `{service_name="foo", namespace=~"bar.*"}` {
		t.Fatalf("distributor_usage_groups %v", g.Groups())
	}
	if u.DistributorSampling != nil || tenants["user-1"].IngestionRateMB != defaults.IngestionRateMB {
		t.Fatalf("user-1 has keys it did not set: %+v", tenants["user-1"])
	}
	s := tenants["test-tenant"].Usage
	if s.DistributorSampling == nil || s.DistributorSampling.UsageGroups["${labels.service_name}"].Probability != 0 ||
		s.DistributorSampling.UsageGroups["test-service-1"].Probability != 0.3 || s.KeepStrippedProfiles ||
		s.IngestionLimit != nil || s.DistributorUsageGroups != nil {
		t.Fatalf("test-tenant %+v", s)
	}
	if defaults.Usage != (config.UsageLimits{}) {
		t.Fatalf("defaults changed: %+v", defaults.Usage)
	}
}

// A bad selector refuses the file, as Pyroscope's runtime config refuses it
// (the running distributor then keeps the previous overrides).
func TestBadUsageGroupRefusesOverrides(t *testing.T) {
	_, err := overrides.Parse([]byte("overrides:\n  t:\n    distributor_usage_groups:\n      app/foo: '????'\n"), config.Defaults().Limits)
	if err == nil {
		t.Fatal("a bad selector was accepted")
	}
}
