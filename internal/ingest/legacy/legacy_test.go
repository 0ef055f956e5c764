package legacy

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/url"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"

	"github.com/pyrodist/pyrodist/internal/validation"
)

func TestParseName(t *testing.T) {
	cases := []struct {
		in      string
		app     string
		labels  string
		wantErr string
	}{
		{in: "app", app: "app"},
		{in: "my-app.cpu", app: "my-app.cpu"},
		{in: "ns/app_1.cpu{}", app: "ns/app_1.cpu"},
		{in: "app{env=prod,region=eu-1}", app: "app", labels: "env=prod,region=eu-1"},
		{in: "app{region=eu,env=prod}", app: "app", labels: "env=prod,region=eu"},
		{in: "app{a=1,a=2}", app: "app", labels: "a=2"},
		{in: "app{ a = x y ,}", app: "app", labels: "a=x y"},
		{in: "app{otel.scope.name=com.grafana/go}", app: "app", labels: "otel.scope.name=com.grafana/go"},
		{in: "app{v=}", app: "app", labels: "v="},
		{in: "", wantErr: "service name is required"},
		{in: "{bad", wantErr: "service name is required"},
		{in: "{a=b}", wantErr: "service name is required"},
		{in: "app name", wantErr: "unsupported character"},
		{in: "app{a=b", wantErr: "not closed"},
		{in: "app{a}", wantErr: "no '='"},
		{in: "app{=b}", wantErr: "label name is empty"},
		{in: "app{a-b=c}", wantErr: "unsupported character"},
		{in: "app{__name__=x}", wantErr: "reserved"},
		{in: "app{a={b}}", wantErr: "nested"},
	}
	for _, tc := range cases {
		n, err := ParseName(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseName(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseName(%q): %v", tc.in, err)
			continue
		}
		var ls []string
		for _, l := range n.Labels {
			ls = append(ls, l.Name+"="+l.Value)
		}
		if n.App != tc.app || strings.Join(ls, ",") != tc.labels {
			t.Errorf("ParseName(%q) = %q %q, want %q %q", tc.in, n.App, ls, tc.app, tc.labels)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
	}{
		{"", now},
		{"garbage", now},
		{"now", now},
		{"now-1h", now.Add(-time.Hour)},
		{"now+5m", now.Add(5 * time.Minute)},
		{"20261124", time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)},
		{"1764072000", time.Unix(1764072000, 0)},
		{"1764072000123", time.UnixMilli(1764072000123)},
		{"1764072000123456", time.UnixMicro(1764072000123456)},
		{"1764072000123456789", time.Unix(0, 1764072000123456789)},
		{"0", time.Unix(0, 0)},
	}
	for _, tc := range cases {
		if got := ParseTime(tc.in, now); !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseQueryDefaults(t *testing.T) {
	now := time.Now()
	md, err := ParseQuery(url.Values{"name": {"a"}, "sampleRate": {"-3"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if md.SampleRate != 100 || md.SpyName != "unknown" || md.Units != "samples" || md.AggregationType != "sum" || !md.From.Equal(now) {
		t.Fatalf("defaults: %+v", md)
	}
}

func TestTextProfileType(t *testing.T) {
	cases := []struct {
		name, app, metric, sampleType, unit string
	}{
		{"app", "app", "process_cpu", "samples", "count"},
		{"app.cpu", "app", "process_cpu", "samples", "count"},
		{"a.b.wall", "a.b", "wall", "samples", "count"},
		{"app.inuse_space", "app", "memory", "inuse_space", "bytes"},
		{"app.alloc_objects", "app", "memory", "alloc_objects", "count"},
		{"app.goroutines", "app", "goroutine", "goroutines", "count"},
		{"app.mutex_duration", "app", "mutex", "delay", "nanoseconds"},
		{"app.block_count", "app", "block", "contentions", "count"},
		{"app.lock_duration", "app", "block", "delay", "nanoseconds"},
		{"app.exceptions", "app", "exceptions", "samples", "count"},
		{"app.bytes", "app", "memory", "samples", "bytes"},
		{"app.itimer", "app", "process_cpu", "samples", "count"},
	}
	for _, tc := range cases {
		app, typ, err := TextProfileType(tc.name)
		if err != nil || app != tc.app || typ != (textType{tc.metric, tc.sampleType, tc.unit}) {
			t.Errorf("TextProfileType(%q) = %q %+v %v", tc.name, app, typ, err)
		}
	}
	if _, _, err := TextProfileType("app.nope"); err == nil {
		t.Error("unknown suffix accepted")
	}
}

func TestTextLabelsServiceName(t *testing.T) {
	md, _ := ParseQuery(url.Values{"name": {"app.cpu{service_name=svc,__session_id__=abc,__hidden=x}"}, "spyName": {"rbspy"}}, time.Now())
	s, err := Folded([]byte("a 1"), md)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range s.Labels {
		got = append(got, l.Name+"="+l.Value)
	}
	want := []string{"__delta__=false", "__name__=process_cpu", "__session_id__=abc", "app_name=app", "pyroscope_spy=rbspy", "service_name=svc"}
	if !slices.Equal(got, want) {
		t.Errorf("labels %q, want %q", got, want)
	}
}

func realProfiles(t testing.TB) [][]byte {
	var cpu, heap bytes.Buffer
	if err := pprof.StartCPUProfile(&cpu); err == nil {
		end := time.Now().Add(20 * time.Millisecond)
		for time.Now().Before(end) {
		}
		pprof.StopCPUProfile()
	}
	_ = pprof.Lookup("heap").WriteTo(&heap, 0)
	return [][]byte{cpu.Bytes(), heap.Bytes()}
}

func TestPprofScriptingSpy(t *testing.T) {
	md, _ := ParseQuery(url.Values{"name": {"py"}, "spyName": {"pyspy"}}, time.Now())
	fn := &profile.Function{ID: 1, Name: "handler", Filename: "app.py"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		Sample:     []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{1}}},
		Location:   []*profile.Location{loc}, Function: []*profile.Function{fn},
	}
	var buf bytes.Buffer
	_ = p.Write(&buf)
	s, err := Pprof(buf.Bytes(), md, nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := profile.ParseData(s.Pprof)
	if err != nil {
		t.Fatal(err)
	}
	if name := got.Function[0].Name; name != "app.py:-1 - handler" {
		t.Errorf("function name %q", name)
	}
	if got.TimeNanos != md.From.UnixNano() {
		t.Errorf("time %d, want from %d", got.TimeNanos, md.From.UnixNano())
	}
}

func TestPprofSizeCap(t *testing.T) {
	md, _ := ParseQuery(url.Values{"name": {"a"}}, time.Now())
	for _, raw := range realProfiles(t) {
		if _, err := Pprof(raw, md, nil, 64, nil); err == nil {
			t.Error("a profile over the cap was accepted")
		}
		if _, err := Pprof(raw, md, nil, 0, nil); err != nil {
			t.Error(err)
		}
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{"app", "app.cpu{env=prod}", "{bad", "a{b=c,d=e}", "a{__name__=x}", "a{b=}", "ns/app-1.alloc_space{x.y=1}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			return
		}
		if n.App == "" {
			t.Fatal("empty app accepted")
		}
		if !slices.IsSortedFunc(n.Labels, func(a, b Label) int { return strings.Compare(a.Name, b.Name) }) {
			t.Fatal("labels not sorted")
		}
		// What we accept prints back to a name that parses the same.
		var parts []string
		for _, l := range n.Labels {
			if l.Name == "__name__" || l.Name == "" {
				t.Fatalf("label name %q accepted", l.Name)
			}
			parts = append(parts, l.Name+"="+l.Value)
		}
		again, err := ParseName(n.App + "{" + strings.Join(parts, ",") + "}")
		if err != nil || again.App != n.App || !slices.Equal(again.Labels, n.Labels) {
			t.Fatalf("re-parse of %q: %+v %v", s, again, err)
		}
	})
}

func FuzzFolded(f *testing.F) {
	for _, s := range []string{"main;a 10\nmain;b 0\nmain;a 5\n", "x 1", "a;;b 3\r\n", "no count", "a -1", "a 9223372036854775807\na 1", ";; 2"} {
		f.Add(s, uint32(100))
	}
	f.Fuzz(func(t *testing.T, body string, rate uint32) {
		md, _ := ParseQuery(url.Values{"name": {"app.cpu"}, "sampleRate": {fmt.Sprint(rate)}}, time.Now())
		s, err := Folded([]byte(body), md)
		if err != nil {
			return
		}
		p, err := profile.ParseData(s.Pprof)
		if err != nil {
			t.Fatalf("output does not parse: %v", err)
		}
		if err := p.CheckValid(); err != nil {
			t.Fatalf("output not valid: %v", err)
		}
		for _, smp := range p.Sample {
			if smp.Value[0] <= 0 {
				t.Fatalf("non-positive value %d", smp.Value[0])
			}
		}
	})
}

func FuzzPprof(f *testing.F) {
	for _, raw := range realProfiles(f) {
		f.Add(raw)
	}
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		md, _ := ParseQuery(url.Values{"name": {"a"}, "spyName": {"pyspy"}}, time.Now())
		s, err := Pprof(data, md, nil, 1<<20, nil)
		if err != nil {
			return
		}
		if len(s.Labels) == 0 || len(s.Pprof) == 0 && len(data) > 0 {
			t.Fatalf("bad output: %d labels, %d bytes", len(s.Labels), len(s.Pprof))
		}
	})
}

// Pprof charges the inflated bytes and what it decodes before it takes
// them, and hands the budget's own error back: a header read for a profile
// passed on as it is, the whole decoded form for one it rewrites.
func TestPprofChargesReserve(t *testing.T) {
	raw := realProfiles(t)[0]
	inflated, err := inflateForTest(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spy  string
		want int
	}{
		{"gospy", 2 * len(inflated)},
		{"pyspy", (decodedFactor + 1) * len(inflated)},
	} {
		md, _ := ParseQuery(url.Values{"name": {"app.cpu"}, "spyName": {tc.spy}}, time.Now())
		var charged int
		if _, err := Pprof(raw, md, nil, 0, func(n int) error { charged += n; return nil }); err != nil {
			t.Fatal(err)
		}
		if charged < tc.want {
			t.Errorf("%s: charged %d bytes, want at least %d", tc.spy, charged, tc.want)
		}
		full := errors.New("budget full")
		if _, err := Pprof(raw, md, nil, 0, func(int) error { return full }); err != full {
			t.Errorf("%s: err %v, want the budget's error", tc.spy, err)
		}
	}
}

// A profile that needs no fix reaches the pipeline as the agent encoded it
// (only its header was read); one with a 1970 time is rewritten with the
// request's time and loses nothing else.
func TestPprofPassesBytesOrRewrites(t *testing.T) {
	raw := realProfiles(t)[0]
	inflated, err := inflateForTest(raw)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Unix(1700000000, 0)
	md, _ := ParseQuery(url.Values{"name": {"app.cpu"}, "from": {"1700000000"}}, time.Now())
	s, err := Pprof(raw, md, nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Pprof, inflated) {
		t.Fatalf("bytes changed (%d -> %d) though nothing needed a fix", len(inflated), len(s.Pprof))
	}
	if got := validation.Get(s.Labels, "__name__"); got != "process_cpu" {
		t.Fatalf("__name__ %q, want process_cpu", got)
	}

	var p googlev1.Profile
	if err := p.UnmarshalVT(inflated); err != nil {
		t.Fatal(err)
	}
	p.TimeNanos = 0
	zeroTime, err := p.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	s, err = Pprof(zeroTime, md, nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got googlev1.Profile
	if err := got.UnmarshalVT(s.Pprof); err != nil {
		t.Fatal(err)
	}
	if got.TimeNanos != from.UnixNano() {
		t.Fatalf("time %d, want %d", got.TimeNanos, from.UnixNano())
	}
	if len(got.Sample) != len(p.Sample) || len(got.Location) != len(p.Location) {
		t.Fatalf("rewrite lost data: %d/%d samples, %d/%d locations",
			len(got.Sample), len(p.Sample), len(got.Location), len(p.Location))
	}
}

func inflateForTest(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
