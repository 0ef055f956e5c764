// Package otlpexport builds OTLP profiles exports
// (go.opentelemetry.io/proto/otlp/collector/profiles/v1development v0.3.0)
// for tests and benchmarks: by hand, table by table, or as a synthetic
// export shaped like the OpenTelemetry eBPF profiler's.
package otlpexport

import (
	"fmt"
	"math/rand/v2"
	"time"

	collectorv1 "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	profilesv1 "go.opentelemetry.io/proto/otlp/profiles/v1development"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
)

// Builder builds one export. Every dictionary table starts with its zero
// entry, as the protocol asks, and equal entries are shared.
type Builder struct {
	Req  *collectorv1.ExportProfilesServiceRequest
	Dict *profilesv1.ProfilesDictionary

	strs   map[string]int32
	fns    map[[3]int32]int32
	maps   map[string]int32
	locs   map[string]int32
	stacks map[string]int32
	attrs  map[string]int32
}

// New starts an empty export.
func New() *Builder {
	d := &profilesv1.ProfilesDictionary{
		MappingTable:   []*profilesv1.Mapping{{}},
		LocationTable:  []*profilesv1.Location{{}},
		FunctionTable:  []*profilesv1.Function{{}},
		LinkTable:      []*profilesv1.Link{{}},
		StringTable:    []string{""},
		AttributeTable: []*profilesv1.KeyValueAndUnit{{}},
		StackTable:     []*profilesv1.Stack{{}},
	}
	return &Builder{
		Req:  &collectorv1.ExportProfilesServiceRequest{Dictionary: d},
		Dict: d,
		strs: map[string]int32{"": 0}, fns: map[[3]int32]int32{}, maps: map[string]int32{},
		locs: map[string]int32{}, stacks: map[string]int32{}, attrs: map[string]int32{},
	}
}

// Str is the string table index of s.
func (b *Builder) Str(s string) int32 {
	if i, ok := b.strs[s]; ok {
		return i
	}
	i := int32(len(b.Dict.StringTable))
	b.Dict.StringTable = append(b.Dict.StringTable, s)
	b.strs[s] = i
	return i
}

// Function is the function table index of name in file.
func (b *Builder) Function(name, file string) int32 {
	k := [3]int32{b.Str(name), b.Str(name), b.Str(file)}
	if i, ok := b.fns[k]; ok {
		return i
	}
	i := int32(len(b.Dict.FunctionTable))
	b.Dict.FunctionTable = append(b.Dict.FunctionTable, &profilesv1.Function{NameStrindex: k[0], SystemNameStrindex: k[1], FilenameStrindex: k[2]})
	b.fns[k] = i
	return i
}

// Mapping is the mapping table index of a file mapped at [start, limit),
// with a GNU build id attribute when buildID is set.
func (b *Builder) Mapping(file string, start, limit uint64, buildID string) int32 {
	k := fmt.Sprint(file, start, limit, buildID)
	if i, ok := b.maps[k]; ok {
		return i
	}
	m := &profilesv1.Mapping{MemoryStart: start, MemoryLimit: limit, FilenameStrindex: b.Str(file)}
	if buildID != "" {
		m.AttributeIndices = []int32{b.Attr("process.executable.build_id.gnu", String(buildID))}
	}
	i := int32(len(b.Dict.MappingTable))
	b.Dict.MappingTable = append(b.Dict.MappingTable, m)
	b.maps[k] = i
	return i
}

// Line is one line of a location: a function and its line number.
type Line struct {
	Function int32
	Line     int64
}

// Location is the location table index of addr in mapping with lines
// (innermost first; none for an unsymbolized frame).
func (b *Builder) Location(mapping int32, addr uint64, lines ...Line) int32 {
	k := fmt.Sprint(mapping, addr, lines)
	if i, ok := b.locs[k]; ok {
		return i
	}
	l := &profilesv1.Location{MappingIndex: mapping, Address: addr}
	for _, ln := range lines {
		l.Lines = append(l.Lines, &profilesv1.Line{FunctionIndex: ln.Function, Line: ln.Line})
	}
	i := int32(len(b.Dict.LocationTable))
	b.Dict.LocationTable = append(b.Dict.LocationTable, l)
	b.locs[k] = i
	return i
}

// Stack is the stack table index of locs, leaf first.
func (b *Builder) Stack(locs ...int32) int32 {
	k := fmt.Sprint(locs)
	if i, ok := b.stacks[k]; ok {
		return i
	}
	i := int32(len(b.Dict.StackTable))
	b.Dict.StackTable = append(b.Dict.StackTable, &profilesv1.Stack{LocationIndices: locs})
	b.stacks[k] = i
	return i
}

// Attr is the attribute table index of key=v.
func (b *Builder) Attr(key string, v *commonv1.AnyValue) int32 {
	k := key + "\x00" + v.String()
	if i, ok := b.attrs[k]; ok {
		return i
	}
	i := int32(len(b.Dict.AttributeTable))
	b.Dict.AttributeTable = append(b.Dict.AttributeTable, &profilesv1.KeyValueAndUnit{KeyStrindex: b.Str(key), Value: v})
	b.attrs[k] = i
	return i
}

// Link is the link table index of a trace and span id.
func (b *Builder) Link(traceID, spanID []byte) int32 {
	b.Dict.LinkTable = append(b.Dict.LinkTable, &profilesv1.Link{TraceId: traceID, SpanId: spanID})
	return int32(len(b.Dict.LinkTable) - 1)
}

// String and Int are attribute values.
func String(s string) *commonv1.AnyValue {
	return &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: s}}
}

func Int(v int64) *commonv1.AnyValue {
	return &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: v}}
}

// KV is a resource or scope attribute.
func KV(key string, v *commonv1.AnyValue) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: key, Value: v}
}

// Resource adds a resource with attrs and one scope named scope.
func (b *Builder) Resource(scope string, attrs ...*commonv1.KeyValue) *profilesv1.ScopeProfiles {
	sp := &profilesv1.ScopeProfiles{Scope: &commonv1.InstrumentationScope{Name: scope}}
	b.Req.ResourceProfiles = append(b.Req.ResourceProfiles, &profilesv1.ResourceProfiles{
		Resource:      &resourcev1.Resource{Attributes: attrs},
		ScopeProfiles: []*profilesv1.ScopeProfiles{sp},
	})
	return sp
}

// Profile adds a profile to sp: sample type typ/unit, and a period of
// period ptype/punit when ptype is set.
func (b *Builder) Profile(sp *profilesv1.ScopeProfiles, typ, unit, ptype, punit string, period int64, t time.Time, d time.Duration) *profilesv1.Profile {
	p := &profilesv1.Profile{
		SampleType:   &profilesv1.ValueType{TypeStrindex: b.Str(typ), UnitStrindex: b.Str(unit)},
		TimeUnixNano: uint64(t.UnixNano()),
		DurationNano: uint64(d),
		Period:       period,
	}
	if ptype != "" {
		p.PeriodType = &profilesv1.ValueType{TypeStrindex: b.Str(ptype), UnitStrindex: b.Str(punit)}
	}
	sp.Profiles = append(sp.Profiles, p)
	return p
}

// EBPFOptions shape a synthetic eBPF-profiler export.
type EBPFOptions struct {
	// Processes is the number of resources (one profile each).
	Processes int
	// Stacks is the number of distinct stacks sampled per process.
	Stacks int
	Seed   uint64
	Time   time.Time
}

// EBPF builds an export shaped like the OpenTelemetry eBPF profiler's: one
// resource per process (container and pod attributes, service.name on
// some, process.executable.name on all), one scope, one CPU profile each
// (samples/count at 20 Hz, cpu/nanoseconds period) whose samples carry
// timestamps instead of values and a thread.name attribute. Stacks mix
// kernel frames (symbolized), native frames of shared libraries and the
// executable (addresses only, build ids on the mappings) and interpreted
// frames (symbolized, as the profiler unwinds Python, Java or Node). The
// dictionary is shared by all processes, as the profiler's is.
func EBPF(o EBPFOptions) *collectorv1.ExportProfilesServiceRequest {
	r := rand.New(rand.NewPCG(o.Seed, 17))
	b := New()
	kernel := b.Mapping("[kernel.kallsyms]", 0xffffffff81000000, 0xffffffff83000000, "")
	var kfns []int32
	for i := range 200 {
		kfns = append(kfns, b.Function(fmt.Sprintf("kernel_fn_%d", i), ""))
	}
	var libs []int32
	for i := range 12 {
		start := uint64(0x7f0000000000 + i*0x1000000)
		libs = append(libs, b.Mapping(fmt.Sprintf("/usr/lib/x86_64-linux-gnu/lib%d.so.1", i), start, start+0x800000, fmt.Sprintf("%040x", r.Uint64())))
	}
	var ifns []int32
	for i := range 1500 {
		ifns = append(ifns, b.Function(fmt.Sprintf("pkg%d.module%d.Handler%d", i%40, i%9, i), fmt.Sprintf("/app/pkg%d/module%d.py", i%40, i%9)))
	}
	const interp = 0 // interpreted frames have no mapping: the zero entry
	thread := []string{"main", "worker-1", "worker-2", "gc", "io"}
	for p := range o.Processes {
		exe := fmt.Sprintf("/app/bin/service-%d", p%25)
		exeMap := b.Mapping(exe, 0x400000, 0x1400000, fmt.Sprintf("%040x", r.Uint64()))
		attrs := []*commonv1.KeyValue{
			KV("container.id", String(fmt.Sprintf("%064x", r.Uint64()))),
			KV("k8s.namespace.name", String(fmt.Sprintf("ns-%d", p%7))),
			KV("k8s.pod.name", String(fmt.Sprintf("service-%d-%x", p%25, r.Uint32()))),
			KV("host.name", String(fmt.Sprintf("node-%d", p%5))),
			KV("process.executable.name", String(fmt.Sprintf("service-%d", p%25))),
			KV("process.pid", Int(int64(1000+p))),
		}
		if p%3 != 0 {
			attrs = append(attrs, KV("service.name", String(fmt.Sprintf("service-%d", p%25))))
		}
		sp := b.Resource("go.opentelemetry.io/ebpf-profiler", attrs...)
		sp.Scope.Version = "v0.0.202547"
		prof := b.Profile(sp, "samples", "count", "cpu", "nanoseconds", 50_000_000, o.Time, 5*time.Second)
		for range o.Stacks {
			var locs []int32
			for range 2 + r.IntN(6) {
				f := kfns[r.IntN(len(kfns))]
				locs = append(locs, b.Location(kernel, 0, Line{Function: f}))
			}
			for range 3 + r.IntN(8) {
				m := libs[r.IntN(len(libs))]
				locs = append(locs, b.Location(m, 0x7f0000000000+uint64(r.IntN(1<<16))*16))
			}
			for range 4 + r.IntN(16) {
				f := ifns[r.IntN(len(ifns))]
				locs = append(locs, b.Location(interp, 0, Line{Function: f, Line: int64(1 + r.IntN(400))}))
			}
			for range 1 + r.IntN(3) {
				locs = append(locs, b.Location(exeMap, 0x400000+uint64(r.IntN(1<<16))*16))
			}
			s := &profilesv1.Sample{
				StackIndex:       b.Stack(locs...),
				AttributeIndices: []int32{b.Attr("thread.name", String(thread[r.IntN(len(thread))]))},
			}
			for range 1 + r.IntN(4) {
				s.TimestampsUnixNano = append(s.TimestampsUnixNano, uint64(o.Time.Add(-time.Duration(r.IntN(5000))*time.Millisecond).UnixNano()))
			}
			prof.Samples = append(prof.Samples, s)
		}
	}
	return b.Req
}
