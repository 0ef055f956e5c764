package legacy

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/pyrodist/pyrodist/test/testutil/cputime"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

// benchStacks are n distinct stacks of Go-like frames (40-70 bytes each)
// grown as a random tree, so prefixes are shared as in real profiles, 8 to
// 40 frames deep, with skewed values.
func benchStacks(n int) map[string]uint64 {
	rng := rand.New(rand.NewSource(17))
	frame := func() string {
		return fmt.Sprintf("github.com/acme/service/internal/pkg%d.(*Type%d).Method%d", rng.Intn(40), rng.Intn(30), rng.Intn(50))
	}
	out := make(map[string]uint64, n)
	paths := [][]string{{"runtime.main", "main.main"}}
	for len(out) < n {
		parent := paths[rng.Intn(len(paths))]
		if len(parent) >= 40 {
			continue
		}
		p := append(append([]string(nil), parent...), frame())
		paths = append(paths, p)
		if len(p) >= 8 {
			out[strings.Join(p, ";")] = uint64(1 + rng.ExpFloat64()*20)
		}
	}
	return out
}

// benchSpeedscope is a py-spy-like sampled document of the stacks, or an
// evented one (each stack opened and closed in turn).
func benchSpeedscope(stacks map[string]uint64, evented bool) []byte {
	index := map[string]int{}
	var b strings.Builder
	b.WriteString(`{"$schema":"https://www.speedscope.app/file-format-schema.json","exporter":"py-spy@0.3.14","name":"bench","activeProfileIndex":0,"shared":{"frames":[`)
	ids := func(stack string) []int {
		var r []int
		for _, f := range strings.Split(stack, ";") {
			i, ok := index[f]
			if !ok {
				i = len(index)
				index[f] = i
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"name":%q,"file":"/srv/app/%s.go","line":%d}`, f, f[len(f)-7:], i%900+1)
			}
			r = append(r, i)
		}
		return r
	}
	keys := make([]string, 0, len(stacks))
	for k := range stacks {
		keys = append(keys, k)
	}
	all := make([][]int, len(keys))
	for i, k := range keys {
		all[i] = ids(k)
	}
	var p strings.Builder
	if evented {
		p.WriteString(`{"type":"evented","name":"MainThread","unit":"milliseconds","startValue":0,"events":[`)
		at := 0
		for i, s := range all {
			for j, f := range s {
				if i+j > 0 {
					p.WriteByte(',')
				}
				fmt.Fprintf(&p, `{"type":"O","frame":%d,"at":%d}`, f, at)
			}
			at += int(stacks[keys[i]])
			for j := len(s) - 1; j >= 0; j-- {
				fmt.Fprintf(&p, `,{"type":"C","frame":%d,"at":%d}`, s[j], at)
			}
		}
		fmt.Fprintf(&p, `],"endValue":%d}`, at)
	} else {
		p.WriteString(`{"type":"sampled","name":"MainThread","unit":"seconds","startValue":0,"endValue":60,"samples":[`)
		for i, s := range all {
			if i > 0 {
				p.WriteByte(',')
			}
			p.WriteString(strings.Join(strings.Fields(fmt.Sprint(s)), ","))
		}
		p.WriteString(`],"weights":[`)
		for i, k := range keys {
			if i > 0 {
				p.WriteByte(',')
			}
			fmt.Fprintf(&p, "%d.5", stacks[k])
		}
		p.WriteString(`]}`)
	}
	b.WriteString(`]},"profiles":[`)
	b.WriteString(p.String())
	b.WriteString(`]}`)
	return []byte(b.String())
}

type flatStack struct {
	key   string
	value uint64
}

// flatTrie is the floor for trie bodies: the stacks of a trie as a flat
// list of keys, reading the nodes with a key buffer, nothing more.
func flatTrie(body []byte) ([]flatStack, error) {
	var out []flatStack
	var key []byte
	type open struct{ left, cut int }
	var stack []open
	for pos := 0; pos < len(body); {
		n, k, err := varint(body[pos:])
		if err != nil {
			return nil, err
		}
		pos += k
		key = append(key, body[pos:pos+int(n)]...)
		pos += int(n)
		v, k, err := varint(body[pos:])
		if err != nil {
			return nil, err
		}
		pos += k
		c, k, err := varint(body[pos:])
		if err != nil {
			return nil, err
		}
		pos += k
		if v > 0 {
			out = append(out, flatStack{string(key), v})
		}
		if c > 0 {
			stack = append(stack, open{int(c), int(n)})
			continue
		}
		key = key[:len(key)-int(n)]
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.left--; top.left > 0 {
				break
			}
			key = key[:len(key)-top.cut]
			stack = stack[:len(stack)-1]
		}
	}
	return out, nil
}

// flatTree is the floor for tree bodies: each node's ';'-joined stack.
func flatTree(body []byte) ([]flatStack, error) {
	var out []flatStack
	var key []byte
	type open struct{ left, keyLen int }
	stack := []open{{1, 0}}
	for pos := 0; len(stack) > 0; {
		top := &stack[len(stack)-1]
		if top.left == 0 {
			stack = stack[:len(stack)-1]
			continue
		}
		top.left--
		key = key[:top.keyLen]
		n, k, err := varint(body[pos:])
		if err != nil {
			return nil, err
		}
		pos += k
		if len(key) > 0 {
			key = append(key, ';')
		}
		key = append(key, body[pos:pos+int(n)]...)
		pos += int(n)
		v, k, err := varint(body[pos:])
		if err != nil {
			return nil, err
		}
		pos += k
		c, k, err := varint(body[pos:])
		if err != nil {
			return nil, err
		}
		pos += k
		if v > 0 {
			out = append(out, flatStack{string(key), v})
		}
		stack = append(stack, open{int(c), len(key)})
	}
	return out, nil
}

// BenchmarkFormats: each format's conversion next to its floor, on the same
// bytes: for trie and tree, decoding into a flat list of stacks; for
// speedscope, json.Unmarshal of the document.
func BenchmarkFormats(b *testing.B) {
	stacks := benchStacks(5000)
	md := metadata(b, "name=bench.cpu&sampleRate=100&spyName=pyspy")
	lim := Limits{MaxProfileSize: 4 << 20, MaxNameLen: 65535, MaxChildren: 16000}
	trie, tree := encodeTrie(stacks), encodeTree(callTree(stacks))
	for _, f := range []struct {
		name          string
		body          []byte
		floor, direct func([]byte) error
	}{
		{"trie", trie,
			func(d []byte) error { _, err := flatTrie(d); return err },
			func(d []byte) error { _, err := Trie(d, md, lim); return err }},
		{"tree", tree,
			func(d []byte) error { _, err := flatTree(d); return err },
			func(d []byte) error { _, err := Tree(d, md, lim); return err }},
		{"speedscope-sampled", benchSpeedscope(stacks, false),
			func(d []byte) error { var f speedscopeFile; return json.Unmarshal(d, &f) },
			func(d []byte) error { return Speedscope(d, md, lim, func(*Series) error { return nil }) }},
		{"speedscope-evented", benchSpeedscope(stacks, true),
			func(d []byte) error { var f speedscopeFile; return json.Unmarshal(d, &f) },
			func(d []byte) error { return Speedscope(d, md, lim, func(*Series) error { return nil }) }},
	} {
		for _, run := range []struct {
			name string
			fn   func([]byte) error
		}{{"floor", f.floor}, {"convert", f.direct}} {
			b.Run(f.name+"/"+run.name, func(b *testing.B) {
				b.SetBytes(int64(len(f.body)))
				b.ReportAllocs()
				cpu0 := cputime.Process()
				for b.Loop() {
					if err := run.fn(f.body); err != nil {
						b.Fatal(err)
					}
				}
				cputime.Report(b, cpu0, len(f.body))
			})
		}
	}
}

// The floors read the same stacks the conversions do.
func TestBenchFloorsAgree(t *testing.T) {
	stacks := benchStacks(300)
	for name, decode := range map[string]func([]byte) ([]flatStack, error){
		"trie": flatTrie, "tree": flatTree,
	} {
		body := encodeTrie(stacks)
		if name == "tree" {
			body = encodeTree(callTree(stacks))
		}
		flat, err := decode(body)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]uint64{}
		for _, s := range flat {
			got[s.key] += s.value
		}
		if len(got) != len(stacks) {
			t.Fatalf("%s: %d stacks, want %d", name, len(got), len(stacks))
		}
		for k, v := range stacks {
			if got[k] != v {
				t.Fatalf("%s: %s = %d, want %d", name, k, got[k], v)
			}
		}
	}
	for _, evented := range []bool{false, true} {
		n := 0
		if err := Speedscope(benchSpeedscope(stacks, evented), metadata(t, "name=b.cpu"), Limits{}, func(s *Series) error {
			n = len(pprofcheck.Parse(t, s.Pprof).Sample)
			return nil
		}); err != nil || n != len(stacks) {
			t.Fatalf("evented %v: %d samples (%v), want %d", evented, n, err, len(stacks))
		}
	}
}
