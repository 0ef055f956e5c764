package legacy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// Limits bound what a conversion may build; the zero value bounds nothing.
type Limits struct {
	// MaxProfileSize is max_profile_size_bytes: a profile whose pprof would
	// be larger is refused with ErrTooLarge as soon as that is certain,
	// before it is built (the pipeline would refuse it anyway).
	MaxProfileSize int64
	// MaxNameLen and MaxChildren are max_profile_symbol_value_length and
	// max_profile_stacktrace_samples, which Pyroscope's tree decoder applies
	// to each node's name and child count.
	MaxNameLen, MaxChildren int
	// Reserve charges the in-flight budget before memory is taken; its
	// error is returned unchanged (nil: nothing is charged).
	Reserve func(n int) error
}

// ErrInvalidUTF8 is a frame name that is not UTF-8: Pyroscope's protobuf
// encoder refuses to encode the profile, and the request fails as if its
// name were wrong (400 for the binary formats).
var ErrInvalidUTF8 = errors.New("string field contains invalid UTF-8")

// Approximate bytes of memory per thing a stackSet builds, charged to the
// budget (over-estimates: slice growth and map overhead included).
const (
	chargeNode   = 64  // a stack node: arrays and its child-index entry
	chargeFrame  = 96  // a distinct frame name (plus its bytes when copied)
	chargeSample = 128 // a sample, plus 8 per frame of its stack
	chargeUsed   = 256 // a frame in the output: location, line, function
	chargeStep   = 256 << 10
)

// workPerByte bounds the bytes of frame names hashed per byte of body:
// prefix-compressed formats (trie) can name the same long frame again and
// again; Pyroscope's cost there grows with the square of the body.
const workPerByte = 64

// stackSet holds the stacks of one profile as a tree of frames: a stack is
// a node, found from its parent and leaf frame in O(1), so a decoder that
// walks a prefix tree pays per node, not per frame of each stack. Values
// are summed per stack as Pyroscope's tree sums them, in uint64.
type stackSet struct {
	lim Limits

	frameIndex map[string]uint32
	frameNames []string
	frameLoc   []uint32 // location id in the output; 0: not used yet

	// Node 0 is the empty stack.
	nodeParent []uint32
	nodeFrame  []uint32
	nodeDepth  []uint32
	nodeSample []int32 // -1: no sample
	children   map[uint64]uint32

	sampleNode []uint32
	sampleVal  []uint64

	size     int64 // a lower bound of the encoded pprof's size
	work     int64 // frame bytes hashed
	maxWork  int64
	pending  int // charge not yet reserved
	err      error
	nextLoc  uint32
	overflow bool
}

func newStackSet(lim Limits, bodyLen int) *stackSet {
	// Sized for about a stack node per 64 bytes of body (real tries and
	// trees: 30-100), to spare most of the maps' growth.
	hint := min(bodyLen/64, 1<<20) + 1
	s := &stackSet{
		lim:        lim,
		frameIndex: make(map[string]uint32, hint/4),
		nodeParent: append(make([]uint32, 0, hint), 0),
		nodeFrame:  append(make([]uint32, 0, hint), 0),
		nodeDepth:  append(make([]uint32, 0, hint), 0),
		nodeSample: append(make([]int32, 0, hint), -1),
		children:   make(map[uint64]uint32, hint),
		maxWork:    workPerByte*int64(bodyLen) + 1<<20,
	}
	s.charge(hint * chargeNode)
	return s
}

// fail keeps the first error: decoders check s.err as they go.
func (s *stackSet) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

func (s *stackSet) charge(n int) {
	s.pending += n
	if s.pending >= chargeStep {
		s.flushCharge()
	}
}

func (s *stackSet) flushCharge() {
	if s.pending > 0 && s.lim.Reserve != nil && s.err == nil {
		if err := s.lim.Reserve(s.pending); err != nil {
			s.fail(err)
		}
	}
	s.pending = 0
}

// frameBytes interns a frame name given as bytes (copied when new).
func (s *stackSet) frameBytes(name []byte) uint32 {
	s.work += int64(len(name))
	if s.work > s.maxWork {
		s.fail(&ParseError{"stacks", fmt.Errorf("frames expand past %d bytes", s.maxWork)})
	}
	if id, ok := s.frameIndex[string(name)]; ok { // no allocation for the lookup
		return id
	}
	s.charge(len(name))
	return s.newFrame(string(name))
}

// frameString interns a frame name the caller already holds as a string.
func (s *stackSet) frameString(name string) uint32 {
	if id, ok := s.frameIndex[name]; ok {
		return id
	}
	return s.newFrame(name)
}

func (s *stackSet) newFrame(name string) uint32 {
	id := uint32(len(s.frameNames))
	s.frameNames = append(s.frameNames, name)
	s.frameLoc = append(s.frameLoc, 0)
	s.frameIndex[name] = id
	s.charge(chargeFrame)
	return id
}

// child is the stack node of parent's stack with frame f on top.
func (s *stackSet) child(parent, f uint32) uint32 {
	k := uint64(parent)<<32 | uint64(f)
	if n, ok := s.children[k]; ok {
		return n
	}
	if len(s.nodeParent) == math.MaxUint32 {
		s.fail(&ParseError{"stacks", errors.New("too many stacks")})
		return 0
	}
	n := uint32(len(s.nodeParent))
	s.nodeParent = append(s.nodeParent, parent)
	s.nodeFrame = append(s.nodeFrame, f)
	s.nodeDepth = append(s.nodeDepth, s.nodeDepth[parent]+1)
	s.nodeSample = append(s.nodeSample, -1)
	s.children[k] = n
	s.charge(chargeNode)
	return n
}

// add adds v to the sample of stack node n. A new sample counts its stack
// and its new frames toward the output's size, and fails with ErrTooLarge
// once that passes the limit.
func (s *stackSet) add(n uint32, v uint64) {
	if v == 0 || s.err != nil {
		return
	}
	if i := s.nodeSample[n]; i >= 0 {
		sum := s.sampleVal[i] + v
		if sum < v {
			s.overflow = true
		}
		s.sampleVal[i] = sum
		return
	}
	depth := s.nodeDepth[n]
	s.size += int64(depth) + 2
	s.charge(chargeSample + 8*int(depth))
	for m := n; m != 0; m = s.nodeParent[m] {
		f := s.nodeFrame[m]
		if s.frameLoc[f] == 0 {
			s.frameLoc[f] = math.MaxUint32 // used; numbered in build
			s.size += int64(len(s.frameNames[f])) + 10
			s.charge(chargeUsed + len(s.frameNames[f]))
		}
	}
	if max := s.lim.MaxProfileSize; max > 0 && s.size > max {
		s.fail(fmt.Errorf("%w of %d bytes", ErrTooLarge, max))
		return
	}
	s.nodeSample[n] = int32(len(s.sampleVal))
	s.sampleNode = append(s.sampleNode, n)
	s.sampleVal = append(s.sampleVal, v)
}

// build encodes the profile as Pyroscope's tree does (Pprof in
// pkg/og/storage/tree/pprof.go at 3fe6a45): one fake mapping, one location
// and one function (name and system name) per frame name, samples with
// their value scaled, leaf first. Samples whose value is 0 are left out.
// It writes the protobuf itself: a googlev1.Profile would take a few
// allocations per sample and location and another pass to size it.
func (s *stackSet) build(t pprofType) ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.overflow {
		return nil, &ParseError{"stacks", errors.New("sum of values overflows")}
	}
	// The string table: "", the type strings, then each used frame's name
	// in the order samples first use it; a frame named like a type string
	// shares its entry, as Pyroscope's table is deduplicated.
	strs := []string{""}
	str := func(v string) uint64 {
		if i := slices.Index(strs, v); i >= 0 { // at most 5 strings here
			return uint64(i)
		}
		strs = append(strs, v)
		return uint64(len(strs) - 1)
	}
	stType, stUnit := str(t.sampleType), str(t.unit)
	var ptType, ptUnit uint64
	if t.period != 0 {
		ptType, ptUnit = str("cpu"), str("nanoseconds")
	}
	nFixed := len(strs)
	// Pass 1: number the used frames (location = function id) in order of
	// first use, check their names, and size everything.
	var locs []uint32               // frames by location id - 1
	nameOf := make([]uint64, 0, 64) // string index by location id - 1
	size := 0
	sampleLen := make([]int, 0, len(s.sampleVal)) // length of each sample's message body
	idsLen := make([]int, 0, len(s.sampleVal))    // and of its location ids
	if t.scale != 0 {
		for i, v := range s.sampleVal {
			if v > math.MaxInt64/t.scale {
				return nil, &ParseError{"stacks", fmt.Errorf("value %d overflows when scaled by %d", v, t.scale)}
			}
			n := s.sampleNode[i]
			ids := 0
			for m := n; m != 0; m = s.nodeParent[m] {
				f := s.nodeFrame[m]
				if s.frameLoc[f] == math.MaxUint32 {
					name := s.frameNames[f]
					if !utf8.ValidString(name) {
						return nil, fmt.Errorf("%w: frame %q", ErrInvalidUTF8, name)
					}
					locs = append(locs, f)
					s.frameLoc[f] = uint32(len(locs))
					si := slices.Index(strs[:nFixed], name)
					if si < 0 {
						si = len(strs)
						strs = append(strs, name)
					}
					nameOf = append(nameOf, uint64(si))
				}
				ids += sov(uint64(s.frameLoc[f]))
			}
			idsLen = append(idsLen, ids)
			body := 0
			if ids > 0 {
				body += 1 + sov(uint64(ids)) + ids
			}
			vl := sov(v * t.scale)
			body += 1 + sov(uint64(vl)) + vl
			sampleLen = append(sampleLen, body)
			size += 1 + sov(uint64(body)) + body
		}
	}
	vt := func(typ, unit uint64) int { return 1 + sov(typ) + 1 + sov(unit) }
	size += 1 + 1 + vt(stType, stUnit) // sample_type
	size += 1 + 1 + 2                  // mapping {id: 1}
	for i := range locs {
		id := uint64(i + 1)
		line := 1 + sov(id)
		body := 1 + sov(id) + 2 + 1 + 1 + line
		size += 1 + sov(uint64(body)) + body
		fn := 1 + sov(id) + 2*(1+sov(nameOf[i]))
		size += 1 + sov(uint64(fn)) + fn
	}
	for _, v := range strs {
		size += 1 + sov(uint64(len(v))) + len(v)
	}
	if t.from != 0 {
		size += 1 + sov(uint64(t.from))
	}
	if t.period != 0 {
		size += 1 + 1 + vt(ptType, ptUnit) + 1 + sov(uint64(t.period))
	}
	s.charge(size)
	s.flushCharge()
	if s.err != nil {
		return nil, s.err
	}
	// Pass 2: write it, in field order.
	b := make([]byte, 0, size)
	b = append(b, 0x0a, byte(vt(stType, stUnit)), 0x08)
	b = binary.AppendUvarint(b, stType)
	b = append(b, 0x10)
	b = binary.AppendUvarint(b, stUnit)
	if t.scale != 0 {
		for i, v := range s.sampleVal {
			b = append(b, 0x12)
			b = binary.AppendUvarint(b, uint64(sampleLen[i]))
			n := s.sampleNode[i]
			if n != 0 {
				b = append(b, 0x0a)
				b = binary.AppendUvarint(b, uint64(idsLen[i]))
				for m := n; m != 0; m = s.nodeParent[m] {
					b = binary.AppendUvarint(b, uint64(s.frameLoc[s.nodeFrame[m]]))
				}
			}
			v *= t.scale
			b = append(b, 0x12, byte(sov(v)))
			b = binary.AppendUvarint(b, v)
		}
	}
	b = append(b, 0x1a, 2, 0x08, 1)
	for i := range locs {
		id := uint64(i + 1)
		line := 1 + sov(id)
		b = append(b, 0x22)
		b = binary.AppendUvarint(b, uint64(1+sov(id)+2+1+1+line))
		b = append(b, 0x08)
		b = binary.AppendUvarint(b, id)
		b = append(b, 0x10, 1, 0x22, byte(line), 0x08)
		b = binary.AppendUvarint(b, id)
	}
	for i := range locs {
		id := uint64(i + 1)
		b = append(b, 0x2a)
		b = binary.AppendUvarint(b, uint64(1+sov(id)+2*(1+sov(nameOf[i]))))
		b = append(b, 0x08)
		b = binary.AppendUvarint(b, id)
		b = append(b, 0x10)
		b = binary.AppendUvarint(b, nameOf[i])
		b = append(b, 0x18)
		b = binary.AppendUvarint(b, nameOf[i])
	}
	for _, v := range strs {
		b = append(b, 0x32)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	if t.from != 0 {
		b = append(b, 0x48)
		b = binary.AppendUvarint(b, uint64(t.from))
	}
	if t.period != 0 {
		b = append(b, 0x5a, byte(vt(ptType, ptUnit)), 0x08)
		b = binary.AppendUvarint(b, ptType)
		b = append(b, 0x10)
		b = binary.AppendUvarint(b, ptUnit)
		b = append(b, 0x60)
		b = binary.AppendUvarint(b, uint64(t.period))
	}
	if len(b) != size {
		return nil, fmt.Errorf("pprof encoding: wrote %d bytes, sized %d", len(b), size)
	}
	return b, nil
}

// sov is the size of v as a varint.
func sov(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// keyWalker follows a stack given as a key "root;...;leaf" that grows and
// shrinks at its end, as the tree and trie decoders produce it, and finds
// its stack node without re-reading the key: the frames closed by each ';'
// are kept with their nodes. A key splits into frames as Pyroscope's tree
// Insert splits it: at every ';', except that one trailing ';' ends the
// key without an empty leaf frame, and the empty key is the empty stack.
type keyWalker struct {
	s    *stackSet
	key  []byte
	seps []int    // positions of the ';' in key
	at   []uint32 // at[i]: stack node of the frames before seps[i]; at[0] = 0
}

func newKeyWalker(s *stackSet) *keyWalker {
	return &keyWalker{s: s, at: []uint32{0}}
}

// open is where the frame after the last ';' starts.
func (w *keyWalker) open() int {
	if len(w.seps) == 0 {
		return 0
	}
	return w.seps[len(w.seps)-1] + 1
}

func (w *keyWalker) append(p []byte) {
	start := len(w.key)
	w.key = append(w.key, p...)
	w.s.charge(len(p))
	for i := bytes.IndexByte(p, ';'); i >= 0; i = next(p, i) {
		pos := start + i
		f := w.s.frameBytes(w.key[w.open():pos])
		n := w.s.child(w.at[len(w.at)-1], f)
		w.seps = append(w.seps, pos)
		w.at = append(w.at, n)
		w.s.charge(16)
	}
}

// next is the index of the next ';' in p after i, or -1.
func next(p []byte, i int) int {
	if j := bytes.IndexByte(p[i+1:], ';'); j >= 0 {
		return i + 1 + j
	}
	return -1
}

// truncate cuts the key to n bytes (n <= len(key)).
func (w *keyWalker) truncate(n int) {
	w.key = w.key[:n]
	for len(w.seps) > 0 && w.seps[len(w.seps)-1] >= n {
		w.seps = w.seps[:len(w.seps)-1]
		w.at = w.at[:len(w.at)-1]
	}
}

// node is the stack node of the current key.
func (w *keyWalker) node() uint32 {
	if len(w.key) == 0 {
		return 0
	}
	base := w.at[len(w.at)-1]
	leaf := w.key[w.open():]
	if len(leaf) == 0 { // a trailing ';'
		return base
	}
	return w.s.child(base, w.s.frameBytes(leaf))
}
