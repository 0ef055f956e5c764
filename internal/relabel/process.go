package relabel

import (
	"crypto/md5"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// Process applies rules in order to a label set and reports whether it is
// kept; a drop stops at once. The result is sorted by name; ls is not
// modified, and when no rule changed anything the result is ls itself.
//
// It follows Pyroscope's engine (relabelBuilder in pkg/model/relabel at
// 3fe6a45) over its labels builder (LabelsBuilder in pkg/model/labels.go):
// a label with an empty value counts as absent and is removed from the
// result, setting a label to "" deletes it, and setting a name replaces
// every label of that name.
func (rs Rules) Process(ls []*typesv1.LabelPair) ([]*typesv1.LabelPair, bool) {
	b := builder{base: ls}
	for _, l := range ls {
		if l.Value == "" {
			b.del = append(b.del, l.Name)
		}
	}
	for i := range rs {
		if !rs[i].apply(&b) {
			return nil, false
		}
	}
	return b.labels(), true
}

// Matches reports whether rules keep ls; it is Process without the result,
// for rules that only keep or drop.
func (rs Rules) Matches(ls []*typesv1.LabelPair) bool {
	_, keep := rs.Process(ls)
	return keep
}

func (r *Rule) apply(b *builder) bool {
	var va [16]string
	values := va[:0]
	for _, n := range r.SourceLabels {
		values = append(values, b.get(n))
	}
	val := strings.Join(values, r.Separator)
	re := r.Regex
	if re.Regexp == nil {
		re = defaultRegex
	}
	switch r.Action {
	case Drop:
		return !re.MatchString(val)
	case Keep:
		return re.MatchString(val)
	case DropEqual:
		return b.get(r.TargetLabel) != val
	case KeepEqual:
		return b.get(r.TargetLabel) == val
	case Replace:
		idx := re.FindStringSubmatchIndex(val)
		if idx == nil {
			break // no match, no change
		}
		target := string(re.ExpandString(nil, r.TargetLabel, val, idx))
		if !validName(target) {
			break
		}
		b.set(target, string(re.ExpandString(nil, r.Replacement, val, idx)))
	case Lowercase:
		b.set(r.TargetLabel, strings.ToLower(val))
	case Uppercase:
		b.set(r.TargetLabel, strings.ToUpper(val))
	case HashMod:
		// The last 8 bytes of the MD5, as Prometheus has always taken them.
		sum := md5.Sum([]byte(val))
		b.set(r.TargetLabel, strconv.FormatUint(binary.BigEndian.Uint64(sum[8:])%r.Modulus, 10))
	case LabelMap:
		b.each(func(l *typesv1.LabelPair) {
			if re.MatchString(l.Name) {
				b.set(re.ReplaceAllString(l.Name, r.Replacement), l.Value)
			}
		})
	case LabelDrop:
		b.each(func(l *typesv1.LabelPair) {
			if re.MatchString(l.Name) {
				b.remove(l.Name)
			}
		})
	case LabelKeep:
		b.each(func(l *typesv1.LabelPair) {
			if !re.MatchString(l.Name) {
				b.remove(l.Name)
			}
		})
	}
	return true
}

// builder is a label set under edit: the input, the names deleted and the
// pairs set since.
type builder struct {
	base []*typesv1.LabelPair
	del  []string
	add  []*typesv1.LabelPair
}

func (b *builder) get(name string) string {
	for _, a := range b.add {
		if a.Name == name {
			return a.Value
		}
	}
	if slices.Contains(b.del, name) {
		return ""
	}
	for _, l := range b.base {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

func (b *builder) set(name, value string) {
	if value == "" {
		b.remove(name)
		return
	}
	for i, a := range b.add {
		if a.Name == name {
			b.add[i] = &typesv1.LabelPair{Name: name, Value: value}
			return
		}
	}
	b.add = append(b.add, &typesv1.LabelPair{Name: name, Value: value})
}

func (b *builder) remove(name string) {
	b.add = slices.DeleteFunc(b.add, func(a *typesv1.LabelPair) bool { return a.Name == name })
	b.del = append(b.del, name)
}

// each calls f on every label of the current set, as it was when each
// started (f may edit the builder).
func (b *builder) each(f func(*typesv1.LabelPair)) {
	add, del := slices.Clone(b.add), slices.Clone(b.del)
	for _, l := range b.base {
		if !slices.Contains(del, l.Name) && !hasName(add, l.Name) {
			f(l)
		}
	}
	for _, a := range add {
		f(a)
	}
}

func (b *builder) labels() []*typesv1.LabelPair {
	if len(b.del) == 0 && len(b.add) == 0 {
		return b.base
	}
	out := make([]*typesv1.LabelPair, 0, len(b.base)+len(b.add))
	for _, l := range b.base {
		if !slices.Contains(b.del, l.Name) && !hasName(b.add, l.Name) {
			out = append(out, l)
		}
	}
	out = append(out, b.add...)
	slices.SortStableFunc(out, func(x, y *typesv1.LabelPair) int { return strings.Compare(x.Name, y.Name) })
	return out
}

func hasName(ls []*typesv1.LabelPair, name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}
