package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// UsageLimits sort a tenant's profiles into usage groups, sample them by
// group and carry the tenant's ingestion hard limit: Pyroscope's
// distributor_usage_groups, distributor_sampling, keep_stripped_profiles
// and ingestion_limit (docs/compatibility.md#usage-groups). Overrides only.
type UsageLimits struct {
	// UsageGroups maps a usage group name to a series selector, e.g.
	// `{service_name="checkout", namespace=~"prod-.*"}`; a profile counts in
	// every group it matches (or in "other"). A name may hold
	// ${labels.<name>}, filled in with that label's value.
	// Names must not be empty or "other"; selectors must parse: the operator
	// checks both (a condition says what is wrong), as CEL rules here would
	// exceed the API server's cost budget across 10000 tenants.
	// +optional
	// +kubebuilder:validation:MaxProperties=50
	UsageGroups map[string]string `json:"usageGroups,omitempty"`

	// Sampling keeps the profiles of a usage group (by its name, or by the
	// name a ${labels.<name>} group resolved to) with a probability; when
	// several groups have one, the lowest wins.
	// +optional
	// +kubebuilder:validation:MaxProperties=1000
	Sampling map[string]UsageGroupSampling `json:"sampling,omitempty"`

	// KeepStrippedProfiles keeps a sampled-out profile as one sample of its
	// totals, labelled __sampled__="true", instead of dropping it.
	// +optional
	KeepStrippedProfiles *bool `json:"keepStrippedProfiles,omitempty"`

	// IngestionLimit is the tenant's hard limit as a usage tracker reports
	// it: once reached, the tenant's profiles are refused (429) but for a
	// small sample.
	// +optional
	IngestionLimit *IngestionLimit `json:"ingestionLimit,omitempty"`
}

// UsageGroupSampling is one usage group's sampling rule.
type UsageGroupSampling struct {
	// Probability of keeping a profile: a decimal from 0 to 1, e.g. "0.25".
	// (A pattern, not a CEL rule: CEL's cost across 10000 tenants is over
	// the API server's budget.)
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:Pattern=`^(0|0?\.[0-9]+|1|1\.0+)$`
	Probability string `json:"probability"`
}

// IngestionLimit is a tenant's ingestion hard limit.
type IngestionLimit struct {
	// PeriodType is the period the limit is counted over; it words the
	// refusal ("limit of 100 GiB/day reached, ...").
	// +kubebuilder:validation:Enum=hour;day;week;month
	PeriodType string `json:"periodType"`

	// PeriodLimitMB is the limit in MiB per period; it words the refusal.
	// +optional
	// +kubebuilder:validation:Minimum=0
	PeriodLimitMB int64 `json:"periodLimitMB,omitempty"`

	// LimitResetTime is when the limit resets; it words the refusal.
	// +optional
	LimitResetTime *metav1.Time `json:"limitResetTime,omitempty"`

	// LimitReached refuses the tenant's profiles but for the sample.
	// +optional
	LimitReached bool `json:"limitReached,omitempty"`

	// Sampling is the sample let through once a limit is reached.
	// +optional
	Sampling *IngestionLimitSampling `json:"sampling,omitempty"`

	// UsageGroups are hard limits of the tenant's usage groups.
	// +optional
	// +kubebuilder:validation:MaxProperties=1000
	UsageGroups map[string]UsageGroupIngestionLimit `json:"usageGroups,omitempty"`
}

// IngestionLimitSampling lets about NumRequests profiles through per Period
// across all distributors once a limit is reached.
type IngestionLimitSampling struct {
	// NumRequests is the profiles let through per Period, in all.
	// +optional
	// +kubebuilder:validation:Minimum=0
	NumRequests int32 `json:"numRequests,omitempty"`

	// Period is the sample's window, e.g. 1m; not negative.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	Period *metav1.Duration `json:"period,omitempty"`
}

// UsageGroupIngestionLimit is one usage group's hard limit.
type UsageGroupIngestionLimit struct {
	// PeriodLimitMB is the group's limit in MiB per period; it words the refusal.
	// +optional
	// +kubebuilder:validation:Minimum=0
	PeriodLimitMB int64 `json:"periodLimitMB,omitempty"`

	// LimitReached refuses the group's profiles but for the tenant's sample.
	// +optional
	LimitReached bool `json:"limitReached,omitempty"`
}
