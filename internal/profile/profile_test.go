package profile

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/klauspost/compress/gzip"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/validation"
)

func limits() *config.Limits {
	c := config.Defaults()
	return &c.Limits
}

var series = []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: "svc"}}

// small is a minimal valid profile: main -> a, values [1 10].
func small(now time.Time) *profilev1.Profile {
	return &profilev1.Profile{
		SampleType:  []*profilev1.ValueType{{Type: 1, Unit: 2}, {Type: 3, Unit: 4}},
		Sample:      []*profilev1.Sample{{LocationId: []uint64{2, 1}, Value: []int64{1, 10}}},
		Location:    []*profilev1.Location{{Id: 1, Line: []*profilev1.Line{{FunctionId: 1}}}, {Id: 2, Line: []*profilev1.Line{{FunctionId: 2}}}},
		Function:    []*profilev1.Function{{Id: 1, Name: 5}, {Id: 2, Name: 6}},
		StringTable: []string{"", "samples", "count", "cpu", "nanoseconds", "main", "a"},
		TimeNanos:   now.UnixNano(),
	}
}

func reasonOf(err error) validation.Reason {
	var v *validation.Error
	if errors.As(err, &v) {
		return v.Reason
	}
	return ""
}

// TestValidateRules: one row per ValidateProfile rule
// (docs/compatibility.md#profile-validation).
func TestValidateRules(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		mod     func(*profilev1.Profile, *config.Limits)
		reason  validation.Reason
		msg     string
		changed bool
		check   func(*testing.T, *profilev1.Profile)
	}{
		{name: "valid", mod: func(*profilev1.Profile, *config.Limits) {}},
		{name: "no sample types", mod: func(p *profilev1.Profile, _ *config.Limits) { p.SampleType = nil }, reason: validation.MalformedProfile, msg: "empty profile"},
		{name: "too old", mod: func(p *profilev1.Profile, _ *config.Limits) { p.TimeNanos = now.Add(-2 * time.Hour).UnixNano() }, reason: validation.NotInIngestionWindow, msg: "is outside of ingestion window"},
		{name: "too new", mod: func(p *profilev1.Profile, _ *config.Limits) { p.TimeNanos = now.Add(time.Hour).UnixNano() }, reason: validation.NotInIngestionWindow, msg: "the ingestion window starts at"},
		{name: "window off", mod: func(p *profilev1.Profile, l *config.Limits) {
			p.TimeNanos = now.Add(-48 * time.Hour).UnixNano()
			l.RejectOlderThan = 0
		}},
		{name: "time zero set to now", mod: func(p *profilev1.Profile, _ *config.Limits) { p.TimeNanos = 0 }, changed: true,
			check: func(t *testing.T, p *profilev1.Profile) {
				if p.TimeNanos != now.UnixNano() {
					t.Errorf("time %d", p.TimeNanos)
				}
			}},
		{name: "time negative set to now", mod: func(p *profilev1.Profile, _ *config.Limits) { p.TimeNanos = -5 }, changed: true},
		{name: "size limit", mod: func(_ *profilev1.Profile, l *config.Limits) { l.MaxProfileSizeBytes = 10 }, reason: validation.ProfileSizeLimit, msg: "exceeds the size limit (max_profile_size_byte, actual: 100, limit: 10)"},
		{name: "samples limit", mod: func(p *profilev1.Profile, l *config.Limits) {
			l.MaxProfileStacktraceSamples = 1
			p.Sample = append(p.Sample, &profilev1.Sample{LocationId: []uint64{1}, Value: []int64{1, 1}})
		}, reason: validation.SamplesLimit, msg: "actual: 2, limit: 1"},
		{name: "depth truncated root side kept", mod: func(_ *profilev1.Profile, l *config.Limits) { l.MaxProfileStacktraceDepth = 1 }, changed: true,
			check: func(t *testing.T, p *profilev1.Profile) {
				if len(p.Sample[0].LocationId) != 1 || p.Sample[0].LocationId[0] != 1 {
					t.Errorf("locations %v, want [1] (root)", p.Sample[0].LocationId)
				}
			}},
		{name: "sample labels limit", mod: func(p *profilev1.Profile, l *config.Limits) {
			l.MaxProfileStacktraceSampleLabels = 1
			p.Sample[0].Label = []*profilev1.Label{{Key: 5, Str: 6}, {Key: 6, Str: 5}}
		}, reason: validation.SampleLabelsLimit, msg: "max_profile_stacktrace_sample_labels, actual: 2, limit: 1"},
		{name: "symbol truncated to last bytes", mod: func(p *profilev1.Profile, l *config.Limits) {
			l.MaxProfileSymbolValueLength = 3
			p.StringTable[5] = "github.com/x.main"
		}, changed: true, check: func(t *testing.T, p *profilev1.Profile) {
			if p.StringTable[5] != "ain" {
				t.Errorf("got %q", p.StringTable[5])
			}
		}},
		{name: "location id 0", mod: func(p *profilev1.Profile, _ *config.Limits) { p.Location[0].Id = 0 }, reason: validation.MalformedProfile, msg: "location id is 0"},
		{name: "function id 0", mod: func(p *profilev1.Profile, _ *config.Limits) { p.Function[0].Id = 0 }, reason: validation.MalformedProfile, msg: "function id is 0"},
		{name: "value count mismatch", mod: func(p *profilev1.Profile, _ *config.Limits) { p.Sample[0].Value = []int64{1} }, reason: validation.MalformedProfile, msg: "has 1 values"},
		{name: "string 0 not empty", mod: func(p *profilev1.Profile, _ *config.Limits) { p.StringTable[0] = "x" }, reason: validation.MalformedProfile, msg: "must start with an empty string"},
		{name: "sample type string out of range", mod: func(p *profilev1.Profile, _ *config.Limits) { p.SampleType[0].Type = 99 }, reason: validation.MalformedProfile, msg: "refers to string 99"},
		{name: "label string out of range", mod: func(p *profilev1.Profile, _ *config.Limits) {
			p.Sample[0].Label = []*profilev1.Label{{Key: 1, Str: 77}}
		}, reason: validation.MalformedProfile, msg: "refers to string 77"},
		{name: "function name out of range", mod: func(p *profilev1.Profile, _ *config.Limits) { p.Function[0].Name = 42 }, reason: validation.MalformedProfile, msg: "function 1 refers to a string out of range"},
		{name: "mapping file out of range", mod: func(p *profilev1.Profile, _ *config.Limits) {
			p.Mapping = []*profilev1.Mapping{{Id: 1, Filename: 42}}
		}, reason: validation.MalformedProfile, msg: "mapping 1 refers"},
		{name: "sample type with dash", mod: func(p *profilev1.Profile, _ *config.Limits) { p.StringTable[1] = "alloc-space" }, reason: validation.MalformedProfile, msg: "sample type contains -"},
		{name: "invalid utf8", mod: func(p *profilev1.Profile, _ *config.Limits) { p.StringTable[6] = "a\xff" }, reason: validation.MalformedProfile, msg: "invalid utf8 string hex: 61ff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, l := small(now), limits()
			tt.mod(p, l)
			changed, err := Validate(l, p, 100, series, now)
			if tt.reason != "" {
				if reasonOf(err) != tt.reason || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("err %v, want %s containing %q", err, tt.reason, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.changed {
				t.Errorf("changed %v, want %v", changed, tt.changed)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

// TestNormalize: one row per normalization rule
// (docs/compatibility.md#normalization).
func TestNormalize(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		mod     func(*profilev1.Profile)
		changed bool
		samples int
		check   func(*testing.T, *profilev1.Profile)
	}{
		{name: "clean", mod: func(*profilev1.Profile) {}, samples: 1},
		{name: "all-zero removed", mod: func(p *profilev1.Profile) {
			p.Sample = append(p.Sample, &profilev1.Sample{LocationId: []uint64{1}, Value: []int64{0, 0}})
		}, changed: true, samples: 1},
		{name: "any negative removed", mod: func(p *profilev1.Profile) {
			p.Sample = append(p.Sample, &profilev1.Sample{LocationId: []uint64{1}, Value: []int64{-1, 5}})
		}, changed: true, samples: 1},
		{name: "one zero value kept", mod: func(p *profilev1.Profile) {
			p.Sample = append(p.Sample, &profilev1.Sample{LocationId: []uint64{1}, Value: []int64{0, 5}})
		}, samples: 2},
		{name: "same stack and labels summed", mod: func(p *profilev1.Profile) {
			p.Sample = append(p.Sample, &profilev1.Sample{LocationId: []uint64{2, 1}, Value: []int64{2, 20}})
		}, changed: true, samples: 1, check: func(t *testing.T, p *profilev1.Profile) {
			if v := p.Sample[0].Value; v[0] != 3 || v[1] != 30 {
				t.Errorf("values %v", v)
			}
		}},
		{name: "same stack other labels kept apart", mod: func(p *profilev1.Profile) {
			p.Sample = append(p.Sample, &profilev1.Sample{LocationId: []uint64{2, 1}, Value: []int64{2, 20}, Label: []*profilev1.Label{{Key: 5, Str: 6}}})
		}, samples: 2},
		{name: "label order does not matter", mod: func(p *profilev1.Profile) {
			p.Sample[0].Label = []*profilev1.Label{{Key: 5, Str: 6}, {Key: 6, Str: 5}}
			p.Sample = append(p.Sample, &profilev1.Sample{LocationId: []uint64{2, 1}, Value: []int64{2, 20}, Label: []*profilev1.Label{{Key: 6, Str: 5}, {Key: 5, Str: 6}}})
		}, changed: true, samples: 1},
		{name: "numeric labels removed", mod: func(p *profilev1.Profile) {
			p.Sample[0].Label = []*profilev1.Label{{Key: 5, Num: 3}}
		}, changed: true, samples: 1, check: func(t *testing.T, p *profilev1.Profile) {
			if len(p.Sample[0].Label) != 0 {
				t.Errorf("labels %v", p.Sample[0].Label)
			}
		}},
		{name: "unused symbols dropped", mod: func(p *profilev1.Profile) {
			p.StringTable = append(p.StringTable, "unused")
			p.Function = append(p.Function, &profilev1.Function{Id: 3, Name: 7})
			p.Location = append(p.Location, &profilev1.Location{Id: 3, Line: []*profilev1.Line{{FunctionId: 3}}})
			p.Sample = append(p.Sample, &profilev1.Sample{LocationId: []uint64{3}, Value: []int64{0, 0}})
		}, changed: true, samples: 1, check: func(t *testing.T, p *profilev1.Profile) {
			if len(p.Location) != 2 || len(p.Function) != 2 || len(p.StringTable) != 7 {
				t.Errorf("locations %d functions %d strings %d", len(p.Location), len(p.Function), len(p.StringTable))
			}
		}},
		{name: "dangling location drops the sample", mod: func(p *profilev1.Profile) {
			p.Sample = append(p.Sample, &profilev1.Sample{LocationId: []uint64{9}, Value: []int64{1, 1}})
		}, changed: true, samples: 1},
		{name: "sparse ids renumbered", mod: func(p *profilev1.Profile) {
			p.Location[0].Id, p.Location[1].Id = 10, 20
			p.Sample[0].LocationId = []uint64{20, 10}
		}, changed: true, samples: 1, check: func(t *testing.T, p *profilev1.Profile) {
			if p.Location[0].Id != 1 || p.Location[1].Id != 2 || p.Sample[0].LocationId[0] != 2 {
				t.Errorf("not renumbered")
			}
		}},
		{name: "symbolized addresses cleared", mod: func(p *profilev1.Profile) {
			p.Mapping = []*profilev1.Mapping{{Id: 1, MemoryStart: 0x400000, MemoryLimit: 0x500000, HasFunctions: true}}
			p.Location[0].MappingId, p.Location[1].MappingId = 1, 1
			p.Location[0].Address = 0x401000
		}, changed: true, samples: 1, check: func(t *testing.T, p *profilev1.Profile) {
			if p.Location[0].Address != 0 || p.Mapping[0].MemoryStart != 0 {
				t.Errorf("addresses kept")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := small(now)
			p.Mapping = []*profilev1.Mapping{{Id: 1}}
			p.Location[0].MappingId, p.Location[1].MappingId = 1, 1
			tt.mod(p)
			if _, err := Validate(limits(), p, 100, series, now); err != nil {
				t.Fatal(err)
			}
			if got := Normalize(p); got != tt.changed {
				t.Errorf("changed %v, want %v", got, tt.changed)
			}
			if len(p.Sample) != tt.samples {
				t.Errorf("%d samples, want %d", len(p.Sample), tt.samples)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
			b, _ := p.MarshalVT()
			q, err := profile.ParseData(b)
			if err == nil {
				err = q.CheckValid()
			}
			if err != nil {
				t.Fatalf("normalized profile invalid: %v", err)
			}
		})
	}
}

// Two functions that differ only in their type parameters become one x.f,
// and a renamed function also merges with one that never had type
// parameters (Pyroscope's merge of the profile with itself), so their
// samples are summed.
func TestFixGoMergesRenamedFunctions(t *testing.T) {
	for _, names := range [][2]string{
		{"x[go.shape.int].f", "x[go.shape.string].f"},
		{"x.f", "x[go.shape.int].f"},
	} {
		p := small(time.Now())
		p.StringTable = append(p.StringTable, names[0], names[1])
		p.Function = []*profilev1.Function{{Id: 1, Name: 5}, {Id: 2, Name: 7}, {Id: 3, Name: 8}}
		p.Location = []*profilev1.Location{{Id: 1, Line: []*profilev1.Line{{FunctionId: 1}}}, {Id: 2, Line: []*profilev1.Line{{FunctionId: 2}}}, {Id: 3, Line: []*profilev1.Line{{FunctionId: 3}}}}
		p.Sample = []*profilev1.Sample{{LocationId: []uint64{2, 1}, Value: []int64{1, 10}}, {LocationId: []uint64{3, 1}, Value: []int64{2, 20}}}
		if !FixGo(p) {
			t.Fatalf("%v: FixGo changed nothing", names)
		}
		Normalize(p)
		if len(p.Sample) != 1 || p.Sample[0].Value[0] != 3 || p.Sample[0].Value[1] != 30 {
			t.Fatalf("%v: samples of x.f not merged: %v", names, p.Sample)
		}
	}
}

func TestSplitBySampleLabels(t *testing.T) {
	now := time.Now()
	p := small(now)
	p.StringTable = append(p.StringTable, "service_name", "other", "endpoint", "/x", "profile_id", "abc")
	// string indices: 7 service_name, 8 other, 9 endpoint, 10 /x, 11 profile_id, 12 abc
	p.Sample = []*profilev1.Sample{
		{LocationId: []uint64{2, 1}, Value: []int64{1, 10}, Label: []*profilev1.Label{{Key: 9, Str: 10}, {Key: 11, Str: 12}}},
		{LocationId: []uint64{1}, Value: []int64{2, 20}, Label: []*profilev1.Label{{Key: 9, Str: 10}, {Key: 7, Str: 8}}},
	}
	if _, err := Validate(limits(), p, 100, series, now); err != nil {
		t.Fatal(err)
	}
	Normalize(p)
	outs, changed, err := Split(limits(), p, series)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 || !changed {
		t.Fatalf("outs %d changed %v", len(outs), changed)
	}
	// endpoint=/x is shared by every sample: it becomes a series label;
	// service_name from the sample loses to the series; profile_id -> span_id.
	got := validation.LabelsString(outs[0].Labels)
	if got != `{__name__="process_cpu", endpoint="/x", service_name="svc"}` {
		t.Errorf("labels %s", got)
	}
	b, _ := outs[0].Profile.MarshalVT()
	q, err := profile.ParseData(b)
	if err != nil || q.CheckValid() != nil {
		t.Fatalf("invalid: %v", err)
	}
	var labels []string
	for _, s := range q.Sample {
		for k, v := range s.Label {
			labels = append(labels, k+"="+strings.Join(v, ","))
		}
	}
	if strings.Join(labels, " ") != "span_id=abc" {
		t.Errorf("sample labels %v", labels)
	}
}

func TestInflateCapAndBudget(t *testing.T) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(make([]byte, 32<<20))
	zw.Close()
	buf := GetBuffer()
	charged := 0
	_, err := Inflate(b.Bytes(), 1<<20, buf, func(n int) error { charged += n; return nil })
	var tl *ErrTooLarge
	if !errors.As(err, &tl) {
		t.Fatalf("err %v", err)
	}
	if charged > 1<<20+2*chunkSize || cap(*buf) > 1<<20+2*chunkSize {
		t.Errorf("a bomb cost %d bytes (cap %d), limit 1 MiB", charged, cap(*buf))
	}
	stop := errors.New("stop")
	if _, err := Inflate(b.Bytes(), 0, GetBuffer(), func(n int) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("budget refusal not returned: %v", err)
	}
}

func TestHumanBytes(t *testing.T) {
	for in, want := range map[uint64]string{4194304: "4.2 MB", 1000: "1.0 kB", 5: "5 B", 268435456: "268 MB"} {
		if got := SIBytes(in); got != want {
			t.Errorf("SIBytes(%d) = %q, want %q", in, got, want)
		}
	}
	if got := IECBytes(4 << 20); got != "4.0 MiB" {
		t.Errorf("IECBytes = %q", got)
	}
}

// TestDropGoTypeParameters: dropGoTypeParameters in
// pkg/pprof/fix_go_profile.go at 3fe6a45. Each "[go.shape." section goes up
// to the bracket that balances it; an unbalanced one keeps the rest of the
// name and repeats the text since the last closed section.
func TestDropGoTypeParameters(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no type parameters", "github.com/a/b.(*T).Push", "github.com/a/b.(*T).Push"},
		{"empty", "", ""},
		{"one section", "pkg.Func[go.shape.int]", "pkg.Func"},
		{"section then suffix", "pkg.(*T[go.shape.int]).Method", "pkg.(*T).Method"},
		{"several arguments", "pkg.Func[go.shape.int,go.shape.string]", "pkg.Func"},
		{"nested brackets", "pkg.(*T[go.shape.struct { F []uint8 }]).Method", "pkg.(*T).Method"},
		{"deeper nesting", "pkg.F[go.shape.map[string][]int].G", "pkg.F.G"},
		{"two sections", "pkg.Func[go.shape.int].Method[go.shape.string]", "pkg.Func.Method"},
		{"two sections, first nested", "pkg.Func[go.shape.struct { F []uint8 }].Method[go.shape.int]", "pkg.Func.Method"},
		{"adjacent sections", "f[go.shape.int][go.shape.int]x", "fx"},
		{"brackets without go.shape stay", "pkg.Func[int]", "pkg.Func[int]"},
		{"brackets without go.shape before a section", "a[int].b[go.shape.int]", "a[int].b"},
		{"go.shape without a bracket", "go.shape.int", "go.shape.int"},
		{"section not at a name", "[go.shape.int]", ""},
		{"case-sensitive prefix", "f[Go.shape.int]", "f[Go.shape.int]"},
		{"prefix alone", "f[go.shape.", "ff[go.shape."},
		{"unclosed section repeats the text before it", "a[go.shape.int", "aa[go.shape.int"},
		{"unclosed inner bracket", "pkg.F[go.shape.[]int", "pkg.Fpkg.F[go.shape.[]int"},
		{"unclosed after a closed section", "x[go.shape.int].y[go.shape.z", "x.y.y[go.shape.z"},
		{"closed after an unclosed one is not reached", "a[go.shape.[b[go.shape.c]", "aa[go.shape.[b[go.shape.c]"},
		{"stray closing bracket kept", "a]b[go.shape.c]]", "a]b]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DropGoTypeParameters(tt.in); got != tt.want {
				t.Errorf("DropGoTypeParameters(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestFixGoMergesMappings: Pyroscope's merge keys a mapping by its size
// rounded up to 4 KiB, file offset and build id (else file name), not its
// start, so locations that differ only by such a mapping become one.
func TestFixGoMergesMappings(t *testing.T) {
	p := small(time.Now())
	p.StringTable = append(p.StringTable, "x[go.shape.int].f", "bin")
	p.Function = []*profilev1.Function{{Id: 1, Name: 5}}
	p.Mapping = []*profilev1.Mapping{
		{Id: 1, MemoryStart: 0x1000, MemoryLimit: 0x2001, Filename: 6},
		{Id: 2, MemoryStart: 0x9000, MemoryLimit: 0xa800, Filename: 6}, // same key: size rounds to 0x2000
		{Id: 3, MemoryStart: 0x1000, MemoryLimit: 0x2001, Filename: 6, FileOffset: 1},
	}
	p.Location = []*profilev1.Location{
		{Id: 1, MappingId: 1, Line: []*profilev1.Line{{FunctionId: 1}}},
		{Id: 2, MappingId: 2, Line: []*profilev1.Line{{FunctionId: 1}}},
		{Id: 3, MappingId: 3, Line: []*profilev1.Line{{FunctionId: 1}}},
	}
	p.Sample = []*profilev1.Sample{{LocationId: []uint64{1}, Value: []int64{1, 1}}, {LocationId: []uint64{2}, Value: []int64{2, 2}}, {LocationId: []uint64{3}, Value: []int64{4, 4}}}
	FixGo(p)
	if got := []uint64{p.Sample[0].LocationId[0], p.Sample[1].LocationId[0], p.Sample[2].LocationId[0]}; got[0] != 1 || got[1] != 1 || got[2] != 3 {
		t.Errorf("locations %v, want [1 1 3]", got)
	}
}
