package legacy

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

const ssHead = `{"$schema":"https://www.speedscope.app/file-format-schema.json","shared":{"frames":[{"name":"a"},{"name":"b"},{"name":"c"},{"name":"d"}]},`

// speedscopeDoc is a sampled document of n distinct stacks.
func speedscopeDoc(t testing.TB, n int) []byte {
	var b strings.Builder
	b.WriteString(`{"$schema":"https://www.speedscope.app/file-format-schema.json","shared":{"frames":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"pkg%d.(*Server).handle%d","file":"server%d.go","line":%d}`, i%13, i, i%13, i)
	}
	b.WriteString(`]},"profiles":[{"type":"sampled","name":"cpu","unit":"milliseconds","startValue":0,"endValue":100,"samples":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "[0,%d,%d,%d]", 1+i%5, 6+i%50, i)
	}
	b.WriteString(`],"weights":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d.5", i%9+1)
	}
	b.WriteString(`]}],"name":"bench","exporter":"py-spy@0.3.14"}`)
	return []byte(b.String())
}

func TestSpeedscope(t *testing.T) {
	evented := ssHead + `"profiles":[{"type":"evented","name":"simple.txt","unit":"none","startValue":0,"endValue":14,"events":[
		{"type":"O","frame":0,"at":0},{"type":"O","frame":1,"at":0},{"type":"O","frame":2,"at":0},{"type":"C","frame":2,"at":2},
		{"type":"O","frame":3,"at":2},{"type":"C","frame":3,"at":6},{"type":"O","frame":2,"at":6},{"type":"C","frame":2,"at":9},
		{"type":"C","frame":1,"at":14},{"type":"C","frame":0,"at":14}]}]}`
	sampled := func(unit, name string, start int) string {
		return fmt.Sprintf(`{"type":"sampled","name":%q,"unit":%q,"startValue":%d,"endValue":14,
			"samples":[[0,1,2],[0,1,2],[0,1,3],[0,1,2],[0,1]],"weights":[1,1,4,3,5]}`, name, unit, start)
	}
	two := func(unit string) string {
		return ssHead + `"profiles":[` + sampled(unit, "one", 0) + "," + sampled(unit, "two", 0) + `]}`
	}
	cases := []struct {
		name, query, doc string
		want             []rendered
		wantErr          string
	}{
		{
			// unit none at the default rate: rate 10000, period 1e5 ns; the
			// time before a close is scaled by 100, before an open not.
			name: "evented", query: "name=foo&spyName=rbspy", doc: evented,
			want: []rendered{{"__delta__=false,__name__=process_cpu,profile_name=simple.txt,pyroscope_spy=rbspy,service_name=foo", "cpu/nanoseconds", 1e5, []string{
				"a;b => 50000000", "a;b;c => 50000000", "a;b;d => 40000000",
			}}},
		},
		{
			name: "evented, time before an open", query: "name=foo.wall&sampleRate=1000",
			doc: ssHead + `"profiles":[{"type":"evented","name":"p","unit":"milliseconds","startValue":0,"events":[
				{"type":"O","frame":0,"at":0},{"type":"O","frame":1,"at":3},{"type":"C","frame":1,"at":5},{"type":"O","frame":2,"at":6}]}]}`,
			want: []rendered{{"__delta__=false,__name__=wall,profile_name=p,pyroscope_spy=unknown,service_name=foo", "wall/nanoseconds", 1e6, []string{
				"a => 4000000", "a;b => 200000000",
			}}},
		},
		{
			// Two profiles: each is named app.<unit> (seconds is wall) and
			// keeps its own profile_name.
			name: "two sampled", query: "name=foo{x=y}", doc: two("seconds"),
			want: []rendered{
				{"__delta__=false,__name__=wall,profile_name=one,pyroscope_spy=unknown,service_name=foo,x=y", "wall/nanoseconds", 1e7, []string{
					"a;b => 5000000000", "a;b;c => 5000000000", "a;b;d => 4000000000",
				}},
				{"__delta__=false,__name__=wall,profile_name=two,pyroscope_spy=unknown,service_name=foo,x=y", "wall/nanoseconds", 1e7, []string{
					"a;b => 5000000000", "a;b;c => 5000000000", "a;b;d => 4000000000",
				}},
			},
		},
		{
			name: "two sampled in bytes", query: "name=foo", doc: two("bytes"),
			want: []rendered{
				{"__delta__=false,__name__=memory,profile_name=one,pyroscope_spy=unknown,service_name=foo", "samples/bytes", 0, []string{"a;b => 5", "a;b;c => 5", "a;b;d => 4"}},
				{"__delta__=false,__name__=memory,profile_name=two,pyroscope_spy=unknown,service_name=foo", "samples/bytes", 0, []string{"a;b => 5", "a;b;c => 5", "a;b;d => 4"}},
			},
		},
		{
			// Same name, type, unit and start: one profile, and so not
			// renamed; samples and weights pair up across the merged ones.
			name: "merged duplicates", query: "name=foo&sampleRate=100",
			doc: ssHead + `"profiles":[` + sampled("seconds", "one", 0) + "," + sampled("seconds", "one", 0) + "," +
				`{"type":"sampled","name":"one","unit":"seconds","startValue":0,"samples":[[0],[1]],"weights":[2]},
				 {"type":"sampled","name":"one","unit":"seconds","startValue":0,"samples":[],"weights":[3]}]}`,
			want: []rendered{{"__delta__=false,__name__=process_cpu,profile_name=one,pyroscope_spy=unknown,service_name=foo", "cpu/nanoseconds", 1e7, []string{
				"a => 2000000000", "a;b => 10000000000", "a;b;c => 10000000000", "a;b;d => 8000000000", "b => 3000000000",
			}}},
		},
		{
			// Nanoseconds at the default rate: Pyroscope's rate wraps in
			// uint32 and the period rounds to 0, so every value is 0.
			name: "nanoseconds", query: "name=foo", doc: ssHead + `"profiles":[` + sampled("nanoseconds", "n", 0) + `]}`,
			want: []rendered{{"__delta__=false,__name__=process_cpu,profile_name=n,pyroscope_spy=unknown,service_name=foo", "cpu/nanoseconds", 0, nil}},
		},
		{
			// An unnamed profile removes profile_name, even one from the name;
			// a frame index is truncated (1.9 is frame 1).
			name: "unnamed profile", query: "name=foo.alloc_objects{profile_name=x}",
			doc:  ssHead + `"profiles":[{"type":"sampled","unit":"bytes","samples":[[0,1.9]],"weights":[7.9]}]}`,
			want: []rendered{{"__delta__=false,__name__=memory,pyroscope_spy=unknown,service_name=foo", "alloc_objects/count", 0, []string{"a;b => 7"}}},
		},
		{
			// Sorted by start value; the second's type (app.none) is unknown:
			// the first is pushed, then the error.
			name: "unknown type after a push", query: "name=foo",
			doc: ssHead + `"profiles":[` + sampled("none", "late", 5) + "," + sampled("seconds", "early", 1) + `]}`,
			want: []rendered{{"__delta__=false,__name__=wall,profile_name=early,pyroscope_spy=unknown,service_name=foo", "wall/nanoseconds", 1e7, []string{
				"a;b => 5000000000", "a;b;c => 5000000000", "a;b;d => 4000000000",
			}}},
			wantErr: "unknown profile type: none",
		},
		{name: "not JSON", query: "name=foo", doc: `{"profiles":`, wantErr: "parsing speedscope body: unexpected end of JSON input"},
		{name: "wrong schema", query: "name=foo", doc: `{"$schema":"x"}`, wantErr: "unknown schema: x"},
		{name: "a field of the wrong type", query: "name=foo", doc: ssHead + `"profiles":[],"shared":{"frames":[{"line":"x"}]}}`, wantErr: "cannot unmarshal string"},
		{name: "unknown unit", query: "name=foo", doc: ssHead + `"profiles":[` + sampled("furlongs", "x", 0) + `]}`, wantErr: "invalid profile unit: unknown unit: furlongs"},
		{name: "unknown unit, own rate", query: "name=foo&sampleRate=7", doc: ssHead + `"profiles":[` + sampled("furlongs", "x", 0) + `]}`, wantErr: "invalid profile unit"},
		{name: "unknown type", query: "name=foo", doc: ssHead + `"profiles":[{"type":"other","unit":"none"}]}`, wantErr: "profile type other not supported"},
		{name: "unequal lengths", query: "name=foo", doc: ssHead + `"profiles":[{"type":"sampled","unit":"none","samples":[[0]],"weights":[]}]}`, wantErr: "unequal lengths of samples and weights: 1 != 0"},
		{name: "negative weight", query: "name=foo", doc: ssHead + `"profiles":[{"type":"sampled","unit":"none","samples":[[0]],"weights":[-1]}]}`, wantErr: "negative weight"},
		{name: "frame past the table", query: "name=foo", doc: ssHead + `"profiles":[{"type":"sampled","unit":"none","samples":[[4]],"weights":[1]}]}`, wantErr: "invalid frame 4"},
		{name: "huge weight", query: "name=foo", doc: ssHead + `"profiles":[{"type":"sampled","unit":"none","samples":[[0]],"weights":[1e30]}]}`, wantErr: "overflows"},
		{name: "events out of order", query: "name=foo", doc: ssHead + `"profiles":[{"type":"evented","unit":"none","startValue":5,"events":[{"type":"O","frame":0,"at":1}]}]}`, wantErr: "events out of order"},
		{name: "close with nothing open", query: "name=foo", doc: ssHead + `"profiles":[{"type":"evented","unit":"none","events":[{"type":"C","frame":0,"at":1}]}]}`, wantErr: "no stack to close"},
		{name: "close another frame", query: "name=foo", doc: ssHead + `"profiles":[{"type":"evented","unit":"none","events":[{"type":"O","frame":0,"at":1},{"type":"C","frame":1,"at":2}]}]}`, wantErr: "closing non-open frame 1"},
		{name: "unknown event", query: "name=foo", doc: ssHead + `"profiles":[{"type":"evented","unit":"none","events":[{"type":"X","frame":0,"at":1}]}]}`, wantErr: "unknown event type X"},
		{name: "event frame past the table", query: "name=foo", doc: ssHead + `"profiles":[{"type":"evented","unit":"none","events":[{"type":"O","frame":-1,"at":1}]}]}`, wantErr: "invalid frame -1"},
		{name: "profile_id: parsed, not pushed", query: "name=foo{profile_id=1}", doc: two("seconds")},
		{name: "profile_id does not hide a bad body", query: "name=foo{profile_id=1}", doc: `[`, wantErr: "parsing speedscope body"},
		{name: "no profiles", query: "name=foo", doc: ssHead + `"profiles":[]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []rendered
			err := Speedscope([]byte(tc.doc), metadata(t, tc.query), Limits{MaxProfileSize: 1 << 20}, func(s *Series) error {
				got = append(got, render(t, s))
				return nil
			})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("pushed %d profiles, want %d: %+v", len(got), len(tc.want), got)
			}
			for i := range got {
				if !equalRendered(got[i], tc.want[i]) {
					t.Errorf("profile %d\n got %+v\nwant %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestSpeedscopeChargesTheBudget(t *testing.T) {
	doc := speedscopeDoc(t, 2000)
	checkCharges(t, "speedscope", func(l Limits) error {
		return Speedscope(doc, metadata(t, "name=app.cpu"), l, func(*Series) error { return nil })
	})
}

// A push error ends the conversion and comes back unchanged.
func TestSpeedscopePushError(t *testing.T) {
	doc := ssHead + `"profiles":[{"type":"sampled","name":"a","unit":"bytes","samples":[[0]],"weights":[1]},
		{"type":"sampled","name":"b","unit":"bytes","samples":[[0]],"weights":[1]}]}`
	stop := errors.New("writer down")
	n := 0
	err := Speedscope([]byte(doc), metadata(t, "name=foo"), Limits{}, func(*Series) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("err %v after %d pushes", err, n)
	}
}

// speedscopeCharge covers what json.Unmarshal keeps of a document, for the
// shapes that cost the most per byte and for a real one.
func TestSpeedscopeChargeCoversDecode(t *testing.T) {
	const n = 20000
	rep := func(s string) string { return strings.TrimSuffix(strings.Repeat(s+",", n), ",") }
	for name, doc := range map[string]string{
		"empty profiles": `{"profiles":[` + rep("{}") + `]}`,
		"empty frames":   `{"shared":{"frames":[` + rep("{}") + `]}}`,
		"empty events":   `{"profiles":[{"events":[` + rep("{}") + `]}]}`,
		"empty samples":  `{"profiles":[{"samples":[` + rep("[]") + `]}]}`,
		"one-frame":      `{"profiles":[{"samples":[` + rep("[0]") + `]}]}`,
		"weights":        `{"profiles":[{"weights":[` + rep("0") + `]}]}`,
		"escaped names":  `{"shared":{"frames":[` + rep(`{"name":"\u0041\u0042\u0043\u0044"}`) + `]}}`,
		"real":           string(speedscopeDoc(t, n)),
	} {
		live := decodedSize(t, []byte(doc))
		if c := speedscopeCharge([]byte(doc)); c < 2*live {
			t.Errorf("%s: charged %d for %d decoded bytes", name, c, live)
		}
	}
}

// decodedSize is the heap a decoded document keeps.
func decodedSize(t *testing.T, doc []byte) int {
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	var f speedscopeFile
	if err := json.Unmarshal(doc, &f); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	runtime.KeepAlive(&f)
	return int(ms1.HeapAlloc) - int(ms0.HeapAlloc)
}

func FuzzSpeedscope(f *testing.F) {
	f.Add(uint8(0), speedscopeDoc(f, 3))
	f.Add(uint8(1), []byte(ssHead+`"profiles":[{"type":"evented","name":"e","unit":"none","startValue":0,"events":[
		{"type":"O","frame":0,"at":0},{"type":"O","frame":1,"at":1},{"type":"C","frame":1,"at":2.5},{"type":"C","frame":0,"at":3}]}]}`))
	f.Add(uint8(2), []byte(ssHead+`"profiles":[{"type":"sampled","name":"a","unit":"seconds","samples":[[0,1],[2]],"weights":[1,2]},
		{"type":"sampled","name":"b","unit":"bytes","startValue":1,"samples":[[3]],"weights":[0.5]}]}`))
	f.Add(uint8(3), []byte(ssHead+`"profiles":[{"type":"sampled","unit":"nanoseconds","samples":[[4]],"weights":[1]}]}`))
	f.Fuzz(func(t *testing.T, name uint8, doc []byte) {
		const maxSize = 64 << 10
		charged := 0
		_ = Speedscope(doc, metadata(t, fuzzNames[int(name)%len(fuzzNames)]),
			Limits{MaxProfileSize: maxSize, Reserve: func(n int) error { charged += n; return nil }},
			func(s *Series) error {
				checkFuzzed(t, s, charged, maxSize)
				return nil
			})
	})
}
