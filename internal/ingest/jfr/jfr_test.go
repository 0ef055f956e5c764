package jfr

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	jfrpprof "github.com/grafana/jfr-parser/pprof"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/ingest/legacy"
	"github.com/pyrodist/pyrodist/test/testutil/observed"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

// testRecording is a real recording and the labels snapshot sent with it.
type testRecording struct {
	name         string
	data, labels []byte
}

func gunzipFile(t testing.TB, path string) []byte {
	t.Helper()
	gz, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testRecordings are the recordings in testdata and the two of the observed
// corpus (as raw JFR).
func testRecordings(t testing.TB) []testRecording {
	t.Helper()
	var out []testRecording
	files, _ := filepath.Glob("testdata/*.jfr.gz")
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".jfr.gz")
		r := testRecording{name: base, data: gunzipFile(t, f)}
		for _, l := range []string{base + ".labels.pb.gz", base + ".labels.gz"} {
			if _, err := os.Stat("testdata/" + l); err == nil {
				r.labels = gunzipFile(t, "testdata/"+l)
			}
		}
		out = append(out, r)
	}
	for _, rq := range observed.JFRRequests() {
		if data := observedRecording(t, rq); data != nil {
			out = append(out, testRecording{name: rq.Case, data: data})
		}
	}
	if len(out) < 6 {
		t.Fatalf("%d test recordings", len(out))
	}
	// JFR_PARSER_TESTDATA names a directory of more (e.g. jfr-parser's
	// parser/testdata in the module cache) to measure on.
	if dir := os.Getenv("JFR_PARSER_TESTDATA"); dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "*.jfr.gz"))
		for _, f := range files {
			out = append(out, testRecording{name: filepath.Base(f), data: gunzipFile(t, f)})
		}
	}
	return out
}

// observedRecording is the JFR of an observed request that carries one.
func observedRecording(t testing.TB, rq observed.Request) []byte {
	switch {
	case bytes.HasPrefix(rq.Body, []byte("FLR\x00")):
		return rq.Body
	case strings.HasPrefix(rq.ContentType, "multipart/form-data"):
		data, _, err := splitForm(rq.Body, rq.ContentType)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	return nil
}

// splitForm returns the jfr and labels files of a multipart body.
func splitForm(body []byte, contentType string) (data, labels []byte, err error) {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, nil, err
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return data, labels, nil
		}
		if err != nil {
			return nil, nil, err
		}
		b, err := io.ReadAll(part)
		if err != nil {
			return nil, nil, err
		}
		switch part.FormName() {
		case "jfr":
			data = b
		case "labels":
			labels = b
		}
	}
}

func testMetadata(t testing.TB, name string) legacy.Metadata {
	t.Helper()
	n, err := legacy.ParseName(name)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	return legacy.Metadata{Name: n, From: now.Add(-10 * time.Second), Until: now, SampleRate: 100, SpyName: "javaspy"}
}

// render is a profile's samples as "root;...;leaf | k=v,... => [values]",
// sorted, with the sample types and period type first.
func render(p *profile.Profile) []string {
	var out []string
	for _, s := range p.Sample {
		var frames []string
		for i := len(s.Location) - 1; i >= 0; i-- {
			for _, l := range s.Location[i].Line {
				frames = append(frames, l.Function.Name)
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
	head := fmt.Sprintf("period %v %d; duration %d", p.PeriodType, p.Period, p.DurationNanos)
	for _, st := range p.SampleType {
		head += "; " + st.Type + "/" + st.Unit
	}
	return append([]string{head}, out...)
}

func labelStrings(ls []*typesv1.LabelPair) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Name + "=" + l.Value
	}
	return out
}

// TestConvertMatchesParser: every real recording converts, and each series
// holds what jfr-parser makes of it on its own, labelled as Pyroscope does.
func TestConvertMatchesParser(t *testing.T) {
	for _, rec := range testRecordings(t) {
		t.Run(rec.name, func(t *testing.T) {
			md := testMetadata(t, "app{env=prod}")
			series, err := Convert(rec.data, rec.labels, md, nil)
			if err != nil {
				t.Fatal(err)
			}
			snapshot := new(jfrpprof.LabelsSnapshot)
			if err := snapshot.UnmarshalVT(rec.labels); err != nil {
				t.Fatal(err)
			}
			want, err := jfrpprof.ParseJFR(rec.data, &jfrpprof.ParseInput{StartTime: md.From, EndTime: md.Until, SampleRate: 100}, snapshot)
			if err != nil {
				t.Fatal(err)
			}
			if len(series) != len(want.Profiles) || len(series) == 0 {
				t.Fatalf("%d series, the parser made %d profiles", len(series), len(want.Profiles))
			}
			wantByType := map[string][]string{}
			for _, p := range want.Profiles {
				b, _ := p.Profile.MarshalVT()
				r := render(pprofcheck.Parse(t, b))
				wantByType[p.Metric+" "+r[0]] = r
			}
			for _, s := range series {
				got := render(pprofcheck.Parse(t, s.Pprof))
				ls := labelStrings(s.Labels)
				metric := strings.TrimPrefix(ls[slices.IndexFunc(ls, func(l string) bool { return strings.HasPrefix(l, "__name__=") })], "__name__=")
				w, ok := wantByType[metric+" "+got[0]]
				if !ok {
					t.Fatalf("series %v (%s) not made by the parser", ls, got[0])
				}
				if !slices.Equal(got, w) {
					t.Errorf("%s: samples differ from the parser's", metric)
				}
				wantLabels := []string{"__delta__=false", "__name__=" + metric, "env=prod", "jfr_event=" + want.JFREvent, "pyroscope_spy=javaspy", "service_name=app"}
				if !slices.Equal(ls, wantLabels) {
					t.Errorf("labels %v, want %v", ls, wantLabels)
				}
			}
		})
	}
}

// TestConvertSnapshotLabels: the Java SDK's dynamic labels (the labels
// snapshot's contexts) become sample labels.
func TestConvertSnapshotLabels(t *testing.T) {
	data := gunzipFile(t, "testdata/dump1.jfr.gz")
	labels := gunzipFile(t, "testdata/dump1.labels.pb.gz")
	without, err := Convert(data, nil, testMetadata(t, "app"), nil)
	if err != nil {
		t.Fatal(err)
	}
	with, err := Convert(data, labels, testMetadata(t, "app"), nil)
	if err != nil {
		t.Fatal(err)
	}
	count := func(series []*legacy.Series) (labelled int, keys map[string]bool) {
		keys = map[string]bool{}
		for _, s := range series {
			for _, smp := range pprofcheck.Parse(t, s.Pprof).Sample {
				if len(smp.Label) > 0 {
					labelled++
				}
				for k := range smp.Label {
					keys[k] = true
				}
			}
		}
		return labelled, keys
	}
	if n, _ := count(without); n != 0 {
		t.Errorf("%d labelled samples without a snapshot", n)
	}
	n, keys := count(with)
	if n == 0 {
		t.Fatal("no sample got the snapshot's labels")
	}
	t.Logf("%d labelled samples, label names %v", n, keys)
}

func TestLabels(t *testing.T) {
	cases := []struct{ name, want string }{
		{"app", "__delta__=false __name__=memory jfr_event=itimer pyroscope_spy=javaspy service_name=app"},
		{"app{env=prod,__private=x,__session_id__=abc}", "__delta__=false __name__=memory __session_id__=abc env=prod jfr_event=itimer pyroscope_spy=javaspy service_name=app"},
		{"app{service_name=svc}", "__delta__=false __name__=memory app_name=app jfr_event=itimer pyroscope_spy=javaspy service_name=svc"},
		{"app{service_name=svc,app_name=mine}", "__delta__=false __name__=memory app_name=mine jfr_event=itimer pyroscope_spy=javaspy service_name=svc"},
		{"app{app_name=mine}", "__delta__=false __name__=memory app_name=mine jfr_event=itimer pyroscope_spy=javaspy service_name=app"},
	}
	for _, tc := range cases {
		md := testMetadata(t, tc.name)
		if got := strings.Join(labelStrings(Labels(md, "itimer", "memory")), " "); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// TestConvertNoSamples: a recording without samples makes no series, and
// no error (Pyroscope acknowledges it and sends nothing).
func TestConvertNoSamples(t *testing.T) {
	series, err := Convert(recording(3, 0, false), nil, testMetadata(t, "app"), nil)
	if err != nil || len(series) != 0 {
		t.Fatalf("Convert = %d series, %v", len(series), err)
	}
}

// TestConvertPanicIsInvalid: a panic in the parser is the request's error.
func TestConvertPanicIsInvalid(t *testing.T) {
	defer func(f func([]byte, *jfrpprof.ParseInput, *jfrpprof.LabelsSnapshot, ...jfrpprof.Option) (*jfrpprof.Profiles, error)) {
		parseJFR = f
	}(parseJFR)
	parseJFR = func([]byte, *jfrpprof.ParseInput, *jfrpprof.LabelsSnapshot, ...jfrpprof.Option) (*jfrpprof.Profiles, error) {
		var m map[string]int
		m["boom"]++ // a nil map write: a runtime panic
		return nil, nil
	}
	series, err := Convert(recording(2, 2, false), nil, testMetadata(t, "app"), nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "jfr parser panic") || series != nil {
		t.Fatalf("Convert = %v, %v; want an ErrInvalid for the panic", series, err)
	}
}

// TestParserPanicsOnUnboundFrames shows one input the parser itself panics
// on (a stack trace whose frames field is not the one it binds: a nil
// pointer write); the scan refuses it before the parser runs.
func TestParserPanicsOnUnboundFrames(t *testing.T) {
	rec := unboundFrames()
	now := time.Now()
	_, err := jfrpprof.ParseJFR(rec, &jfrpprof.ParseInput{StartTime: now, EndTime: now}, new(jfrpprof.LabelsSnapshot))
	if err == nil || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("the parser answered %v; the test no longer shows its panic", err)
	}
	if _, err := Convert(rec, nil, testMetadata(t, "app"), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Convert: %v, want ErrInvalid", err)
	}
}

// TestFixtures: testdata/unbound-frames.jfr, which /ingest's tests send, is
// what unboundFrames makes (JFR_WRITE_FIXTURES=1 rewrites it).
func TestFixtures(t *testing.T) {
	const path = "testdata/unbound-frames.jfr"
	want := unboundFrames()
	if os.Getenv("JFR_WRITE_FIXTURES") != "" {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s is stale (%v): run with JFR_WRITE_FIXTURES=1", path, err)
	}
}

// TestScanRefuses: inputs the parser could not bound are refused before it
// runs, with little memory taken.
func TestScanRefuses(t *testing.T) {
	base := baseClasses()
	meta := metadata(base)
	cp := checkpoint(0, pool{idSymbol, [][]byte{cat(uvarint(1), str("x"))}})
	setU64 := func(b []byte, off int, v uint64) []byte {
		b = bytes.Clone(b)
		for i := range 8 {
			b[off+i] = byte(v >> (56 - 8*i))
		}
		return b
	}
	// metadata whose string count claims 4G strings: the parser makes a
	// []string of that length (64 GB) before reading one.
	hugeStrings := chunk(nil, cp, event(0, uvarint(0), uvarint(0), uvarint(0), uvarint(0xFFFFFFFF), str("root")))
	// a class element claiming 2^31 fields: NewClass sizes its slice by it.
	hugeClass := chunk(nil, cp, event(0, uvarint(0), uvarint(0), uvarint(0), uvarint(7),
		str("root"), str("metadata"), str("class"), str("id"), str("99"), str("name"), str("x"),
		uvarint(0), uvarint(0), uvarint(1), // root, 1 child
		uvarint(1), uvarint(0), uvarint(1), // metadata, 1 child
		uvarint(2), uvarint(2), uvarint(3), uvarint(4), uvarint(5), uvarint(6), // class id=99 name=x
		uvarint(1<<31))) // 2^31 children
	// a char-array symbol claiming 2^31 chars: a []rune of 8 GB.
	hugeChars := chunk(nil, checkpoint(0, pool{idSymbol, [][]byte{cat(uvarint(1), []byte{4}, uvarint(1<<31), uvarint('a'))}}), meta)
	// a stack trace claiming 2^31 frames: a []StackFrame of that capacity.
	hugeFrames := chunk(nil, checkpoint(0, pool{idStackTrace, [][]byte{cat(uvarint(1), []byte{0}, uvarint(1<<31), uvarint(1), uvarint(1))}}), meta)
	// a list of 4G symbols: its slice is sized by the count.
	hugeList := chunk(nil, cat(padded(100), uvarint(1), uvarint(0), uvarint(0), uvarint(0), uvarint(0), uvarint(1),
		uvarint(idSymbol), uvarint(0xFFFFFFFF), make([]byte, 80)), meta)
	// two checkpoints pointing at each other: the parser follows them forever.
	cpA := checkpoint(0, pool{idSymbol, [][]byte{cat(uvarint(1), str("a"))}})
	cpB := checkpoint(-int64(len(cpA)), pool{idSymbol, [][]byte{cat(uvarint(2), str("b"))}})
	cpA = checkpoint(int64(len(cpA)), pool{idSymbol, [][]byte{cat(uvarint(1), str("a"))}})
	loop := chunk(nil, cat(cpA, cpB), meta)
	// a checkpoint whose delta points inside itself: read again from there,
	// a body of such pools has the parser read its bytes n^2 times.
	overlap := chunk(nil, checkpoint(6, pool{idSymbol, [][]byte{cat(uvarint(1), str("overlapping"))}}), meta)
	// a chunk that claims more bytes than the body has.
	valid := recording(2, 2, false)
	tooBig := setU64(valid, 8, uint64(len(valid)+1))
	// the metadata offset pointing outside the chunk.
	metaOutside := setU64(valid, 24, uint64(len(valid)+10))
	// two chunks sharing the second one's metadata: the parser reads it
	// once per chunk, which lets a body make it read its bytes n^2 times.
	shared := cat(setU64(valid, 24, uint64(2*len(valid)-len(meta))), valid)
	// stack frames of a class without fields: the parser appends frames
	// that take no bytes, as many as the count says.
	noFields := slices.Clone(base)
	for i := range noFields {
		if noFields[i].id == idStackFrame {
			noFields[i].fields = nil
		}
	}
	emptyFrames := chunk(nil, checkpoint(0, pool{idStackTrace, [][]byte{cat(uvarint(1), []byte{0}, uvarint(1000))}}), metadata(noFields))

	// a class of 1000 fields named by 2000 empty lists: the parser binds
	// its fields for each list, 2 million times for 4 KB.
	wide := classDef{id: 99, name: "example.Wide"}
	for i := range 1000 {
		wide.fields = append(wide.fields, fieldDef{fmt.Sprintf("f%d", i), idInt, false, false})
	}
	var lists []pool
	for range 2000 {
		lists = append(lists, pool{typ: 99})
	}
	manyBinds := chunk(nil, checkpoint(0, lists...), metadata(append(slices.Clone(base), wide)))

	cases := map[string][]byte{
		"skipped lists of a wide class": manyBinds,
		"huge metadata string count":    hugeStrings,
		"huge class field count":        hugeClass,
		"huge char array":               hugeChars,
		"huge frame count":              hugeFrames,
		"huge list":                     hugeList,
		"constant pools loop":           loop,
		"constant pools overlap":        overlap,
		"chunk past the body":           tooBig,
		"metadata outside the chunk":    metaOutside,
		"metadata shared by chunks":     shared,
		"frames without fields":         emptyFrames,
	}
	if _, err := scan(valid, new(jfrpprof.LabelsSnapshot), nil); err != nil {
		t.Fatalf("the valid base recording: %v", err)
	}
	for name, rec := range cases {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Convert(rec, nil, testMetadata(t, "app"), nil)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Convert: %v, want ErrInvalid", err)
			}
			if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20 {
				t.Errorf("refusing took %d bytes", a)
			}
			t.Log(err)
		})
	}
}

// TestConvertChargesQuadratic: a stack of many frames sampled by many
// events with distinct contexts makes a sample (a copy of the stack) per
// event: memory grows with frames x events. The scan counts it, and the
// charge is refused before the conversion runs.
func TestConvertChargesQuadratic(t *testing.T) {
	const frames, events = 4000, 4000
	rec := recording(frames, events, true)
	sr, err := scan(rec, new(jfrpprof.LabelsSnapshot), nil)
	if err != nil {
		t.Fatal(err)
	}
	if min := int64(frames * events * costFrame); sr.cost < min {
		t.Fatalf("cost %d of a %d-byte body, want at least %d", sr.cost, len(rec), min)
	}
	full := errors.New("budget full")
	var reserved int64
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = Convert(rec, nil, testMetadata(t, "app"), func(n int) error {
		if reserved+int64(n) > 32<<20 {
			return full
		}
		reserved += int64(n)
		return nil
	})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, full) {
		t.Fatalf("Convert: %v, want the budget's error", err)
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 32<<20 {
		t.Errorf("the refused conversion allocated %d bytes", a)
	}
	// The same stack sampled without contexts is one sample: cheap.
	sr, err = scan(recording(frames, events, false), new(jfrpprof.LabelsSnapshot), nil)
	if err != nil || sr.cost > 2<<20 {
		t.Fatalf("one sample: cost %d, %v", sr.cost, err)
	}
}

// TestConvertChargeCoversAllocation: what Convert charges covers what it
// allocates, on every real recording (the factors of parseFactor's
// comment, logged).
func TestConvertChargeCoversAllocation(t *testing.T) {
	for _, rec := range testRecordings(t) {
		var charged int64
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Convert(rec.data, rec.labels, testMetadata(t, "app"), func(n int) error { charged += int64(n); return nil })
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		alloc := int64(after.TotalAlloc - before.TotalAlloc)
		t.Logf("%-28s %8d bytes: allocated %5.2fx, charged %5.2fx", rec.name, len(rec.data),
			float64(alloc)/float64(len(rec.data)), float64(charged)/float64(len(rec.data)))
		if alloc > charged {
			t.Errorf("%s: allocated %d bytes, charged %d", rec.name, alloc, charged)
		}
	}
}

// TestConvertCharges: the charge comes before the parse, and a full budget
// is returned unchanged.
func TestConvertCharges(t *testing.T) {
	rec := recording(3, 3, false)
	full := errors.New("budget full")
	parsed := 0
	defer func(f func([]byte, *jfrpprof.ParseInput, *jfrpprof.LabelsSnapshot, ...jfrpprof.Option) (*jfrpprof.Profiles, error)) {
		parseJFR = f
	}(parseJFR)
	parseJFR = func(b []byte, pi *jfrpprof.ParseInput, l *jfrpprof.LabelsSnapshot, o ...jfrpprof.Option) (*jfrpprof.Profiles, error) {
		parsed++
		return jfrpprof.ParseJFR(b, pi, l, o...)
	}
	if _, err := Convert(rec, nil, testMetadata(t, "app"), func(int) error { return full }); !errors.Is(err, full) || parsed != 0 {
		t.Fatalf("Convert with a full budget: %v, parsed %d times", err, parsed)
	}
	var charged int
	if _, err := Convert(rec, nil, testMetadata(t, "app"), func(n int) error { charged += n; return nil }); err != nil || parsed != 1 {
		t.Fatalf("Convert: %v, parsed %d times", err, parsed)
	}
	if charged < (scanFactor+parseFactor)*len(rec) {
		t.Errorf("charged %d for %d bytes", charged, len(rec))
	}
}

// TestConvertChargesMetadata: the parser keeps every metadata element's
// attributes in a map sized by their count, and a Class with a field slice
// sized by its child count: a few bytes of metadata can take hundreds of
// bytes (a fuzzed 37 KB recording made the scan alone allocate 1.4 MB
// while 0.3 MB was charged). What the scan and the conversion allocate
// for metadata is charged, on recordings the parser accepts and on one the
// scan refuses.
func TestConvertChargesMetadata(t *testing.T) {
	// A class of many one-attribute fields (the parser's most expensive
	// bytes: a 336-byte map for each 5-byte element) and many classes.
	manyFields := func(n int) []classDef {
		classes := baseClasses()
		extra := classDef{id: 1000, name: "com.example.Wide"}
		for range n {
			extra.fields = append(extra.fields, fieldDef{"f", idInt, false, false})
		}
		return append(classes, extra)
	}
	manyClasses := func(n int) []classDef {
		classes := baseClasses()
		for i := range n {
			classes = append(classes, classDef{id: 1000 + i, name: "C" + strconv.Itoa(i)})
		}
		return classes
	}
	withMeta := func(classes []classDef) []byte {
		evs := event(idActiveSetting, str("event"), str("cpu"))
		return chunk(evs, checkpoint(0), metadata(classes))
	}
	var chunks []byte
	for range 300 {
		chunks = append(chunks, recording(1, 1, false)...)
	}
	refused := withMeta(manyFields(20000))
	refused[len(refused)-3] = 0x7f // the region element's name: past the string table
	for _, tc := range []struct {
		name    string
		rec     []byte
		refused bool
	}{
		{"many fields", withMeta(manyFields(20000)), false},
		{"many classes", withMeta(manyClasses(5000)), false},
		{"many chunks", chunks, false},
		{"refused late", refused, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var charged int64
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Convert(tc.rec, nil, testMetadata(t, "app"), func(n int) error { charged += int64(n); return nil })
			runtime.ReadMemStats(&after)
			if (err != nil) != tc.refused {
				t.Fatalf("Convert: %v, want refused=%v", err, tc.refused)
			}
			alloc := int64(after.TotalAlloc - before.TotalAlloc)
			t.Logf("%d bytes: allocated %.2fx, charged %.2fx", len(tc.rec), float64(alloc)/float64(len(tc.rec)), float64(charged)/float64(len(tc.rec)))
			if alloc > charged {
				t.Errorf("allocated %d bytes, charged %d", alloc, charged)
			}
		})
	}
}
