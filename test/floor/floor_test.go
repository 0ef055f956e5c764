package floor

import (
	"bytes"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/pyrodist/pyrodist/test/corpus"
	"github.com/pyrodist/pyrodist/test/testutil/cputime"
)

func TestPassRoundTrips(t *testing.T) {
	for _, c := range corpus.All() {
		want, err := profile.ParseData(c.Raw())
		if err != nil {
			t.Fatal(err)
		}
		passes := map[string]func([]byte) ([]byte, error){
			"klauspost": new(Pass).Run,
			"stdlib":    new(StdlibPass).Run,
		}
		for name, run := range passes {
			for range 2 { // the second call reuses the pass's state
				out, err := run(c.Gzipped)
				if err != nil {
					t.Fatalf("%s %s: %v", name, c.Name, err)
				}
				got, err := profile.ParseData(out)
				if err != nil {
					t.Fatalf("%s %s: output does not parse: %v", name, c.Name, err)
				}
				if err := got.CheckValid(); err != nil {
					t.Fatalf("%s %s: %v", name, c.Name, err)
				}
				if got.String() != want.String() {
					t.Errorf("%s %s: output differs from the input profile", name, c.Name)
				}
			}
		}
	}
}

func TestPassRejectsGarbage(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("not gzip"), {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3}} {
		if _, err := new(Pass).Run(in); err == nil {
			t.Errorf("Run(%q) succeeded", in)
		}
	}
}

func TestInflate(t *testing.T) {
	c, _ := corpus.Get("heap")
	for _, std := range []bool{false, true} {
		var buf bytes.Buffer
		if err := Inflate(&buf, c.Gzipped, std); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), c.Raw()) {
			t.Errorf("std=%v: inflated bytes differ", std)
		}
	}
}

func TestCPUTimeAdvances(t *testing.T) {
	start := cputime.Process()
	if start <= 0 {
		t.Fatal("no CPU time reported")
	}
	var p Pass
	c, _ := corpus.Get("cpu-16k")
	for cputime.Process() == start {
		if _, err := p.Run(c.Gzipped); err != nil {
			t.Fatal(err)
		}
	}
}

// benchCase is one profile, or "mix": every corpus profile once per
// iteration, the same equal-count mix the load generator sends by default.
type benchCase struct {
	name string
	gz   [][]byte
	raw  int64
}

func benchCases() []benchCase {
	var cases []benchCase
	mix := benchCase{name: "mix"}
	for _, p := range corpus.All() {
		cases = append(cases, benchCase{name: p.Name, gz: [][]byte{p.Gzipped}, raw: int64(len(p.Raw()))})
		mix.gz = append(mix.gz, p.Gzipped)
		mix.raw += int64(len(p.Raw()))
	}
	return append(cases, mix)
}

// run reports MB/s (wall, one goroutine) through SetBytes and MB/cpu-s from
// the process's CPU time, which counts GC work on other cores.
func run(b *testing.B, c benchCase, f func([]byte) error) {
	b.SetBytes(c.raw)
	b.ReportAllocs()
	start := cputime.Process()
	for i := 0; i < b.N; i++ {
		for _, gz := range c.gz {
			if err := f(gz); err != nil {
				b.Fatal(err)
			}
		}
	}
	if cpu := (cputime.Process() - start).Seconds(); cpu > 0 {
		b.ReportMetric(float64(c.raw)*float64(b.N)/1e6/cpu, "MB/cpu-s")
	}
}

// BenchmarkFloor is the yardstick: klauspost inflate + vtproto decode + encode.
func BenchmarkFloor(b *testing.B) {
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			var p Pass
			run(b, c, func(gz []byte) error { _, err := p.Run(gz); return err })
		})
	}
}

// BenchmarkFloorStdlib is the naive floor with compress/gzip, for reference.
func BenchmarkFloorStdlib(b *testing.B) {
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			var p StdlibPass
			run(b, c, func(gz []byte) error { _, err := p.Run(gz); return err })
		})
	}
}

// BenchmarkInflate is inflate alone, klauspost and stdlib, on the mix.
func BenchmarkInflate(b *testing.B) {
	cases := benchCases()
	mix := cases[len(cases)-1]
	for _, std := range []bool{false, true} {
		name := "klauspost"
		if std {
			name = "stdlib"
		}
		b.Run(name+"/mix", func(b *testing.B) {
			var buf bytes.Buffer
			run(b, mix, func(gz []byte) error { return Inflate(&buf, gz, std) })
		})
	}
}
