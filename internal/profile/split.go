package profile

import (
	"slices"
	"strings"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/validation"
)

const (
	labelProfileID = "profile_id" // older clients' name for span_id
	labelSpanID    = "span_id"
	labelTraceID   = "trace_id"
)

// Output is one outgoing profile: one service of one input profile.
type Output struct {
	Service string
	Labels  []*typesv1.LabelPair // sorted series labels
	Profile *profilev1.Profile
}

// Split turns a normalized profile with its sorted series labels into one
// Output per service_name (pkg/model/pprofsplit at 3fe6a45), applying the
// default relabel rules and the label rules to every label set a sample group
// produces:
//   - the sample label profile_id is renamed span_id;
//   - samples are grouped by their labels other than trace_id and span_id;
//   - a group's labels are the series labels plus its sample labels whose
//     names the series does not have (series labels win);
//   - groups are gathered by service_name; the labels all groups of a service
//     share become its series labels, the rest go back into the samples.
//
// It reports whether the samples' labels changed. p is modified in place
// and, for a single service, returned as the Output's profile.
func Split(l *config.Limits, p *profilev1.Profile, series []*typesv1.LabelPair) ([]Output, bool, error) {
	outs, changed, _, err := SplitDropping(l, p, series)
	return outs, changed, err
}

// Dropped is what the ingestion relabel rules discarded of one profile, for
// the discard metrics (visitSampleSeries and VisitSampleSeries in
// pkg/distributor/distributor.go and pkg/model/pprofsplit at 3fe6a45).
type Dropped struct {
	// Profile: nothing of the profile is left.
	Profile bool
	// Bytes is the encoded size of the discarded samples, or of the whole
	// profile when it had no sample labels.
	Bytes int
}

// SplitDropping is Split that also reports what relabel rules dropped: a
// label set that a rule drops takes its samples out of the profile, and
// when none is left there are no Outputs.
func SplitDropping(l *config.Limits, p *profilev1.Profile, series []*typesv1.LabelPair) ([]Output, bool, Dropped, error) {
	var dropped Dropped
	withLabels := false
	for _, s := range p.Sample {
		if len(s.Label) > 0 {
			withLabels = true
			break
		}
	}
	if !withLabels {
		ls, keep, err := finalLabels(l, series)
		if err != nil {
			return nil, false, dropped, err
		}
		if !keep {
			return nil, false, Dropped{Profile: true, Bytes: p.SizeVT()}, nil
		}
		return []Output{{Service: validation.Get(ls, validation.LabelServiceName), Labels: ls, Profile: p}}, false, dropped, nil
	}

	changed := renameLabel(p, labelProfileID, labelSpanID)
	traceKey, spanKey := stringIndex(p, labelTraceID), stringIndex(p, labelSpanID)
	hidden := func(k int64) bool { return k != 0 && (k == traceKey || k == spanKey) }

	// Group samples by their labels other than trace_id/span_id.
	type group struct {
		pairs   []*profilev1.Label // the grouping labels (sorted)
		samples []*profilev1.Sample
		labels  []*typesv1.LabelPair
		out     int // index of its service; -1: dropped by relabel rules
	}
	var groups []*group
	byKey := make(map[string]int, 4)
	var kb []byte
	for _, s := range p.Sample {
		kb = kb[:0]
		for _, lb := range s.Label {
			if !hidden(lb.Key) {
				kb = appendPair(kb, lb.Key, lb.Str)
			}
		}
		gi, ok := byKey[string(kb)]
		if !ok {
			g := &group{}
			for _, lb := range s.Label {
				if !hidden(lb.Key) {
					g.pairs = append(g.pairs, lb)
				}
			}
			gi = len(groups)
			groups = append(groups, g)
			byKey[string(kb)] = gi
		}
		groups[gi].samples = append(groups[gi].samples, s)
	}

	// Label set of each group, validated; gather groups by service.
	var outs []Output
	svcIdx := map[string]int{}
	someDropped := false
	for _, g := range groups {
		ls := make([]*typesv1.LabelPair, len(series), len(series)+len(g.pairs))
		copy(ls, series)
		for _, lb := range g.pairs {
			name, value := p.StringTable[lb.Key], p.StringTable[lb.Str]
			if validation.Get(series, name) != "" {
				continue // series labels win
			}
			// The profile's strings alias the request buffer; labels leave
			// the pipeline, so they get their own copy.
			name, value = strings.Clone(name), strings.Clone(value)
			if i := slices.IndexFunc(ls[len(series):], func(x *typesv1.LabelPair) bool { return x.Name == name }); i >= 0 {
				ls[len(series)+i] = &typesv1.LabelPair{Name: name, Value: value}
				continue
			}
			ls = append(ls, &typesv1.LabelPair{Name: name, Value: value})
		}
		validation.SortLabels(ls)
		ls, keep, err := finalLabels(l, ls)
		if err != nil {
			return nil, false, dropped, err
		}
		if !keep {
			g.out = -1
			someDropped = true
			for _, s := range g.samples {
				dropped.Bytes += s.SizeVT()
			}
			continue
		}
		g.labels = ls
		svc := validation.Get(ls, validation.LabelServiceName)
		oi, ok := svcIdx[svc]
		if !ok {
			oi = len(outs)
			svcIdx[svc] = oi
			outs = append(outs, Output{Service: svc, Labels: ls})
		} else {
			outs[oi].Labels = intersect(outs[oi].Labels, ls)
		}
		g.out = oi
	}

	if len(outs) == 0 {
		if len(groups) == 1 && len(groups[0].pairs) == 0 {
			// Only trace and span ids: Pyroscope takes this profile as one
			// without sample labels and counts its whole size.
			dropped.Bytes = p.SizeVT()
		}
		return nil, false, Dropped{Profile: true, Bytes: dropped.Bytes}, nil
	}

	// Put the labels a group does not share with its service back into its
	// samples, keeping trace_id/span_id.
	strIdx := newStringIndex(p)
	for _, g := range groups {
		if g.out < 0 {
			continue
		}
		rest := subtract(g.labels, outs[g.out].Labels)
		if sameAsPairs(p, rest, g.pairs) {
			continue
		}
		changed = true
		for _, s := range g.samples {
			kept := s.Label[:0]
			for _, lb := range s.Label {
				if hidden(lb.Key) {
					kept = append(kept, lb)
				}
			}
			for _, r := range rest {
				kept = append(kept, &profilev1.Label{Key: strIdx.get(r.Name), Str: strIdx.get(r.Value)})
			}
			s.Label = kept
			sortLabels(s.Label)
		}
	}

	if len(outs) == 1 && !someDropped {
		outs[0].Profile = p
		if changed {
			sc := getScratch()
			mergeDuplicates(p, sc)
			putScratch(sc)
		}
		return outs, changed, dropped, nil
	}
	// Several services, or samples dropped: each service gets a profile
	// with its samples and only the symbols they use.
	perOut := make([][]*profilev1.Sample, len(outs))
	for _, g := range groups {
		if g.out >= 0 {
			perOut[g.out] = append(perOut[g.out], g.samples...)
		}
	}
	for i := range outs {
		outs[i].Profile = subset(p, perOut[i])
	}
	return outs, true, dropped, nil
}

// finalLabels applies the relabel rules and the label rules; keep is false
// when a rule dropped the label set.
func finalLabels(l *config.Limits, ls []*typesv1.LabelPair) (_ []*typesv1.LabelPair, keep bool, _ error) {
	if ls, keep = validation.Relabel(l, ls); !keep {
		return nil, false, nil
	}
	ls, err := validation.ValidateLabels(l, ls)
	return ls, true, err
}

func appendPair(b []byte, k, v int64) []byte {
	for _, x := range [2]uint64{uint64(k), uint64(v)} {
		b = append(b, byte(x), byte(x>>8), byte(x>>16), byte(x>>24), byte(x>>32), byte(x>>40), byte(x>>48), byte(x>>56))
	}
	return b
}

func sortLabels(ls []*profilev1.Label) {
	slices.SortFunc(ls, func(a, b *profilev1.Label) int {
		if a.Key != b.Key {
			return cmpInt(a.Key, b.Key)
		}
		return cmpInt(a.Str, b.Str)
	})
}

// intersect keeps the pairs of a (sorted) that b has with the same value.
func intersect(a, b []*typesv1.LabelPair) []*typesv1.LabelPair {
	out := make([]*typesv1.LabelPair, 0, len(a))
	for _, x := range a {
		for _, y := range b {
			if x.Name == y.Name && x.Value == y.Value {
				out = append(out, x)
				break
			}
		}
	}
	return out
}

// subtract returns the pairs of a that are not in b.
func subtract(a, b []*typesv1.LabelPair) []*typesv1.LabelPair {
	var out []*typesv1.LabelPair
	for _, x := range a {
		found := false
		for _, y := range b {
			if x.Name == y.Name && x.Value == y.Value {
				found = true
				break
			}
		}
		if !found {
			out = append(out, x)
		}
	}
	return out
}

// sameAsPairs reports whether ls holds exactly the name/value pairs of ps.
func sameAsPairs(p *profilev1.Profile, ls []*typesv1.LabelPair, ps []*profilev1.Label) bool {
	if len(ls) != len(ps) {
		return false
	}
	for _, lb := range ps {
		name, value := p.StringTable[lb.Key], p.StringTable[lb.Str]
		found := false
		for _, x := range ls {
			if x.Name == name && x.Value == value {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func stringIndex(p *profilev1.Profile, s string) int64 {
	for i, x := range p.StringTable {
		if i > 0 && x == s {
			return int64(i)
		}
	}
	return 0
}

// renameLabel renames the sample label key old to new.
func renameLabel(p *profilev1.Profile, old, new string) bool {
	oi := stringIndex(p, old)
	if oi == 0 {
		return false
	}
	ni := int64(-1)
	changed := false
	for _, s := range p.Sample {
		for _, lb := range s.Label {
			if lb.Key == oi {
				if ni < 0 {
					if ni = stringIndex(p, new); ni == 0 {
						ni = int64(len(p.StringTable))
						p.StringTable = append(p.StringTable, new)
					}
				}
				lb.Key = ni
				changed = true
			}
		}
		if changed {
			sortLabels(s.Label)
		}
	}
	return changed
}

// lazyStrings finds or appends strings in a profile's string table.
type lazyStrings struct {
	p *profilev1.Profile
	m map[string]int64
}

func newStringIndex(p *profilev1.Profile) *lazyStrings { return &lazyStrings{p: p} }

func (s *lazyStrings) get(v string) int64 {
	if s.m == nil {
		s.m = make(map[string]int64, len(s.p.StringTable))
		for i, x := range s.p.StringTable {
			if _, ok := s.m[x]; !ok {
				s.m[x] = int64(i)
			}
		}
	}
	if i, ok := s.m[v]; ok {
		return i
	}
	i := int64(len(s.p.StringTable))
	s.p.StringTable = append(s.p.StringTable, strings.Clone(v))
	s.m[v] = i
	return i
}

// subset builds a profile holding samples (taken from p) and copies of the
// symbols they use, with dense ids.
func subset(p *profilev1.Profile, samples []*profilev1.Sample) *profilev1.Profile {
	q := &profilev1.Profile{
		SampleType:        p.SampleType,
		Sample:            samples,
		StringTable:       slices.Clone(p.StringTable),
		DropFrames:        p.DropFrames,
		KeepFrames:        p.KeepFrames,
		TimeNanos:         p.TimeNanos,
		DurationNanos:     p.DurationNanos,
		Period:            p.Period,
		Comment:           slices.Clone(p.Comment),
		DefaultSampleType: p.DefaultSampleType,
	}
	q.SampleType = make([]*profilev1.ValueType, len(p.SampleType))
	for i, st := range p.SampleType {
		q.SampleType[i] = st.CloneVT()
	}
	if p.PeriodType != nil {
		q.PeriodType = p.PeriodType.CloneVT()
	}
	q.Mapping = make([]*profilev1.Mapping, len(p.Mapping))
	for i, m := range p.Mapping {
		q.Mapping[i] = m.CloneVT()
	}
	q.Function = make([]*profilev1.Function, len(p.Function))
	for i, f := range p.Function {
		q.Function[i] = f.CloneVT()
	}
	q.Location = make([]*profilev1.Location, len(p.Location))
	for i, l := range p.Location {
		q.Location[i] = l.CloneVT()
	}
	sc := getScratch()
	mergeDuplicates(q, sc)
	sanitize(q, sc)
	putScratch(sc)
	return q
}

// Encode marshals p into *buf (grown as needed) and returns the bytes.
func Encode(p *profilev1.Profile, buf *[]byte) ([]byte, error) {
	n := p.SizeVT()
	b := slices.Grow((*buf)[:0], n)[:n]
	m, err := p.MarshalToSizedBufferVT(b)
	if err != nil {
		return nil, err
	}
	*buf = b
	return b[n-m:], nil
}
