package otlp

import (
	"encoding/hex"
	"fmt"
	"math/bits"
	"slices"
	"sync"

	profilesv1 "go.opentelemetry.io/proto/otlp/profiles/v1development"
	"google.golang.org/protobuf/encoding/protowire"
)

// pprof field numbers (perftools.profiles).
const (
	fProfileSampleType        = 1
	fProfileSample            = 2
	fProfileMapping           = 3
	fProfileLocation          = 4
	fProfileFunction          = 5
	fProfileStringTable       = 6
	fProfileTimeNanos         = 9
	fProfileDurationNanos     = 10
	fProfilePeriodType        = 11
	fProfilePeriod            = 12
	fProfileDefaultSampleType = 14

	fValueTypeType = 1
	fValueTypeUnit = 2

	fSampleLocationID = 1
	fSampleValue      = 2
	fSampleLabel      = 3

	fLabelKey = 1
	fLabelStr = 2

	fMappingID              = 1
	fMappingMemoryStart     = 2
	fMappingMemoryLimit     = 3
	fMappingFileOffset      = 4
	fMappingFilename        = 5
	fMappingBuildID         = 6
	fMappingHasFunctions    = 7
	fMappingHasFilenames    = 8
	fMappingHasLineNumbers  = 9
	fMappingHasInlineFrames = 10

	fLocationID        = 1
	fLocationMappingID = 2
	fLocationAddress   = 3
	fLocationLine      = 4

	fLineFunctionID = 1
	fLineLine       = 2

	fFunctionID         = 1
	fFunctionName       = 2
	fFunctionSystemName = 3
	fFunctionFilename   = 4
	fFunctionStartLine  = 5
)

// intMap maps dictionary indexes to what they became in the pprof being
// built: open addressing, entries stamped with a generation so that
// starting over costs nothing. It grows with what one profile uses, not
// with the export's tables (an eBPF export's dictionary serves hundreds of
// processes, and a converter per concurrent profile keeps one).
type intMap struct {
	gen   uint32
	n     int
	shift uint8
	slots []intSlot
}

type intSlot struct {
	key int32
	gen uint32
	val uint64
}

func (m *intMap) reset() {
	m.gen++
	m.n = 0
	if m.gen == 0 { // wrapped: old stamps could match again
		clear(m.slots)
		m.gen = 1
	}
}

func (m *intMap) home(k int32) int { return int((uint32(k) * 0x9e3779b9) >> m.shift) }

func (m *intMap) get(k int32) (uint64, bool) {
	if len(m.slots) == 0 {
		return 0, false
	}
	mask := len(m.slots) - 1
	for i := m.home(k); ; i = (i + 1) & mask {
		s := &m.slots[i]
		if s.gen != m.gen {
			return 0, false
		}
		if s.key == k {
			return s.val, true
		}
	}
}

func (m *intMap) set(k int32, v uint64) {
	if 2*(m.n+1) > len(m.slots) {
		m.grow()
	}
	mask := len(m.slots) - 1
	for i := m.home(k); ; i = (i + 1) & mask {
		s := &m.slots[i]
		if s.gen != m.gen {
			*s = intSlot{key: k, gen: m.gen, val: v}
			m.n++
			return
		}
		if s.key == k {
			s.val = v
			return
		}
	}
}

func (m *intMap) grow() {
	old, oldGen := m.slots, m.gen
	size := max(64, 2*len(old))
	m.slots = make([]intSlot, size)
	m.shift = uint8(32 - bits.TrailingZeros(uint(size)))
	m.gen, m.n = 1, 0
	for _, s := range old {
		if s.gen == oldGen {
			m.set(s.key, s.val)
		}
	}
}

// trim drops a table that grew past what is worth keeping in a pool.
func (m *intMap) trim() {
	if len(m.slots) > maxCachedTable {
		*m = intMap{}
	}
}

// maxCachedTable bounds the index tables a pooled builder keeps.
const maxCachedTable = 1 << 18

// Mapping flags, as Pyroscope derives them from the locations of a sample.
const (
	mapHasFunctions uint64 = 1 << iota
	mapHasFilenames
	mapHasLineNumbers
	mapHasInlineFrames
)

// skipLabel marks an attribute that gives no sample label.
const skipLabel = ^uint64(0)

// builder writes one pprof (one OTLP profile and sample service.name).
type builder struct {
	h    *header
	dict *profilesv1.ProfilesDictionary

	strIdx map[string]int64
	strs   []string

	// dictionary index -> pprof id
	fns, locs, attrs, dstrs intMap
	// mapping index -> its flags in the sample being converted
	flags           intMap
	mappings        map[uint64]uint64 // mapping index<<8 | flags -> id
	nFn, nLoc, nMap uint64

	samples, mappingBuf, locationBuf, functionBuf []byte
	scratch, labels                               []byte
	locIDs                                        []uint64
}

func (b *builder) start(h *header, dict *profilesv1.ProfilesDictionary) {
	b.h, b.dict = h, dict
	if b.strIdx == nil {
		b.strIdx = make(map[string]int64)
		b.mappings = make(map[uint64]uint64)
	}
	for _, m := range []*intMap{&b.fns, &b.locs, &b.attrs, &b.dstrs} {
		m.reset()
	}
	b.str("")
	b.str(h.typ)
	b.str(h.unit)
	b.str(h.defaultType)
	if h.hasPeriodType {
		b.str(h.periodTypeStr)
		b.str(h.periodUnitStr)
	}
}

// finish drops what refers to the export, keeping buffers for the next one.
func (b *builder) finish() {
	b.h, b.dict = nil, nil
	if len(b.strIdx) > maxCachedTable {
		b.strIdx = make(map[string]int64)
	} else {
		clear(b.strIdx)
	}
	clear(b.strs)
	b.strs = b.strs[:0]
	clear(b.mappings)
	b.nFn, b.nLoc, b.nMap = 0, 0, 0
	b.samples, b.mappingBuf, b.locationBuf, b.functionBuf = b.samples[:0], b.mappingBuf[:0], b.locationBuf[:0], b.functionBuf[:0]
	for _, m := range []*intMap{&b.fns, &b.locs, &b.attrs, &b.dstrs, &b.flags} {
		m.trim()
	}
	if cap(b.samples) > 8<<20 {
		b.samples, b.mappingBuf, b.locationBuf, b.functionBuf = nil, nil, nil, nil
	}
}

// dictStr is the pprof string id of dictionary string i.
func (b *builder) dictStr(i int32) (int64, error) {
	if id, ok := b.dstrs.get(i); ok {
		return int64(id), nil
	}
	s, err := at(b.dict.GetStringTable(), i)
	if err != nil {
		return 0, err
	}
	id := b.str(s)
	b.dstrs.set(i, uint64(id))
	return id, nil
}

func (b *builder) str(s string) int64 {
	if i, ok := b.strIdx[s]; ok {
		return i
	}
	i := int64(len(b.strs))
	b.strIdx[s] = i
	b.strs = append(b.strs, s)
	return i
}

// sample converts one OTLP sample, as Pyroscope's convertSampleBack does.
func (b *builder) sample(s *profilesv1.Sample, c *Converter) error {
	h, dict := b.h, b.dict
	vals := append(c.vals[:0], s.GetValues()...)
	// A sample may carry timestamps instead of values: each is one event.
	if len(vals) == 0 && len(s.GetTimestampsUnixNano()) > 0 {
		vals = append(vals, int64(len(s.GetTimestampsUnixNano())))
	}
	c.vals = vals
	if len(vals) == 0 {
		return fmt.Errorf("sample value is required")
	}
	switch h.mode {
	case samplesToNanos:
		vals[0] *= h.period
	case sumEvents:
		var sum int64
		for _, v := range vals {
			sum += v
		}
		vals = append(vals[:0], sum)
	}
	if h.checkValueCount && len(vals) != 1 {
		return fmt.Errorf("sample values length mismatch %d %d", len(vals), 1)
	}

	labels, err := b.sampleLabels(s)
	if err != nil {
		return err
	}

	si := s.GetStackIndex()
	if si < 0 || int(si) >= len(dict.GetStackTable()) {
		return fmt.Errorf("invalid stack index: %d", si)
	}
	stack := dict.StackTable[si].GetLocationIndices()
	locTable, mapTable := dict.GetLocationTable(), dict.GetMappingTable()
	fresh := false
	for _, li := range stack {
		loc, err := at(locTable, li)
		if err != nil {
			return fmt.Errorf("could not access location at index %d: %w", li, err)
		}
		if _, err := at(mapTable, loc.GetMappingIndex()); err != nil {
			return fmt.Errorf("could not access mapping at index %d: %w", loc.GetMappingIndex(), err)
		}
		if _, ok := b.locs.get(li); !ok {
			fresh = true
		}
	}
	ids := b.locIDs[:0]
	if fresh {
		// Pyroscope gives every sample its own copy of each mapping, with
		// flags from that sample's locations, and a location keeps the copy
		// of the sample that first had it. Equal copies are one mapping here.
		b.stackFlags(stack)
		for _, li := range stack {
			if _, ok := b.locs.get(li); ok {
				continue
			}
			if _, err := b.mappingOf(locTable[li].GetMappingIndex()); err != nil {
				return err
			}
		}
		for _, li := range stack {
			id, ok := b.locs.get(li)
			if !ok {
				if id, err = b.location(li); err != nil {
					return err
				}
			}
			ids = append(ids, id)
		}
	} else {
		for _, li := range stack {
			id, _ := b.locs.get(li)
			ids = append(ids, id)
		}
	}
	b.locIDs = ids

	body := b.scratch[:0]
	if len(ids) > 0 {
		n := 0
		for _, id := range ids {
			n += protowire.SizeVarint(id)
		}
		body = protowire.AppendTag(body, fSampleLocationID, protowire.BytesType)
		body = protowire.AppendVarint(body, uint64(n))
		for _, id := range ids {
			body = protowire.AppendVarint(body, id)
		}
	}
	n := 0
	for _, v := range vals {
		n += protowire.SizeVarint(uint64(v))
	}
	body = protowire.AppendTag(body, fSampleValue, protowire.BytesType)
	body = protowire.AppendVarint(body, uint64(n))
	for _, v := range vals {
		body = protowire.AppendVarint(body, uint64(v))
	}
	body = append(body, labels...)
	b.scratch = body
	b.samples = protowire.AppendTag(b.samples, fProfileSample, protowire.BytesType)
	b.samples = protowire.AppendBytes(b.samples, body)
	return nil
}

// sampleLabels encodes a sample's labels: its attributes but service.name
// (string, integer or one-element array values; empty ones left out), then
// span_id and trace_id from its link.
func (b *builder) sampleLabels(s *profilesv1.Sample) ([]byte, error) {
	dict := b.dict
	out := b.labels[:0]
	for i, ai := range s.GetAttributeIndices() {
		if ai < 0 || int(ai) >= len(dict.GetAttributeTable()) {
			return nil, fmt.Errorf("could not access attribute at index %d: index %d out of bounds", i, ai)
		}
		kv, ok := b.attrs.get(ai)
		if !ok {
			a := dict.AttributeTable[ai]
			key, kerr := at(dict.GetStringTable(), a.GetKeyStrindex())
			v := ""
			if kerr != nil || key != attrServiceName {
				v = anyString(a.GetValue())
			}
			if v == "" {
				kv = skipLabel
			} else {
				if kerr != nil {
					return nil, fmt.Errorf("could not access attribute key: %w", kerr)
				}
				kid, _ := b.dictStr(a.GetKeyStrindex())
				kv = uint64(kid)<<32 | uint64(b.str(v))
			}
			b.attrs.set(ai, kv)
		}
		if kv != skipLabel {
			out = appendLabel(out, int64(kv>>32), int64(kv&0xffffffff))
		}
	}
	if li := s.GetLinkIndex(); li != 0 {
		link, err := at(dict.GetLinkTable(), li)
		if err != nil {
			return nil, fmt.Errorf("could not access link at index %d: %w", li, err)
		}
		out = appendLabel(out, b.str(labelSpanID), b.str(hex.EncodeToString(link.GetSpanId())))
		if tid := link.GetTraceId(); len(tid) == 16 {
			out = appendLabel(out, b.str(labelTraceID), b.str(hex.EncodeToString(tid)))
		}
	}
	b.labels = out
	return out, nil
}

func appendLabel(out []byte, key, str int64) []byte {
	n := 0
	if key != 0 {
		n += 1 + protowire.SizeVarint(uint64(key))
	}
	if str != 0 {
		n += 1 + protowire.SizeVarint(uint64(str))
	}
	out = protowire.AppendTag(out, fSampleLabel, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(n))
	out = appendUint(out, fLabelKey, uint64(key))
	return appendUint(out, fLabelStr, uint64(str))
}

// appendUint appends a varint field unless it is 0 (proto3 omits zeros).
func appendUint(out []byte, field protowire.Number, v uint64) []byte {
	if v == 0 {
		return out
	}
	out = protowire.AppendTag(out, field, protowire.VarintType)
	return protowire.AppendVarint(out, v)
}

func appendBool(out []byte, field protowire.Number, v bool) []byte {
	if !v {
		return out
	}
	return append(protowire.AppendTag(out, field, protowire.VarintType), 1)
}

// mappingOf is the pprof mapping for dictionary mapping mi with its flags
// in the current sample (stackFlags); it is written on first use.
func (b *builder) mappingOf(mi int32) (uint64, error) {
	flags, _ := b.flags.get(mi)
	key := uint64(uint32(mi))<<8 | flags
	if id, ok := b.mappings[key]; ok {
		return id, nil
	}
	m := b.dict.MappingTable[mi]
	filename, err := b.dictStr(m.GetFilenameStrindex())
	if err != nil {
		return 0, fmt.Errorf("could not access mapping file name string: %w", err)
	}
	buildID, _ := attrValue(m.GetAttributeIndices(), b.dict, attrBuildID)
	b.nMap++
	id := b.nMap
	body := b.scratch[:0]
	body = appendUint(body, fMappingID, id)
	body = appendUint(body, fMappingMemoryStart, m.GetMemoryStart())
	body = appendUint(body, fMappingMemoryLimit, m.GetMemoryLimit())
	body = appendUint(body, fMappingFileOffset, m.GetFileOffset())
	body = appendUint(body, fMappingFilename, uint64(filename))
	body = appendUint(body, fMappingBuildID, uint64(b.str(buildID)))
	body = appendBool(body, fMappingHasFunctions, flags&mapHasFunctions != 0)
	body = appendBool(body, fMappingHasFilenames, flags&mapHasFilenames != 0)
	body = appendBool(body, fMappingHasLineNumbers, flags&mapHasLineNumbers != 0)
	body = appendBool(body, fMappingHasInlineFrames, flags&mapHasInlineFrames != 0)
	b.scratch = body
	b.mappingBuf = protowire.AppendTag(b.mappingBuf, fProfileMapping, protowire.BytesType)
	b.mappingBuf = protowire.AppendBytes(b.mappingBuf, body)
	b.mappings[key] = id
	return id, nil
}

// stackFlags works out the flags of every mapping of stack: a mapping has
// functions, line numbers and file names (and inline frames) only when
// every location of the stack in it has lines that all do. Pyroscope's
// rule, quirk kept: a line at position 0 clears "inline frames", so that
// flag is never set.
func (b *builder) stackFlags(stack []int32) {
	b.flags.reset()
	fns := b.dict.GetFunctionTable()
	for _, li := range stack {
		loc := b.dict.LocationTable[li]
		var f uint64
		if lines := loc.GetLines(); len(lines) > 0 {
			f = mapHasFunctions | mapHasFilenames | mapHasLineNumbers | mapHasInlineFrames
			for i, ln := range lines {
				fi := ln.GetFunctionIndex()
				if fi <= 0 {
					f &^= mapHasFunctions
				} else if fn, _ := at(fns, fi); fn != nil && fn.GetFilenameStrindex() <= 0 {
					f &^= mapHasFilenames
				}
				if ln.GetLine() <= 0 {
					f &^= mapHasLineNumbers
				}
				if i == 0 {
					f &^= mapHasInlineFrames
				}
			}
		}
		mi := loc.GetMappingIndex()
		if cur, ok := b.flags.get(mi); ok {
			f &= cur
		}
		b.flags.set(mi, f)
	}
}

// location writes dictionary location li and returns its id.
func (b *builder) location(li int32) (uint64, error) {
	loc := b.dict.LocationTable[li]
	mid, err := b.mappingOf(loc.GetMappingIndex())
	if err != nil {
		return 0, err
	}
	// Lines are encoded after their functions exist; functions go to their
	// own section, so the location body can be built in one pass.
	body := b.scratch[:0]
	b.nLoc++
	id := b.nLoc
	body = appendUint(body, fLocationID, id)
	body = appendUint(body, fLocationMappingID, mid)
	body = appendUint(body, fLocationAddress, loc.GetAddress())
	for i, ln := range loc.GetLines() {
		fid, err := b.function(ln.GetFunctionIndex())
		if err != nil {
			b.nLoc--
			return 0, fmt.Errorf("could not process line at index %d: %w", i, err)
		}
		n := 1 + protowire.SizeVarint(fid)
		if ln.GetLine() != 0 {
			n += 1 + protowire.SizeVarint(uint64(ln.GetLine()))
		}
		body = protowire.AppendTag(body, fLocationLine, protowire.BytesType)
		body = protowire.AppendVarint(body, uint64(n))
		body = appendUint(body, fLineFunctionID, fid)
		body = appendUint(body, fLineLine, uint64(ln.GetLine()))
	}
	b.scratch = body
	b.locationBuf = protowire.AppendTag(b.locationBuf, fProfileLocation, protowire.BytesType)
	b.locationBuf = protowire.AppendBytes(b.locationBuf, body)
	b.locs.set(li, id)
	return id, nil
}

// function writes dictionary function fi on first use and returns its id.
func (b *builder) function(fi int32) (uint64, error) {
	if fi < 0 || int(fi) >= len(b.dict.GetFunctionTable()) {
		return 0, fmt.Errorf("could not access function: index %d out of bounds", fi)
	}
	if id, ok := b.fns.get(fi); ok {
		return id, nil
	}
	f := b.dict.FunctionTable[fi]
	name, err := b.dictStr(f.GetNameStrindex())
	if err != nil {
		return 0, fmt.Errorf("could not access function name string: %w", err)
	}
	system, err := b.dictStr(f.GetSystemNameStrindex())
	if err != nil {
		return 0, fmt.Errorf("could not access function system name string: %w", err)
	}
	file, err := b.dictStr(f.GetFilenameStrindex())
	if err != nil {
		return 0, fmt.Errorf("could not access function file name string: %w", err)
	}
	b.nFn++
	id := b.nFn
	var body [64]byte
	fb := appendUint(body[:0], fFunctionID, id)
	fb = appendUint(fb, fFunctionName, uint64(name))
	fb = appendUint(fb, fFunctionSystemName, uint64(system))
	fb = appendUint(fb, fFunctionFilename, uint64(file))
	fb = appendUint(fb, fFunctionStartLine, uint64(f.GetStartLine()))
	b.functionBuf = protowire.AppendTag(b.functionBuf, fProfileFunction, protowire.BytesType)
	b.functionBuf = protowire.AppendBytes(b.functionBuf, fb)
	b.fns.set(fi, id)
	return id, nil
}

// outPool keeps the buffers of converted profiles, which live only until
// their push returns.
var outPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// maxPooledOut: larger buffers are left to the collector.
const maxPooledOut = 8 << 20

// encode assembles the pprof in a pooled buffer.
func (b *builder) encode() *[]byte {
	h := b.h
	typ, unit := b.str(h.typ), b.str(h.unit)
	def := b.str(h.defaultType)
	var ptype, punit int64
	if h.hasPeriodType {
		ptype, punit = b.str(h.periodTypeStr), b.str(h.periodUnitStr)
	}
	vt := func(out []byte, field protowire.Number, t, u int64) []byte {
		n := 0
		if t != 0 {
			n += 1 + protowire.SizeVarint(uint64(t))
		}
		if u != 0 {
			n += 1 + protowire.SizeVarint(uint64(u))
		}
		out = protowire.AppendTag(out, field, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(n))
		out = appendUint(out, fValueTypeType, uint64(t))
		return appendUint(out, fValueTypeUnit, uint64(u))
	}
	size := 64 + len(b.samples) + len(b.mappingBuf) + len(b.locationBuf) + len(b.functionBuf)
	for _, s := range b.strs {
		size += 1 + protowire.SizeBytes(len(s))
	}
	buf := outPool.Get().(*[]byte)
	out := slices.Grow((*buf)[:0], size)
	out = vt(out, fProfileSampleType, typ, unit)
	out = append(out, b.samples...)
	out = append(out, b.mappingBuf...)
	out = append(out, b.locationBuf...)
	out = append(out, b.functionBuf...)
	for _, s := range b.strs {
		out = protowire.AppendTag(out, fProfileStringTable, protowire.BytesType)
		out = protowire.AppendString(out, s)
	}
	out = appendUint(out, fProfileTimeNanos, uint64(h.time))
	out = appendUint(out, fProfileDurationNanos, uint64(h.duration))
	if h.hasPeriodType {
		out = vt(out, fProfilePeriodType, ptype, punit)
	}
	out = appendUint(out, fProfilePeriod, uint64(h.period))
	*buf = appendUint(out, fProfileDefaultSampleType, uint64(def))
	return buf
}
