package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IngestionLimits are the per-tenant keys of Pyroscope's overrides file that
// the distributor acts on besides rates, shards and usage groups
// (docs/compatibility.md lists every key). Each maps onto the overrides key
// named in its comment.
type IngestionLimits struct {
	// IngestionBodyLimit bounds a request's body and the sum of its
	// decompressed profiles, in bytes (ingestion_body_limit_mb; e.g. 256Mi).
	// 0 disables it. Unset in defaults means 256Mi.
	// +optional
	IngestionBodyLimit *resource.Quantity `json:"ingestionBodyLimit,omitempty"`

	// DisableLabelSanitization accepts any UTF-8 label name when true (the
	// default); false accepts only legacy names and turns dots into
	// underscores (disable_label_sanitization).
	// +optional
	DisableLabelSanitization *bool `json:"disableLabelSanitization,omitempty"`

	// RejectOlderThan refuses profiles whose timestamp is older than this
	// (reject_older_than; e.g. 1h, 24h). 0s disables it. Unset in defaults
	// means 1h.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="rejectOlderThan must not be negative"
	RejectOlderThan *metav1.Duration `json:"rejectOlderThan,omitempty"`

	// RejectNewerThan refuses profiles whose timestamp is further in the
	// future than this (reject_newer_than; e.g. 10m). 0s disables it. Unset
	// in defaults means 10m.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="rejectNewerThan must not be negative"
	RejectNewerThan *metav1.Duration `json:"rejectNewerThan,omitempty"`

	// PushMaxConcurrency is how many profiles of one request are processed
	// at once (push_max_concurrency): 0 unbounded, 1 serial. Unset in
	// defaults means 256.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65536
	PushMaxConcurrency *int32 `json:"pushMaxConcurrency,omitempty"`

	// IngestionTenantShardSize is Pyroscope's ingestion_tenant_shard_size
	// (0 disables shuffle sharding).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65536
	IngestionTenantShardSize *int32 `json:"ingestionTenantShardSize,omitempty"`

	// MaxLabelNameLength bounds a label name (max_label_name_length);
	// 1024 when unset in defaults.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxLabelNameLength *int32 `json:"maxLabelNameLength,omitempty"`

	// MaxLabelValueLength bounds a label value (max_label_value_length);
	// 2048 when unset in defaults.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxLabelValueLength *int32 `json:"maxLabelValueLength,omitempty"`

	// MaxLabelNamesPerSeries bounds the labels of a series
	// (max_label_names_per_series); 30 when unset in defaults.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxLabelNamesPerSeries *int32 `json:"maxLabelNamesPerSeries,omitempty"`

	// MaxProfileSize bounds one decompressed profile, in bytes
	// (max_profile_size_bytes; e.g. 4Mi, the default when unset). 0
	// disables it.
	// +optional
	MaxProfileSize *resource.Quantity `json:"maxProfileSize,omitempty"`

	// MaxProfileStacktraceSamples bounds the samples of a profile
	// (max_profile_stacktrace_samples); 16000 when unset in defaults, 0
	// disables it.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxProfileStacktraceSamples *int32 `json:"maxProfileStacktraceSamples,omitempty"`

	// MaxProfileStacktraceSampleLabels bounds the labels of a sample
	// (max_profile_stacktrace_sample_labels); 100 when unset in defaults, 0
	// disables it.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxProfileStacktraceSampleLabels *int32 `json:"maxProfileStacktraceSampleLabels,omitempty"`

	// MaxProfileStacktraceDepth truncates deeper stacks
	// (max_profile_stacktrace_depth); 1000 when unset in defaults, 0
	// disables it.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxProfileStacktraceDepth *int32 `json:"maxProfileStacktraceDepth,omitempty"`

	// MaxProfileSymbolValueLength truncates longer profile strings to their
	// last bytes (max_profile_symbol_value_length); 65535 when unset in
	// defaults, 0 disables it.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxProfileSymbolValueLength *int32 `json:"maxProfileSymbolValueLength,omitempty"`

	// MaxSessionsPerSeries bounds the __session_id__ values of a series
	// (max_sessions_per_series); 0, the default, removes the label.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxSessionsPerSeries *int32 `json:"maxSessionsPerSeries,omitempty"`

	// IngestionRelabelingRules are Prometheus relabel rules applied in order
	// to every label set of a profile (after its split by sample labels);
	// a drop discards that part of the profile (ingestion_relabeling_rules).
	// A regex that does not compile is refused by the operator (Ready turns
	// False): the API server cannot check it.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	IngestionRelabelingRules []RelabelRule `json:"ingestionRelabelingRules,omitempty"`

	// IngestionRelabelingDefaultRulesPosition runs Pyroscope's default
	// rules (godeltaprof_ names, wall as process_cpu) before the tenant's
	// rules (first, the default), after them (last), or not at all
	// (disabled) (ingestion_relabeling_default_rules_position).
	// +optional
	// +kubebuilder:validation:Enum=first;last;disabled
	IngestionRelabelingDefaultRulesPosition string `json:"ingestionRelabelingDefaultRulesPosition,omitempty"`

	// SampleTypeRelabelingRules keep or drop each sample type of a profile,
	// matched on __type__ and __unit__ with the series labels
	// (sample_type_relabeling_rules).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	SampleTypeRelabelingRules []SampleTypeRelabelRule `json:"sampleTypeRelabelingRules,omitempty"`
}

// RelabelRule is one Prometheus relabel_config. Unset fields take
// Prometheus' defaults: separator ";", regex "(.*)", replacement "$1".
// +kubebuilder:validation:XValidation:rule="self.action != 'hashmod' || has(self.modulus)",message="a hashmod rule needs modulus"
// +kubebuilder:validation:XValidation:rule="!(self.action in ['hashmod', 'lowercase', 'uppercase', 'keepequal', 'dropequal']) || has(self.targetLabel)",message="hashmod, lowercase, uppercase, keepequal and dropequal rules need targetLabel"
// +kubebuilder:validation:XValidation:rule="!(self.action in ['labeldrop', 'labelkeep']) || !(has(self.sourceLabels) || has(self.targetLabel) || has(self.modulus) || has(self.separator) || has(self.replacement))",message="labeldrop and labelkeep rules take only regex"
// +kubebuilder:validation:XValidation:rule="!(self.action in ['lowercase', 'uppercase', 'keepequal', 'dropequal']) || !has(self.replacement)",message="lowercase, uppercase, keepequal and dropequal rules take no replacement"
// +kubebuilder:validation:XValidation:rule="!(self.action in ['keepequal', 'dropequal']) || !(has(self.regex) || has(self.modulus) || has(self.separator))",message="keepequal and dropequal rules take only sourceLabels and targetLabel"
type RelabelRule struct {
	// Action is what the rule does (action); replace by default.
	// +optional
	// +kubebuilder:default=replace
	// +kubebuilder:validation:Enum=replace;keep;drop;keepequal;dropequal;hashmod;labelmap;labeldrop;labelkeep;lowercase;uppercase
	Action RelabelAction `json:"action,omitempty"`

	// SourceLabels are the labels whose values, joined by separator, the
	// regex is matched against (source_labels).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=1024
	SourceLabels []string `json:"sourceLabels,omitempty"`

	// Separator joins the source label values (separator); ";" when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Separator *string `json:"separator,omitempty"`

	// Regex is an RE2 expression, anchored at both ends (regex); "(.*)"
	// when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Regex *string `json:"regex,omitempty"`

	// Modulus of the hash, for hashmod (modulus).
	// +optional
	// +kubebuilder:validation:Minimum=1
	Modulus *int64 `json:"modulus,omitempty"`

	// TargetLabel is the label a replace, hashmod, lowercase or uppercase
	// rule writes, or keepequal/dropequal compare with (target_label).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	TargetLabel *string `json:"targetLabel,omitempty"`

	// Replacement is the value written, with $1-style references to the
	// regex's groups (replacement); "$1" when unset. An empty replacement
	// deletes the target label.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Replacement *string `json:"replacement,omitempty"`
}

// RelabelAction is a Prometheus relabel action.
// +kubebuilder:validation:MaxLength=16
type RelabelAction string

// SampleTypeRelabelRule keeps or drops sample types: its regex is matched
// against the values of sourceLabels (__type__, __unit__ or a series
// label) joined by separator.
type SampleTypeRelabelRule struct {
	// Action is keep or drop.
	// +kubebuilder:validation:Enum=keep;drop
	Action RelabelAction `json:"action"`

	// SourceLabels are the labels matched (source_labels), e.g. [__type__].
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=1024
	SourceLabels []string `json:"sourceLabels,omitempty"`

	// Separator joins the source label values (separator); ";" when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Separator *string `json:"separator,omitempty"`

	// Regex is an RE2 expression, anchored at both ends (regex); "(.*)"
	// when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Regex *string `json:"regex,omitempty"`
}
