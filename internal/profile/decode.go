package profile

import (
	"errors"
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
type slab[T any] struct{ block []T }

func (s *slab[T]) get(hint int) *T {
	if len(s.block) == cap(s.block) {
		s.block = make([]T, 0, max(hint, 16))
	}
	s.block = s.block[:len(s.block)+1]
	return &s.block[len(s.block)-1]
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
	u64       []uint64
	i64       []int64
	// size hints, from the buffer size
	hint int
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
	num, wt = int(tag>>3), int(tag&7)
	if num <= 0 {
		return 0, 0, 0, 0, 0, 0, errFallback
	}
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

// takeU64 returns an empty slice with capacity n carved from the arena.
func (d *decoder) takeU64(n int) []uint64 {
	if cap(d.u64)-len(d.u64) < n {
		d.u64 = make([]uint64, 0, max(n, d.hint))
	}
	l := len(d.u64)
	d.u64 = d.u64[:l+n]
	return d.u64[l : l : l+n]
}

func (d *decoder) takeI64(n int) []int64 {
	if cap(d.i64)-len(d.i64) < n {
		d.i64 = make([]int64, 0, max(n, d.hint))
	}
	l := len(d.i64)
	d.i64 = d.i64[:l+n]
	return d.i64[l : l : l+n]
}

// repeatedU64 appends a packed or single varint to dst, taking capacity from
// the shared arena.
func (d *decoder) repeatedU64(dst []uint64, b []byte, wt int, v uint64) ([]uint64, error) {
	if wt == 0 {
		if dst == nil {
			dst = d.takeU64(2) // runtime/pprof writes up to 2 ids unpacked
		}
		return append(dst, v), nil
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
	if dst == nil {
		dst = d.takeU64(n)
	}
	for i := 0; i < len(b); {
		x, j, ok := readVarint(b, i)
		if !ok {
			return nil, errFallback
		}
		dst = append(dst, x)
		i = j
	}
	return dst, nil
}

func (d *decoder) repeatedI64(dst []int64, b []byte, wt int, v uint64) ([]int64, error) {
	if wt == 0 {
		if dst == nil {
			dst = d.takeI64(2) // runtime/pprof writes up to 2 values unpacked
		}
		return append(dst, int64(v)), nil
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
	if dst == nil {
		dst = d.takeI64(n)
	}
	for i := 0; i < len(b); {
		x, j, ok := readVarint(b, i)
		if !ok {
			return nil, errFallback
		}
		dst = append(dst, int64(x))
		i = j
	}
	return dst, nil
}

func (d *decoder) profile(b []byte, p *profilev1.Profile) error {
	for i := 0; i < len(b); {
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
		switch num {
		case 1:
			vt := d.types.get(4)
			if err := d.valueType(b[s:e], vt); err != nil {
				return err
			}
			p.SampleType = append(p.SampleType, vt)
		case 2:
			sm := d.samples.get(d.hint / 16)
			if err := d.sample(b[s:e], sm); err != nil {
				return err
			}
			p.Sample = append(p.Sample, sm)
		case 3:
			m := d.mappings.get(4)
			if err := d.mapping(b[s:e], m); err != nil {
				return err
			}
			p.Mapping = append(p.Mapping, m)
		case 4:
			l := d.locations.get(d.hint / 32)
			if err := d.location(b[s:e], l); err != nil {
				return err
			}
			p.Location = append(p.Location, l)
		case 5:
			f := d.functions.get(d.hint / 48)
			if err := d.function(b[s:e], f); err != nil {
				return err
			}
			p.Function = append(p.Function, f)
		case 6:
			p.StringTable = append(p.StringTable, d.str(b[s:e]))
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
			if err := d.valueType(b[s:e], p.PeriodType); err != nil {
				return err
			}
		case 12:
			p.Period = int64(v)
		case 13:
			if wt != 0 && wt != 2 {
				return errFallback
			}
			c, err := d.repeatedI64(p.Comment, b[s:e], wt, v)
			if err != nil {
				return err
			}
			p.Comment = c
		case 14:
			p.DefaultSampleType = int64(v)
		}
	}
	return nil
}

func (d *decoder) valueType(b []byte, vt *profilev1.ValueType) error {
	for i := 0; i < len(b); {
		num, wt, v, _, _, next, err := d.field(b, i)
		if err != nil {
			return err
		}
		i = next
		if num <= 2 && wt != 0 {
			return errFallback
		}
		switch num {
		case 1:
			vt.Type = int64(v)
		case 2:
			vt.Unit = int64(v)
		}
	}
	return nil
}

func (d *decoder) sample(b []byte, sm *profilev1.Sample) error {
	// Labels are collected like location lines: contiguous in one shared
	// slice of pointers, sliced off at the end.
	start := len(d.labelPtrs)
	defer func() {
		if end := len(d.labelPtrs); end > start {
			sm.Label = d.labelPtrs[start:end:end]
		}
	}()
	for i := 0; i < len(b); {
		num, wt, v, s, e, next, err := d.field(b, i)
		if err != nil {
			return err
		}
		i = next
		switch num {
		case 1:
			if sm.LocationId, err = d.repeatedU64(sm.LocationId, b[s:e], wt, v); err != nil {
				return err
			}
		case 2:
			if sm.Value, err = d.repeatedI64(sm.Value, b[s:e], wt, v); err != nil {
				return err
			}
		case 3:
			if wt != 2 {
				return errFallback
			}
			l := d.labels.get(d.hint / 64)
			if err := d.label(b[s:e], l); err != nil {
				return err
			}
			if len(d.labelPtrs) == cap(d.labelPtrs) {
				grown := make([]*profilev1.Label, len(d.labelPtrs)-start, max(2*(len(d.labelPtrs)-start), d.hint/32, 16))
				copy(grown, d.labelPtrs[start:])
				d.labelPtrs = grown
				start = 0
			}
			d.labelPtrs = append(d.labelPtrs, l)
		}
	}
	return nil
}

func (d *decoder) label(b []byte, l *profilev1.Label) error {
	for i := 0; i < len(b); {
		num, wt, v, _, _, next, err := d.field(b, i)
		if err != nil {
			return err
		}
		i = next
		if num <= 4 && wt != 0 {
			return errFallback
		}
		switch num {
		case 1:
			l.Key = int64(v)
		case 2:
			l.Str = int64(v)
		case 3:
			l.Num = int64(v)
		case 4:
			l.NumUnit = int64(v)
		}
	}
	return nil
}

func (d *decoder) mapping(b []byte, m *profilev1.Mapping) error {
	for i := 0; i < len(b); {
		num, wt, v, _, _, next, err := d.field(b, i)
		if err != nil {
			return err
		}
		i = next
		if num <= 10 && wt != 0 {
			return errFallback
		}
		switch num {
		case 1:
			m.Id = v
		case 2:
			m.MemoryStart = v
		case 3:
			m.MemoryLimit = v
		case 4:
			m.FileOffset = v
		case 5:
			m.Filename = int64(v)
		case 6:
			m.BuildId = int64(v)
		case 7:
			m.HasFunctions = v != 0
		case 8:
			m.HasFilenames = v != 0
		case 9:
			m.HasLineNumbers = v != 0
		case 10:
			m.HasInlineFrames = v != 0
		}
	}
	return nil
}

func (d *decoder) location(b []byte, l *profilev1.Location) error {
	// A location's lines are collected contiguously in one shared slice of
	// pointers and sliced off at the end: one allocation for all locations.
	start := len(d.linePtrs)
	defer func() {
		if end := len(d.linePtrs); end > start {
			l.Line = d.linePtrs[start:end:end]
		}
	}()
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
			ln := d.lines.get(d.hint / 24)
			if err := d.line(b[s:e], ln); err != nil {
				return err
			}
			if len(d.linePtrs) == cap(d.linePtrs) {
				grown := make([]*profilev1.Line, len(d.linePtrs)-start, max(2*(len(d.linePtrs)-start), d.hint/24, 16))
				copy(grown, d.linePtrs[start:])
				d.linePtrs = grown
				start = 0
			}
			d.linePtrs = append(d.linePtrs, ln)
		case 5:
			l.IsFolded = v != 0
		}
	}
	return nil
}

func (d *decoder) line(b []byte, ln *profilev1.Line) error {
	for i := 0; i < len(b); {
		num, wt, v, _, _, next, err := d.field(b, i)
		if err != nil {
			return err
		}
		i = next
		if num <= 2 && wt != 0 {
			return errFallback
		}
		switch num {
		case 1:
			ln.FunctionId = v
		case 2:
			ln.Line = int64(v)
		}
	}
	return nil
}

func (d *decoder) function(b []byte, f *profilev1.Function) error {
	for i := 0; i < len(b); {
		num, wt, v, _, _, next, err := d.field(b, i)
		if err != nil {
			return err
		}
		i = next
		if num <= 5 && wt != 0 {
			return errFallback
		}
		switch num {
		case 1:
			f.Id = v
		case 2:
			f.Name = int64(v)
		case 3:
			f.SystemName = int64(v)
		case 4:
			f.Filename = int64(v)
		case 5:
			f.StartLine = int64(v)
		}
	}
	return nil
}

// Decode parses uncompressed pprof bytes. The profile's strings alias b.
func Decode(b []byte) (*profilev1.Profile, error) {
	p := &profilev1.Profile{}
	d := decoder{buf: b, hint: max(len(b)/8, 64)}
	if err := d.profile(b, p); err == nil {
		return p, nil
	}
	p = &profilev1.Profile{}
	if err := p.UnmarshalVT(b); err != nil {
		return nil, DecodeError(err)
	}
	return p, nil
}
