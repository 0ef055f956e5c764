package config

import (
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/pyrodist/pyrodist/internal/relabel"
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

	RejectOlderThan Duration `yaml:"reject_older_than"`
	RejectNewerThan Duration `yaml:"reject_newer_than"`

	DisableLabelSanitization bool `yaml:"disable_label_sanitization"`
	// IngestionRelabelingRules run on every label set a profile's samples
	// give, before or after Pyroscope's default rules as
	// IngestionRelabelingDefaultRulesPosition (first, last or disabled) says;
	// a drop discards that part of the profile.
	IngestionRelabelingRules                relabel.Rules `yaml:"ingestion_relabeling_rules"`
	IngestionRelabelingDefaultRulesPosition string        `yaml:"ingestion_relabeling_default_rules_position"`
	// SampleTypeRelabelingRules keep or drop each sample type of a profile,
	// matched on __type__ and __unit__ with the series labels.
	SampleTypeRelabelingRules relabel.Rules `yaml:"sample_type_relabeling_rules"`

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

	l.RejectOlderThan, l.RejectNewerThan = Duration(time.Hour), Duration(10*time.Minute)
	f.Var(&l.RejectOlderThan, "validation.reject-older-than", "Reject profiles whose timestamp is older than this (e.g. 1h, 1d). 0 to disable.")
	f.Var(&l.RejectNewerThan, "validation.reject-newer-than", "Reject profiles whose timestamp is further in the future than this (e.g. 10m). 0 to disable.")

	f.BoolVar(&l.DisableLabelSanitization, "validation.disable-label-sanitization", true, "Accept any non-empty UTF-8 label name; when false only legacy names are accepted and dots become underscores.")
	f.StringVar(&l.IngestionRelabelingDefaultRulesPosition, "distributor.ingestion-relabeling-default-rules-position", "first", "Where the default ingestion relabeling rules run: 'first', 'last' or 'disabled'.")
	f.Var(&rulesFlag{rules: &l.IngestionRelabelingRules}, "distributor.ingestion-relabeling-rules", "Ingestion relabel rules (a YAML or JSON list of Prometheus relabel_config), applied in order to every label set of a profile.")
	f.Var(&rulesFlag{rules: &l.SampleTypeRelabelingRules, filter: true}, "distributor.sample-type-relabeling-rules", "Sample type relabel rules (a YAML or JSON list; only drop and keep), matched on __type__, __unit__ and the series labels.")

	f.IntVar(&l.PushMaxConcurrency, "distributor.push.max-concurrency", 256, "Profiles of one request processed at once; 0 means unbounded, 1 serial.")
	f.IntVar(&l.IngestionTenantShardSize, "distributor.ingestion-tenant-shard-size", 0, "Shards a tenant's data may spread over, for datasets without a placement rule, when larger than -adaptive-placement.tenant-shards (Pyroscope's shuffle-sharding size, applied to shards as its distributor does). 0 disables it.")
	l.Placement.RegisterFlags(f)
	l.Usage.RegisterFlags(f)
}

// Validate reports limits the pipeline cannot apply: an unknown position of
// the default relabel rules, or a relabel rule Prometheus would refuse
// (Limits.Validate and the rule types' Set in pkg/validation at 3fe6a45).
func (l *Limits) Validate() error {
	switch l.IngestionRelabelingDefaultRulesPosition {
	case "", "first", "last", "disabled":
	default:
		return fmt.Errorf("invalid ingestion_relabeling_default_rules_position: %s", l.IngestionRelabelingDefaultRulesPosition)
	}
	if err := l.IngestionRelabelingRules.Validate(); err != nil {
		return fmt.Errorf("ingestion_relabeling_rules: %w", err)
	}
	if err := l.SampleTypeRelabelingRules.ValidateFilter(); err != nil {
		return fmt.Errorf("sample_type_relabeling_rules: %w", err)
	}
	return nil
}

// rulesFlag is a list of relabel rules given as one YAML (or JSON) flag value.
type rulesFlag struct {
	rules  *relabel.Rules
	filter bool
}

func (f *rulesFlag) String() string {
	if f.rules == nil || len(*f.rules) == 0 {
		return "[]"
	}
	var v any
	if b, err := yaml.Marshal(*f.rules); err == nil && yaml.Unmarshal(b, &v) == nil {
		if j, err := json.Marshal(v); err == nil {
			return string(j)
		}
	}
	return "[...]"
}

func (f *rulesFlag) Set(s string) error {
	var rs relabel.Rules
	if err := yaml.Unmarshal([]byte(s), &rs); err != nil {
		return err
	}
	validate := rs.Validate
	if f.filter {
		validate = rs.ValidateFilter
	}
	if err := validate(); err != nil {
		return err
	}
	*f.rules = rs
	return nil
}

// Duration is a limit's duration as Pyroscope writes it (model.Duration of
// prometheus/common, which Limits uses at 3fe6a45): "1d", "2w", "1h30m" and
// a bare "0" are valid; Go's own form ("1.5h", "1h0m0s") is accepted too.
// It renders in Pyroscope's form, so a rendered file loads in Pyroscope.
type Duration time.Duration

func (d Duration) String() string { return model.Duration(d).String() }

func (d *Duration) Set(s string) error {
	if v, err := model.ParseDuration(s); err == nil {
		*d = Duration(v)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration: %q", s)
	}
	*d = Duration(v)
	return nil
}

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	if err := d.Set(s); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
