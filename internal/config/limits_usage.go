package config

import (
	"flag"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pyrodist/pyrodist/internal/usagegroups"
)

// UsageLimits are the per-tenant keys that sort a tenant's profiles into
// usage groups, sample them and enforce its ingestion hard limit, with
// Pyroscope's YAML keys (pkg/validation/limits.go at 3fe6a45). Unset they
// cost nothing on the hot path. docs/compatibility.md#usage-groups
//
// They are values, not pointers, and their maps are replaced, not merged,
// when a tenant's entry is decoded over a copy of the defaults: decoding
// into a pointer or map the copy shares would change the defaults and
// every other tenant's limits.
type UsageLimits struct {
	// IngestionLimit is set by an external usage tracker: once it reports
	// the period's limit reached, profiles are refused but for a small
	// sample (pkg/distributor/ingestlimits at 3fe6a45).
	IngestionLimit IngestionLimit `yaml:"ingestion_limit,omitempty"`
	// DistributorSampling keeps a usage group's profiles with a probability.
	DistributorSampling DistributorSampling `yaml:"distributor_sampling,omitempty"`
	// KeepStrippedProfiles keeps a sampled-out profile as one sample of its
	// totals, labelled __sampled__="true", instead of dropping it.
	KeepStrippedProfiles bool `yaml:"keep_stripped_profiles"`
	// DistributorUsageGroups name groups of series by selector.
	DistributorUsageGroups usagegroups.Config `yaml:"distributor_usage_groups,omitempty"`
}

// IngestionLimit is Pyroscope's ingestion_limit (pkg/distributor/ingestlimits/config.go).
type IngestionLimit struct {
	// PeriodType ("hour", "day", ...), PeriodLimitMB and LimitResetTime
	// (Unix seconds) only word the refusal and the annotation.
	PeriodType     string `yaml:"period_type"`
	PeriodLimitMB  int    `yaml:"period_limit_mb"`
	LimitResetTime int64  `yaml:"limit_reset_time"`
	// LimitReached refuses the tenant's profiles but for Sampling's.
	LimitReached bool                   `yaml:"limit_reached"`
	Sampling     IngestionLimitSampling `yaml:"sampling"`
	// UsageGroups are limits per usage group (by resolved or configured name).
	UsageGroups UsageGroupIngestionLimits `yaml:"usage_groups,omitempty"`
}

// UsageGroupIngestionLimits are hard limits by usage group name.
type UsageGroupIngestionLimits = ReplacedMap[UsageGroupIngestionLimit]

// ReplacedMap is a map by usage group name that a YAML document replaces
// rather than adds to (see UsageLimits).
type ReplacedMap[V any] map[string]V

func (m *ReplacedMap[V]) UnmarshalYAML(n *yaml.Node) error {
	var v map[string]V
	if err := n.Decode(&v); err != nil {
		return err
	}
	*m = v
	return nil
}

// IngestionLimitSampling lets at most NumRequests profiles through per
// Period on each distributor once a limit is reached.
type IngestionLimitSampling struct {
	NumRequests int           `yaml:"num_requests"`
	Period      time.Duration `yaml:"period"`
}

// UsageGroupIngestionLimit is one usage group's hard limit.
type UsageGroupIngestionLimit struct {
	PeriodLimitMB int  `yaml:"period_limit_mb"`
	LimitReached  bool `yaml:"limit_reached"`
}

// DistributorSampling is Pyroscope's distributor_sampling (pkg/distributor/sampling/config.go).
type DistributorSampling struct {
	UsageGroups UsageGroupSamplings `yaml:"usage_groups,omitempty"`
}

// UsageGroupSamplings are sampling rules by usage group name.
type UsageGroupSamplings = ReplacedMap[UsageGroupSampling]

// UsageGroupSampling keeps a group's profiles with Probability (0 to 1).
type UsageGroupSampling struct {
	Probability float64 `yaml:"probability"`
}

func (l *UsageLimits) RegisterFlags(f *flag.FlagSet) {
	f.BoolVar(&l.KeepStrippedProfiles, "distributor.sampling.keep-stripped-profiles", false, "When a profile is sampled out, keep its totals as one sample without stack traces or sample labels (labelled __sampled__=\"true\") instead of dropping it.")
}
