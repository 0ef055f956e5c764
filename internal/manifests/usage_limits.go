package manifests

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/usagegroups"
)

// applyUsage maps a tenant's spec.limits.overrides[].usage onto its limits
// (Pyroscope's distributor_usage_groups, distributor_sampling,
// keep_stripped_profiles, ingestion_limit). What the distributor would
// refuse when it loads overrides.yaml (a selector that does not parse, too
// many groups) is refused here, so it shows as a condition.
func applyUsage(l *config.Limits, u *v1.UsageLimits, field string) error {
	if u == nil {
		return nil
	}
	field += ".usage"
	if len(u.UsageGroups) > 0 {
		g, err := usagegroups.Parse(u.UsageGroups)
		if err != nil {
			return fmt.Errorf("%s.usageGroups: %w", field, err)
		}
		l.Usage.DistributorUsageGroups = *g
	}
	if len(u.Sampling) > 0 {
		s := config.UsageGroupSamplings{}
		for _, g := range slices.Sorted(maps.Keys(u.Sampling)) {
			p, err := strconv.ParseFloat(u.Sampling[g].Probability, 64)
			if err != nil || p < 0 || p > 1 {
				return fmt.Errorf("%s.sampling[%s].probability: %q is not a decimal from 0 to 1", field, g, u.Sampling[g].Probability)
			}
			s[g] = config.UsageGroupSampling{Probability: p}
		}
		l.Usage.DistributorSampling = config.DistributorSampling{UsageGroups: s}
	}
	if u.KeepStrippedProfiles != nil {
		l.Usage.KeepStrippedProfiles = *u.KeepStrippedProfiles
	}
	if il := u.IngestionLimit; il != nil {
		c := config.IngestionLimit{PeriodType: il.PeriodType, PeriodLimitMB: int(il.PeriodLimitMB), LimitReached: il.LimitReached}
		if il.PeriodLimitMB < 0 {
			return fmt.Errorf("%s.ingestionLimit.periodLimitMB must not be negative", field)
		}
		if il.LimitResetTime != nil {
			c.LimitResetTime = il.LimitResetTime.Unix()
		}
		if s := il.Sampling; s != nil {
			if s.NumRequests < 0 || s.Period != nil && s.Period.Duration < 0 {
				return fmt.Errorf("%s.ingestionLimit.sampling must not be negative", field)
			}
			c.Sampling.NumRequests = int(s.NumRequests)
			if s.Period != nil {
				c.Sampling.Period = s.Period.Duration
			}
		}
		if len(il.UsageGroups) > 0 {
			c.UsageGroups = config.UsageGroupIngestionLimits{}
			for g, gl := range il.UsageGroups {
				if gl.PeriodLimitMB < 0 {
					return fmt.Errorf("%s.ingestionLimit.usageGroups[%s].periodLimitMB must not be negative", field, g)
				}
				c.UsageGroups[g] = config.UsageGroupIngestionLimit{PeriodLimitMB: int(gl.PeriodLimitMB), LimitReached: gl.LimitReached}
			}
		}
		l.Usage.IngestionLimit = c
	}
	return nil
}
