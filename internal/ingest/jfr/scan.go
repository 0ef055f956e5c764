package jfr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math/rand/v2"
	"strconv"
	"unicode/utf8"

	"github.com/grafana/jfr-parser/parser/types/def"
	jfrpprof "github.com/grafana/jfr-parser/pprof"
)

// The scan reads a recording exactly as github.com/grafana/jfr-parser v0.18.0
// will (parser.Parser: ParseEvent, readChunk, readMeta, readConstantPool, and
// the generated types.*List.Parse and event Parse functions), building
// nothing, so that what the parser cannot bound is refused before it runs:
//
//   - the parser allocates from counts it reads (metadata strings, class
//     fields, attribute maps, constant-pool lists, stack frames, char-array
//     strings) before reading what they count: 5 bytes claiming 4G entries
//     ask for up to 160 GB at once, which the Go runtime cannot refuse
//     without ending the process. Every count here must fit in the bytes
//     left for what it counts;
//   - a constant-pool chain whose deltas loop is followed forever, and
//     chunks may point their metadata or constant pools at bytes shared with
//     other chunks, which the parser then reads once per chunk. Here every
//     region must lie in its own chunk, constant pools must not overlap, and
//     events must not read past their size: each byte is read a bounded
//     number of times. The parser also binds a skipped type's fields anew
//     for every list of it: those fields may not outnumber the chunk's bytes;
//   - the pprof conversion builds one sample per stack trace and context
//     and copies the whole stack into it, and names each function by
//     concatenating its class and method names: a few kilobytes of stack
//     trace referenced by many events, or a long class name shared by many
//     methods, make memory quadratic in the input. The scan adds up what the
//     conversion will hold for them (cost), to be charged before it runs.
//
// Real recordings (jfr-parser's own test data, the observed corpus) pass
// unchanged; only inputs the parser would fail on or could not bound are
// refused. Where the parser has quirks (floats read as varints, objects
// nested in objects read one level deep, the previous entry's values kept
// for fields an entry lacks), the scan has them too: it must read the
// same bytes the same way.

const (
	chunkHeaderSize = 68
	chunkMagic      = 0x464c5200
)

var (
	errCount = errors.New("a count exceeds the bytes left")
	errLoop  = errors.New("constant pools overlap or loop")
)

// reader reads the parser's encodings from b[pos:end].
type reader struct {
	b        []byte
	pos, end int
}

func (r *reader) left() int { return r.end - r.pos }

func (r *reader) u8() (byte, error) {
	if r.pos >= r.end {
		return 0, io.ErrUnexpectedEOF
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

// u32 is the parser's varInt: up to 5 bytes, more is an overflow.
func (r *reader) u32() (uint32, error) {
	if r.pos < r.end && r.b[r.pos] < 0x80 { // most are one byte
		r.pos++
		return uint32(r.b[r.pos-1]), nil
	}
	return r.u32slow()
}

func (r *reader) u32slow() (uint32, error) {
	var v uint32
	for shift := uint(0); ; shift += 7 {
		if shift >= 32 {
			return 0, def.ErrIntOverflow
		}
		c, err := r.u8()
		if err != nil {
			return 0, err
		}
		v |= uint32(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
}

// u16 is the generated code's varint of a short.
func (r *reader) u16() error {
	for shift := uint(0); ; shift += 7 {
		if shift >= 16 {
			return def.ErrIntOverflow
		}
		c, err := r.u8()
		if err != nil {
			return err
		}
		if c < 0x80 {
			return nil
		}
	}
}

// u64 is the parser's varLong: up to 9 bytes, the ninth taken whole.
func (r *reader) u64() (uint64, error) {
	if r.pos < r.end && r.b[r.pos] < 0x80 {
		r.pos++
		return uint64(r.b[r.pos-1]), nil
	}
	return r.u64slow()
}

func (r *reader) u64slow() (uint64, error) {
	var v uint64
	for shift := uint(0); shift <= 56; shift += 7 {
		c, err := r.u8()
		if err != nil {
			return 0, err
		}
		if shift == 56 {
			v |= uint64(c) << shift
			break
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	return v, nil
}

// count checks that n things of at least per bytes each fit in what is left.
func (r *reader) count(n uint32, per int) (int, error) {
	if per < 1 {
		per = 1
	}
	if uint64(n)*uint64(per) > uint64(max(r.left(), 0)) {
		return 0, fmt.Errorf("%w: %d at offset %d", errCount, n, r.pos)
	}
	return int(n), nil
}

// metaString is the parser's string() of the metadata: null, empty, UTF-8
// bytes or a char array.
func (r *reader) metaString() (string, error) {
	tag, err := r.u8()
	if err != nil {
		return "", err
	}
	switch tag {
	case 0, 1:
		return "", nil
	case 3:
		n, err := r.u32()
		if err != nil {
			return "", err
		}
		if uint64(n) > uint64(r.left()) {
			return "", io.ErrUnexpectedEOF
		}
		s := string(r.b[r.pos : r.pos+int(n)])
		r.pos += int(n)
		return s, nil
	case 4:
		s, _, err := r.chars(true)
		return s, err
	default:
		return "", fmt.Errorf("unknown string type %d", tag)
	}
}

// chars reads a char-array string: its UTF-8 length, and the string when
// want is set.
func (r *reader) chars(want bool) (string, int, error) {
	l, err := r.u32()
	if err != nil {
		return "", 0, err
	}
	n, err := r.count(l, 1)
	if err != nil {
		return "", 0, err
	}
	var runes []rune
	if want {
		runes = make([]rune, 0, n)
	}
	size := 0
	for range n {
		c, err := r.u32()
		if err != nil {
			return "", 0, err
		}
		n := utf8.RuneLen(rune(c))
		if n < 0 {
			n = 3 // an invalid rune becomes U+FFFD
		}
		size += n
		if want {
			runes = append(runes, rune(c))
		}
	}
	return string(runes), size, nil
}

// fieldString is the generated code's string field: null, empty, UTF-8,
// Latin-1 or a char array. It returns the decoded length (an upper bound
// for Latin-1 and char arrays) and, when want is set, the string.
func (r *reader) fieldString(want bool) (string, int, error) {
	tag, err := r.u8()
	if err != nil {
		return "", 0, err
	}
	switch tag {
	case 0, 1:
		return "", 0, nil
	case 3, 5:
		n, err := r.u32()
		if err != nil {
			return "", 0, err
		}
		if uint64(n) > uint64(r.left()) {
			return "", 0, io.ErrUnexpectedEOF
		}
		bs := r.b[r.pos : r.pos+int(n)]
		r.pos += int(n)
		if tag == 5 {
			// ISO-8859-1 takes up to 2 bytes per byte in UTF-8.
			if !want {
				return "", 2 * len(bs), nil
			}
			runes := make([]rune, len(bs))
			for i, c := range bs {
				runes[i] = rune(c)
			}
			s := string(runes)
			return s, len(s), nil
		}
		if !want {
			return "", len(bs), nil
		}
		return string(bs), len(bs), nil
	case 4:
		return r.chars(want)
	default:
		return "", 0, fmt.Errorf("unknown string type %d at %d", tag, r.pos)
	}
}

// element is one element of the metadata tree.
type element struct {
	name     string
	attrs    int // attributes, as counted
	children int
}

// attrs are the attributes the parser's def.NewClass and def.NewField
// read; the parser keeps every attribute in a map sized by their count,
// the scan only these (the last of a name wins, as in a map).
type attrs struct {
	id, name, class, dimension, constantPool string
}

// element reads one element; a, when not nil, gets its attributes.
func (r *reader) element(strs []string, a *attrs) (element, error) {
	var e element
	i, err := r.u32()
	if err != nil {
		return e, err
	}
	if int(i) >= len(strs) {
		return e, def.ErrIntOverflow
	}
	e.name = strs[i]
	na, err := r.u32()
	if err != nil {
		return e, err
	}
	if a != nil {
		*a = attrs{}
	}
	for range na {
		k, err := r.u32()
		if err != nil {
			return e, err
		}
		if int(k) >= len(strs) {
			return e, def.ErrIntOverflow
		}
		v, err := r.u32()
		if err != nil {
			return e, err
		}
		if int(v) >= len(strs) {
			return e, def.ErrIntOverflow
		}
		if a != nil {
			switch strs[k] {
			case "id":
				a.id = strs[v]
			case "name":
				a.name = strs[v]
			case "class":
				a.class = strs[v]
			case "dimension":
				a.dimension = strs[v]
			case "constantPool":
				a.constantPool = strs[v]
			}
		}
	}
	e.attrs = int(na)
	nc, err := r.u32()
	if err != nil {
		return e, err
	}
	e.children = int(nc)
	return e, nil
}

// newClass is def.NewClass on the attributes a.
func newClass(a *attrs, children int) (*def.Class, error) {
	id, err := strconv.Atoi(a.id)
	if err != nil {
		return nil, err
	}
	if a.name == "" {
		return nil, def.ErrNameEmpty
	}
	return &def.Class{Name: a.name, ID: def.TypeID(id), Fields: make([]def.Field, 0, children)}, nil
}

// newField is def.NewField on the attributes a.
func newField(a *attrs) (def.Field, error) {
	typ, err := strconv.Atoi(a.class)
	if err != nil {
		return def.Field{}, err
	}
	if a.name == "" {
		return def.Field{}, def.ErrNameEmpty
	}
	array := false
	switch a.dimension {
	case "":
	case "1":
		array = true
	default:
		return def.Field{}, fmt.Errorf("unsupported dimension %s", a.dimension)
	}
	return def.Field{Name: a.name, Type: def.TypeID(typ), ConstantPool: a.constantPool == "true", Array: array}, nil
}

// Bytes the metadata's structures take, in the parser and (but the
// attribute maps) in the scan: a string header per string, a map per
// element read with attributes (sized by their count: 48 bytes empty,
// 336 up to 8 entries, at most 84 an entry above), and per class the Class,
// its field slice (sized by the child count) and its entries in the type
// map's two maps (up to 190 bytes together as they grow). Measured with
// go1.26 (make(map[string]string, n) and growing maps).
const (
	costString     = 16
	costClass      = 240
	costClassField = 32
)

// What a chunk costs whatever its size. The parser starts each chunk with
// fresh constant-pool lists, each allocating room for at least 128 entries
// on first use (26.6 KB for its eleven lists with jfr-parser v0.18.0's
// types), fresh type maps sized for 48 classes and fresh field bindings;
// the scan binds every chunk's classes afresh too (plans, nested kinds,
// temps: about 6 KB a chunk measured). Real recordings hold a few chunks of
// megabytes; a recording of many tiny chunks pays for each.
const (
	costChunkParse = 40 << 10
	costChunkScan  = 8 << 10
)

func attrMapCost(n int) int64 {
	switch {
	case n == 0:
		return 48
	case n <= 8:
		return 336
	default:
		return 48 + 84*int64(n)
	}
}

// Roles: which generated parser reads a class, hence which of its fields
// are bound (read into values the conversion uses).
type role uint8

const (
	roleSkip role = iota
	roleOther
	roleMethod
	roleClass
	roleSymbol
	roleStackTrace
	roleStackFrame
	// events, in the order of the parser's ParseEvent switch
	roleExecutionSample
	roleWallClockSample
	roleMalloc
	roleFree
	roleAllocInNewTLAB
	roleAllocOutsideTLAB
	roleAllocSample
	roleLiveObject
	roleMonitorEnter
	roleThreadPark
	roleActiveSetting
	nRoles
)

// eventNames are the event classes ParseEvent parses, in its switch order.
var eventNames = [...]struct {
	name string
	role role
}{
	{"jdk.ExecutionSample", roleExecutionSample},
	{"profiler.WallClockSample", roleWallClockSample},
	{"profiler.Malloc", roleMalloc},
	{"profiler.Free", roleFree},
	{"jdk.ObjectAllocationInNewTLAB", roleAllocInNewTLAB},
	{"jdk.ObjectAllocationOutsideTLAB", roleAllocOutsideTLAB},
	{"jdk.ObjectAllocationSample", roleAllocSample},
	{"profiler.LiveObject", roleLiveObject},
	{"jdk.JavaMonitorEnter", roleMonitorEnter},
	{"jdk.ThreadPark", roleThreadPark},
	{"jdk.ActiveSetting", roleActiveSetting},
}

// Bound values a role keeps (the generated Bind*.Temp).
type slot uint8

const (
	slotNone slot = iota
	slotType
	slotName
	slotString
	slotFrames
	slotMethod
	slotLine
	slotStackTrace
	slotContext
	slotSpan
	slotSpanName
	slotTraceHi
	slotTraceLo
	slotSettingName
	slotSettingValue
	nSlots
)

// temp is a role's Bind*.Temp: the values of its bound fields, kept from
// one entry to the next when an entry lacks one, as the parser keeps them.
type temp struct {
	v [nSlots]uint64
	s [nSlots]string
}

// Builders of the pprof conversion (its sampleType* constants).
const (
	bCPU = iota
	bWall
	bInTLAB
	bOutTLAB
	bLock
	bThreadPark
	bLiveObject
	bAllocSample
	bMalloc
	nBuilders
)

// Bytes the conversion holds per unit: the vtproto structures it makes for
// each and their map entries, added up and rounded up.
const (
	costSample   = 192 // Sample, its value slice, the sample index entry
	costFrame    = 8   // one location id of a sample
	costLabel    = 96  // one sample label, its string-table entries
	costFunction = 128 // Function, its string-table and map entries (the name is counted apart)
	costLocation = 192 // Location, its Line, the location index entry
)

type scanner struct {
	b      []byte
	labels *jfrpprof.LabelsSnapshot
	tm     def.TypeMap
	// per chunk: how each class is read, as the parser binds it afresh
	plans      map[planKey]*plan
	nested     map[*def.Class][]nkind
	frames     *plan                // jdk.types.StackFrame, read inside stack traces
	eventPlans map[def.TypeID]*plan // nil: an event the parser skips
	temps      [nRoles]temp
	event      string // the recording's "event" setting so far

	// per chunk: what the constant pools hold, by id (the last entry wins)
	methods    map[uint64][2]uint64 // class, name
	classes    map[uint64]uint64    // name
	symbols    map[uint64]int       // decoded length
	stacks     map[uint64]int       // frames
	read       bitset               // bytes of the chunk read as metadata or constant pools
	chunkSize  int
	skipFields int // fields of skipped constant-pool lists, which the parser binds each time

	// across chunks, as the conversion's builders keep them
	seed      maphash.Seed
	samples   *set64
	locations *set64
	used      [nBuilders]bool
	perSample int64 // sample, frame and label bytes
	names     int64 // function name bytes, summed over chunks
	functions int64 // methods, summed over chunks
	metaCost  int64 // the metadata's structures in the parser, summed over chunks
	chunks    int64

	reserve func(int64) error // charges what the scan allocates beyond its linear cost; may be nil
}

// scanResult is what the scan learned: the bytes the conversion will hold
// beyond its linear cost.
type scanResult struct {
	cost int64
}

// scan checks data as described at the top of this file. labels is the
// snapshot the conversion will get (never nil). reserve, when not nil, is
// charged before the scan allocates what grows faster than the bytes that
// ask for it (the metadata's tables); its error ends the scan unchanged.
func scan(data []byte, labels *jfrpprof.LabelsSnapshot, reserve func(int64) error) (scanResult, error) {
	s := &scanner{
		b:         data,
		labels:    labels,
		reserve:   reserve,
		seed:      maphash.MakeSeed(),
		samples:   newSet64(rand.Uint64()),
		locations: newSet64(rand.Uint64()),
	}
	pos := 0
	for pos != len(data) {
		end, err := s.chunk(pos)
		if err != nil {
			return scanResult{}, err
		}
		pos = end
	}
	used := int64(0)
	for _, u := range s.used {
		if u {
			used++
		}
	}
	cost := s.perSample + s.metaCost + costChunkParse*s.chunks + used*(s.names+costFunction*s.functions+costLocation*int64(s.locations.len()))
	return scanResult{cost: cost}, nil
}

func (s *scanner) charge(n int64) error {
	if s.reserve == nil {
		return nil
	}
	return s.reserve(n)
}

// chunk reads the chunk at pos and returns where the next one starts.
func (s *scanner) chunk(pos int) (int, error) {
	b := s.b
	if pos+chunkHeaderSize > len(b) {
		return 0, fmt.Errorf("error reading chunk header: %w", io.ErrUnexpectedEOF)
	}
	be32 := func(o int) uint32 { return uint32(b[o])<<24 | uint32(b[o+1])<<16 | uint32(b[o+2])<<8 | uint32(b[o+3]) }
	be64 := func(o int) int { return int(uint64(be32(o))<<32 | uint64(be32(o+4))) }
	magic, version := be32(pos), be32(pos+4)
	size, offCP, offMeta := be64(pos+8), be64(pos+16), be64(pos+24)
	switch {
	case magic != chunkMagic:
		return 0, fmt.Errorf("error reading chunk header: invalid chunk magic: %x", magic)
	case version < 0x20000 || version > 0x2ffff:
		return 0, fmt.Errorf("error reading chunk header: unknown version %x", version)
	case offCP <= 0 || offMeta <= 0:
		return 0, fmt.Errorf("error reading chunk header: invalid offsets: cp %d meta %d", offCP, offMeta)
	case size <= 0:
		return 0, fmt.Errorf("error reading chunk header: invalid size: %d", size)
	case size < chunkHeaderSize || size > len(b)-pos:
		return 0, fmt.Errorf("error reading chunk header: chunk size %d at offset %d does not fit the %d bytes left", size, pos, len(b)-pos)
	case offCP >= size || offMeta >= size:
		return 0, fmt.Errorf("error reading chunk header: offsets cp %d meta %d outside the chunk of %d bytes", offCP, offMeta, size)
	}
	s.chunks++
	if err := s.charge(costChunkScan); err != nil {
		return 0, err
	}
	end := pos + size
	s.methods, s.classes, s.symbols, s.stacks = nil, nil, nil, nil // sized by their lists
	s.read = newBitset(size)
	s.chunkSize, s.skipFields = size, 0
	s.temps = [nRoles]temp{} // the parser binds every chunk afresh
	metaEnd, err := s.meta(pos+offMeta, end)
	if err != nil {
		return 0, fmt.Errorf("error reading metadata: %w", err)
	}
	s.read.mark(offMeta, metaEnd-pos) // the first region: nothing to overlap
	if err := s.constantPools(pos+offCP, pos, end); err != nil {
		return 0, fmt.Errorf("error reading CP: %w @ %d", err, pos+offCP)
	}
	for _, m := range s.methods {
		s.functions++
		s.names += int64(s.symbols[s.classes[m[0]]] + 1 + s.symbols[m[1]])
	}
	return end, s.events(pos+chunkHeaderSize, end)
}

// meta mirrors readMeta and checkTypes; it returns where the metadata ends.
func (s *scanner) meta(pos, end int) (int, error) {
	r := &reader{b: s.b, pos: pos, end: end}
	if _, err := r.u32(); err != nil {
		return 0, err
	}
	if _, err := r.u32(); err != nil {
		return 0, err
	}
	for range 3 {
		if _, err := r.u64(); err != nil {
			return 0, err
		}
	}
	ns, err := r.u32()
	if err != nil {
		return 0, err
	}
	n, err := r.count(ns, 1)
	if err != nil {
		return 0, err
	}
	// The parser's string table, then the scan's.
	s.metaCost += costString * int64(n)
	if err := s.charge(costString * int64(n)); err != nil {
		return 0, err
	}
	strs := make([]string, n)
	for i := range strs {
		if strs[i], err = r.metaString(); err != nil {
			return 0, err
		}
	}
	s.tm = def.TypeMap{IDMap: map[def.TypeID]*def.Class{}, NameMap: map[string]*def.Class{}}
	root, err := r.element(strs, nil)
	if err != nil {
		return 0, err
	}
	if root.name != "root" {
		return 0, fmt.Errorf("expected root element, got %s", root.name)
	}
	var a attrs
	for range root.children {
		e, err := r.element(strs, nil)
		if err != nil {
			return 0, err
		}
		switch e.name {
		case "metadata":
			for range e.children {
				ce, err := r.element(strs, &a)
				if err != nil {
					return 0, err
				}
				s.metaCost += attrMapCost(ce.attrs)
				// NewClass sizes the field slice by the count: an element
				// is at least 3 bytes.
				if _, err := r.count(uint32(ce.children), 3); err != nil {
					return 0, err
				}
				cls, err := newClass(&a, ce.children)
				if err != nil {
					return 0, err
				}
				cost := costClass + costClassField*int64(ce.children)
				s.metaCost += cost
				if err := s.charge(cost); err != nil {
					return 0, err
				}
				for range ce.children {
					fe, err := r.element(strs, &a)
					if err != nil {
						return 0, err
					}
					s.metaCost += attrMapCost(fe.attrs)
					if fe.name == "field" {
						f, err := newField(&a)
						if err != nil {
							return 0, err
						}
						cls.Fields = append(cls.Fields, f)
					}
					for range fe.children {
						if _, err := r.element(strs, nil); err != nil {
							return 0, err
						}
					}
				}
				s.tm.IDMap[cls.ID] = cls
				s.tm.NameMap[cls.Name] = cls
			}
		case "region":
		default:
			return 0, fmt.Errorf("unexpected element %s", e.name)
		}
	}
	return r.pos, s.checkTypes()
}

// checkTypes mirrors the parser's: the types it needs, and which class each
// generated parser reads.
func (s *scanner) checkTypes() error {
	tm := &s.tm
	id := func(name string, dst *def.TypeID) error {
		c := tm.NameMap[name]
		if c == nil {
			return fmt.Errorf("missing %q", name)
		}
		*dst = c.ID
		return nil
	}
	for _, t := range []struct {
		name string
		dst  *def.TypeID
	}{
		{"int", &tm.T_INT}, {"long", &tm.T_LONG}, {"short", &tm.T_SHORT}, {"float", &tm.T_FLOAT},
		{"boolean", &tm.T_BOOLEAN}, {"java.lang.String", &tm.T_STRING},
		{"jdk.types.FrameType", &tm.T_FRAME_TYPE}, {"jdk.types.ThreadState", &tm.T_THREAD_STATE},
		{"java.lang.Thread", &tm.T_THREAD}, {"java.lang.Class", &tm.T_CLASS},
		{"jdk.types.Method", &tm.T_METHOD}, {"jdk.types.Package", &tm.T_PACKAGE},
		{"jdk.types.Symbol", &tm.T_SYMBOL}, {"jdk.types.StackTrace", &tm.T_STACK_TRACE},
		{"jdk.types.ClassLoader", &tm.T_CLASS_LOADER}, {"jdk.types.StackFrame", &tm.T_STACK_FRAME},
	} {
		if err := id(t.name, t.dst); err != nil {
			return err
		}
	}
	s.plans = map[planKey]*plan{}
	s.nested = map[*def.Class][]nkind{}
	s.frames = s.plan(tm.NameMap["jdk.types.StackFrame"], roleStackFrame)
	s.eventPlans = map[def.TypeID]*plan{}
	for _, e := range eventNames {
		c := tm.NameMap[e.name]
		id := def.TypeID(-1) // the parser's id of a type the recording lacks
		if c != nil {
			id = c.ID
		}
		if _, ok := s.eventPlans[id]; ok {
			continue // the first case of the switch wins
		}
		var p *plan // nil: the parser skips the event
		if c != nil {
			p = s.plan(c, e.role)
		}
		s.eventPlans[id] = p
	}
	return nil
}

// kind is how the generated code reads one value of a field, decided in the
// order of its switch: a pool reference first, then String, int, long,
// short, boolean, float, a stack frame (stack traces only), else a nested
// object.
type kind uint8

const (
	kPool kind = iota
	kString
	kU32 // int, and float (read as a varint)
	kLong
	kShort
	kBool
	kFrame
	kObject
)

// nkind is how an object nested in a field reads its own fields.
type nkind uint8

const (
	nU32 nkind = iota // pool reference (32-bit), int, float
	nString
	nLong
	nShort
	nBool
	nNested // the parser fails: "nested objects not implemented"
)

type fieldPlan struct {
	kind  kind
	array bool
	slot  slot
	// frames: an array of stack frames in a stack trace, which the parser
	// allocates; it panics when the field is not the one it binds.
	frames, unbound bool
	per             int        // least bytes of one array element
	nested          []nkind    // kObject: the nested class's fields; nil: the parser fails on reaching it
	typ             def.TypeID // kObject: the nested class's id
}

type plan struct {
	role   role
	fields []fieldPlan
	min    int // least bytes of one entry's fields
}

type planKey struct {
	c *def.Class
	r role
}

// plan decides once per chunk how the parser reads class c in role r: the
// kind of each field and which fields it binds (a field binds only with the
// exact name, type, pool and array flags).
func (s *scanner) plan(c *def.Class, r role) *plan {
	if p := s.plans[planKey{c, r}]; p != nil {
		return p
	}
	tm := &s.tm
	type want struct {
		name      string
		typ       def.TypeID
		pool, arr bool
		slot      slot
	}
	long := func(name string, sl slot) want { return want{name, tm.T_LONG, false, false, sl} }
	var ws []want
	switch r {
	case roleMethod:
		ws = []want{{"type", tm.T_CLASS, true, false, slotType}, {"name", tm.T_SYMBOL, true, false, slotName}}
	case roleClass:
		ws = []want{{"name", tm.T_SYMBOL, true, false, slotName}}
	case roleSymbol:
		ws = []want{{"string", tm.T_STRING, false, false, slotString}}
	case roleStackTrace:
		ws = []want{{"frames", tm.T_STACK_FRAME, false, true, slotFrames}}
	case roleStackFrame:
		ws = []want{{"method", tm.T_METHOD, true, false, slotMethod}, {"lineNumber", tm.T_INT, false, false, slotLine}}
	case roleActiveSetting:
		ws = []want{{"name", tm.T_STRING, false, false, slotSettingName}, {"value", tm.T_STRING, false, false, slotSettingValue}}
	case roleSkip, roleOther, roleFree:
	default: // sample events
		ws = []want{{"stackTrace", tm.T_STACK_TRACE, true, false, slotStackTrace}}
		if correlated(r) {
			ws = append(ws, long("contextId", slotContext), long("spanId", slotSpan), long("spanName", slotSpanName),
				long("traceIdHi", slotTraceHi), long("traceIdLo", slotTraceLo))
		}
	}
	p := &plan{role: r, fields: make([]fieldPlan, len(c.Fields))}
	s.plans[planKey{c, r}] = p
	for i, f := range c.Fields {
		fp := &p.fields[i]
		fp.array = f.Array
		for _, w := range ws {
			if f.Equals(&def.Field{Name: w.name, Type: w.typ, ConstantPool: w.pool, Array: w.arr}) {
				fp.slot = w.slot
			}
		}
		switch {
		case f.ConstantPool:
			fp.kind = kPool
		case f.Type == tm.T_STRING:
			fp.kind = kString
		case f.Type == tm.T_INT:
			fp.kind = kU32
		case f.Type == tm.T_LONG:
			fp.kind = kLong
		case f.Type == tm.T_SHORT:
			fp.kind = kShort
		case f.Type == tm.T_BOOLEAN:
			fp.kind = kBool
		case f.Type == tm.T_FLOAT:
			fp.kind = kU32
		case r == roleStackTrace && f.Type == tm.T_STACK_FRAME:
			fp.kind = kFrame
		default:
			fp.kind = kObject
			fp.typ = f.Type
			if nc := tm.IDMap[f.Type]; nc != nil && len(nc.Fields) > 0 {
				fp.nested = s.nestedKinds(nc)
			}
		}
		fp.per = 1
		if r == roleStackTrace && f.Array && f.Type == tm.T_STACK_FRAME {
			fp.frames = true
			fp.unbound = fp.slot != slotFrames
		}
		if fp.kind == kFrame {
			fp.per = len(tm.NameMap["jdk.types.StackFrame"].Fields)
		}
		if !fp.array {
			p.min += fp.per
		} else {
			p.min++
		}
	}
	return p
}

// nestedKinds is how an object of class c nested in a field reads its
// fields; once per class and chunk, however many fields have it.
func (s *scanner) nestedKinds(c *def.Class) []nkind {
	if ks, ok := s.nested[c]; ok {
		return ks
	}
	tm := &s.tm
	ks := make([]nkind, len(c.Fields))
	for i, nf := range c.Fields {
		switch {
		case nf.ConstantPool:
			ks[i] = nU32
		case nf.Type == tm.T_STRING:
			ks[i] = nString
		case nf.Type == tm.T_INT, nf.Type == tm.T_FLOAT:
			ks[i] = nU32
		case nf.Type == tm.T_LONG:
			ks[i] = nLong
		case nf.Type == tm.T_SHORT:
			ks[i] = nShort
		case nf.Type == tm.T_BOOLEAN:
			ks[i] = nBool
		default:
			ks[i] = nNested
		}
	}
	s.nested[c] = ks
	return ks
}

// correlated reports whether the conversion keys an event's samples by its
// span and context ids (parse in jfr-parser's pprof/parser.go).
func correlated(r role) bool {
	switch r {
	case roleExecutionSample, roleWallClockSample, roleAllocInNewTLAB, roleAllocOutsideTLAB, roleMonitorEnter:
		return true
	}
	return false
}

// constantPools mirrors readConstantPool from pos, inside the chunk
// [start, end).
func (s *scanner) constantPools(pos, start, end int) error {
	for {
		if pos < start || pos >= end {
			return fmt.Errorf("constant pool at %d outside the chunk [%d, %d)", pos, start, end)
		}
		// Each constant pool must start and lie in bytes nothing else was
		// read as: the parser would follow a loop forever, and
		// overlapping pools would let it read the same bytes many times.
		if s.read.has(pos - start) {
			return errLoop
		}
		r := &reader{b: s.b, pos: pos, end: end}
		var delta uint64
		for i := range 5 {
			v, err := r.u64()
			if err != nil {
				return err
			}
			if i == 4 {
				delta = v
			}
		}
		if _, err := r.u32(); err != nil { // flush mask
			return err
		}
		nt, err := r.u32()
		if err != nil {
			return err
		}
		for range nt {
			t, err := r.u64()
			if err != nil {
				return err
			}
			c := s.tm.IDMap[def.TypeID(t)]
			if c == nil {
				return fmt.Errorf("unknown type %d", def.TypeID(t))
			}
			if err := s.constants(r, c); err != nil {
				return fmt.Errorf("error reading %s (type %d): %w", c.Name, c.ID, err)
			}
		}
		if !s.read.mark(pos-start, r.pos-start) {
			return errLoop
		}
		if delta == 0 {
			return nil
		}
		pos += int(int64(delta))
		if pos <= 0 {
			return nil
		}
	}
}

// constants mirrors readConstants: the known types are read by their
// generated parser with the class of that name, others are skipped with
// the class of their id.
func (s *scanner) constants(r *reader, c *def.Class) error {
	nm := s.tm.NameMap
	switch c.Name {
	case "jdk.types.ChunkHeader":
		if r.left() < chunkHeaderSize {
			return io.ErrUnexpectedEOF
		}
		r.pos += chunkHeaderSize
		return nil
	case "java.lang.String":
		n, err := r.u32()
		if err != nil {
			return err
		}
		if _, err := r.count(n, 2); err != nil {
			return err
		}
		for range n {
			if _, err := r.u64(); err != nil {
				return err
			}
			if _, _, err := r.fieldString(false); err != nil {
				return err
			}
		}
		return nil
	case "jdk.types.Method":
		return s.list(r, s.plan(nm[c.Name], roleMethod))
	case "java.lang.Class":
		return s.list(r, s.plan(nm[c.Name], roleClass))
	case "jdk.types.Symbol":
		return s.list(r, s.plan(nm[c.Name], roleSymbol))
	case "jdk.types.StackTrace":
		return s.list(r, s.plan(nm[c.Name], roleStackTrace))
	case "jdk.types.FrameType", "jdk.types.ThreadState", "java.lang.Thread", "jdk.types.Package", "profiler.types.LogLevel":
		return s.list(r, s.plan(nm[c.Name], roleOther))
	default:
		// The parser binds the class's fields afresh for every such list:
		// a class of many fields named by many 2-byte lists would cost it
		// fields x lists.
		if s.skipFields += len(c.Fields); s.skipFields > s.chunkSize {
			return fmt.Errorf("constant pools skip %d fields, more than the chunk's %d bytes", s.skipFields, s.chunkSize)
		}
		return s.list(r, s.plan(c, roleSkip))
	}
}

// list reads a constant-pool list: a count, then an id and the fields of
// each entry.
func (s *scanner) list(r *reader, p *plan) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	if _, err := r.count(n, 1+p.min); err != nil {
		return err
	}
	t := &s.temps[p.role]
	switch {
	case p.role == roleMethod && s.methods == nil:
		s.methods = make(map[uint64][2]uint64, n)
	case p.role == roleClass && s.classes == nil:
		s.classes = make(map[uint64]uint64, n)
	case p.role == roleSymbol && s.symbols == nil:
		s.symbols = make(map[uint64]int, n)
	case p.role == roleStackTrace && s.stacks == nil:
		s.stacks = make(map[uint64]int, n)
	}
	for range n {
		id, err := r.u64()
		if err != nil {
			return err
		}
		if err := s.fields(r, p); err != nil {
			return err
		}
		switch p.role {
		case roleMethod:
			s.methods[id] = [2]uint64{t.v[slotType], t.v[slotName]}
		case roleClass:
			s.classes[id] = t.v[slotName]
		case roleSymbol:
			s.symbols[id] = int(t.v[slotString])
		case roleStackTrace:
			s.stacks[id] = int(t.v[slotFrames])
		}
	}
	return nil
}

// fields reads one entry (or event) as its generated parser does, keeping
// bound values in the role's temp.
func (s *scanner) fields(r *reader, p *plan) error {
	t := &s.temps[p.role]
	for i := range p.fields {
		fp := &p.fields[i]
		n := 1
		if fp.array {
			v, err := r.u32()
			if err != nil {
				return err
			}
			if fp.frames {
				if fp.unbound {
					return errors.New("stack frames in a field the parser does not bind")
				}
				if fp.per == 0 && v > 0 {
					return errors.New("stack frames without fields")
				}
				t.v[slotFrames] = 0
			}
			if n, err = r.count(v, fp.per); err != nil {
				return err
			}
		}
		for range n {
			var v uint64
			var err error
			switch fp.kind {
			case kPool, kLong:
				v, err = r.u64()
			case kU32:
				var v32 uint32
				v32, err = r.u32()
				v = uint64(v32)
			case kString:
				var str string
				var size int
				str, size, err = r.fieldString(fp.slot == slotSettingName || fp.slot == slotSettingValue)
				v = uint64(size)
				if fp.slot != slotNone {
					t.s[fp.slot] = str
				}
			case kShort:
				err = r.u16()
			case kBool:
				_, err = r.u8()
			case kFrame:
				if err = s.fields(r, s.frames); err == nil && fp.slot == slotFrames {
					t.v[slotFrames]++
					ft := &s.temps[roleStackFrame]
					s.locations.add(uint64(uint32(ft.v[slotMethod]))<<32 | uint64(uint32(ft.v[slotLine])))
				}
				if err != nil {
					return err
				}
				continue
			case kObject:
				err = s.object(r, fp)
			}
			if err != nil {
				return err
			}
			if fp.slot != slotNone {
				t.v[fp.slot] = v
			}
		}
	}
	return nil
}

// object reads an object nested in a field as the generated code does: one
// level deep, pool references as 32-bit varints, and for an array field one
// more count per element.
func (s *scanner) object(r *reader, fp *fieldPlan) error {
	if fp.nested == nil {
		return fmt.Errorf("unknown type %d %+v", fp.typ, s.tm.IDMap[fp.typ])
	}
	n := 1
	if fp.array {
		v, err := r.u32()
		if err != nil {
			return err
		}
		if n, err = r.count(v, len(fp.nested)); err != nil {
			return err
		}
	}
	for range n {
		for _, k := range fp.nested {
			var err error
			switch k {
			case nU32:
				_, err = r.u32()
			case nString:
				_, _, err = r.fieldString(false)
			case nLong:
				_, err = r.u64()
			case nShort:
				err = r.u16()
			case nBool:
				_, err = r.u8()
			default:
				err = errors.New("nested objects not implemented. ")
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// events mirrors ParseEvent over one chunk's events, and follows what the
// conversion makes of each.
func (s *scanner) events(pos, end int) error {
	for pos < end {
		r := reader{b: s.b, pos: pos, end: end}
		size, err := r.u64()
		if err != nil {
			return err
		}
		if size == 0 {
			return def.ErrIntOverflow
		}
		if uint64(end-pos) < size {
			return fmt.Errorf("invalid event size %d at position %d", size, pos)
		}
		typ, err := r.u64()
		if err != nil {
			return err
		}
		r.end = pos + int(size) // an event's fields stay inside it
		if p := s.eventPlans[def.TypeID(typ)]; p != nil {
			if err := s.fields(&r, p); err != nil {
				return err
			}
			s.sample(p.role)
		}
		pos += int(size)
	}
	return nil
}

// sample follows one parsed event through the conversion's parse loop: the
// builders it may add a sample to, and what a new sample holds.
func (s *scanner) sample(rl role) {
	t := &s.temps[rl]
	var bs [2]int
	nb := 1
	switch rl {
	case roleActiveSetting:
		if t.s[slotSettingName] == "event" {
			s.event = t.s[slotSettingValue]
		}
		return
	case roleFree:
		return
	case roleExecutionSample: // CPU unless sleeping, wall too in a wall recording
		bs[0] = bCPU
		if s.event == "wall" {
			bs[1], nb = bWall, 2
		}
	case roleWallClockSample:
		bs[0] = bWall
		if s.event == "wall" {
			bs[1], nb = bCPU, 2
		}
	case roleAllocInNewTLAB:
		bs[0] = bInTLAB
	case roleAllocOutsideTLAB:
		bs[0] = bOutTLAB
	case roleAllocSample:
		bs[0] = bAllocSample
	case roleMonitorEnter:
		bs[0] = bLock
	case roleThreadPark:
		bs[0] = bThreadPark
	case roleLiveObject:
		bs[0] = bLiveObject
	case roleMalloc:
		bs[0] = bMalloc
	default:
		return
	}
	ref := t.v[slotStackTrace]
	frames, ok := s.stacks[ref]
	if !ok {
		return // the conversion finds no stack: no sample
	}
	var corr [5]uint64
	if correlated(rl) {
		corr = [5]uint64{t.v[slotContext], t.v[slotSpan], t.v[slotSpanName], t.v[slotTraceHi], t.v[slotTraceLo]}
	}
	var key [7 * 8]byte
	binary.LittleEndian.PutUint64(key[8:], ref)
	for i, v := range corr {
		binary.LittleEndian.PutUint64(key[16+8*i:], v)
	}
	for _, b := range bs[:nb] {
		binary.LittleEndian.PutUint64(key[:], uint64(b))
		s.used[b] = true
		if !s.samples.add(maphash.Bytes(s.seed, key[:])) {
			continue
		}
		labels := 0
		if ctx := s.labels.GetContexts()[int64(corr[0])]; ctx != nil {
			labels += len(ctx.Labels)
		}
		for _, v := range corr[1:3] {
			if v != 0 {
				labels++
			}
		}
		if corr[3] != 0 || corr[4] != 0 {
			labels++
		}
		s.perSample += costSample + costFrame*int64(frames) + costLabel*int64(labels)
	}
}
