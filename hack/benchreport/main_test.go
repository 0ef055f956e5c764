package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyrodist/pyrodist/test/loadresult"
)

const benchOut = `goos: linux
pkg: github.com/pyrodist/pyrodist/test/bench
BenchmarkCompare/floor/mix-2         	      10	 100000000 ns/op	  10.00 MB/s	        30.00 MB/cpu-s	 8551525 B/op	   87128 allocs/op
BenchmarkCompare/pipeline/mix-2      	       8	 150000000 ns/op	   6.70 MB/s	        20.00 MB/cpu-s	10393925 B/op	   98541 allocs/op
BenchmarkCompare/pipeline/mix-2      	       8	 150000000 ns/op	   6.70 MB/s	        10.00 MB/cpu-s	10393925 B/op	   98541 allocs/op
BenchmarkCompare/pipeline/mix-2      	       8	 150000000 ns/op	   6.70 MB/s	        21.00 MB/cpu-s	10393925 B/op	   98541 allocs/op
BenchmarkStages/1-inflate-2          	      75	  29878010 ns/op	  35.86 MB/s	       100.0 MB/cpu-s	   41049 B/op	       5 allocs/op
PASS
pkg: github.com/pyrodist/pyrodist/internal/placement
BenchmarkPlace/default-2   	 5000000	       120.5 ns/op	       0 B/op	       0 allocs/op
`

// mustParseBench parses go test -bench output given line by line.
func mustParseBench(t *testing.T, lines ...string) map[string]*bench {
	t.Helper()
	b, err := parseBench(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// floorLine is a line of the floor benchmark's output for one case.
func floorLine(c string, mbPerCPUSecond float64) string {
	return fmt.Sprintf("BenchmarkCompare/floor/%s-2 10 100 ns/op %.2f MB/cpu-s", c, mbPerCPUSecond)
}

func TestParseBench(t *testing.T) {
	b, err := parseBench(strings.NewReader(benchOut))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 4 {
		t.Fatalf("parsed %d benchmarks, want 4", len(b))
	}
	p := b["BenchmarkPlace/default"]
	if p == nil || p.pkg != "github.com/pyrodist/pyrodist/internal/placement" || p.metrics["ns/op"] != 120.5 || p.metrics["allocs/op"] != 0 {
		t.Errorf("placement line parsed as %+v", p)
	}
	if v := b["BenchmarkCompare/floor/mix"].metrics["MB/cpu-s"]; v != 30 {
		t.Errorf("floor MB/cpu-s = %v", v)
	}
	// Three runs of the pipeline: 20, 10, 21 -> the median.
	if v := b["BenchmarkCompare/pipeline/mix"].metrics["MB/cpu-s"]; v != 20 {
		t.Errorf("pipeline MB/cpu-s median = %v, want 20", v)
	}
	if _, err := parseBench(strings.NewReader("PASS\n")); err == nil {
		t.Error("empty bench output accepted")
	}
}

func TestReportRatios(t *testing.T) {
	b, _ := parseBench(strings.NewReader(benchOut))
	dir := t.TempDir()
	sat := `{"protocol":"connect","mode":"closed","workers":16,"profiles_per_s":30,"raw_mb_per_s":10,
	  "latency_ms":{"p50":5,"p99":50},"server":{"cpu_seconds":10,"mb_per_cpu_second":24,"cpu_seconds_per_gb":41.7,"cores_used":0.9}}`
	half := `{"protocol":"connect","mode":"open","target_rate":15,"latency_ms":{"p50":2,"p99":9},
	  "latency_ms_by_profile":{"cpu":{"count":10,"p50":1,"p99":2}}}`
	for name, body := range map[string]string{"saturation": sat, "half": half} {
		if err := os.WriteFile(filepath.Join(dir, name+".json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	load, err := readLoad(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	(&report{w: &out, b: b, load: load}).write()
	for _, want := range []string{
		"| floor (inflate + decode + encode), mix | 30.0 MB/CPU-s",
		"cost ratio 1.50",          // pipeline 20 vs floor 30
		"**cost ratio 1.25**",      // distributor 24 vs floor 30
		"p50 2.00 ms, p99 9.00 ms", // half load
		"| cpu | 10 | 1.00 |",
		"BenchmarkPlace/default | 120.5 |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestLoadRatiosUseTheFloorAroundTheLoadRuns(t *testing.T) {
	b, _ := parseBench(strings.NewReader(benchOut))
	lf := mustParseBench(t, floorLine("mix", 56), floorLine("mix", 40))
	load := map[string]*loadresult.Result{"saturation": {Protocol: "connect", Mode: "closed", Workers: 4}}
	load["saturation"].Server = &loadresult.ServerCost{CPUSeconds: 1, MBPerCPUSec: 32, CPUSecPerGB: 31.25, Cores: 1}
	var out bytes.Buffer
	(&report{w: &out, b: b, load: load, loadFloor: lf["BenchmarkCompare/floor/mix"]}).write()
	// The median of 56 and 40 is 48; 48/32 = 1.50.
	if !strings.Contains(out.String(), "**cost ratio 1.50**") {
		t.Errorf("load ratio not against the floor around the load runs:\n%s", out.String())
	}
}

// Interleaved runs pair by position; their medians alone would not.
func TestPairedRatio(t *testing.T) {
	out := `pkg: github.com/pyrodist/pyrodist/test/bench
BenchmarkCompare/floor/mix-2     10 100 ns/op 30.00 MB/cpu-s
BenchmarkCompare/pipeline/mix-2  10 100 ns/op 20.00 MB/cpu-s
BenchmarkCompare/floor/mix-2     10 100 ns/op 40.00 MB/cpu-s
BenchmarkCompare/pipeline/mix-2  10 100 ns/op 30.00 MB/cpu-s
BenchmarkCompare/floor/mix-2     10 100 ns/op 30.00 MB/cpu-s
BenchmarkCompare/pipeline/mix-2  10 100 ns/op 25.00 MB/cpu-s
`
	b := mustParseBench(t, out)
	r := &report{b: b}
	// Pairs 1.5, 1.333, 1.2: the median is 40/30. The medians (30/25) say 1.2.
	got, ok := r.pairedRatio("BenchmarkCompare/floor/mix", "BenchmarkCompare/pipeline/mix")
	if !ok || got < 1.3333 || got > 1.3334 {
		t.Fatalf("paired ratio %v %v, want 1.3333", got, ok)
	}
	if m := b["BenchmarkCompare/floor/mix"].metrics["MB/cpu-s"]; m != 30 {
		t.Fatalf("median %v, want 30", m)
	}
}

// A load run measured with floors of its own is compared with them, not with
// the floor around all the runs.
func TestFloorFor(t *testing.T) {
	own := mustParseBench(t, "pkg: x", floorLine("mix", 20), floorLine("mix", 30))
	all := mustParseBench(t, "pkg: x", floorLine("mix", 40))
	r := &report{loadFloor: all["BenchmarkCompare/floor/mix"], runFloor: map[string]*bench{"proto-grpc": own["BenchmarkCompare/floor/mix"]}}
	if got := r.floorFor("proto-grpc"); got != 25 {
		t.Errorf("own floor %v, want the median 25", got)
	}
	if got := r.floorFor("half"); got != 40 {
		t.Errorf("floor of a run without its own %v, want 40", got)
	}
}

// Agent-sized runs are held against the floor of the agent-sized profiles,
// never the mix's: their own when measured, else the benchmark's.
func TestFloorForAgentSizedRuns(t *testing.T) {
	own := mustParseBench(t, "pkg: x", floorLine("small", 44))
	b := mustParseBench(t, "pkg: x", floorLine("small", 42), floorLine("mix", 30))
	all := mustParseBench(t, "pkg: x", floorLine("mix", 32))
	small := &loadresult.Result{Profiles: "cpu,heap"}
	r := &report{b: b, loadFloor: all["BenchmarkCompare/floor/mix"],
		load:     map[string]*loadresult.Result{"saturation-small": small, "half-small": small, "half": {Profiles: "cpu,heap,cpu-16k"}},
		runFloor: map[string]*bench{"saturation-small": own["BenchmarkCompare/floor/small"]}}
	for run, want := range map[string]float64{"saturation-small": 44, "half-small": 42, "half": 32} {
		if got := r.floorFor(run); got != want {
			t.Errorf("%s: floor %v, want %v", run, got, want)
		}
	}
	if got := r.ratioText("half-small", 21); got != "2.00" {
		t.Errorf("ratio %s, want 2.00", got)
	}
}

// The runs that watched the distributor's /metrics give a headline row each
// (overload runs only) and a row of the memory table; the others give none.
func TestMemoryRows(t *testing.T) {
	const mib = 1 << 20
	watched := func(heap, inflight, limit, goroutines, goMemLimit float64) *loadresult.Result {
		return &loadresult.Result{Watched: map[string]loadresult.Watched{
			"go_memstats_heap_inuse_bytes":              {Max: heap * mib},
			"pyrodist_distributor_inflight_bytes":       {Max: inflight * mib},
			"pyrodist_distributor_inflight_bytes_limit": {Max: limit * mib},
			"go_goroutines":                             {Max: goroutines},
			"go_gc_gomemlimit_bytes":                    {Max: goMemLimit},
		}}
	}
	b, _ := parseBench(strings.NewReader(benchOut))
	var out bytes.Buffer
	(&report{w: &out, b: b, load: map[string]*loadresult.Result{
		"saturation":        watched(40, 10, 64, 120, 1<<63-1),
		"overload":          watched(150.25, 63.5, 64, 900, 1<<63-1),
		"overload-memlimit": watched(80, 60, 64, 800, 57.6*mib),
		"half":              {Protocol: "connect"},
	}}).write()
	for _, want := range []string{
		"| heap in use under overload (writers stall; no Go memory limit) | max 150.2 MiB for an in-flight limit of 64.0 MiB | |",
		"| heap in use under overload (writers stall; GOMEMLIMIT 58 MiB) | max 80.0 MiB for an in-flight limit of 64.0 MiB | |",
		"| saturation | none | 40.0 | 10.0 | 64.0 | 120 |",
		"| overload | none | 150.2 | 63.5 | 64.0 | 900 |",
		"| overload-memlimit | 57.6 | 80.0 | 60.0 | 64.0 | 800 |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "heap in use under overload"); n != 2 {
		t.Errorf("%d headline heap rows, want 2 (the overload runs)", n)
	}
}

// The other ingest paths are reported against their own floors; a pair
// with a side missing is left out.
func TestProtocolRows(t *testing.T) {
	b := mustParseBench(t,
		floorLine("mix", 30),
		"BenchmarkOTLP/floor-2 10 100 ns/op 40.00 MB/cpu-s",
		"BenchmarkOTLP/ours-2 10 100 ns/op 10.00 MB/cpu-s",
		"BenchmarkJFR/floor-2 10 100 ns/op 45.00 MB/cpu-s",
		"BenchmarkJFR/ours-2 10 100 ns/op 30.00 MB/cpu-s",
		"BenchmarkFormats/trie/floor-2 10 100 ns/op 20.00 MB/cpu-s",
	)
	var out bytes.Buffer
	(&report{w: &out, b: b}).protocols()
	for _, want := range []string{
		"| OTLP export (decode, convert, pipeline) | 10.0 | 40.0 (protobuf decode + pprof encode) | **4.00** |",
		"| JFR on /ingest (scan, convert, pipeline) | 30.0 | 45.0 (jfr-parser's own pprof conversion) | **1.50** |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "trie") {
		t.Errorf("a pair without its measured side was reported:\n%s", out.String())
	}
}
