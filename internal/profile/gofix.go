package profile

import (
	"regexp"
	"strings"

	"github.com/cespare/xxhash/v2"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// IsGo reports whether a profile comes from Go: by the pyroscope_spy series
// label when present, otherwise by Go's runtime frames in the string table.
func IsGo(p *profilev1.Profile, ls []*typesv1.LabelPair) bool {
	for _, l := range ls {
		if l.Name == "pyroscope_spy" {
			return l.Value == "gospy" || l.Value == "go"
		}
	}
	for _, s := range p.StringTable {
		if s == "runtime.main" || s == "runtime.goexit" || s == "runtime/pprof.profileWriter" {
			return true
		}
	}
	return false
}

// goShape matches Go's type-parameter instantiations in function names
// (https://github.com/golang/go/issues/64528). Greedy, as Pyroscope's rule is.
var goShape = regexp.MustCompile(`\[go\.shape\..*\]`)

// FixGo applies Pyroscope's Go fixes: type parameters in function names become
// "[...]" and the functions and locations that thereby become identical are
// merged (Normalize then sums the samples that became identical). It reports
// whether it changed p. Truncated-stack repair is not done.
func FixGo(p *profilev1.Profile) bool {
	n := 0
	for i, s := range p.StringTable {
		if strings.Contains(s, "[go.shape.") {
			if c := goShape.ReplaceAllString(s, "[...]"); c != s {
				p.StringTable[i] = c
				n++
			}
		}
	}
	if n == 0 {
		return false
	}
	dedupeSymbols(p)
	return true
}

// dedupeSymbols points every reference to a function or location at the
// first one with equal content, so equal stacks get equal location ids.
// Candidates are found by hash and confirmed by comparing content.
func dedupeSymbols(p *profilev1.Profile) {
	str := func(i int64) string {
		if i >= 0 && i < int64(len(p.StringTable)) {
			return p.StringTable[i]
		}
		return ""
	}
	sameFn := func(a, b *profilev1.Function) bool {
		return a.StartLine == b.StartLine && str(a.Name) == str(b.Name) &&
			str(a.SystemName) == str(b.SystemName) && str(a.Filename) == str(b.Filename)
	}
	var kb []byte
	fnCanon := make(map[uint64]uint64, len(p.Function))
	fnFirst := make(map[uint64]int32, len(p.Function))
	fnNext := make([]int32, len(p.Function))
	for fi, f := range p.Function {
		kb = append(kb[:0], str(f.Name)...)
		kb = append(kb, 0xff)
		kb = append(kb, str(f.SystemName)...)
		kb = append(kb, 0xff)
		kb = append(kb, str(f.Filename)...)
		kb = appendUvarint(kb, uint64(f.StartLine))
		h := xxhash.Sum64(kb)
		canon := f.Id
		j, ok := fnFirst[h]
		for ok && j >= 0 {
			if c := p.Function[j]; sameFn(c, f) {
				canon = c.Id
				break
			}
			j = fnNext[j]
		}
		if canon == f.Id {
			fnNext[fi] = -1
			if ok {
				fnNext[fi] = fnFirst[h]
			}
			fnFirst[h] = int32(fi)
		}
		fnCanon[f.Id] = canon
	}
	sameLoc := func(a, b *profilev1.Location) bool {
		if a.MappingId != b.MappingId || a.Address != b.Address || a.IsFolded != b.IsFolded || len(a.Line) != len(b.Line) {
			return false
		}
		for i := range a.Line {
			if a.Line[i].FunctionId != b.Line[i].FunctionId || a.Line[i].Line != b.Line[i].Line {
				return false
			}
		}
		return true
	}
	locCanon := make(map[uint64]uint64, len(p.Location))
	locFirst := make(map[uint64]int32, len(p.Location))
	locNext := make([]int32, len(p.Location))
	for li, l := range p.Location {
		kb = appendUvarint(kb[:0], l.MappingId)
		kb = appendUvarint(kb, l.Address)
		if l.IsFolded {
			kb = append(kb, 1)
		}
		for _, ln := range l.Line {
			if c, ok := fnCanon[ln.FunctionId]; ok {
				ln.FunctionId = c
			}
			kb = appendUvarint(kb, ln.FunctionId)
			kb = appendUvarint(kb, uint64(ln.Line))
		}
		h := xxhash.Sum64(kb)
		canon := l.Id
		j, ok := locFirst[h]
		for ok && j >= 0 {
			if c := p.Location[j]; sameLoc(c, l) {
				canon = c.Id
				break
			}
			j = locNext[j]
		}
		if canon == l.Id {
			locNext[li] = -1
			if ok {
				locNext[li] = locFirst[h]
			}
			locFirst[h] = int32(li)
		}
		locCanon[l.Id] = canon
	}
	for _, s := range p.Sample {
		for i, id := range s.LocationId {
			if c := locCanon[id]; c != 0 {
				s.LocationId[i] = c
			}
		}
	}
}

// appendUvarint appends v as a varint and a 0xff separator (a varint's
// last byte is < 0x80, so keys stay unambiguous).
func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v), 0xff)
}
