package profile

import (
	"encoding/binary"
	"slices"
	"sync"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
)

// scratch holds per-profile working memory, pooled.
type scratch struct {
	first  map[uint64]int32 // sample key hash -> first sample index with it
	next   []int32          // collision chain: next sample index with the same hash
	keep   []bool
	locIdx map[uint64]int32 // location id -> index (only for non-dense ids)
	remap  []int32
	hbuf   []byte
}

var scratchPool = sync.Pool{New: func() any { return &scratch{first: make(map[uint64]int32)} }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(s *scratch) {
	if len(s.first) > 1<<16 {
		s.first = make(map[uint64]int32)
	} else {
		clear(s.first)
	}
	if cap(s.next) > 1<<16 {
		s.next = nil
	}
	s.locIdx = nil
	if cap(s.remap) > 1<<20 {
		s.remap = nil
	}
	if cap(s.hbuf) > 1<<16 {
		s.hbuf = nil
	}
	scratchPool.Put(s)
}

// Normalize applies Pyroscope's normalization (Profile.Normalize in
// pkg/pprof/pprof.go at 3fe6a45) in place:
// sample labels without a string value are removed; samples with a negative
// value or only zeros are removed; samples with the same stack and labels
// (compared exactly, not by hash alone) are summed; locations, functions,
// mappings and strings no longer referenced are dropped; references are
// sanitized (dangling ones dropped, a stub mapping for locations without one,
// ids renumbered 1..n); addresses of symbolized mappings are zeroed.
// It reports whether the profile's content changed (the sample order, the
// order of labels within a sample and the id numbering do not count when
// ids were already 1..n).
// Validate must have accepted p first (string references in range).
func Normalize(p *profilev1.Profile) bool {
	sc := getScratch()
	defer putScratch(sc)
	changed := false

	// Sample labels: string values only; canonical order for the merge key.
	for _, s := range p.Sample {
		if len(s.Label) == 0 {
			continue
		}
		before := len(s.Label)
		s.Label = slices.DeleteFunc(s.Label, func(l *profilev1.Label) bool { return l.Str == 0 })
		changed = changed || len(s.Label) != before
		if len(s.Label) > 1 {
			slices.SortFunc(s.Label, func(a, b *profilev1.Label) int {
				if a.Key != b.Key {
					return cmpInt(a.Key, b.Key)
				}
				return cmpInt(a.Str, b.Str)
			})
		}
	}

	// Drop negative and all-zero samples, then sum duplicates.
	before := len(p.Sample)
	p.Sample = slices.DeleteFunc(p.Sample, func(s *profilev1.Sample) bool { return !keepValues(s.Value) })
	changed = changed || len(p.Sample) != before
	if mergeDuplicates(p, sc) {
		changed = true
	}

	if sanitize(p, sc) {
		changed = true
	}
	if clearAddresses(p) {
		changed = true
	}
	return changed
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func keepValues(v []int64) bool {
	pos := false
	for _, x := range v {
		if x < 0 {
			return false
		}
		if x > 0 {
			pos = true
		}
	}
	return pos
}

func sameKey(a, b *profilev1.Sample) bool {
	if !slices.Equal(a.LocationId, b.LocationId) || len(a.Label) != len(b.Label) {
		return false
	}
	for i := range a.Label {
		if a.Label[i].Key != b.Label[i].Key || a.Label[i].Str != b.Label[i].Str {
			return false
		}
	}
	return true
}

func (sc *scratch) sampleHash(s *profilev1.Sample) uint64 {
	var h uint64
	if len(s.LocationId) > 0 {
		h = xxhash.Sum64(unsafe.Slice((*byte)(unsafe.Pointer(&s.LocationId[0])), len(s.LocationId)*8))
	}
	if len(s.Label) == 0 {
		return h
	}
	b := sc.hbuf[:0]
	b = binary.LittleEndian.AppendUint64(b, h)
	for _, l := range s.Label {
		b = binary.LittleEndian.AppendUint64(b, uint64(l.Key))
		b = binary.LittleEndian.AppendUint64(b, uint64(l.Str))
	}
	sc.hbuf = b
	return xxhash.Sum64(b)
}

// mergeDuplicates sums samples with equal stacks and labels into the first
// of them, keeping the order of first appearance.
func mergeDuplicates(p *profilev1.Profile, sc *scratch) bool {
	if len(p.Sample) < 2 {
		return false
	}
	sc.next = slices.Grow(sc.next[:0], len(p.Sample))[:len(p.Sample)]
	merged := false
	n := 0
	for _, s := range p.Sample {
		h := sc.sampleHash(s)
		i, ok := sc.first[h]
		dup := false
		for ok {
			if t := p.Sample[i]; sameKey(t, s) {
				for j := range s.Value {
					t.Value[j] += s.Value[j]
				}
				dup = true
				break
			}
			i = sc.next[i]
			ok = i >= 0
		}
		if dup {
			merged = true
			continue
		}
		// New key: index n (the compacted position).
		p.Sample[n] = s
		if head, had := sc.first[h]; had {
			sc.next[n] = head
		} else {
			sc.next[n] = -1
		}
		sc.first[h] = int32(n)
		n++
	}
	if merged {
		clear(p.Sample[n:])
		p.Sample = p.Sample[:n]
	}
	return merged
}

// sanitize drops dangling references and anything unreferenced, adds a stub
// mapping for locations without one and makes ids dense (1..n in order).
func sanitize(p *profilev1.Profile, sc *scratch) bool {
	changed := false
	// Index mappings, functions and locations by id; ids are dense in
	// well-formed profiles (Go's runtime/pprof writes 1..n), so the common
	// case needs no map.
	mapIdx := indexByID(len(p.Mapping), func(i int) uint64 { return p.Mapping[i].GetId() })
	fnIdx := indexByID(len(p.Function), func(i int) uint64 { return p.Function[i].GetId() })
	locIdx := indexByID(len(p.Location), func(i int) uint64 { return p.Location[i].GetId() })

	// Locations are valid when their mapping (if any) and functions exist.
	locOK := make([]bool, len(p.Location))
	needStub := false
	for i, loc := range p.Location {
		if loc == nil || !locIdx.first(loc.Id, i) {
			continue
		}
		ok := loc.MappingId == 0 || mapIdx.lookup(loc.MappingId) >= 0
		for _, ln := range loc.Line {
			if ln == nil || fnIdx.lookup(ln.FunctionId) < 0 {
				ok = false
				break
			}
		}
		if ok && len(loc.Line) == 0 && loc.Address == 0 {
			ok = false // an empty location says nothing
		}
		if ok && loc.MappingId == 0 {
			needStub = true
		}
		locOK[i] = ok
	}

	// Samples must reference valid locations.
	locUsed := make([]bool, len(p.Location))
	n := 0
	for _, s := range p.Sample {
		ok := true
		for _, id := range s.LocationId {
			j := locIdx.lookup(id)
			if j < 0 || !locOK[j] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		for _, id := range s.LocationId {
			locUsed[locIdx.lookup(id)] = true
		}
		p.Sample[n] = s
		n++
	}
	if n != len(p.Sample) {
		clear(p.Sample[n:])
		p.Sample = p.Sample[:n]
		changed = true
	}

	// Anything to drop or renumber?
	dense := locIdx.dense && fnIdx.dense && mapIdx.dense
	allLocsUsed := !slices.Contains(locUsed, false)
	fnUsed := make([]bool, len(p.Function))
	mapUsed := make([]bool, len(p.Mapping))
	for i, loc := range p.Location {
		if !locUsed[i] {
			continue
		}
		for _, ln := range loc.Line {
			fnUsed[fnIdx.lookup(ln.FunctionId)] = true
		}
		if loc.MappingId != 0 {
			mapUsed[mapIdx.lookup(loc.MappingId)] = true
		}
	}
	allFnsUsed := !slices.Contains(fnUsed, false)
	allMapsUsed := !slices.Contains(mapUsed, false)
	if dense && allLocsUsed && allFnsUsed && allMapsUsed && !needStub {
		return sanitizeStrings(p, sc, false) || changed
	}
	changed = true

	// Rebuild the tables densely: mappings, functions, then locations.
	var newMap, newFn []uint64
	p.Mapping, newMap = compact(p.Mapping, mapUsed, func(m *profilev1.Mapping, id uint64) { m.Id = id })
	var stub uint64
	if needStub {
		stub = uint64(len(p.Mapping) + 1)
		p.Mapping = append(p.Mapping, &profilev1.Mapping{Id: stub})
	}
	p.Function, newFn = compact(p.Function, fnUsed, func(f *profilev1.Function, id uint64) { f.Id = id })
	newLoc := make([]uint64, len(p.Location))
	l := 0
	for i, loc := range p.Location {
		if !locUsed[i] {
			continue
		}
		newLoc[i] = uint64(l + 1)
		loc.Id = uint64(l + 1)
		if loc.MappingId == 0 {
			loc.MappingId = stub
		} else {
			loc.MappingId = newMap[mapIdx.lookup(loc.MappingId)]
		}
		for _, ln := range loc.Line {
			ln.FunctionId = newFn[fnIdx.lookup(ln.FunctionId)]
		}
		p.Location[l] = loc
		l++
	}
	for _, s := range p.Sample {
		for k, id := range s.LocationId {
			s.LocationId[k] = newLoc[locIdx.lookup(id)]
		}
	}
	clear(p.Location[l:])
	p.Location = p.Location[:l]
	sanitizeStrings(p, sc, true)
	return changed
}

// compact keeps the entries of table marked used, in order, with ids 1..n;
// newID maps each old index to its new id (0: dropped).
func compact[T any](table []*T, used []bool, setID func(*T, uint64)) (kept []*T, newID []uint64) {
	newID = make([]uint64, len(table))
	n := 0
	for i, e := range table {
		if used[i] {
			newID[i] = uint64(n + 1)
			setID(e, uint64(n+1))
			table[n] = e
			n++
		}
	}
	clear(table[n:])
	return table[:n], newID
}

// idIndex maps ids to slice indices: the identity when ids are 1..n in
// order, a map otherwise.
type idIndex struct {
	dense bool
	n     int
	m     map[uint64]int32
}

func indexByID(n int, id func(int) uint64) idIndex {
	ix := idIndex{dense: true, n: n}
	for i := 0; i < n; i++ {
		if id(i) != uint64(i+1) {
			ix.dense = false
			break
		}
	}
	if ix.dense {
		return ix
	}
	ix.m = make(map[uint64]int32, n)
	for i := 0; i < n; i++ {
		v := id(i)
		if v == 0 {
			continue
		}
		if _, dup := ix.m[v]; !dup { // the first of duplicate ids wins
			ix.m[v] = int32(i)
		}
	}
	return ix
}

func (ix idIndex) lookup(id uint64) int {
	if ix.dense {
		if id >= 1 && id <= uint64(ix.n) {
			return int(id - 1)
		}
		return -1
	}
	if i, ok := ix.m[id]; ok {
		return int(i)
	}
	return -1
}

// first reports whether index i is the one id resolves to (not a duplicate).
func (ix idIndex) first(id uint64, i int) bool { return id != 0 && ix.lookup(id) == i }

// sanitizeStrings nulls string references that are out of range and, when
// compact is set, drops unreferenced strings and renumbers the rest.
func sanitizeStrings(p *profilev1.Profile, sc *scratch, compact bool) bool {
	nStr := int64(len(p.StringTable))
	changed := false
	fix := func(i *int64) {
		if *i < 0 || *i >= nStr {
			*i = 0
			changed = true
		}
	}
	visitOptionalStrings(p, fix)
	if !compact {
		return changed
	}
	used := slices.Grow(sc.remap[:0], int(nStr))[:nStr]
	clear(used)
	used[0] = 1
	mark := func(i *int64) { used[*i] = 1 }
	visitAllStrings(p, mark)
	var k int32
	for i, u := range used {
		if u != 0 {
			p.StringTable[k] = p.StringTable[i]
			used[i] = k
			k++
		} else {
			used[i] = -1
		}
	}
	used[0] = 0
	if int64(k) == nStr {
		sc.remap = used
		return changed
	}
	clear(p.StringTable[k:])
	p.StringTable = p.StringTable[:k]
	visitAllStrings(p, func(i *int64) { *i = int64(used[*i]) })
	sc.remap = used
	return true
}

// visitOptionalStrings visits the string references Validate does not check.
func visitOptionalStrings(p *profilev1.Profile, fn func(*int64)) {
	fn(&p.DropFrames)
	fn(&p.KeepFrames)
	fn(&p.DefaultSampleType)
	if p.PeriodType != nil {
		fn(&p.PeriodType.Type)
		fn(&p.PeriodType.Unit)
	}
	for i := range p.Comment {
		fn(&p.Comment[i])
	}
	for _, s := range p.Sample {
		for _, l := range s.Label {
			fn(&l.NumUnit)
		}
	}
}

func visitAllStrings(p *profilev1.Profile, fn func(*int64)) {
	visitOptionalStrings(p, fn)
	for _, st := range p.SampleType {
		fn(&st.Type)
		fn(&st.Unit)
	}
	for _, s := range p.Sample {
		for _, l := range s.Label {
			fn(&l.Key)
			fn(&l.Str)
		}
	}
	for _, m := range p.Mapping {
		fn(&m.Filename)
		fn(&m.BuildId)
	}
	for _, f := range p.Function {
		fn(&f.Name)
		fn(&f.SystemName)
		fn(&f.Filename)
	}
}

// clearAddresses zeroes addresses of mappings that carry function names:
// they add cardinality and no information once a profile is symbolized.
func clearAddresses(p *profilev1.Profile) bool {
	changed := false
	anySym := false
	for _, m := range p.Mapping {
		if m.HasFunctions {
			anySym = true
			if m.MemoryStart != 0 || m.MemoryLimit != 0 || m.FileOffset != 0 {
				m.MemoryStart, m.MemoryLimit, m.FileOffset = 0, 0, 0
				changed = true
			}
		}
	}
	if !anySym {
		return changed
	}
	ix := indexByID(len(p.Mapping), func(i int) uint64 { return p.Mapping[i].Id })
	for _, l := range p.Location {
		if l.Address == 0 {
			continue
		}
		if j := ix.lookup(l.MappingId); j >= 0 && p.Mapping[j].HasFunctions {
			l.Address = 0
			changed = true
		}
	}
	return changed
}
