package legacy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

// Encoders written from the format definitions, to make real-shaped bodies.

func uv(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// encodeTrie serializes key -> value as Pyroscope's agents lay out a trie:
// a radix trie (each name the longest prefix its keys share beyond the
// parent's), depth first, children in byte order, each node varint(len)
// name varint(value) varint(child count).
func encodeTrie(kv map[string]uint64) []byte {
	keys := make([]string, 0, len(kv)+1)
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 || keys[0] != "" {
		keys = append([]string{""}, keys...) // the root's key
	}
	var out []byte
	var node func(keys []string, start, end int)
	node = func(keys []string, start, end int) {
		out = uv(out, uint64(end-start))
		out = append(out, keys[0][start:end]...)
		rest := keys
		var v uint64
		if len(keys[0]) == end {
			v, rest = kv[keys[0]], keys[1:]
		}
		out = uv(out, v)
		var groups [][]string
		for i := 0; i < len(rest); {
			j := i + 1
			for j < len(rest) && rest[j][end] == rest[i][end] {
				j++
			}
			groups = append(groups, rest[i:j])
			i = j
		}
		out = uv(out, uint64(len(groups)))
		for _, g := range groups {
			first, last := g[0], g[len(g)-1]
			l := end + 1
			for l < len(first) && l < len(last) && first[l] == last[l] {
				l++
			}
			node(g, end, l)
		}
	}
	node(keys, 0, 0)
	return out
}

// tnode is a call tree node for encodeTree.
type tnode struct {
	name     string
	self     uint64
	children []*tnode
}

// callTree builds the tree of "root;...;leaf" stacks under an unnamed root.
func callTree(stacks map[string]uint64) *tnode {
	root := &tnode{}
	for k, v := range stacks {
		n := root
		for _, f := range strings.Split(k, ";") {
			i := slices.IndexFunc(n.children, func(c *tnode) bool { return c.name == f })
			if i < 0 {
				n.children = append(n.children, &tnode{name: f})
				i = len(n.children) - 1
			}
			n = n.children[i]
		}
		n.self += v
	}
	var sortTree func(*tnode)
	sortTree = func(n *tnode) {
		slices.SortFunc(n.children, func(a, b *tnode) int { return strings.Compare(a.name, b.name) })
		for _, c := range n.children {
			sortTree(c)
		}
	}
	sortTree(root)
	return root
}

// encodeTree serializes a call tree depth first, each node varint(len)
// name varint(self) varint(child count).
func encodeTree(n *tnode) []byte {
	var out []byte
	var walk func(*tnode)
	walk = func(n *tnode) {
		out = uv(out, uint64(len(n.name)))
		out = append(out, n.name...)
		out = uv(out, n.self)
		out = uv(out, uint64(len(n.children)))
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(n)
	return out
}

func tn(name string, self uint64, children ...*tnode) *tnode {
	return &tnode{name: name, self: self, children: children}
}

func metadata(t testing.TB, query string) Metadata {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	md, err := ParseQuery(q, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// rendered is a converted series in a comparable form: labels, the sample
// type, the period, and samples "root;...;leaf => value", sorted.
type rendered struct {
	labels, sampleType string
	period             int64
	samples            []string
}

func render(t testing.TB, s *Series) rendered {
	t.Helper()
	p := pprofcheck.Parse(t, s.Pprof)
	var r rendered
	var ls []string
	for _, l := range s.Labels {
		ls = append(ls, l.Name+"="+l.Value)
	}
	r.labels = strings.Join(ls, ",")
	r.sampleType = p.SampleType[0].Type + "/" + p.SampleType[0].Unit
	if p.PeriodType != nil {
		r.period = p.Period
	}
	for _, smp := range p.Sample {
		var frames []string
		for i := len(smp.Location) - 1; i >= 0; i-- {
			frames = append(frames, smp.Location[i].Line[0].Function.Name)
		}
		r.samples = append(r.samples, fmt.Sprintf("%s => %d", strings.Join(frames, ";"), smp.Value[0]))
	}
	sort.Strings(r.samples)
	checkPyroscopeShape(t, p)
	return r
}

// checkPyroscopeShape: what Pyroscope's tree-to-pprof gives every text
// format: one mapping, every location on it, system name = name, no
// location or function that no sample uses.
func checkPyroscopeShape(t testing.TB, p *profile.Profile) {
	t.Helper()
	if len(p.Mapping) != 1 || p.Mapping[0].ID != 1 {
		t.Errorf("mappings %v, want the one fake mapping", p.Mapping)
	}
	used := map[uint64]bool{}
	for _, s := range p.Sample {
		for _, l := range s.Location {
			used[l.ID] = true
		}
	}
	for _, l := range p.Location {
		if l.Mapping == nil || l.Mapping.ID != 1 || !used[l.ID] {
			t.Errorf("location %d: mapping %v, used %v", l.ID, l.Mapping, used[l.ID])
		}
		if f := l.Line[0].Function; f.SystemName != f.Name {
			t.Errorf("function %q has system name %q", f.Name, f.SystemName)
		}
	}
}

const cpuLabels = "__delta__=false,__name__=process_cpu,pyroscope_spy=pyspy,service_name=app"

func TestTrie(t *testing.T) {
	// The trie of Pyroscope's serializer test: "abc" 1, "abd" 2.
	pyroscopeExample := []byte("\x00\x00\x01\x02ab\x00\x02\x01c\x01\x00\x01d\x02\x00")
	realShaped := map[string]uint64{
		"main;net/http.(*conn).serve;handler.ServeHTTP;db.Query":         30,
		"main;net/http.(*conn).serve;handler.ServeHTTP;json.Marshal":     12,
		"main;net/http.(*conn).serve;handler.ServeHTTP":                  3,
		"main;net/http.(*conn).serve;runtime.mallocgc":                   7,
		"main;runtime.gcBgMarkWorker;runtime.gcDrain;runtime.scanobject": 9,
		"main;runtime.gcBgMarkWorker;runtime.gcDrain;runtime.markBits":   1,
	}
	cases := []struct {
		name, query string
		body        []byte
		want        rendered
		wantErr     string
	}{
		{
			name: "pyroscope's example", query: "name=app.cpu&spyName=pyspy&sampleRate=100", body: pyroscopeExample,
			want: rendered{cpuLabels, "cpu/nanoseconds", 1e7, []string{"abc => 10000000", "abd => 20000000"}},
		},
		{
			name: "an agent's stacks", query: "name=app{env=prod}&spyName=pyspy&sampleRate=1000", body: encodeTrie(realShaped),
			want: rendered{"__delta__=false,__name__=process_cpu,env=prod,pyroscope_spy=pyspy,service_name=app", "cpu/nanoseconds", 1e6, []string{
				"main;net/http.(*conn).serve;handler.ServeHTTP => 3000000",
				"main;net/http.(*conn).serve;handler.ServeHTTP;db.Query => 30000000",
				"main;net/http.(*conn).serve;handler.ServeHTTP;json.Marshal => 12000000",
				"main;net/http.(*conn).serve;runtime.mallocgc => 7000000",
				"main;runtime.gcBgMarkWorker;runtime.gcDrain;runtime.markBits => 1000000",
				"main;runtime.gcBgMarkWorker;runtime.gcDrain;runtime.scanobject => 9000000",
			}},
		},
		{
			// Keys split as Pyroscope's tree splits them: one trailing ';'
			// adds no frame (so "a;b;" is "a;b"), ";;" is an empty frame,
			// and the empty key is a sample without frames.
			name: "key splitting", query: "name=app.alloc_space&spyName=pyspy",
			body: encodeTrie(map[string]uint64{"": 2, "a;b": 3, "a;b;": 4, "a;;b": 5, ";": 6}),
			want: rendered{"__delta__=false,__name__=memory,pyroscope_spy=pyspy,service_name=app", "alloc_space/bytes", 0, []string{
				" => 2", " => 6", "a;;b => 5", "a;b => 7",
			}},
		},
		{
			name: "wall at a rate over 1e9: period 0, every value 0", query: "name=app.wall&sampleRate=2000000000",
			body: pyroscopeExample, want: rendered{"__delta__=false,__name__=wall,pyroscope_spy=unknown,service_name=app", "wall/nanoseconds", 0, nil},
		},
		{name: "empty body: an empty profile", query: "name=app.cpu&spyName=pyspy", body: nil, want: rendered{cpuLabels, "cpu/nanoseconds", 1e7, nil}},
		{
			name: "a body that ends between nodes is complete", query: "name=app.cpu&spyName=pyspy",
			body: pyroscopeExample[:12], want: rendered{cpuLabels, "cpu/nanoseconds", 1e7, []string{"abc => 10000000"}},
		},
		{
			// A name length of 2^63 or more reads nothing (so does the
			// reader Pyroscope passes it to); the node is unnamed.
			name: "name length past int64", query: "name=app.cpu&spyName=pyspy",
			body: append(uv(nil, 1<<63), 0x05, 0x00), want: rendered{cpuLabels, "cpu/nanoseconds", 1e7, []string{" => 50000000"}},
		},
		{name: "ends inside a node", query: "name=app.cpu", body: pyroscopeExample[:11], wantErr: "parsing trie body: EOF"},
		{name: "ends inside a varint", query: "name=app.cpu", body: []byte("\x00\x00\x80"), wantErr: "parsing trie body: unexpected EOF"},
		{name: "ends inside a name, then no value", query: "name=app.cpu", body: []byte("\x00\x00\x01\x09ab"), wantErr: "parsing trie body: EOF"},
		{name: "varint overflow", query: "name=app.cpu", body: []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f"), wantErr: "overflows"},
		{
			// An unnamed leaf after a named one cuts the named one's length
			// again (Pyroscope keeps it); past the key's start Pyroscope
			// panics, this is an error.
			name: "cut below the key's start", query: "name=app.cpu",
			body: []byte("\x03abc\x01\x00\x00\x01\x00"), wantErr: "cuts 3 bytes of a 0-byte key",
		},
		{name: "unknown profile type", query: "name=app.nope", body: pyroscopeExample, wantErr: "unknown profile type: nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Trie(tc.body, metadata(t, tc.query), Limits{MaxProfileSize: 1 << 20})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := render(t, s); !equalRendered(got, tc.want) {
				t.Errorf("got\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

func equalRendered(a, b rendered) bool {
	return a.labels == b.labels && a.sampleType == b.sampleType && a.period == b.period && slices.Equal(a.samples, b.samples)
}

func TestTree(t *testing.T) {
	// The tree of Pyroscope's deserializer test: a;b 1, a;c 2.
	pyroscopeExample := []byte("\x00\x00\x01\x01a\x00\x02\x01b\x01\x00\x01c\x02\x00")
	realShaped := map[string]uint64{
		"java.lang.Thread.run;com.example.Worker.loop;com.example.Codec.decode":           40,
		"java.lang.Thread.run;com.example.Worker.loop;com.example.Codec.encode":           25,
		"java.lang.Thread.run;com.example.Worker.loop":                                    5,
		"java.lang.Thread.run;java.util.concurrent.ThreadPoolExecutor.runWorker;Task.run": 11,
	}
	cases := []struct {
		name, query string
		body        []byte
		lim         Limits
		want        rendered
		wantErr     string
	}{
		{
			name: "pyroscope's example", query: "name=app.cpu&spyName=pyspy", body: pyroscopeExample,
			want: rendered{cpuLabels, "cpu/nanoseconds", 1e7, []string{"a;b => 10000000", "a;c => 20000000"}},
		},
		{
			name: "an agent's call tree", query: "name=app.itimer{service_name=svc}&spyName=pyspy&sampleRate=100", body: encodeTree(callTree(realShaped)),
			want: rendered{"__delta__=false,__name__=process_cpu,app_name=app,pyroscope_spy=pyspy,service_name=svc", "cpu/nanoseconds", 1e7, []string{
				"java.lang.Thread.run;com.example.Worker.loop => 50000000",
				"java.lang.Thread.run;com.example.Worker.loop;com.example.Codec.decode => 400000000",
				"java.lang.Thread.run;com.example.Worker.loop;com.example.Codec.encode => 250000000",
				"java.lang.Thread.run;java.util.concurrent.ThreadPoolExecutor.runWorker;Task.run => 110000000",
			}},
		},
		{
			// Children of one node with the same name are one node, with the
			// last self value read and the children of both.
			name: "repeated child names", query: "name=app.inuse_objects",
			body: encodeTree(tn("", 0, tn("a", 3, tn("x", 1)), tn("a", 5, tn("y", 2)))),
			want: rendered{"__delta__=false,__name__=memory,pyroscope_spy=unknown,service_name=app", "inuse_objects/count", 0, []string{
				"a => 5", "a;x => 1", "a;y => 2",
			}},
		},
		{
			// Names are joined with ';' and split again: a name holding ';'
			// is several frames, and sums with the same frames reached
			// another way.
			name: "names holding ';'", query: "name=app.inuse_objects",
			body: encodeTree(tn("", 0, tn("a;b", 3), tn("a", 0, tn("b", 4)), tn("c;", 1))),
			want: rendered{"__delta__=false,__name__=memory,pyroscope_spy=unknown,service_name=app", "inuse_objects/count", 0, []string{
				"a;b => 7", "c => 1",
			}},
		},
		{
			// ";root;a" loses its first two bytes: a one-byte root name
			// leaves an empty first frame, a longer one its tail; an unnamed
			// child of an unnamed root (label ";;") adds nothing.
			name: "named roots and an unnamed child", query: "name=app.inuse_objects",
			body: append(encodeTree(tn("r", 9, tn("a", 1))), encodeTree(tn("", 0, tn("", 7, tn("", 2))))...),
			want: rendered{"__delta__=false,__name__=memory,pyroscope_spy=unknown,service_name=app", "inuse_objects/count", 0, []string{";a => 1"}},
		},
		{
			name: "a root name's tail is a frame", query: "name=app.inuse_objects",
			body: encodeTree(tn("rst", 4, tn("a", 1))),
			want: rendered{"__delta__=false,__name__=memory,pyroscope_spy=unknown,service_name=app", "inuse_objects/count", 0, []string{"st => 4", "st;a => 1"}},
		},
		{
			name: "unnamed grandchild of an unnamed root", query: "name=app.inuse_objects",
			body: encodeTree(tn("", 0, tn("", 7, tn("", 2)))),
			want: rendered{"__delta__=false,__name__=memory,pyroscope_spy=unknown,service_name=app", "inuse_objects/count", 0, []string{" => 2"}},
		},
		{name: "empty body", query: "name=app.cpu", body: nil, wantErr: "parsing tree body: EOF"},
		{name: "ends inside the tree", query: "name=app.cpu", body: pyroscopeExample[:9], wantErr: "parsing tree body: EOF"},
		{name: "ends inside a name", query: "name=app.cpu", body: []byte("\x00\x00\x01\x03ab"), wantErr: "parsing tree body: unexpected EOF"},
		{name: "a child count the body does not hold", query: "name=app.cpu", body: []byte("\x00\x00\xff\xff\xff\xff\x0f"), wantErr: "parsing tree body: EOF"},
		{
			name: "name over max_profile_symbol_value_length", query: "name=app.cpu", lim: Limits{MaxNameLen: 4},
			body: encodeTree(tn("", 0, tn("abcde", 1))), wantErr: "tree node name length 5 exceeds maximum 4",
		},
		{
			name: "children over max_profile_stacktrace_samples", query: "name=app.cpu", lim: Limits{MaxChildren: 1},
			body: pyroscopeExample, wantErr: "tree node children count 2 exceeds maximum 1",
		},
		{
			name: "over max_profile_size_bytes", query: "name=app.cpu", lim: Limits{MaxProfileSize: 20},
			body: encodeTree(callTree(realShaped)), wantErr: "uncompressed profile payload size exceeds limit of 20 bytes",
		},
		{name: "unknown profile type", query: "name=app.nope", body: pyroscopeExample, wantErr: "unknown profile type: nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Tree(tc.body, metadata(t, tc.query), tc.lim)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := render(t, s); !equalRendered(got, tc.want) {
				t.Errorf("got\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

// Both decoders give the same profile for the same stacks, and that is the
// profile folded text gives (but for the fake mapping).
func TestTreeTrieFoldedAgree(t *testing.T) {
	stacks := map[string]uint64{}
	var folded strings.Builder
	for i := 0; i < 300; i++ {
		k := fmt.Sprintf("main;pkg%d.Serve;pkg%d.handle;f%d", i%7, i%11, i)
		stacks[k] = uint64(i%5 + 1)
		fmt.Fprintf(&folded, "%s %d\n", k, i%5+1)
	}
	md := metadata(t, "name=app.cpu&spyName=pyspy&sampleRate=97")
	trie, err := Trie(encodeTrie(stacks), md, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := Tree(encodeTree(callTree(stacks)), md, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Folded([]byte(folded.String()), md)
	if err != nil {
		t.Fatal(err)
	}
	a, b := render(t, trie), render(t, tree)
	c := pprofcheck.Parse(t, f.Pprof)
	if !equalRendered(a, b) || len(a.samples) != 300 || len(c.Sample) != 300 || c.Period != a.period {
		t.Fatalf("trie %d samples, tree %d, folded %d", len(a.samples), len(b.samples), len(c.Sample))
	}
}

// Both conversions charge what they build before they build it, and hand
// the budget's error back unchanged.
func TestTreeTrieChargeTheBudget(t *testing.T) {
	stacks := map[string]uint64{}
	for i := 0; i < 2000; i++ {
		stacks[fmt.Sprintf("main;a%d;b%d;c%d", i%10, i%100, i)] = 1
	}
	md := metadata(t, "name=app.cpu")
	for name, convert := range map[string]func(Limits) error{
		"trie": func(l Limits) error { _, err := Trie(encodeTrie(stacks), md, l); return err },
		"tree": func(l Limits) error { _, err := Tree(encodeTree(callTree(stacks)), md, l); return err },
	} {
		checkCharges(t, name, convert)
	}
}

func checkCharges(t *testing.T, name string, convert func(Limits) error) {
	t.Helper()
	var charged int
	if err := convert(Limits{Reserve: func(n int) error { charged += n; return nil }}); err != nil {
		t.Fatal(err)
	}
	if charged < 100_000 {
		t.Errorf("%s: charged %d bytes for 2000 stacks", name, charged)
	}
	full := errors.New("budget full")
	if err := convert(Limits{Reserve: func(int) error { return full }}); err != full {
		t.Errorf("%s: err %v, want the budget's", name, err)
	}
}

// A trie can name one long frame again at every node; Pyroscope's cost
// grows with the square of the body there. The conversion stops at a bound
// on the bytes it hashes, well above what real tries need.
func TestTrieBoundsRepeatedLongFrames(t *testing.T) {
	long := strings.Repeat("x", 100_000)
	body := uv(nil, 0)
	body = uv(body, 0)
	body = uv(body, 1)
	body = uv(body, uint64(len(long)))
	body = append(body, long...)
	body = uv(body, 0)
	body = uv(body, 20_000)
	for i := 0; i < 20_000; i++ {
		body = append(body, 1, 'a', 1, 0) // the same key again and again
	}
	start := time.Now()
	_, err := Trie(body, metadata(t, "name=app.cpu"), Limits{})
	var pe *ParseError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "frames expand past") {
		t.Fatalf("err %v, want a parse error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// fuzzNames are the names the fuzz targets convert under: each profile
// type family, a rate that rounds the period to 0, a dropped profile, an
// unknown type.
var fuzzNames = []string{
	"name=app.cpu&sampleRate=100", "name=app.wall&sampleRate=7", "name=app.alloc_space",
	"name=app{service_name=s}&sampleRate=2000000000", "name=app{profile_id=1}", "name=app.nope",
}

// checkFuzzed is what every converted profile must be, whatever the body:
// within the size limit and charged, valid pprof with positive values, and
// labelled.
func checkFuzzed(t *testing.T, s *Series, charged, maxSize int) {
	t.Helper()
	if len(s.Labels) == 0 || len(s.Pprof) > maxSize*8 || charged < len(s.Pprof) {
		t.Fatalf("%d labels, %d bytes of pprof, %d charged", len(s.Labels), len(s.Pprof), charged)
	}
	p := pprofcheck.Parse(t, s.Pprof)
	for _, smp := range p.Sample {
		if smp.Value[0] <= 0 {
			t.Fatalf("value %d", smp.Value[0])
		}
	}
}

func FuzzTrie(f *testing.F) {
	f.Add(uint8(0), []byte("\x00\x00\x01\x02ab\x00\x02\x01c\x01\x00\x01d\x02\x00"))
	f.Add(uint8(1), encodeTrie(map[string]uint64{"main;a;b": 3, "main;a;c": 1, "main;d": 2, "": 1, "x;": 4}))
	f.Add(uint8(2), []byte("\x03abc\x01\x00\x00\x01\x00"))
	f.Add(uint8(3), append(uv(nil, 1<<63), 0x05, 0x00))
	f.Fuzz(func(t *testing.T, name uint8, body []byte) {
		const maxSize = 64 << 10
		charged := 0
		s, err := Trie(body, metadata(t, fuzzNames[int(name)%len(fuzzNames)]),
			Limits{MaxProfileSize: maxSize, Reserve: func(n int) error { charged += n; return nil }})
		if err == nil && s != nil {
			checkFuzzed(t, s, charged, maxSize)
		}
	})
}

func FuzzTree(f *testing.F) {
	f.Add(uint8(0), []byte("\x00\x00\x01\x01a\x00\x02\x01b\x01\x00\x01c\x02\x00"))
	f.Add(uint8(1), encodeTree(callTree(map[string]uint64{"main;a;b": 3, "main;a;c": 1, "main;d": 2})))
	f.Add(uint8(2), encodeTree(tn("", 0, tn("a;b", 3), tn("a", 0, tn("b", 4)), tn("a", 1))))
	f.Add(uint8(3), encodeTree(tn("rs", 4, tn("", 1, tn("", 2)))))
	f.Fuzz(func(t *testing.T, name uint8, body []byte) {
		const maxSize = 64 << 10
		charged := 0
		s, err := Tree(body, metadata(t, fuzzNames[int(name)%len(fuzzNames)]),
			Limits{MaxProfileSize: maxSize, MaxNameLen: 1024, MaxChildren: 64, Reserve: func(n int) error { charged += n; return nil }})
		if err == nil && s != nil {
			checkFuzzed(t, s, charged, maxSize)
		}
	})
}
