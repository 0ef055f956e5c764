package legacy

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"

	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// ErrProfileType marks a name whose suffix names no known profile type: the
// request is wrong (400), unlike a body that does not parse (422).
var ErrProfileType = errors.New("unknown profile type")

// ParseError is a body that is not what its format says.
type ParseError struct {
	Format string
	Err    error
}

func (e *ParseError) Error() string { return fmt.Sprintf("parsing %s body: %v", e.Format, e.Err) }
func (e *ParseError) Unwrap() error { return e.Err }

// Series is one converted /ingest profile.
type Series struct {
	Labels []*typesv1.LabelPair
	Pprof  []byte
}

// Folded converts folded (collapsed) text, one "root;...;leaf count" per
// line, into a pprof profile typed by the app name's suffix. CPU and wall
// values are scaled to nanoseconds by 1e9/sampleRate. It returns nil, nil
// when the name carries profile_id: Pyroscope drops such profiles silently.
func Folded(body []byte, md Metadata) (*Series, error) {
	return text(body, md, "folded", func(line []byte) ([]byte, int64, error) {
		sp := bytes.LastIndexByte(line, ' ')
		if sp < 0 {
			return nil, 0, errors.New("no count after the stack")
		}
		n, err := strconv.ParseInt(string(line[sp+1:]), 10, 64)
		if err != nil || n < 0 {
			return nil, 0, fmt.Errorf("count %q is not a non-negative integer", line[sp+1:])
		}
		return line[:sp], n, nil
	})
}

// Lines converts the "lines" format: each line is one stack seen once.
func Lines(body []byte, md Metadata) (*Series, error) {
	return text(body, md, "lines", func(line []byte) ([]byte, int64, error) {
		return line, 1, nil
	})
}

// text converts a line-per-stack body; parse splits a line into its stack
// ("root;...;leaf") and count.
func text(body []byte, md Metadata, format string, parse func([]byte) ([]byte, int64, error)) (*Series, error) {
	if hasProfileID(md.Name) {
		return nil, nil
	}
	app, metric, typ, err := typeOf(md.Name.App, md.SampleRate, md)
	if err != nil {
		return nil, err
	}
	b := newBuilder()
	p := b.p
	p.SampleType = []*googlev1.ValueType{{Type: b.str(typ.sampleType), Unit: b.str(typ.unit)}}
	if typ.period != 0 {
		p.PeriodType = &googlev1.ValueType{Type: b.str("cpu"), Unit: b.str("nanoseconds")}
		p.Period = typ.period
	}
	scale := int64(typ.scale) // 0 when a rate over 1e9 rounds the period down: no samples
	p.TimeNanos = typ.from

	for lineNo := 1; len(body) > 0; lineNo++ {
		var line []byte
		line, body, _ = bytes.Cut(body, []byte{'\n'})
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		stack, n, err := parse(line)
		if err != nil {
			return nil, &ParseError{format, fmt.Errorf("line %d: %w", lineNo, err)}
		}
		if n == 0 || scale == 0 {
			continue
		}
		v := n * scale
		if v/scale != n {
			return nil, &ParseError{format, fmt.Errorf("line %d: count %d overflows when scaled", lineNo, n)}
		}
		if err := b.add(stack, v); err != nil {
			return nil, &ParseError{format, fmt.Errorf("line %d: %w", lineNo, err)}
		}
	}
	raw, err := p.MarshalVT()
	if err != nil {
		return nil, err
	}
	return &Series{Labels: TextLabels(metric, app, md), Pprof: raw}, nil
}

// builder assembles a single-value pprof from stacks, one location and one
// function per distinct frame name, summing repeated stacks.
type builder struct {
	p       *googlev1.Profile
	strings map[string]int64
	locs    map[string]uint64
	samples map[string]*googlev1.Sample
}

func newBuilder() *builder {
	return &builder{
		p:       &googlev1.Profile{StringTable: []string{""}},
		strings: map[string]int64{"": 0},
		locs:    map[string]uint64{},
		samples: map[string]*googlev1.Sample{},
	}
}

func (b *builder) str(s string) int64 {
	if i, ok := b.strings[s]; ok {
		return i
	}
	i := int64(len(b.p.StringTable))
	b.p.StringTable = append(b.p.StringTable, s)
	b.strings[s] = i
	return i
}

func (b *builder) loc(frame []byte) uint64 {
	if id, ok := b.locs[string(frame)]; ok { // no allocation for the lookup
		return id
	}
	name := string(frame)
	id := uint64(len(b.p.Location) + 1)
	b.p.Function = append(b.p.Function, &googlev1.Function{Id: id, Name: b.str(name)})
	b.p.Location = append(b.p.Location, &googlev1.Location{Id: id, Line: []*googlev1.Line{{FunctionId: id}}})
	b.locs[name] = id
	return id
}

// add records value v for stack "root;...;leaf" (pprof lists the leaf first).
func (b *builder) add(stack []byte, v int64) error {
	if s, ok := b.samples[string(stack)]; ok {
		s.Value[0] += v
		if s.Value[0] < 0 {
			return errors.New("sum of counts overflows")
		}
		return nil
	}
	ids := make([]uint64, 0, bytes.Count(stack, []byte{';'})+1)
	for rest := stack; ; {
		frame, tail, more := bytes.Cut(rest, []byte{';'})
		ids = append(ids, b.loc(frame))
		if !more {
			break
		}
		rest = tail
	}
	slices.Reverse(ids) // pprof lists the leaf first
	s := &googlev1.Sample{LocationId: ids, Value: []int64{v}}
	b.samples[string(stack)] = s
	b.p.Sample = append(b.p.Sample, s)
	return nil
}
