package otlp

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	collectorv1 "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	profilesv1 "go.opentelemetry.io/proto/otlp/profiles/v1development"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/pyrodist/pyrodist/test/testutil/observed"
	x "github.com/pyrodist/pyrodist/test/testutil/otlpexport"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

var t0 = time.Date(2026, 11, 25, 15, 46, 0, 0, time.UTC)

type converted struct {
	labels []string // sorted name=value
	p      *profile.Profile
}

// convertAll converts every profile of req and parses each output with
// google/pprof (CheckValid included).
func convertAll(t *testing.T, req *collectorv1.ExportProfilesServiceRequest) ([]converted, error) {
	t.Helper()
	if err := CheckExport(req); err != nil {
		return nil, err
	}
	var c Converter
	var out []converted
	for _, ref := range Profiles(req) {
		series, err := c.Convert(req.Dictionary, ref, t0, nil)
		if err != nil {
			return out, err
		}
		for _, s := range series {
			out = append(out, converted{labels: labelStrings(s.Labels), p: pprofcheck.Parse(t, s.Pprof)})
		}
	}
	return out, nil
}

func mustConvert(t *testing.T, req *collectorv1.ExportProfilesServiceRequest) []converted {
	t.Helper()
	out, err := convertAll(t, req)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func labelStrings(ls []*typesv1.LabelPair) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Name + "=" + l.Value
	}
	sort.Strings(out)
	return out
}

// samples renders samples as "root;...;leaf | k=v,... => [v...]", sorted.
func samples(p *profile.Profile) []string {
	var out []string
	for _, s := range p.Sample {
		var frames []string
		for i := len(s.Location) - 1; i >= 0; i-- {
			loc := s.Location[i]
			if len(loc.Line) == 0 {
				frames = append(frames, fmt.Sprintf("%#x", loc.Address))
			}
			for j := len(loc.Line) - 1; j >= 0; j-- {
				frames = append(frames, loc.Line[j].Function.Name)
			}
		}
		var labels []string
		for k, vs := range s.Label {
			for _, v := range vs {
				labels = append(labels, k+"="+v)
			}
		}
		sort.Strings(labels)
		out = append(out, fmt.Sprintf("%s | %s => %v", strings.Join(frames, ";"), strings.Join(labels, ","), s.Value))
	}
	sort.Strings(out)
	return out
}

func decodeObserved(t *testing.T, r observed.OTLPRequest) (*collectorv1.ExportProfilesServiceRequest, error) {
	var req collectorv1.ExportProfilesServiceRequest
	if r.Kind == "otlp-http-json" {
		return &req, protojson.Unmarshal(r.Body, &req)
	}
	return &req, proto.Unmarshal(r.Body, &req)
}

// The observed exports convert to the labels, sample types, period and
// duration Pyroscope sent (samples are compared after the pipeline, in
// internal/ingest, since Pyroscope's are normalized).
func TestObservedExportsConvert(t *testing.T) {
	want := observed.OTLPOutcomes()
	for _, r := range observed.OTLPRequests() {
		t.Run(r.Case, func(t *testing.T) {
			exp := want[r.Case]
			req, err := decodeObserved(t, r)
			if len(exp.Outs) == 0 {
				if err == nil {
					t.Fatalf("%s decoded; Pyroscope answered %s", r.Case, exp.Status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := mustConvert(t, req)
			if len(got) != len(exp.Outs) {
				t.Fatalf("%d profiles, want %d", len(got), len(exp.Outs))
			}
			for i, o := range exp.Outs {
				if !slices.Equal(got[i].labels, o.Labels) {
					t.Errorf("labels %q, want %q", got[i].labels, o.Labels)
				}
				p := got[i].p
				if st := p.SampleType[0].Type + "/" + p.SampleType[0].Unit; len(p.SampleType) != 1 || st != o.SampleTypes[0] {
					t.Errorf("sample type %s, want %v", st, o.SampleTypes)
				}
				if per := fmt.Sprintf("%s/%s %d", p.PeriodType.Type, p.PeriodType.Unit, p.Period); per != o.Period {
					t.Errorf("period %q, want %q", per, o.Period)
				}
				if p.DurationNanos != o.DurationNanos {
					t.Errorf("duration %d, want %d", p.DurationNanos, o.DurationNanos)
				}
			}
		})
	}
}

// cpuExport is one resource with one CPU profile of the eBPF profiler's
// type (samples/count, period cpu/nanoseconds 10 ms) and a three-frame stack.
func cpuExport() (*x.Builder, *profilesv1.Profile, int32) {
	b := x.New()
	sp := b.Resource("scope", x.KV("service.name", x.String("svc")))
	p := b.Profile(sp, "samples", "count", "cpu", "nanoseconds", 10_000_000, t0, 10*time.Second)
	m := b.Mapping("/bin/app", 0x400000, 0x800000, "")
	stack := b.Stack(
		b.Location(m, 0x401000, x.Line{Function: b.Function("leaf", "a.go"), Line: 3}),
		b.Location(m, 0x402000, x.Line{Function: b.Function("mid", "a.go"), Line: 2}),
		b.Location(m, 0x403000, x.Line{Function: b.Function("main", "a.go"), Line: 1}),
	)
	return b, p, stack
}

func TestCPUSampleCountsBecomeNanoseconds(t *testing.T) {
	b, p, stack := cpuExport()
	p.Samples = []*profilesv1.Sample{
		{StackIndex: stack, Values: []int64{3}},
		// timestamps instead of values: one event each
		{StackIndex: stack, TimestampsUnixNano: []uint64{1, 2}},
	}
	got := mustConvert(t, b.Req)
	if len(got) != 1 {
		t.Fatalf("%d profiles", len(got))
	}
	want := []string{"__delta__=false", "__name__=process_cpu", "__otel__=true", "service.name=svc", "service_name=svc"}
	if !slices.Equal(got[0].labels, want) {
		t.Errorf("labels %q, want %q", got[0].labels, want)
	}
	pp := got[0].p
	if pp.SampleType[0].Type != "cpu" || pp.SampleType[0].Unit != "nanoseconds" || pp.DefaultSampleType != "samples" {
		t.Errorf("sample type %v, default %q", pp.SampleType[0], pp.DefaultSampleType)
	}
	if s := samples(pp); !slices.Equal(s, []string{"main;mid;leaf |  => [20000000]", "main;mid;leaf |  => [30000000]"}) {
		t.Errorf("samples %q", s)
	}
	if pp.TimeNanos != t0.UnixNano() || pp.DurationNanos != int64(10*time.Second) || pp.Period != 10_000_000 {
		t.Errorf("time %d duration %d period %d", pp.TimeNanos, pp.DurationNanos, pp.Period)
	}
}

func TestProfileNames(t *testing.T) {
	for _, tc := range []struct {
		typ, unit, ptype, punit string
		period                  int64
		values                  []int64
		name                    string
		want                    []int64
	}{
		{"off_cpu", "nanoseconds", "", "", 0, []int64{1, 2, 3}, "off_cpu", []int64{6}},
		{"wall", "nanoseconds", "cpu", "nanoseconds", 10, []int64{5}, "cpu", []int64{5}},
		{"alloc_space", "bytes", "space", "bytes", 524288, []int64{7}, "space", []int64{7}},
		// without a period the period type does not count: the name is empty
		{"alloc_space", "bytes", "space", "bytes", 0, []int64{7}, "", []int64{7}},
		// the period decides the name, not the sample type: process_cpu
		// needs samples/count with cpu/nanoseconds
		{"samples", "count", "cpu", "nanoseconds", 0, []int64{7}, "", []int64{7}},
		{"samples", "count", "wall", "nanoseconds", 5, []int64{7}, "wall", []int64{7}},
	} {
		t.Run(fmt.Sprint(tc.typ, tc.ptype, tc.period), func(t *testing.T) {
			b := x.New()
			sp := b.Resource("s", x.KV("service.name", x.String("svc")))
			p := b.Profile(sp, tc.typ, tc.unit, tc.ptype, tc.punit, tc.period, t0, time.Second)
			p.Samples = []*profilesv1.Sample{{StackIndex: b.Stack(b.Location(0, 0x10)), Values: tc.values}}
			got := mustConvert(t, b.Req)
			if !slices.Contains(got[0].labels, "__name__="+tc.name) {
				t.Errorf("labels %q, want __name__=%s", got[0].labels, tc.name)
			}
			if !slices.Equal(got[0].p.Sample[0].Value, tc.want) {
				t.Errorf("values %v, want %v", got[0].p.Sample[0].Value, tc.want)
			}
		})
	}
}

func TestConvertErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(b *x.Builder, p *profilesv1.Profile, stack int32)
		want   string
	}{
		{"values length", func(b *x.Builder, p *profilesv1.Profile, s int32) {
			p.Samples = []*profilesv1.Sample{{StackIndex: s, Values: []int64{1, 2}}}
		}, "sample values length mismatch 2 1"},
		{"no value", func(b *x.Builder, p *profilesv1.Profile, s int32) {
			p.Samples = []*profilesv1.Sample{{StackIndex: s}}
		}, "sample value is required"},
		{"stack index", func(b *x.Builder, p *profilesv1.Profile, s int32) {
			p.Samples = []*profilesv1.Sample{{StackIndex: 99, Values: []int64{1}}}
		}, "invalid stack index: 99"},
		{"location index", func(b *x.Builder, p *profilesv1.Profile, s int32) {
			p.Samples = []*profilesv1.Sample{{StackIndex: b.Stack(1, 77), Values: []int64{1}}}
		}, "could not access location at index 77"},
		{"mapping index", func(b *x.Builder, p *profilesv1.Profile, s int32) {
			p.Samples = []*profilesv1.Sample{{StackIndex: b.Stack(b.Location(42, 1)), Values: []int64{1}}}
		}, "could not access mapping at index 42"},
		{"function index", func(b *x.Builder, p *profilesv1.Profile, s int32) {
			p.Samples = []*profilesv1.Sample{{StackIndex: b.Stack(b.Location(0, 1, x.Line{Function: 55})), Values: []int64{1}}}
		}, "could not process line at index 0: could not access function"},
		{"function name", func(b *x.Builder, p *profilesv1.Profile, s int32) {
			b.Dict.FunctionTable = append(b.Dict.FunctionTable, &profilesv1.Function{NameStrindex: 1000})
			f := int32(len(b.Dict.FunctionTable) - 1)
			p.Samples = []*profilesv1.Sample{{StackIndex: b.Stack(b.Location(0, 1, x.Line{Function: f})), Values: []int64{1}}}
		}, "could not access function name string"},
		{"mapping filename", func(b *x.Builder, p *profilesv1.Profile, s int32) {
			b.Dict.MappingTable = append(b.Dict.MappingTable, &profilesv1.Mapping{FilenameStrindex: -1})
			m := int32(len(b.Dict.MappingTable) - 1)
			p.Samples = []*profilesv1.Sample{{StackIndex: b.Stack(b.Location(m, 1)), Values: []int64{1}}}
		}, "could not access mapping file name string"},
		{"attribute index", func(b *x.Builder, p *profilesv1.Profile, s int32) {
			p.Samples = []*profilesv1.Sample{{StackIndex: s, Values: []int64{1}, AttributeIndices: []int32{500}}}
		}, "attribute not found: 0"},
		{"link index", func(b *x.Builder, p *profilesv1.Profile, s int32) {
			p.Samples = []*profilesv1.Sample{{StackIndex: s, Values: []int64{1}, LinkIndex: 9}}
		}, "could not access link at index 9"},
		{"no sample type", func(b *x.Builder, p *profilesv1.Profile, s int32) {
			p.SampleType = nil
			p.Samples = []*profilesv1.Sample{{StackIndex: s, Values: []int64{1}}}
		}, "sample type is missing"},
		{"sample type string", func(b *x.Builder, p *profilesv1.Profile, s int32) {
			p.SampleType.UnitStrindex = 300
			p.Samples = []*profilesv1.Sample{{StackIndex: s, Values: []int64{1}}}
		}, "could not process sample type: could not access unit string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, p, stack := cpuExport()
			tc.mutate(b, p, stack)
			_, err := convertAll(t, b.Req)
			var ce *ConvertError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "failed to convert otel profile: ") {
				t.Fatalf("err = %v, want a ConvertError with %q", err, tc.want)
			}
		})
	}
}

func TestExportChecks(t *testing.T) {
	if err := CheckExport(&collectorv1.ExportProfilesServiceRequest{}); !errors.Is(err, ErrNoDictionary) {
		t.Errorf("no dictionary: %v", err)
	}
	if err := CheckExport(&collectorv1.ExportProfilesServiceRequest{Dictionary: &profilesv1.ProfilesDictionary{}}); !errors.Is(err, ErrNoResources) {
		t.Errorf("no resources: %v", err)
	}
	// A profile without samples gives nothing, even without a sample type.
	b := x.New()
	sp := b.Resource("s")
	sp.Profiles = append(sp.Profiles, &profilesv1.Profile{})
	if got := mustConvert(t, b.Req); len(got) != 0 {
		t.Errorf("%d profiles from an empty one", len(got))
	}
}

func TestServiceNames(t *testing.T) {
	for _, tc := range []struct {
		attrs []*commonv1.KeyValue
		want  string
	}{
		{nil, "unknown_service"},
		{[]*commonv1.KeyValue{x.KV("process.executable.name", x.String("app"))}, "unknown_service:app"},
		{[]*commonv1.KeyValue{x.KV("process.executable.name", x.String("a")), x.KV("process.executable.name", x.String("b"))}, "unknown_service:a:b"},
		{[]*commonv1.KeyValue{x.KV("process.executable.name", x.String("app")), x.KV("service.name", x.String("svc"))}, "svc"},
		{[]*commonv1.KeyValue{x.KV("service.name", x.Int(42))}, "42"},
		{[]*commonv1.KeyValue{x.KV("service.name", x.String(""))}, "unknown_service"},
		{[]*commonv1.KeyValue{x.KV("service.name", &commonv1.AnyValue{Value: &commonv1.AnyValue_ArrayValue{ArrayValue: &commonv1.ArrayValue{Values: []*commonv1.AnyValue{x.String("arr")}}}})}, "arr"},
		{[]*commonv1.KeyValue{x.KV("service.name", &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{BoolValue: true}})}, "unknown_service"},
	} {
		if got := ServiceName(tc.attrs); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.attrs, got, tc.want)
		}
	}
}

// Samples with a service.name attribute make profiles of their own; the
// attribute is not a sample label there.
func TestSampleServiceNameSplits(t *testing.T) {
	b, p, stack := cpuExport()
	a := b.Attr("service.name", x.String("a"))
	bb := b.Attr("service.name", x.String("b"))
	th := b.Attr("thread.name", x.String("t1"))
	p.Samples = []*profilesv1.Sample{
		{StackIndex: stack, Values: []int64{1}, AttributeIndices: []int32{th, a}},
		{StackIndex: stack, Values: []int64{2}, AttributeIndices: []int32{bb}},
		{StackIndex: stack, Values: []int64{3}},
		{StackIndex: stack, Values: []int64{4}, AttributeIndices: []int32{a}},
	}
	got := mustConvert(t, b.Req)
	byService := map[string][]string{}
	for _, c := range got {
		for _, l := range c.labels {
			if v, ok := strings.CutPrefix(l, "service_name="); ok {
				byService[v] = samples(c.p)
			}
		}
		if !slices.Contains(c.labels, "service.name=svc") {
			t.Errorf("resource attribute missing: %q", c.labels)
		}
	}
	want := map[string][]string{
		"a":   {"main;mid;leaf |  => [40000000]", "main;mid;leaf | thread.name=t1 => [10000000]"},
		"b":   {"main;mid;leaf |  => [20000000]"},
		"svc": {"main;mid;leaf |  => [30000000]"},
	}
	if len(byService) != 3 {
		t.Fatalf("services %v", byService)
	}
	for k, v := range want {
		if !slices.Equal(byService[k], v) {
			t.Errorf("%s: %q, want %q", k, byService[k], v)
		}
	}
}

func TestSampleLabels(t *testing.T) {
	b, p, stack := cpuExport()
	arr := &commonv1.AnyValue{Value: &commonv1.AnyValue_ArrayValue{ArrayValue: &commonv1.ArrayValue{Values: []*commonv1.AnyValue{x.Int(7)}}}}
	arr2 := &commonv1.AnyValue{Value: &commonv1.AnyValue_ArrayValue{ArrayValue: &commonv1.ArrayValue{Values: []*commonv1.AnyValue{x.Int(7), x.Int(8)}}}}
	attrs := []int32{
		b.Attr("cpu", x.Int(0)),
		b.Attr("thread.name", x.String("w")),
		b.Attr("empty", x.String("")),
		b.Attr("flag", &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{BoolValue: true}}),
		b.Attr("one", arr),
		b.Attr("two", arr2),
	}
	trace := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	p.Samples = []*profilesv1.Sample{
		{StackIndex: stack, Values: []int64{1}, AttributeIndices: attrs, LinkIndex: b.Link(trace, []byte{0xa, 0xb, 0xc, 0xd, 0, 0, 0, 1})},
		{StackIndex: stack, Values: []int64{2}, LinkIndex: b.Link([]byte{1}, nil)},
	}
	got := samples(mustConvert(t, b.Req)[0].p)
	// An empty span id is a label with an empty string, which pprof reads
	// as a numeric label (not rendered here) and normalization drops.
	want := []string{
		"main;mid;leaf |  => [20000000]",
		"main;mid;leaf | cpu=0,one=7,span_id=0a0b0c0d00000001,thread.name=w,trace_id=0102030405060708090a0b0c0d0e0f10 => [10000000]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("samples\n got %q\nwant %q", got, want)
	}
}

func TestSeriesLabels(t *testing.T) {
	b := x.New()
	sp := b.Resource("s",
		x.KV("__name__", x.String("evil")),
		x.KV("k8s.pod.name", x.String("")),
		x.KV("k8s.pod.name", x.String("pod-1")),
		x.KV("env", x.String("prod")),
		x.KV("pid", x.Int(7)),
		x.KV("flag", &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{BoolValue: true}}),
	)
	sp.Scope.Attributes = []*commonv1.KeyValue{x.KV("env", x.String("dev")), x.KV("scope.attr", x.String("yes"))}
	p := b.Profile(sp, "samples", "count", "cpu", "nanoseconds", 1, t0, time.Second)
	p.Samples = []*profilesv1.Sample{{StackIndex: b.Stack(b.Location(0, 1)), Values: []int64{1}}}
	got := mustConvert(t, b.Req)[0].labels
	want := []string{"__delta__=false", "__name__=process_cpu", "__otel__=true", "env=prod", "k8s.pod.name=pod-1", "pid=7", "scope.attr=yes", "service_name=unknown_service"}
	if !slices.Equal(got, want) {
		t.Errorf("labels\n got %q\nwant %q", got, want)
	}
}

func TestTimeAndDurationDefaults(t *testing.T) {
	b, p, stack := cpuExport()
	p.TimeUnixNano, p.DurationNano = 0, 0
	p.Samples = []*profilesv1.Sample{{StackIndex: stack, Values: []int64{1}}}
	pp := mustConvert(t, b.Req)[0].p
	if pp.TimeNanos != t0.UnixNano() || pp.DurationNanos != int64(10*time.Second) {
		t.Errorf("time %d, duration %d", pp.TimeNanos, pp.DurationNanos)
	}
}

// Inline frames keep their order (innermost first) and stacks stay leaf
// first; mapping flags follow the locations of the sample that first had
// each location, as in Pyroscope; build ids come from the mapping's
// attribute.
func TestStacksAndMappings(t *testing.T) {
	b := x.New()
	sp := b.Resource("s", x.KV("service.name", x.String("svc")))
	p := b.Profile(sp, "cpu", "nanoseconds", "cpu", "nanoseconds", 1, t0, time.Second)
	exe := b.Mapping("/bin/app", 0x400000, 0x800000, "abcd")
	lib := b.Mapping("/lib/libc.so", 0x7f0000, 0x7f8000, "")
	inl := b.Location(exe, 0x401000, x.Line{Function: b.Function("inlined", "a.go"), Line: 5}, x.Line{Function: b.Function("caller", "a.go"), Line: 9})
	root := b.Location(exe, 0x402000, x.Line{Function: b.Function("main", "a.go"), Line: 1})
	raw := b.Location(lib, 0x7f0100)
	raw2 := b.Location(exe, 0x403000)
	p.Samples = []*profilesv1.Sample{
		{StackIndex: b.Stack(raw, inl, root), Values: []int64{1}},
		// exe has an unsymbolized location in this sample: raw2 gets a
		// mapping without functions, the others keep theirs
		{StackIndex: b.Stack(raw2, inl, root), Values: []int64{2}},
	}
	pp := mustConvert(t, b.Req)[0].p
	if got := samples(pp); !slices.Equal(got, []string{"main;caller;inlined;0x403000 |  => [2]", "main;caller;inlined;0x7f0100 |  => [1]"}) {
		t.Errorf("samples %q", got)
	}
	for _, l := range pp.Location {
		m := l.Mapping
		switch l.Address {
		case 0x401000, 0x402000:
			if m.File != "/bin/app" || m.BuildID != "abcd" || !m.HasFunctions || !m.HasFilenames || !m.HasLineNumbers || m.HasInlineFrames {
				t.Errorf("symbolized location %#x: mapping %+v", l.Address, m)
			}
		case 0x403000:
			if m.File != "/bin/app" || m.HasFunctions || m.HasFilenames || m.HasLineNumbers {
				t.Errorf("unsymbolized location %#x: mapping %+v", l.Address, m)
			}
		case 0x7f0100:
			if m.File != "/lib/libc.so" || m.BuildID != "" || m.HasFunctions || m.Start != 0x7f0000 || m.Limit != 0x7f8000 {
				t.Errorf("library location: mapping %+v", m)
			}
		}
	}
	if len(pp.Mapping) != 3 {
		t.Errorf("%d mappings, want 3 (exe symbolized, exe not, libc)", len(pp.Mapping))
	}
}

// The synthetic eBPF export converts without error, one profile per
// process, each valid pprof.
func TestEBPFExport(t *testing.T) {
	req := x.EBPF(x.EBPFOptions{Processes: 30, Stacks: 50, Seed: 1, Time: t0})
	got := mustConvert(t, req)
	if len(got) != 30 {
		t.Fatalf("%d profiles, want 30", len(got))
	}
	for _, c := range got {
		if len(c.p.Sample) != 50 || c.p.SampleType[0].Type != "cpu" {
			t.Fatalf("%d samples of %v", len(c.p.Sample), c.p.SampleType)
		}
	}
}
