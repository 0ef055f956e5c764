package config

import (
	"flag"
	"time"
)

// Limits are per-tenant limits, with Pyroscope's YAML keys, flags and
// defaults (pkg/validation/limits.go at 3fe6a45). The defaults apply to
// every tenant; overrides.yaml replaces them per tenant. A value of 0
// disables a size or count limit.
type Limits struct {
	IngestionRateMB      float64 `yaml:"ingestion_rate_mb"`
	IngestionBurstSizeMB float64 `yaml:"ingestion_burst_size_mb"`
	IngestionBodyLimitMB float64 `yaml:"ingestion_body_limit_mb"`

	MaxLabelNameLength     int `yaml:"max_label_name_length"`
	MaxLabelValueLength    int `yaml:"max_label_value_length"`
	MaxLabelNamesPerSeries int `yaml:"max_label_names_per_series"`

	MaxProfileSizeBytes              int `yaml:"max_profile_size_bytes"`
	MaxProfileStacktraceSamples      int `yaml:"max_profile_stacktrace_samples"`
	MaxProfileStacktraceSampleLabels int `yaml:"max_profile_stacktrace_sample_labels"`
	MaxProfileStacktraceDepth        int `yaml:"max_profile_stacktrace_depth"`
	MaxProfileSymbolValueLength      int `yaml:"max_profile_symbol_value_length"`
	MaxSessionsPerSeries             int `yaml:"max_sessions_per_series"`

	RejectOlderThan time.Duration `yaml:"reject_older_than"`
	RejectNewerThan time.Duration `yaml:"reject_newer_than"`

	DisableLabelSanitization bool `yaml:"disable_label_sanitization"`
	// EnforceLabelsOrder only matters on Pyroscope's ingester path; kept so
	// Pyroscope overrides files load unchanged.
	EnforceLabelsOrder bool `yaml:"enforce_labels_order"`
	// IngestionRelabelingDefaultRulesPosition is first, last or disabled.
	IngestionRelabelingDefaultRulesPosition string `yaml:"ingestion_relabeling_default_rules_position"`

	PushMaxConcurrency       int `yaml:"push_max_concurrency"`
	IngestionTenantShardSize int `yaml:"ingestion_tenant_shard_size"`

	// Placement is the tenant's shard policy (Pyroscope's adaptive_placement_* keys).
	Placement PlacementLimits `yaml:",inline"`
	Usage     UsageLimits     `yaml:",inline"`
}

func (l *Limits) RegisterFlags(f *flag.FlagSet) {
	f.Float64Var(&l.IngestionRateMB, "distributor.ingestion-rate-limit-mb", 4, "Per-tenant ingestion rate limit in MiB/s of uncompressed profile data, shared by all distributors.")
	f.Float64Var(&l.IngestionBurstSizeMB, "distributor.ingestion-burst-size-mb", 2, "Per-tenant ingestion burst size in MiB; set it at least to the largest expected profile.")
	f.Float64Var(&l.IngestionBodyLimitMB, "distributor.ingestion-body-limit-mb", 256, "Per-tenant limit in MiB on a request body and on the sum of its decompressed profiles. 0 to disable.")

	f.IntVar(&l.MaxLabelNameLength, "validation.max-length-label-name", 1024, "Maximum length accepted for label names.")
	f.IntVar(&l.MaxLabelValueLength, "validation.max-length-label-value", 2048, "Maximum length accepted for label values.")
	f.IntVar(&l.MaxLabelNamesPerSeries, "validation.max-label-names-per-series", 30, "Maximum number of label names per series.")

	f.IntVar(&l.MaxProfileSizeBytes, "validation.max-profile-size-bytes", 4*1024*1024, "Maximum uncompressed size of one profile in bytes; inflating stops there. 0 to disable.")
	f.IntVar(&l.MaxProfileStacktraceSamples, "validation.max-profile-stacktrace-samples", 16000, "Maximum number of samples in a profile. 0 to disable.")
	f.IntVar(&l.MaxProfileStacktraceSampleLabels, "validation.max-profile-stacktrace-sample-labels", 100, "Maximum number of labels of one profile sample. 0 to disable.")
	f.IntVar(&l.MaxProfileStacktraceDepth, "validation.max-profile-stacktrace-depth", 1000, "Maximum stack depth; deeper stacks are truncated, not rejected. 0 to disable.")
	f.IntVar(&l.MaxProfileSymbolValueLength, "validation.max-profile-symbol-value-length", 65535, "Maximum length of a profile string (function names, file names, labels); longer ones keep their last bytes. 0 to disable.")
	f.IntVar(&l.MaxSessionsPerSeries, "validation.max-sessions-per-series", 0, "Maximum number of sessions (__session_id__ values) per series; 0 drops the label.")

	f.DurationVar(&l.RejectOlderThan, "validation.reject-older-than", time.Hour, "Reject profiles whose timestamp is older than this. 0 to disable.")
	f.DurationVar(&l.RejectNewerThan, "validation.reject-newer-than", 10*time.Minute, "Reject profiles whose timestamp is further in the future than this. 0 to disable.")

	f.BoolVar(&l.DisableLabelSanitization, "validation.disable-label-sanitization", true, "Accept any non-empty UTF-8 label name; when false only legacy names are accepted and dots become underscores.")
	f.BoolVar(&l.EnforceLabelsOrder, "validation.enforce-labels-order", false, "Accepted for compatibility with Pyroscope; has no effect on the segment-writer path.")
	f.StringVar(&l.IngestionRelabelingDefaultRulesPosition, "distributor.ingestion-relabeling-default-rules-position", "first", "Where the default ingestion relabeling rules run: 'first', 'last' or 'disabled'.")

	f.IntVar(&l.PushMaxConcurrency, "distributor.push.max-concurrency", 256, "Profiles of one request processed at once; 0 means unbounded, 1 serial.")
	f.IntVar(&l.IngestionTenantShardSize, "distributor.ingestion-tenant-shard-size", 0, "Accepted for compatibility with Pyroscope; the segment-writer path uses the adaptive placement limits.")
	l.Placement.RegisterFlags(f)
	l.Usage.RegisterFlags(f)
}
