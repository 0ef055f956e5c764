package profile

import (
	"regexp"
	"strings"

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

type fnKey struct {
	name, system, file string
	start              int64
}

// dedupeSymbols points every reference to a function or location at the
// first one with equal content, so equal stacks get equal location ids.
func dedupeSymbols(p *profilev1.Profile) {
	str := func(i int64) string {
		if i >= 0 && i < int64(len(p.StringTable)) {
			return p.StringTable[i]
		}
		return ""
	}
	fnCanon := make(map[uint64]uint64, len(p.Function))
	seenFn := make(map[fnKey]uint64, len(p.Function))
	for _, f := range p.Function {
		k := fnKey{str(f.Name), str(f.SystemName), str(f.Filename), f.StartLine}
		if first, ok := seenFn[k]; ok {
			fnCanon[f.Id] = first
		} else {
			seenFn[k] = f.Id
			fnCanon[f.Id] = f.Id
		}
	}
	var b strings.Builder
	locCanon := make(map[uint64]uint64, len(p.Location))
	seenLoc := make(map[string]uint64, len(p.Location))
	for _, l := range p.Location {
		b.Reset()
		writeU(&b, l.MappingId)
		writeU(&b, l.Address)
		if l.IsFolded {
			b.WriteByte(1)
		}
		for _, ln := range l.Line {
			if c, ok := fnCanon[ln.FunctionId]; ok {
				ln.FunctionId = c
			}
			writeU(&b, ln.FunctionId)
			writeU(&b, uint64(ln.Line))
		}
		k := b.String()
		if first, ok := seenLoc[k]; ok {
			locCanon[l.Id] = first
		} else {
			seenLoc[k] = l.Id
			locCanon[l.Id] = l.Id
		}
	}
	for _, s := range p.Sample {
		for i, id := range s.LocationId {
			if c, ok := locCanon[id]; ok {
				s.LocationId[i] = c
			}
		}
	}
}

func writeU(b *strings.Builder, v uint64) {
	for v >= 0x80 {
		b.WriteByte(byte(v) | 0x80)
		v >>= 7
	}
	b.WriteByte(byte(v))
	b.WriteByte(0xff)
}
