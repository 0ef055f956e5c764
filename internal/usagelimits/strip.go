package usagelimits

import (
	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
)

// StripToTotals reduces a sampled-out profile that keep_stripped_profiles
// keeps to one sample holding the sum of its samples' values, without
// stacks, symbols or sample labels (Pyroscope's ProfileStripper,
// pkg/distributor/sampling/profile_stripper.go at 3fe6a45). Samples that
// normalization would drop (a value count that differs from the sample
// types', a negative value) add nothing. The string table keeps only the
// strings still referenced, in their first-use order.
func StripToTotals(p *profilev1.Profile) {
	var total *profilev1.Sample
	for _, s := range p.Sample {
		if s == nil || len(s.Value) != len(p.SampleType) || negative(s.Value) {
			continue
		}
		if total == nil {
			total = &profilev1.Sample{Value: make([]int64, len(p.SampleType))}
		}
		for i, v := range s.Value {
			total.Value[i] += v
		}
	}
	p.Sample = nil
	if total != nil {
		p.Sample = []*profilev1.Sample{total}
	}
	p.Location, p.Function, p.Mapping = nil, nil, nil

	old := p.StringTable
	strs := []string{""}
	index := map[int64]int64{0: 0}
	keep := func(i int64) int64 {
		if n, ok := index[i]; ok {
			return n
		}
		if i < 0 || i >= int64(len(old)) {
			return 0 // validation would refuse it; nothing to keep
		}
		n := int64(len(strs))
		strs = append(strs, old[i])
		index[i] = n
		return n
	}
	p.DropFrames = keep(p.DropFrames)
	p.KeepFrames = keep(p.KeepFrames)
	p.DefaultSampleType = keep(p.DefaultSampleType)
	for _, vt := range p.SampleType {
		if vt != nil {
			vt.Type, vt.Unit = keep(vt.Type), keep(vt.Unit)
		}
	}
	if p.PeriodType != nil {
		p.PeriodType.Type, p.PeriodType.Unit = keep(p.PeriodType.Type), keep(p.PeriodType.Unit)
	}
	for i, c := range p.Comment {
		p.Comment[i] = keep(c)
	}
	p.StringTable = strs
}

func negative(v []int64) bool {
	for _, x := range v {
		if x < 0 {
			return true
		}
	}
	return false
}
