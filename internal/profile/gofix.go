package profile

import (
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

// goShapePrefix opens a type-parameter section in a Go function name: since
// Go 1.21 a name may carry the go.shape type arguments of any instantiation,
// whatever the call site, so one function shows up under several names.
const goShapePrefix = "[go.shape."

// DropGoTypeParameters removes every type-parameter section from a function
// name, as dropGoTypeParameters in pkg/pprof/fix_go_profile.go at 3fe6a45
// does: a section starts at "[go.shape." and ends at the bracket that
// balances it, nested brackets included ("pkg.(*T[go.shape.struct { F
// []uint8 }]).M" becomes "pkg.(*T).M"). Brackets without the prefix stay.
//
// When a section never closes, Pyroscope appends the remainder starting
// where its scan resumed (the end of the previous section, or the start of
// the name) after having already written the text before the section, so
// that text appears twice: "a[go.shape.int" becomes "aa[go.shape.int". We
// reproduce it, since the result is what reaches the writers.
func DropGoTypeParameters(s string) string {
	if !strings.Contains(s, goShapePrefix) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	resume := 0 // where the text after the last closed section begins
	for resume < len(s) {
		k := strings.Index(s[resume:], goShapePrefix)
		if k < 0 {
			b.WriteString(s[resume:])
			break
		}
		open := resume + k
		b.WriteString(s[resume:open])
		end := matchingBracket(s, open)
		if end < 0 {
			b.WriteString(s[resume:]) // Pyroscope's quirk, see above
			break
		}
		resume = end + 1
	}
	return b.String()
}

// matchingBracket returns the index of the "]" balancing the "[" at open,
// or -1.
func matchingBracket(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// FixGo applies Pyroscope's Go fixes (FixGoProfile in
// pkg/pprof/fix_go_profile.go at 3fe6a45) to a profile that IsGo reports as
// Go: type-parameter sections are dropped from every string (see
// DropGoTypeParameters) and, when a string changed, the functions and
// locations that are then identical are merged, as Pyroscope's merge of the
// profile with itself does (Normalize then sums the samples that became
// identical). It reports whether it changed p. Then stacks cut by Go's
// depth limit are repaired from their neighbours (see repairTruncatedGo).
func FixGo(p *profilev1.Profile) bool {
	changed := false
	for i, s := range p.StringTable {
		if c := DropGoTypeParameters(s); c != s {
			p.StringTable[i] = c
			changed = true
		}
	}
	if changed {
		dedupeSymbols(p)
		p.Comment = nil // the merged profile Pyroscope builds has none
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

// dedupeSymbols points references to functions, and then locations, at the
// first one with equal content, and locations at the first equal mapping, so
// equal stacks get equal location ids. All
// of them, not only those with a renamed string: a renamed function may now
// equal one that never had type parameters, and Pyroscope's merge of the
// profile with itself keys every function by (name, system name, file name,
// start line), every mapping as below, and every location by (address,
// mapping, lines), ignoring is_folded. Candidates are found by hash and confirmed by comparing content.
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
	fnCanon := map[uint64]uint64{} // duplicate function id -> first id
	var fns contentIndex
	for fi, f := range p.Function {
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
	if len(fnCanon) > 0 {
		for _, l := range p.Location {
			for _, ln := range l.Line {
				if c, ok := fnCanon[ln.FunctionId]; ok {
					ln.FunctionId = c
				}
			}
		}
	}
	// Mappings: keyed by size rounded up to 4 KiB, file offset, and the build
	// id, or the file name when there is none (GetMappingKey in
	// pkg/pprof/merge.go at 3fe6a45; one string stands for either, so a build
	// id equal to another mapping's file name matches). The start address is
	// not part of the key.
	type mappingKey struct {
		size, offset uint64
		id           string
	}
	mapCanon := map[uint64]uint64{}
	firstMapping := map[mappingKey]uint64{}
	for _, m := range p.Mapping {
		size := m.MemoryLimit - m.MemoryStart
		size += 0xfff
		size -= size % 0x1000
		k := mappingKey{size: size, offset: m.FileOffset, id: str(m.BuildId)}
		if k.id == "" {
			k.id = str(m.Filename)
		}
		if first, ok := firstMapping[k]; ok {
			mapCanon[m.Id] = first
		} else {
			firstMapping[k] = m.Id
		}
	}
	if len(mapCanon) > 0 {
		for _, l := range p.Location {
			if c, ok := mapCanon[l.MappingId]; ok {
				l.MappingId = c
			}
		}
	}
	sameLoc := func(a, b *profilev1.Location) bool {
		if a.MappingId != b.MappingId || a.Address != b.Address || len(a.Line) != len(b.Line) {
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
		kb = appendUvarint(kb[:0], l.MappingId)
		kb = appendUvarint(kb, l.Address)
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
