// Package validation holds the label rules, the default relabel rules, the
// ingestion window and the error texts and discard reasons that Pyroscope's
// distributor uses (pkg/validation/validate.go and pkg/distributor/distributor.go
// at 3fe6a45), so clients and dashboards see the same.
package validation

import "fmt"

// Reason is the `reason` label of the discard metrics.
type Reason string

const (
	RateLimited            Reason = "rate_limited"
	ProfileSizeLimit       Reason = "profile_size_limit"
	SamplesLimit           Reason = "samples_limit"
	SampleLabelsLimit      Reason = "sample_labels_limit"
	MalformedProfile       Reason = "malformed_profile"
	NotInIngestionWindow   Reason = "not_in_ingestion_window"
	MaxLabelNamesPerSeries Reason = "max_label_names_per_series"
	LabelNameTooLong       Reason = "label_name_too_long"
	LabelValueTooLong      Reason = "label_value_too_long"
	DuplicateLabelNames    Reason = "duplicate_label_names"
	InvalidLabels          Reason = "invalid_labels"
	MissingLabels          Reason = "missing_labels"
	DroppedByRelabelRules  Reason = "dropped_by_relabel_rules"
	BodySizeLimitExceeded  Reason = "body_size_limit_exceeded"
	// InflightLimit is ours: the process-wide in-flight bytes budget (Pyroscope has none).
	InflightLimit Reason = "inflight_bytes_limit"
)

// Message formats, as Pyroscope words them (clients and runbooks match on them).
const (
	MissingLabelsMsg          = "error at least one label pair is required per profile"
	InvalidLabelsMsg          = "invalid labels '%s' with error: %s"
	MaxLabelNamesPerSeriesMsg = "profile series '%s' has %d label names; limit %d"
	LabelNameTooLongMsg       = "profile with labels '%s' has label name too long: '%s'"
	LabelValueTooLongMsg      = "profile with labels '%s' has label value too long: '%s'"
	DuplicateLabelNamesMsg    = "profile with labels '%s' has duplicate label name: '%s'"
	ProfileTooBigMsg          = "the profile with labels '%s' exceeds the size limit (max_profile_size_byte, actual: %d, limit: %d)"
	TooManySamplesMsg         = "the profile with labels '%s' exceeds the samples count limit (max_profile_stacktrace_samples, actual: %d, limit: %d)"
	TooManySampleLabelsMsg    = "the profile with labels '%s' exceeds the sample labels limit (max_profile_stacktrace_sample_labels, actual: %d, limit: %d)"
	NotInIngestionWindowMsg   = "profile with labels '%s' is outside of ingestion window (profile timestamp: %s, %s)"
)

// Error is a validation failure: a client error with a discard reason.
type Error struct {
	Reason Reason
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Errorf builds an Error.
func Errorf(reason Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}
