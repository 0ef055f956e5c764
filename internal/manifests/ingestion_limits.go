package manifests

import (
	"fmt"
	"math"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/relabel"
)

// applyIngestion maps the spec's IngestionLimits onto the distributor's
// limits, refusing what the distributor would refuse on reload (a regex
// that does not compile, a rule Prometheus rejects), which the API server
// cannot check.
func applyIngestion(l *config.Limits, t v1.IngestionLimits, field string) error {
	if t.IngestionBodyLimit != nil {
		if t.IngestionBodyLimit.Sign() < 0 {
			return fmt.Errorf("%s.ingestionBodyLimit must not be negative, got %s", field, t.IngestionBodyLimit.String())
		}
		l.IngestionBodyLimitMB = t.IngestionBodyLimit.AsApproximateFloat64() / mib
	}
	if t.DisableLabelSanitization != nil {
		l.DisableLabelSanitization = *t.DisableLabelSanitization
	}
	for _, d := range []struct {
		name string
		in   *metav1.Duration
		out  *config.Duration
	}{
		{"rejectOlderThan", t.RejectOlderThan, &l.RejectOlderThan},
		{"rejectNewerThan", t.RejectNewerThan, &l.RejectNewerThan},
	} {
		if d.in == nil {
			continue
		}
		if d.in.Duration < 0 {
			return fmt.Errorf("%s.%s must not be negative, got %s", field, d.name, d.in.Duration)
		}
		*d.out = config.Duration(d.in.Duration)
	}
	if t.MaxProfileSize != nil {
		if t.MaxProfileSize.Sign() < 0 {
			return fmt.Errorf("%s.maxProfileSize must not be negative, got %s", field, t.MaxProfileSize.String())
		}
		n, ok := t.MaxProfileSize.AsInt64()
		if !ok || n > math.MaxInt32 {
			return fmt.Errorf("%s.maxProfileSize must be a whole number of bytes below 2Gi, got %s", field, t.MaxProfileSize.String())
		}
		l.MaxProfileSizeBytes = int(n)
	}
	for _, c := range []struct {
		in  *int32
		out *int
	}{
		{t.MaxLabelNameLength, &l.MaxLabelNameLength},
		{t.MaxLabelValueLength, &l.MaxLabelValueLength},
		{t.MaxLabelNamesPerSeries, &l.MaxLabelNamesPerSeries},
		{t.MaxProfileStacktraceSamples, &l.MaxProfileStacktraceSamples},
		{t.MaxProfileStacktraceSampleLabels, &l.MaxProfileStacktraceSampleLabels},
		{t.MaxProfileStacktraceDepth, &l.MaxProfileStacktraceDepth},
		{t.MaxProfileSymbolValueLength, &l.MaxProfileSymbolValueLength},
		{t.MaxSessionsPerSeries, &l.MaxSessionsPerSeries},
		{t.PushMaxConcurrency, &l.PushMaxConcurrency},
		{t.IngestionTenantShardSize, &l.IngestionTenantShardSize},
	} {
		if c.in != nil {
			*c.out = int(*c.in)
		}
	}
	if t.IngestionRelabelingDefaultRulesPosition != "" {
		l.IngestionRelabelingDefaultRulesPosition = t.IngestionRelabelingDefaultRulesPosition
	}
	if t.IngestionRelabelingRules != nil {
		rules, err := relabelRules(t.IngestionRelabelingRules, field+".ingestionRelabelingRules")
		if err != nil {
			return err
		}
		l.IngestionRelabelingRules = rules
	}
	if t.SampleTypeRelabelingRules != nil {
		rules := make([]v1.RelabelRule, len(t.SampleTypeRelabelingRules))
		for i, r := range t.SampleTypeRelabelingRules {
			rules[i] = v1.RelabelRule{Action: r.Action, SourceLabels: r.SourceLabels, Separator: r.Separator, Regex: r.Regex}
		}
		st, err := relabelRules(rules, field+".sampleTypeRelabelingRules")
		if err != nil {
			return err
		}
		l.SampleTypeRelabelingRules = st
	}
	if err := l.Validate(); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

// relabelRules turns the spec's rules into the distributor's, with
// Prometheus' defaults for the fields left unset.
func relabelRules(in []v1.RelabelRule, field string) (relabel.Rules, error) {
	out := make(relabel.Rules, len(in))
	for i, r := range in {
		rule := relabel.NewRule()
		if r.Action != "" {
			rule.Action = relabel.Action(r.Action)
		}
		rule.SourceLabels = r.SourceLabels
		if r.Separator != nil {
			rule.Separator = *r.Separator
		}
		if r.Regex != nil {
			re, err := relabel.NewRegexp(*r.Regex)
			if err != nil {
				return nil, fmt.Errorf("%s[%d].regex: %w", field, i, err)
			}
			rule.Regex = re
		}
		if r.Modulus != nil {
			rule.Modulus = uint64(*r.Modulus)
		}
		if r.TargetLabel != nil {
			rule.TargetLabel = *r.TargetLabel
		}
		if r.Replacement != nil {
			rule.Replacement = *r.Replacement
		}
		if err := rule.Validate(); err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", field, i, err)
		}
		out[i] = rule
	}
	return out, nil
}
