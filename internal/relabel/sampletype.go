package relabel

import (
	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// SampleTypes applies sample_type_relabeling_rules to a validated profile
// (Relabel in pkg/model/sampletype at 3fe6a45): each sample type is matched
// as the series labels plus __type__ and __unit__ (its type and unit
// strings), and a type the rules drop leaves the profile with its values.
// It reports whether any type was removed; a profile left with no type has
// samples without values, which normalization then removes.
func (rs Rules) SampleTypes(p *profilev1.Profile, series []*typesv1.LabelPair) bool {
	if len(rs) == 0 {
		return false
	}
	keep := make([]bool, len(p.SampleType))
	removed := false
	for i, st := range p.SampleType {
		b := builder{base: series}
		for _, l := range series {
			if l.Value == "" {
				b.del = append(b.del, l.Name)
			}
		}
		b.set("__type__", str(p, st.Type))
		b.set("__unit__", str(p, st.Unit))
		keep[i] = true
		for j := range rs {
			if !rs[j].apply(&b) {
				keep[i], removed = false, true
				break
			}
		}
	}
	if !removed {
		return false
	}
	p.SampleType = filter(p.SampleType, keep)
	for _, s := range p.Sample {
		if len(s.Value) == len(keep) {
			s.Value = filter(s.Value, keep)
		}
	}
	return true
}

func str(p *profilev1.Profile, i int64) string {
	if i < 0 || i >= int64(len(p.StringTable)) {
		return ""
	}
	return p.StringTable[i]
}

// filter keeps the elements of xs whose keep is true, in place.
func filter[T any](xs []T, keep []bool) []T {
	out := xs[:0]
	for i, x := range xs {
		if keep[i] {
			out = append(out, x)
		}
	}
	clear(xs[len(out):])
	return out
}
