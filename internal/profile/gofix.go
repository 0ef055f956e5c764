package profile

import (
	"regexp"
	"strings"
	"unsafe"

	"github.com/cespare/xxhash/v2"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// spyLanguages maps pyroscope_spy values to languages, as Pyroscope does.
var spyLanguages = map[string]string{
	"dotnetspy": "dotnet", "gospy": "go", "phpspy": "php", "pyspy": "python", "rbspy": "ruby",
	"nodespy": "nodejs", "javaspy": "java", "grafana-agent.java": "java", "pyroscope-rs": "rust",
}

// languageHints are Pyroscope's string-table heuristics: the first string
// that starts or ends with one of these decides the language.
var languageHints = []struct{ lang, pattern string }{
	{"go", ".go"}, {"go", "/usr/local/go/"},
	{"java", "java/"}, {"java", "sun/"},
	{"ruby", ".rb"}, {"ruby", "gems/"},
	{"nodejs", "./node_modules/"}, {"nodejs", ".js"},
	{"dotnet", "System."}, {"dotnet", "Microsoft."},
	{"python", ".py"},
	{"rust", "main.rs"}, {"rust", "core.rs"},
}

// IsGo reports whether a profile comes from Go: by the pyroscope_spy series
// label when it names a known profiler, otherwise by the first string of the
// string table that looks like a source file or package of some language.
func IsGo(p *profilev1.Profile, ls []*typesv1.LabelPair) bool {
	for _, l := range ls {
		if l.Name == "pyroscope_spy" {
			if lang, ok := spyLanguages[l.Value]; ok {
				return lang == "go"
			}
			break
		}
	}
	for _, s := range p.StringTable {
		for _, h := range languageHints {
			if strings.HasPrefix(s, h.pattern) || strings.HasSuffix(s, h.pattern) {
				return h.lang == "go"
			}
		}
	}
	return false
}

// goShape matches Go's type-parameter instantiations in function names: since
// Go 1.21 a name may carry the go.shape type arguments of any instantiation,
// whatever the call site, so one function shows up under several names.
// Greedy, unlike Pyroscope's rule at 3fe6a45
// (docs/compatibility.md#not-yet-reproduced).
var goShape = regexp.MustCompile(`\[go\.shape\..*\]`)

// FixGo applies Pyroscope's Go fixes: type parameters in function names become
// "[...]" and the functions and locations that thereby become identical are
// merged (Normalize then sums the samples that became identical). It reports
// whether it changed p. Then stacks cut by Go's depth limit are repaired
// from their neighbours (see repairTruncatedGo).
func FixGo(p *profilev1.Profile) bool {
	var renamed map[int64]bool
	for i, s := range p.StringTable {
		if strings.Contains(s, "[go.shape.") {
			if c := goShape.ReplaceAllString(s, "[...]"); c != s {
				p.StringTable[i] = c
				if renamed == nil {
					renamed = make(map[int64]bool)
				}
				renamed[int64(i)] = true
			}
		}
	}
	changed := false
	if renamed != nil {
		dedupeSymbols(p, renamed)
		changed = true
	}
	if mayBeTruncatedGo(p) {
		before := stackLen(p)
		repairTruncatedGo(p)
		changed = changed || stackLen(p) != before
	}
	return changed
}

func stackLen(p *profilev1.Profile) int {
	n := 0
	for _, s := range p.Sample {
		n += len(s.LocationId)
	}
	return n
}

// dedupeSymbols points references to functions whose strings were renamed,
// and to the locations using them, at the first one with equal content, so
// equal stacks get equal location ids. Only those can have become equal.
// Candidates are found by hash and confirmed by comparing content.
func dedupeSymbols(p *profilev1.Profile, renamed map[int64]bool) {
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
	touched := map[uint64]bool{}   // ids of functions with a renamed string
	fnCanon := map[uint64]uint64{} // duplicate function id -> first id
	var fns contentIndex
	for fi, f := range p.Function {
		if !renamed[f.Name] && !renamed[f.SystemName] && !renamed[f.Filename] {
			continue
		}
		touched[f.Id] = true
		kb = append(kb[:0], str(f.Name)...)
		kb = append(kb, 0xff)
		kb = append(kb, str(f.SystemName)...)
		kb = append(kb, 0xff)
		kb = append(kb, str(f.Filename)...)
		kb = appendUvarint(kb, uint64(f.StartLine))
		if j, dup := fns.findOrAdd(xxhash.Sum64(kb), fi, func(j int) bool { return sameFn(p.Function[j], f) }); dup {
			fnCanon[f.Id] = p.Function[j].Id
		}
	}
	if len(fnCanon) == 0 {
		return // renamed, but no two functions became equal
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
	locCanon := map[uint64]uint64{}
	var locs contentIndex
	for li, l := range p.Location {
		uses := false
		for _, ln := range l.Line {
			if touched[ln.FunctionId] {
				uses = true
				if c, ok := fnCanon[ln.FunctionId]; ok {
					ln.FunctionId = c
				}
			}
		}
		if !uses {
			continue
		}
		kb = appendUvarint(kb[:0], l.MappingId)
		kb = appendUvarint(kb, l.Address)
		if l.IsFolded {
			kb = append(kb, 1)
		}
		for _, ln := range l.Line {
			kb = appendUvarint(kb, ln.FunctionId)
			kb = appendUvarint(kb, uint64(ln.Line))
		}
		if j, dup := locs.findOrAdd(xxhash.Sum64(kb), li, func(j int) bool { return sameLoc(p.Location[j], l) }); dup {
			locCanon[l.Id] = p.Location[j].Id
		}
	}
	if len(locCanon) == 0 {
		return
	}
	for _, s := range p.Sample {
		for i, id := range s.LocationId {
			if c, ok := locCanon[id]; ok {
				s.LocationId[i] = c
			}
		}
	}
}

// contentIndex finds table entries with equal content: candidates by
// content hash, chained on collision, confirmed by the caller's comparison.
type contentIndex struct {
	first map[uint64]int // content hash -> index of the latest entry with it
	next  map[int]int    // index -> previous entry with the same hash
}

// findOrAdd returns the index of an entry already added that equal(j)
// confirms, or adds i under hash h and returns false.
func (x *contentIndex) findOrAdd(h uint64, i int, equal func(j int) bool) (int, bool) {
	if x.first == nil {
		x.first, x.next = map[uint64]int{}, map[int]int{}
	}
	head, ok := x.first[h]
	for j, more := head, ok; more; j, more = x.next[j] {
		if equal(j) {
			return j, true
		}
	}
	if ok {
		x.next[i] = head
	}
	x.first[h] = i
	return 0, false
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

func unsafeBytes(ids []uint64) []byte {
	if len(ids) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&ids[0])), len(ids)*8)
}
