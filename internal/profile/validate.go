package profile

import (
	"encoding/hex"
	"strings"
	"time"
	"unicode/utf8"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/validation"
)

func malformed(format string, args ...any) error {
	return validation.Errorf(validation.MalformedProfile, format, args...)
}

// Validate applies Pyroscope's ValidateProfile rules (pkg/validation/validate.go
// at 3fe6a45) to a decoded profile of size bytes, for series labels ls (used
// in messages).
// It also applies the non-rejecting rules in place (timestamp <= 0 set to
// now, stack depth and symbol length truncation) and reports whether it
// changed p.
func Validate(l *config.Limits, p *profilev1.Profile, size int, ls []*typesv1.LabelPair, now time.Time) (changed bool, err error) {
	setTime, err := checkHead(l, len(p.SampleType), p.TimeNanos, size, len(p.Sample), ls, now)
	if err != nil {
		return false, err
	}
	if setTime {
		p.TimeNanos = now.UnixNano()
		changed = true
	}
	nTypes := len(p.SampleType)
	for i, s := range p.Sample {
		if s == nil {
			return false, malformed("sample %d is nil", i)
		}
		if d := l.MaxProfileStacktraceDepth; d > 0 && len(s.LocationId) > d {
			// LocationId[0] is the leaf: keep the root side.
			s.LocationId = s.LocationId[len(s.LocationId)-d:]
			changed = true
		}
		if m := l.MaxProfileStacktraceSampleLabels; m > 0 && len(s.Label) > m {
			return false, tooManyLabels(l, len(s.Label), ls)
		}
		if len(s.Value) != nTypes {
			return false, valueCount(i, len(s.Value), nTypes)
		}
	}
	if m := l.MaxProfileSymbolValueLength; m > 0 {
		for i, str := range p.StringTable {
			if len(str) > m {
				p.StringTable[i] = str[len(str)-m:]
				changed = true
			}
		}
	}
	for _, loc := range p.Location {
		if loc == nil || loc.Id == 0 {
			return false, malformed("location id is 0")
		}
	}
	for _, fn := range p.Function {
		if fn == nil || fn.Id == 0 {
			return false, malformed("function id is 0")
		}
	}
	if err := checkStrings(p); err != nil {
		return false, err
	}
	for _, vt := range p.SampleType {
		if strings.Contains(p.StringTable[vt.Type], "-") {
			return false, malformed("sample type contains -")
		}
	}
	for _, s := range p.StringTable {
		if !utf8.ValidString(s) {
			return false, malformed("invalid utf8 string hex: %s", hex.EncodeToString([]byte(s)))
		}
	}
	return changed, nil
}

// checkHead applies Validate's checks of the profile as a whole, in its
// order, to its number of sample types and samples and its time; setTime
// says the time must be set to now. The decoder uses it too, to refuse a
// profile whose samples it has not all decoded with the same error.
func checkHead(l *config.Limits, sampleTypes int, timeNanos int64, size, samples int, ls []*typesv1.LabelPair, now time.Time) (setTime bool, err error) {
	if sampleTypes == 0 {
		return false, malformed("empty profile")
	}
	if timeNanos > 0 {
		if err := validation.CheckIngestionWindow(l, timeNanos, now, ls); err != nil {
			return false, err
		}
	} else {
		setTime = true
	}
	if l.MaxProfileSizeBytes > 0 && size > l.MaxProfileSizeBytes {
		return false, validation.Errorf(validation.ProfileSizeLimit, validation.ProfileTooBigMsg, validation.LabelsString(ls), size, l.MaxProfileSizeBytes)
	}
	if l.MaxProfileStacktraceSamples > 0 && samples > l.MaxProfileStacktraceSamples {
		return false, tooManySamples(l, samples, ls)
	}
	return setTime, nil
}

func tooManySamples(l *config.Limits, n int, ls []*typesv1.LabelPair) error {
	return validation.Errorf(validation.SamplesLimit, validation.TooManySamplesMsg, validation.LabelsString(ls), n, l.MaxProfileStacktraceSamples)
}

func tooManyLabels(l *config.Limits, n int, ls []*typesv1.LabelPair) error {
	return validation.Errorf(validation.SampleLabelsLimit, validation.TooManySampleLabelsMsg, validation.LabelsString(ls), n, l.MaxProfileStacktraceSampleLabels)
}

func valueCount(i, n, nTypes int) error {
	return malformed("sample %d has %d values, the profile has %d sample types", i, n, nTypes)
}

// checkStrings verifies string_table[0] == "" and that every string index
// the pipeline reads is in range.
func checkStrings(p *profilev1.Profile) error {
	n := int64(len(p.StringTable))
	if n == 0 || p.StringTable[0] != "" {
		return malformed("string table must start with an empty string")
	}
	bad := func(what string, i int64) error {
		return malformed("%s refers to string %d; the string table has %d entries", what, i, n)
	}
	in := func(i int64) bool { return i >= 0 && i < n }
	// pair checks a sample type or label: that it is there and that its
	// two string indexes are in range.
	pair := func(missing bool, name, what string, i int64, what2 string, i2 int64) error {
		switch {
		case missing:
			return malformed("%s is nil", name)
		case !in(i):
			return bad(what, i)
		case !in(i2):
			return bad(what2, i2)
		}
		return nil
	}
	for _, vt := range p.SampleType {
		if err := pair(vt == nil, "sample type", "sample type", vt.GetType(), "sample type unit", vt.GetUnit()); err != nil {
			return err
		}
	}
	for _, s := range p.Sample {
		for _, lb := range s.Label {
			if err := pair(lb == nil, "sample label", "sample label key", lb.GetKey(), "sample label value", lb.GetStr()); err != nil {
				return err
			}
		}
	}
	for _, fn := range p.Function {
		if !in(fn.Name) || !in(fn.SystemName) || !in(fn.Filename) {
			return malformed("function %d refers to a string out of range; the string table has %d entries", fn.Id, n)
		}
	}
	for _, m := range p.Mapping {
		if m == nil {
			return malformed("mapping is nil")
		}
		if !in(m.Filename) || !in(m.BuildId) {
			return malformed("mapping %d refers to a string out of range; the string table has %d entries", m.Id, n)
		}
	}
	return nil
}

// DecodeError wraps a protobuf decode failure (reason malformed_profile).
func DecodeError(err error) error {
	return validation.Errorf(validation.MalformedProfile, "%s", err.Error())
}
