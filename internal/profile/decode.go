package profile

import (
	"errors"
	"math"
	"unsafe"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
)

// The decoder below fills the api module's profilev1 types like UnmarshalVT
// does, but allocates them from a few slabs instead of one object per
// message and lets strings alias the input buffer. That input must therefore
// outlive the profile and must not be modified while it is in use; strings
// that leave the pipeline (series labels) are cloned. Anything it does not
// handle (groups, malformed data) makes Decode fall back to UnmarshalVT,
// which also gives the error text clients see.

var errFallback = errors.New("fast decode: fall back")

// slab hands out pointers to T from blocks allocated in bulk.
type slab[T any] struct{ blocks[T] }

func (s *slab[T]) get(d *decoder, hint int) (*T, error) {
	if len(s.cur) == cap(s.cur) {
		n := max(hint, 16)
		var t T
		if err := d.charge(n * int(unsafe.Sizeof(t))); err != nil {
			return nil, err
		}
		s.next(n)
	}
	s.cur = s.cur[:len(s.cur)+1]
	return &s.cur[len(s.cur)-1], nil
}

type decoder struct {
	buf       []byte
	samples   slab[profilev1.Sample]
	labels    slab[profilev1.Label]
	locations slab[profilev1.Location]
	lines     slab[profilev1.Line]
	functions slab[profilev1.Function]
	mappings  slab[profilev1.Mapping]
	types     slab[profilev1.ValueType]
	linePtrs  []*profilev1.Line
	labelPtrs []*profilev1.Label
	u64       blocks[uint64]
	i64       blocks[int64]
	// size hints, from the buffer size
	hint, sampleHint int
	// headerOnly skips samples, mappings and locations (see DecodeHeader).
	headerOnly bool

	// The bounds of DecodeWithin (nil otherwise) and what follows from them.
	bounds                *Bounds
	maxSamples, maxLabels int // 0: none
	paid                  int // decoded bytes the caller charged already, not yet used
	used                  int // decoded bytes in all, paid or reserved
	overLabels            int // set with errLabels: the labels of the sample that passed the limit
}

// charge accounts for n bytes the decoder is about to take: from what the
// caller paid first, then from the budget. Blocks are counted at the size
// a fresh decoder would allocate, even when a pooled Arena reuses a larger
// spare one, so the charge does not depend on what the Arena decoded before.
func (d *decoder) charge(n int) error {
	d.used += n
	if n <= d.paid {
		d.paid -= n
		return nil
	}
	n -= d.paid
	d.paid = 0
	if d.bounds == nil || d.bounds.Reserve == nil {
		return nil
	}
	return d.bounds.Reserve(n)
}

// add appends v to *s, charging the slice's growth before it happens.
func add[T any](d *decoder, s *[]T, v T) error {
	if len(*s) == cap(*s) {
		n := max(2*cap(*s), 8)
		if err := d.charge(n * int(unsafe.Sizeof(v))); err != nil {
			return err
		}
		g := make([]T, len(*s), n)
		copy(g, *s)
		*s = g
	}
	*s = append(*s, v)
	return nil
}

func readVarint(b []byte, i int) (uint64, int, bool) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if i >= len(b) {
			return 0, 0, false
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i, true
		}
	}
	return 0, 0, false
}

// field reads one tag; for wire type 2 it also returns the payload bounds.
func (d *decoder) field(b []byte, i int) (num int, wt int, v uint64, start, end, next int, err error) {
	tag, i, ok := readVarint(b, i)
	if !ok {
		return 0, 0, 0, 0, 0, 0, errFallback
	}
	// UnmarshalVT truncates field numbers to int32; leave any that do not
	// fit to it rather than disagree on what they mean.
	if tag>>3 == 0 || tag>>3 > math.MaxInt32 {
		return 0, 0, 0, 0, 0, 0, errFallback
	}
	num, wt = int(tag>>3), int(tag&7)
	switch wt {
	case 0:
		v, i, ok = readVarint(b, i)
		if !ok {
			return 0, 0, 0, 0, 0, 0, errFallback
		}
		return num, wt, v, 0, 0, i, nil
	case 1:
		if i+8 > len(b) {
			return 0, 0, 0, 0, 0, 0, errFallback
		}
		return num, wt, 0, 0, 0, i + 8, nil
	case 5:
		if i+4 > len(b) {
			return 0, 0, 0, 0, 0, 0, errFallback
		}
		return num, wt, 0, 0, 0, i + 4, nil
	case 2:
		n, j, ok := readVarint(b, i)
		if !ok || n > uint64(len(b)-j) {
			return 0, 0, 0, 0, 0, 0, errFallback
		}
		return num, wt, 0, j, j + int(n), j + int(n), nil
	}
	return 0, 0, 0, 0, 0, 0, errFallback // groups: leave them to UnmarshalVT
}

func (d *decoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// take returns an empty slice with capacity n carved from arena, which
// moves to another block of at least hint elements when it runs short.
func take[T any](d *decoder, arena *blocks[T], n, hint int) ([]T, error) {
	if cap(arena.cur)-len(arena.cur) < n {
		var t T
		if err := d.charge(max(n, hint) * int(unsafe.Sizeof(t))); err != nil {
			return nil, err
		}
		arena.next(max(n, hint))
	}
	l := len(arena.cur)
	arena.cur = arena.cur[:l+n]
	return arena.cur[l : l : l+n], nil
}

// repeated appends a packed or single varint to dst, taking capacity from
// arena: dst never grows outside it, so all of it is charged.
func repeated[T uint64 | int64](d *decoder, dst []T, arena *blocks[T], hint int, b []byte, wt int, v uint64) ([]T, error) {
	if wt == 0 {
		if len(dst) == cap(dst) {
			// runtime/pprof writes up to 2 ids and values unpacked
			g, err := take(d, arena, max(2, 2*len(dst)), hint)
			if err != nil {
				return nil, err
			}
			dst = append(g, dst...)
		}
		return append(dst, T(v)), nil
	}
	if wt != 2 {
		return nil, errFallback
	}
	n := 0
	for _, c := range b {
		if c < 0x80 {
			n++
		}
	}
	if cap(dst)-len(dst) < n {
		g, err := take(d, arena, len(dst)+n, hint)
		if err != nil {
			return nil, err
		}
		dst = append(g, dst...)
	}
	for i := 0; i < len(b); {
		x, j, ok := readVarint(b, i)
		if !ok {
			return nil, errFallback
		}
		dst = append(dst, T(x))
		i = j
	}
	return dst, nil
}

// appendRun appends p to *ptrs, whose elements from *start on are the run
// of the message being decoded (a sample's labels, a location's lines): when
// *ptrs is full the run moves to a fresh, larger block, so every run stays
// contiguous and the message can slice it off at the end.
func appendRun[T any](d *decoder, ptrs *[]*T, start *int, p *T, hint int) error {
	if len(*ptrs) == cap(*ptrs) {
		run := len(*ptrs) - *start
		n := max(2*run, hint, 16)
		if err := d.charge(n * int(unsafe.Sizeof(p))); err != nil {
			return err
		}
		grown := make([]*T, run, n)
		copy(grown, (*ptrs)[*start:])
		*ptrs = grown
		*start = 0
	}
	*ptrs = append(*ptrs, p)
	return nil
}

// endRun sets *dst to the run of ptrs from start on (see appendRun), if
// the message has any.
func endRun[T any](dst *[]*T, ptrs []*T, start int) {
	if end := len(ptrs); end > start {
		*dst = ptrs[start:end:end]
	}
}

// message decodes b into a T taken from s. The decoding method is picked
// by a type switch rather than passed as a function value: a call through
// one would make the decoder escape to the heap.
func message[T any](d *decoder, s *slab[T], hint int, b []byte) (*T, error) {
	m, err := s.get(d, hint)
	if err != nil {
		return nil, err
	}
	switch m := any(m).(type) {
	case *profilev1.ValueType:
		err = d.valueType(b, m)
	case *profilev1.Sample:
		err = d.sample(b, m)
	case *profilev1.Mapping:
		err = d.mapping(b, m)
	case *profilev1.Location:
		err = d.location(b, m)
	case *profilev1.Function:
		err = d.function(b, m)
	case *profilev1.Label:
		err = d.label(b, m)
	case *profilev1.Line:
		err = d.line(b, m)
	default:
		panic("profile: no decoder for this message type")
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// addMessage decodes b as message does and appends the result to *dst.
func addMessage[T any](d *decoder, s *slab[T], hint int, b []byte, dst *[]*T) error {
	m, err := message(d, s, hint, b)
	if err != nil {
		return err
	}
	return add(d, dst, m)
}

// varints reads a message whose fields 1..n (n <= 10) are all varints
// (the last occurrence wins, as in UnmarshalVT); other fields are skipped.
// The decoders below copy v into their message even on an error: the
// message is dropped then.
func (d *decoder) varints(b []byte, n int) (v [10]uint64, err error) {
	for i := 0; i < len(b); {
		num, wt, x, _, _, next, err := d.field(b, i)
		if err != nil {
			return v, err
		}
		i = next
		if num <= n {
			if wt != 0 {
				return v, errFallback
			}
			v[num-1] = x
		}
	}
	return v, nil
}

func (d *decoder) profile(b []byte, p *profilev1.Profile) error {
	for i := 0; i < len(b); {
		at := i
		num, wt, v, s, e, next, err := d.field(b, i)
		if err != nil {
			return err
		}
		i = next
		// Known fields with the wrong wire type: UnmarshalVT rejects them.
		isMsg := num <= 6 || num == 11
		if num <= 14 && num != 13 && (isMsg != (wt == 2) || (!isMsg && wt != 0)) {
			return errFallback
		}
		if d.headerOnly && num >= 2 && num <= 4 {
			continue
		}
		switch num {
		case 1:
			err = addMessage(d, &d.types, 4, b[s:e], &p.SampleType)
		case 2:
			if d.maxSamples > 0 && len(p.Sample) == d.maxSamples {
				return d.refuse(b[at:], p, -1)
			}
			err = addMessage(d, &d.samples, d.sampleHint, b[s:e], &p.Sample)
			if err == errLabels {
				return d.refuse(b[next:], p, len(p.Sample))
			}
		case 3:
			err = addMessage(d, &d.mappings, 4, b[s:e], &p.Mapping)
		case 4:
			err = addMessage(d, &d.locations, d.hint/32, b[s:e], &p.Location)
		case 5:
			err = addMessage(d, &d.functions, d.hint/48, b[s:e], &p.Function)
		case 6:
			err = add(d, &p.StringTable, d.str(b[s:e]))
		case 7:
			p.DropFrames = int64(v)
		case 8:
			p.KeepFrames = int64(v)
		case 9:
			p.TimeNanos = int64(v)
		case 10:
			p.DurationNanos = int64(v)
		case 11:
			if p.PeriodType == nil {
				p.PeriodType = &profilev1.ValueType{}
			}
			err = d.valueType(b[s:e], p.PeriodType)
		case 12:
			p.Period = int64(v)
		case 13:
			if wt != 0 && wt != 2 {
				return errFallback
			}
			p.Comment, err = repeated(d, p.Comment, &d.i64, d.hint, b[s:e], wt, v)
		case 14:
			p.DefaultSampleType = int64(v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) valueType(b []byte, vt *profilev1.ValueType) error {
	v, err := d.varints(b, 2)
	vt.Type, vt.Unit = int64(v[0]), int64(v[1])
	return err
}

func (d *decoder) sample(b []byte, sm *profilev1.Sample) error {
	// Labels are collected like location lines: contiguous in one shared
	// slice of pointers, sliced off at the end.
	start := len(d.labelPtrs)
	defer func() { endRun(&sm.Label, d.labelPtrs, start) }()
	for i := 0; i < len(b); {
		at := i
		num, wt, v, s, e, next, err := d.field(b, i)
		if err != nil {
			return err
		}
		i = next
		switch num {
		case 1:
			if sm.LocationId, err = repeated(d, sm.LocationId, &d.u64, d.hint, b[s:e], wt, v); err != nil {
				return err
			}
		case 2:
			if sm.Value, err = repeated(d, sm.Value, &d.i64, d.hint, b[s:e], wt, v); err != nil {
				return err
			}
		case 3:
			if wt != 2 {
				return errFallback
			}
			if n := len(d.labelPtrs) - start; d.maxLabels > 0 && n == d.maxLabels {
				// Count the rest without decoding them, for the message.
				d.overLabels = n + countField(b[at:], 3)
				return errLabels
			}
			l, err := message(d, &d.labels, d.hint/64, b[s:e])
			if err == nil {
				err = appendRun(d, &d.labelPtrs, &start, l, d.hint/32)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *decoder) label(b []byte, l *profilev1.Label) error {
	v, err := d.varints(b, 4)
	l.Key, l.Str, l.Num, l.NumUnit = int64(v[0]), int64(v[1]), int64(v[2]), int64(v[3])
	return err
}

func (d *decoder) mapping(b []byte, m *profilev1.Mapping) error {
	v, err := d.varints(b, 10)
	m.Id, m.MemoryStart, m.MemoryLimit, m.FileOffset = v[0], v[1], v[2], v[3]
	m.Filename, m.BuildId = int64(v[4]), int64(v[5])
	m.HasFunctions, m.HasFilenames, m.HasLineNumbers, m.HasInlineFrames = v[6] != 0, v[7] != 0, v[8] != 0, v[9] != 0
	return err
}

func (d *decoder) location(b []byte, l *profilev1.Location) error {
	// A location's lines are collected contiguously in one shared slice of
	// pointers and sliced off at the end: one allocation for all locations.
	start := len(d.linePtrs)
	defer func() { endRun(&l.Line, d.linePtrs, start) }()
	for i := 0; i < len(b); {
		num, wt, v, s, e, next, err := d.field(b, i)
		if err != nil {
			return err
		}
		i = next
		if num <= 5 && ((num == 4 && wt != 2) || (num != 4 && wt != 0)) {
			return errFallback
		}
		switch num {
		case 1:
			l.Id = v
		case 2:
			l.MappingId = v
		case 3:
			l.Address = v
		case 4:
			ln, err := message(d, &d.lines, d.hint/24, b[s:e])
			if err == nil {
				err = appendRun(d, &d.linePtrs, &start, ln, d.hint/24)
			}
			if err != nil {
				return err
			}
		case 5:
			l.IsFolded = v != 0
		}
	}
	return nil
}

func (d *decoder) line(b []byte, ln *profilev1.Line) error {
	v, err := d.varints(b, 2)
	ln.FunctionId, ln.Line = v[0], int64(v[1])
	return err
}

func (d *decoder) function(b []byte, f *profilev1.Function) error {
	v, err := d.varints(b, 5)
	f.Id, f.Name, f.SystemName, f.Filename, f.StartLine = v[0], int64(v[1]), int64(v[2]), int64(v[3]), int64(v[4])
	return err
}

// DecodeHeader parses everything of uncompressed pprof bytes except their
// samples, mappings and locations, which it leaves empty: what /ingest needs
// to name a profile costs a small part of a full decode, and the pipeline
// decodes the whole profile once, later. The framing of the skipped fields
// is still checked; their contents are not. Strings alias b. Errors are
// UnmarshalVT's, unwrapped.
func DecodeHeader(b []byte) (*profilev1.Profile, error) {
	p := &profilev1.Profile{}
	d := decoder{buf: b, hint: 64, headerOnly: true}
	if err := d.profile(b, p); err == nil {
		return p, nil
	}
	// Anything the fast path refuses gets UnmarshalVT's verdict and text.
	p = &profilev1.Profile{}
	if err := p.UnmarshalVT(b); err != nil {
		return nil, err
	}
	p.Sample, p.Mapping, p.Location = nil, nil, nil
	return p, nil
}

// Decode parses uncompressed pprof bytes. The profile's strings alias b.
func Decode(b []byte) (*profilev1.Profile, error) {
	var d decoder
	return d.decode(b, nil)
}

func (d *decoder) decode(b []byte, bounds *Bounds) (*profilev1.Profile, error) {
	p := &profilev1.Profile{}
	d.buf, d.hint, d.headerOnly = b, max(len(b)/8, 64), false
	d.bounds, d.maxSamples, d.maxLabels, d.paid, d.used, d.overLabels = bounds, 0, 0, 0, 0, 0
	d.sampleHint = d.hint / 16
	if bounds != nil {
		d.paid = bounds.Paid
		if l := bounds.Limits; l != nil {
			d.maxSamples, d.maxLabels = l.MaxProfileStacktraceSamples, l.MaxProfileStacktraceSampleLabels
		}
		if d.maxSamples > 0 {
			d.sampleHint = min(d.sampleHint, d.maxSamples)
		}
	}
	err := d.profile(b, p)
	if err == nil {
		return p, nil
	}
	if err != errFallback {
		return nil, err
	}
	if bounds != nil {
		if err := d.boundFallback(b); err != nil {
			return nil, err
		}
	}
	p = &profilev1.Profile{}
	if err := p.UnmarshalVT(b); err != nil {
		return nil, DecodeError(err)
	}
	return p, nil
}
