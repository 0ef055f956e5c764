package validation

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
)

const (
	LabelName        = "__name__"
	LabelServiceName = "service_name"
	LabelSessionID   = "__session_id__"
	LabelDelta       = "__delta__"
	LabelNameReplace = "__name_replaced__"
	LabelType        = "__type__"
	// DefaultServiceName is what a series without service_name gets.
	DefaultServiceName = "unknown_service"
)

// LabelsString renders labels as Pyroscope does in messages: {a="b", c="d"}.
func LabelsString(ls []*typesv1.LabelPair) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// SortLabels sorts labels by name (stable, so duplicates keep their order).
func SortLabels(ls []*typesv1.LabelPair) {
	slices.SortStableFunc(ls, func(a, b *typesv1.LabelPair) int { return strings.Compare(a.Name, b.Name) })
}

// Get returns the value of the first label called name.
func Get(ls []*typesv1.LabelPair, name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

func has(ls []*typesv1.LabelPair, name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}

// WithServiceName appends service_name=unknown_service when it is missing
// and sorts the labels by name, as pushSeries in pkg/distributor/distributor.go
// at 3fe6a45 does. It may reuse ls.
func WithServiceName(ls []*typesv1.LabelPair) []*typesv1.LabelPair {
	if !has(ls, LabelServiceName) {
		ls = append(ls, &typesv1.LabelPair{Name: LabelServiceName, Value: DefaultServiceName})
	}
	SortLabels(ls)
	return ls
}

// ValidateLabels applies Pyroscope's ValidateLabels (pkg/validation/validate.go
// at 3fe6a45) to a sorted label set. With label sanitization on
// (disable_label_sanitization=false) legacy names are required and dots are
// rewritten to underscores, so the result may differ from ls.
func ValidateLabels(l *config.Limits, ls []*typesv1.LabelPair) ([]*typesv1.LabelPair, error) {
	if len(ls) == 0 {
		return nil, Errorf(MissingLabels, MissingLabelsMsg)
	}
	if l.MaxLabelNamesPerSeries > 0 && len(ls) > l.MaxLabelNamesPerSeries {
		return nil, Errorf(MaxLabelNamesPerSeries, MaxLabelNamesPerSeriesMsg, LabelsString(ls), len(ls), l.MaxLabelNamesPerSeries)
	}
	if name := Get(ls, LabelName); name == "" || !utf8.ValidString(name) {
		return nil, Errorf(InvalidLabels, InvalidLabelsMsg, LabelsString(ls), "invalid metric name")
	}
	if Get(ls, LabelServiceName) == "" {
		return nil, Errorf(MissingLabels, InvalidLabelsMsg, LabelsString(ls), "service name is not provided")
	}
	if !l.DisableLabelSanitization {
		var err error
		if ls, err = sanitizeNames(ls); err != nil {
			return nil, err
		}
	}
	last := ""
	for i, p := range ls {
		switch {
		case l.MaxLabelNameLength > 0 && len(p.Name) > l.MaxLabelNameLength:
			return nil, Errorf(LabelNameTooLong, LabelNameTooLongMsg, LabelsString(ls), p.Name)
		case l.MaxLabelValueLength > 0 && len(p.Value) > l.MaxLabelValueLength:
			return nil, Errorf(LabelValueTooLong, LabelValueTooLongMsg, LabelsString(ls), p.Value)
		case p.Name == "" || !utf8.ValidString(p.Name):
			return nil, Errorf(InvalidLabels, InvalidLabelsMsg, LabelsString(ls), "invalid label name '"+p.Name+"'")
		case !utf8.ValidString(p.Value):
			return nil, Errorf(InvalidLabels, InvalidLabelsMsg, LabelsString(ls), "invalid label value '"+p.Value+"'")
		case i > 0 && p.Name == last:
			return nil, Errorf(DuplicateLabelNames, DuplicateLabelNamesMsg, LabelsString(ls), p.Name)
		}
		last = p.Name
	}
	return ls, nil
}

// sanitizeNames enforces legacy label names ([A-Za-z_.][A-Za-z0-9_.]*) and
// rewrites dots to underscores. A rewritten name that collides with an
// existing one of a different value is an error; with the same value the
// duplicate is dropped.
func sanitizeNames(ls []*typesv1.LabelPair) ([]*typesv1.LabelPair, error) {
	changed := false
	for _, p := range ls {
		if !legacyName(p.Name) {
			return nil, Errorf(InvalidLabels, InvalidLabelsMsg, LabelsString(ls), "invalid label name '"+p.Name+"'")
		}
		if strings.IndexByte(p.Name, '.') >= 0 {
			changed = true
		}
	}
	if !changed {
		return ls, nil
	}
	out := make([]*typesv1.LabelPair, 0, len(ls))
	for _, p := range ls {
		out = append(out, &typesv1.LabelPair{Name: strings.ReplaceAll(p.Name, ".", "_"), Value: p.Value})
	}
	SortLabels(out)
	dedup := out[:0]
	for i, p := range out {
		if i > 0 && p.Name == out[i-1].Name {
			if p.Value != out[i-1].Value {
				return nil, Errorf(DuplicateLabelNames, DuplicateLabelNamesMsg, LabelsString(out), p.Name)
			}
			continue
		}
		dedup = append(dedup, p)
	}
	return dedup, nil
}

func legacyName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c == '_' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}
