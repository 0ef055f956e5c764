// Command benchreport turns the outputs of hack/bench.sh (go test -bench
// output, loadgen JSON results, a CPU profile summary) into the markdown
// performance report. Every figure is shown as a ratio to the floor measured
// in the same run; absolute numbers appear only next to it.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pyrodist/pyrodist/test/loadresult"
)

func main() {
	benchFile := flag.String("bench", "", "go test -bench output")
	loadDir := flag.String("load", "", "directory with the loadgen JSON results (saturation.json, half.json, proto-*.json)")
	topFile := flag.String("top", "", "go tool pprof -top output of the distributor under load (optional)")
	loadFloorFile := flag.String("load-floor", "", "go test -bench output of the floor taken right before and after the load runs (optional)")
	heapFile := flag.String("heap", "", "go tool pprof -top inuse_space output of the distributor under overload (optional)")
	machine := flag.String("machine", "", "file with a description of the machine (optional)")
	out := flag.String("out", "", "write the report here (default stdout)")
	flag.Parse()

	benches, err := readBench(*benchFile)
	if err != nil {
		fatal(err)
	}
	load, err := readLoad(*loadDir)
	if err != nil {
		fatal(err)
	}
	var w io.Writer = os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fatal(err)
		}
		defer f.Close()
		w = f
	}
	r := &report{w: w, b: benches, load: load, loadDir: *loadDir, runFloor: map[string]*bench{}}
	if *loadDir != "" {
		files, _ := filepath.Glob(filepath.Join(*loadDir, "*.floor.txt"))
		for _, f := range files {
			fb, err := readBench(f)
			if err != nil {
				continue
			}
			// A run's floor is taken on the corpus the run sends (see floorCase).
			for _, c := range []string{"mix", "small"} {
				if b := fb["BenchmarkCompare/floor/"+c]; b != nil {
					r.runFloor[strings.TrimSuffix(filepath.Base(f), ".floor.txt")] = b
				}
			}
		}
	}
	if *loadFloorFile != "" {
		lf, err := readBench(*loadFloorFile)
		if err != nil {
			fatal(err)
		}
		if b := lf["BenchmarkCompare/floor/mix"]; b != nil {
			r.loadFloor = b
		}
	}
	r.machine = readOptional(*machine)
	r.top = readOptional(*topFile)
	r.heap = readOptional(*heapFile)
	r.write()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "benchreport:", err)
	os.Exit(1)
}

func readOptional(path string) string {
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// bench is one line of go test -bench output.
type bench struct {
	pkg     string
	name    string // without the -GOMAXPROCS suffix
	n       int64
	runs    map[string][]float64 // every value seen, by unit
	metrics map[string]float64   // median by unit: ns/op, MB/s, B/op, allocs/op, MB/cpu-s
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.+)$`)

func readBench(path string) (map[string]*bench, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseBench(f)
}

func parseBench(r io.Reader) (map[string]*bench, error) {
	out := map[string]*bench{}
	pkg := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		b := out[m[1]]
		if b == nil {
			b = &bench{pkg: pkg, name: m[1], runs: map[string][]float64{}}
			out[m[1]] = b
		}
		b.n += n
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			b.runs[f[i+1]] = append(b.runs[f[i+1]], v)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no benchmark results in the bench output")
	}
	// A benchmark run with -count N has N lines: keep each metric's median.
	for _, b := range out {
		b.metrics = map[string]float64{}
		for unit, vs := range b.runs {
			b.metrics[unit] = median(vs)
		}
	}
	return out, sc.Err()
}

// median of vs, which it leaves in their order (runs pair up by position).
func median(vs []float64) float64 {
	s := slices.Clone(vs)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + m) / 2
	}
	return m
}

func readLoad(dir string) (map[string]*loadresult.Result, error) {
	out := map[string]*loadresult.Result{}
	if dir == "" {
		return out, nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r loadresult.Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = &r
	}
	return out, nil
}

type report struct {
	w       io.Writer
	b       map[string]*bench
	load    map[string]*loadresult.Result
	machine string
	loadDir string
	top     string
	heap    string
	// loadFloor is the floor measured right before and after the load runs.
	loadFloor *bench
	// runFloor is, per load run, the floor measured right before and after
	// that run (<run>.floor.txt in the load directory).
	runFloor map[string]*bench
}

// floorCase is the test/bench case that holds the profiles a load run
// sends: "small" for the agent-sized runs, else the whole "mix". The floor
// per MB differs between them (the 16k-sample profile costs more per byte),
// so each run is held against the floor of its own profiles.
func floorCase(l *loadresult.Result) string {
	if l != nil && l.Profiles == "cpu,heap" {
		return "small"
	}
	return "mix"
}

// floorFor is the yardstick of one load run: its own floor when measured,
// else, for the mix, the floor around all the load runs, and for other
// corpora the benchmark floor of that corpus.
func (r *report) floorFor(run string) float64 {
	if b := r.runFloor[run]; b != nil {
		if v, ok := b.metrics["MB/cpu-s"]; ok && v > 0 {
			return v
		}
	}
	if c := floorCase(r.load[run]); c != "mix" {
		v, _ := r.metric("BenchmarkCompare/floor/"+c, "MB/cpu-s")
		return v
	}
	v, _ := r.floorForLoad()
	return v
}

// ratioText is a run's cost ratio, or "-" when it has no yardstick.
func (r *report) ratioText(run string, mbPerCPUSec float64) string {
	f := r.floorFor(run)
	if f <= 0 || mbPerCPUSec <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", f/mbPerCPUSec)
}

// floorForLoad is the yardstick for the load runs: the floor measured around
// them when available (same machine state), else the benchmark floor.
func (r *report) floorForLoad() (float64, string) {
	if r.loadFloor != nil {
		if v, ok := r.loadFloor.metrics["MB/cpu-s"]; ok && v > 0 {
			return v, fmt.Sprintf("the floor measured right before and after the load runs (%s MB/CPU-s, median %.1f)", joinFloats(r.loadFloor.runs["MB/cpu-s"]), v)
		}
	}
	v, _ := r.floorMB()
	return v, "the benchmark floor"
}

func joinFloats(vs []float64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strings.Join(parts, ", ")
}

func (r *report) p(format string, a ...any) { fmt.Fprintf(r.w, format+"\n", a...) }

func (r *report) metric(name, unit string) (float64, bool) {
	b, ok := r.b[name]
	if !ok {
		return 0, false
	}
	v, ok := b.metrics[unit]
	return v, ok
}

// pairedRatio is the median of floor/pipeline cost ratios taken run by run,
// when both ran the same number of times, interleaved (hack/bench.sh runs
// floor then pipeline COMPARE_COUNT times): the machine's speed drifts over
// seconds, and a ratio of two runs next to each other cancels most of it.
func (r *report) pairedRatio(floorName, name string) (float64, bool) {
	f, p := r.b[floorName], r.b[name]
	if f == nil || p == nil {
		return 0, false
	}
	fs, ps := f.runs["MB/cpu-s"], p.runs["MB/cpu-s"]
	if len(fs) < 2 || len(fs) != len(ps) {
		return 0, false
	}
	ratios := make([]float64, len(fs))
	for i := range fs {
		if ps[i] <= 0 {
			return 0, false
		}
		ratios[i] = fs[i] / ps[i]
	}
	return median(ratios), true
}

// floorMB is the yardstick: MB of uncompressed pprof per CPU-second.
func (r *report) floorMB() (float64, bool) { return r.metric("BenchmarkCompare/floor/mix", "MB/cpu-s") }

func (r *report) write() {
	r.p("# pyrodist performance report")
	r.p("")
	r.p("Generated by `make bench` (hack/bench.sh). Every figure comes from this one run on this machine.")
	r.p("The **floor** is the least work any distributor does per profile: klauspost gzip inflate +")
	r.p("vtproto decode + one encode of the same corpus, nothing else (test/floor). Costs are")
	r.p("given as **cost ratio = floor MB per CPU-second ÷ measured MB per CPU-second** (1.0 = as cheap as")
	r.p("the floor; the target is ≤ 1.5).")
	r.p("")
	if r.machine != "" {
		r.p("## Machine")
		r.p("")
		r.p("```")
		r.p("%s", r.machine)
		r.p("```")
		r.p("")
	}
	fl, ok := r.floorMB()
	r.p("## Summary")
	r.p("")
	if !ok {
		r.p("The floor benchmark did not run; no ratios can be given.")
		return
	}
	r.p("| figure | value | vs floor |")
	r.p("|---|---|---|")
	r.p("| floor (inflate + decode + encode), mix | %.1f MB/CPU-s (%.1f CPU-s/GB) | 1.00 |", fl, 1000/fl)
	if v, ok := r.metric("BenchmarkCompare/pipeline/mix", "MB/cpu-s"); ok {
		if pr, ok := r.pairedRatio("BenchmarkCompare/floor/mix", "BenchmarkCompare/pipeline/mix"); ok {
			r.p("| pipeline benchmark (distributor.Push, no network), mix | %.1f MB/CPU-s (%.1f CPU-s/GB) | **cost ratio %.2f** (median of %d interleaved floor/pipeline pairs; %.2f from the medians) |",
				v, 1000/v, pr, len(r.b["BenchmarkCompare/floor/mix"].runs["MB/cpu-s"]), fl/v)
		} else {
			r.p("| pipeline benchmark (distributor.Push, no network), mix | %.1f MB/CPU-s (%.1f CPU-s/GB) | cost ratio %.2f |", v, 1000/v, fl/v)
		}
	}
	lfl, lname := r.floorForLoad()
	if r.loadFloor != nil {
		r.p("| floor right before and after the load runs, mix | %.1f MB/CPU-s | 1.00 (yardstick of the load rows) |", lfl)
	}
	if s := r.load["saturation"]; s != nil && s.Server != nil && s.Server.MBPerCPUSec > 0 {
		r.p("| distributor process at saturation (%s, load run) | %.1f MB/CPU-s (%.1f CPU-s/GB) | **cost ratio %s** |",
			s.Protocol, s.Server.MBPerCPUSec, s.Server.CPUSecPerGB, r.ratioText("saturation", s.Server.MBPerCPUSec))
		r.p("| saturation throughput | %.1f profiles/s, %.1f MB/s on %.2f cores | |", s.ProfilesPerS, s.RawMBPerS, s.Server.Cores)
	}
	if h := r.load["half"]; h != nil {
		r.p("| latency at half of saturating load (open loop %.1f req/s) | p50 %.2f ms, p99 %.2f ms, p999 %.2f ms | |",
			h.TargetRate, h.LatencyMs.P50, h.LatencyMs.P99, h.LatencyMs.P999)
		if h.Server != nil && h.Server.MBPerCPUSec > 0 {
			r.p("| distributor process at half load | %.1f MB/CPU-s (%.1f CPU-s/GB) | cost ratio %s |",
				h.Server.MBPerCPUSec, h.Server.CPUSecPerGB, r.ratioText("half", h.Server.MBPerCPUSec))
		}
	}
	for _, n := range []string{"proto-grpc", "proto-ingest"} {
		if l := r.load[n]; l != nil && l.Server != nil && l.Server.MBPerCPUSec > 0 {
			r.p("| distributor process at saturation over %s | %.1f MB/CPU-s (%.1f CPU-s/GB) | cost ratio %s |",
				l.Protocol, l.Server.MBPerCPUSec, l.Server.CPUSecPerGB, r.ratioText(n, l.Server.MBPerCPUSec))
		}
	}
	if s := r.load["saturation-small"]; s != nil && s.Server != nil && s.Server.MBPerCPUSec > 0 {
		r.p("| distributor process at saturation, agent-sized profiles only (`%s`, against their own floor, %.1f MB/CPU-s) | %.1f MB/CPU-s (%.1f CPU-s/GB) | **cost ratio %s** |",
			s.Profiles, r.floorFor("saturation-small"), s.Server.MBPerCPUSec, s.Server.CPUSecPerGB, r.ratioText("saturation-small", s.Server.MBPerCPUSec))
	}
	if h := r.load["half-small"]; h != nil {
		r.p("| latency at half of saturating load, agent-sized profiles only (`%s`, open loop %.1f req/s) | p50 %.2f ms, p99 %.2f ms, p999 %.2f ms | |",
			h.Profiles, h.TargetRate, h.LatencyMs.P50, h.LatencyMs.P99, h.LatencyMs.P999)
	}
	for _, proto := range []string{"connect", "grpc", "ingest"} {
		if l := r.load["isolated-"+proto]; l != nil && l.Server != nil && l.Server.MBPerCPUSec > 0 {
			r.p("| distributor process on a CPU of its own, saturated over %s | %.1f MB/CPU-s (%.1f CPU-s/GB), %.1f MB/s | **cost ratio %s** |",
				proto, l.Server.MBPerCPUSec, l.Server.CPUSecPerGB, l.RawMBPerS, r.ratioText("isolated-"+proto, l.Server.MBPerCPUSec))
		}
	}
	if s := r.load["saturation-small-isolated"]; s != nil && s.Server != nil && s.Server.MBPerCPUSec > 0 {
		r.p("| distributor process on a CPU of its own, saturated with agent-sized profiles (against their own floor) | %.1f MB/CPU-s (%.1f CPU-s/GB), %.1f MB/s | **cost ratio %s** |",
			s.Server.MBPerCPUSec, s.Server.CPUSecPerGB, s.RawMBPerS, r.ratioText("saturation-small-isolated", s.Server.MBPerCPUSec))
	}
	if h := r.load["half-small-isolated"]; h != nil {
		r.p("| latency at half load, agent-sized profiles, distributor on a CPU of its own (open loop %.1f req/s) | p50 %.2f ms, p99 %.2f ms, p999 %.2f ms (client side; server side below) | |",
			h.TargetRate, h.LatencyMs.P50, h.LatencyMs.P99, h.LatencyMs.P999)
	}
	for _, m := range r.memoryUse([]string{"overload", "overload-memlimit"}) {
		limit := "no Go memory limit"
		if m.goMemLimit > 0 {
			limit = fmt.Sprintf("GOMEMLIMIT %.0f MiB", m.goMemLimit)
		}
		r.p("| heap in use under overload (writers stall; %s) | max %.1f MiB for an in-flight limit of %.1f MiB | |",
			limit, m.heapInUse, m.inflightLimit)
	}
	// Both measured by test/floor, one after the other.
	if v, ok := r.metric("BenchmarkFloorStdlib/mix", "MB/cpu-s"); ok {
		if k, ok := r.metric("BenchmarkFloor/mix", "MB/cpu-s"); ok {
			r.p("| naive floor with stdlib gzip, mix (test/floor) | %.1f MB/CPU-s | cost ratio %.2f vs %.1f of the klauspost floor next to it |", v, k/v, k)
		}
	}
	r.p("")
	own := make([]string, 0, len(r.runFloor))
	for n := range r.runFloor {
		own = append(own, n)
	}
	sort.Slice(own, func(i, j int) bool { return loadOrder(own[i]) < loadOrder(own[j]) })
	if len(own) > 0 {
		r.p("Load-run ratios use the floor of the run's own profiles measured right before and right after")
		r.p("that run (%s: the median of those two), else %s.", strings.Join(own, ", "), lname)
	} else {
		r.p("Load-run ratios use %s.", lname)
	}
	r.p("")
	r.p("For scale: Pyroscope's own v2 distributor (3fe6a45) ran at ~11 MB/CPU-s in an earlier run on this kind of")
	r.p("machine, measured next to a naive floor of 28-33 MB/CPU-s, i.e. a cost ratio of roughly 2.5-3.")
	r.p("")

	r.compare(fl)
	r.stages()
	r.loadRuns(fl)
	r.protocols()
	r.others()
	if r.heap != "" {
		r.p("## What the distributor holds in memory under overload")
		r.p("")
		r.p("`go tool pprof -top -sample_index=inuse_space` of `/debug/pprof/heap` taken during the overload run:")
		r.p("")
		r.p("```")
		r.p("%s", r.heap)
		r.p("```")
		r.p("")
	}
	if r.top != "" {
		r.p("## Where the distributor spends CPU under load")
		r.p("")
		r.p("`go tool pprof -top` (by flat, then by cumulative time) of the distributor's")
		r.p("`/debug/pprof/profile` taken during the saturation run:")
		r.p("")
		r.p("```")
		r.p("%s", r.top)
		r.p("```")
		r.p("")
	}
}

func (r *report) compare(fl float64) {
	r.p("## Floor and pipeline on the same inputs (test/bench)")
	r.p("")
	r.p("Serial benchmarks; MB/CPU-s divides the bytes by the process's CPU time (GC included);")
	r.p("each figure is the median of the runs (`COMPARE_COUNT`).")
	r.p("The pipeline is `distributor.Push` with a sender that acks at once; `small` is `cpu` and `heap`,")
	r.p("the agent-sized profiles.")
	r.p("")
	r.p("| profile | floor MB/CPU-s | pipeline MB/CPU-s | cost ratio | pipeline ns/op | pipeline allocs/op | floor allocs/op |")
	r.p("|---|---|---|---|---|---|---|")
	for _, name := range []string{"cpu", "heap", "cpu-16k", "mix", "small"} {
		f, ok1 := r.metric("BenchmarkCompare/floor/"+name, "MB/cpu-s")
		p, ok2 := r.metric("BenchmarkCompare/pipeline/"+name, "MB/cpu-s")
		if !ok1 || !ok2 {
			continue
		}
		ns, _ := r.metric("BenchmarkCompare/pipeline/"+name, "ns/op")
		pa, _ := r.metric("BenchmarkCompare/pipeline/"+name, "allocs/op")
		fa, _ := r.metric("BenchmarkCompare/floor/"+name, "allocs/op")
		r.p("| %s | %.1f | %.1f | %.2f | %.0f | %.0f | %.0f |", name, f, p, f/p, ns, pa, fa)
	}
	r.p("")
}

func (r *report) stages() {
	names := []string{"1-inflate", "2-decode", "3-validate", "4-normalize", "5-split", "6-encode"}
	var prev float64
	var rows []string
	var total float64
	for _, n := range names {
		v, ok := r.metric("BenchmarkStages/"+n, "MB/cpu-s")
		if !ok || v <= 0 {
			return
		}
		cost := 1 / v // CPU-s per MB up to this stage
		rows = append(rows, fmt.Sprintf("%s|%.4f|%.4f", n, cost, cost-prev))
		prev, total = cost, cost
	}
	r.p("## Stages (test/bench, mix)")
	r.p("")
	r.p("Each line runs the stages up to and including its own; a stage's cost is the difference")
	r.p("from the line before (noise can make a small difference negative).")
	r.p("")
	r.p("| up to stage | CPU-ms per MB | stage CPU-ms per MB | share |")
	r.p("|---|---|---|---|")
	for _, row := range rows {
		f := strings.Split(row, "|")
		c, _ := strconv.ParseFloat(f[1], 64)
		d, _ := strconv.ParseFloat(f[2], 64)
		r.p("| %s | %.1f | %.1f | %.0f%% |", f[0], c*1000, d*1000, 100*d/total)
	}
	r.p("")
}

func (r *report) loadRuns(_ float64) {
	if len(r.load) == 0 {
		r.p("## Load run")
		r.p("")
		r.p("No load run results (the distributor or the fake writers could not be started; see the script output).")
		r.p("")
		return
	}
	names := make([]string, 0, len(r.load))
	for n := range r.load {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return loadOrder(names[i]) < loadOrder(names[j]) })
	r.p("## Load runs (test/cmd/loadgen against cmd/distributor + test/cmd/fakewriter on 127.0.0.x)")
	r.p("")
	r.p("The fake segment-writers ack at once, so latency and CPU are the distributor's own (plus")
	r.p("loopback and the load generator, which share the machine). Distributor CPU is read from")
	r.p("/proc/<pid>/stat before and after each run.")
	r.p("")
	r.p("Each run's cost ratio is against the floor of the profiles it sends (`mix`, or `small` for the")
	r.p("agent-sized `cpu,heap` runs), measured right before and after the run where the floor column")
	r.p("says *run*.")
	r.p("")
	r.p("| run | protocol | load | profiles/s | MB/s | p50 ms | p99 ms | p999 ms | errors | distributor CPU-s/GB | MB/CPU-s | floor MB/CPU-s | cost ratio |")
	r.p("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, n := range names {
		l := r.load[n]
		load := fmt.Sprintf("closed, %d workers", l.Workers)
		if l.Mode == "open" {
			load = fmt.Sprintf("open, %.1f req/s", l.TargetRate)
		}
		cpuGB, mb, fl, ratio := "-", "-", "-", "-"
		if l.Server != nil && l.Server.MBPerCPUSec > 0 {
			cpuGB = fmt.Sprintf("%.1f", l.Server.CPUSecPerGB)
			mb = fmt.Sprintf("%.1f", l.Server.MBPerCPUSec)
			ratio = r.ratioText(n, l.Server.MBPerCPUSec)
			if f := r.floorFor(n); f > 0 {
				fl = fmt.Sprintf("%s %.1f", floorCase(l), f)
				if r.runFloor[n] != nil {
					fl += " (run)"
				}
			}
		}
		r.p("| %s | %s | %s | %.1f | %.1f | %.2f | %.2f | %.2f | %s | %s | %s | %s | %s |", n, l.Protocol, load,
			l.ProfilesPerS, l.RawMBPerS, l.LatencyMs.P50, l.LatencyMs.P99, l.LatencyMs.P999, errorsText(l), cpuGB, mb, fl, ratio)
	}
	r.p("")
	if s := r.load["saturation"]; s != nil {
		r.p("Corpus mix `%s`, %d tenants and %d services drawn with Zipf weights.", s.Profiles, s.Tenants, s.Services)
		r.p("")
	}
	r.latencyByProfile("half")
	r.latencyByProfile("half-small")
	r.latencyByProfile("half-small-isolated")
	r.serverLatency(r.loadDir, "half-small")
	r.serverLatency(r.loadDir, "half-small-isolated")
	r.memory()
}

// latencyByProfile splits the half-load latencies by profile size: a
// 1 MB profile needs tens of CPU-milliseconds however lean the path is.
func (r *report) latencyByProfile(run string) {
	h := r.load[run]
	if h == nil || len(h.ByProfile) == 0 {
		return
	}
	r.p("### Latency at half load (`%s`, profiles `%s`), by profile", run, h.Profiles)
	r.p("")
	r.p("| profile | requests | p50 ms | p90 ms | p99 ms | p999 ms | max ms | floor CPU-ms for this profile |")
	r.p("|---|---|---|---|---|---|---|---|")
	for _, name := range []string{"cpu", "heap", "cpu-16k"} {
		l, ok := h.ByProfile[name]
		if !ok {
			continue
		}
		floorMs := "-"
		if ns, ok := r.metric("BenchmarkCompare/floor/"+name, "ns/op"); ok {
			floorMs = fmt.Sprintf("%.2f (wall, 1 goroutine)", ns/1e6)
		}
		r.p("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %s |", name, l.Count, l.P50, l.P90, l.P99, l.P999, l.Max, floorMs)
	}
	r.p("")
}

// memory reports the distributor's heap and in-flight bytes (scraped from
// its /metrics every 200 ms) at saturation and while the writers stall.
func (r *report) memory() {
	rows := r.memoryUse(memoryRuns)
	if len(rows) == 0 {
		return
	}
	r.p("### Memory under load")
	r.p("")
	r.p("Scraped from the distributor's /metrics every 500 ms during the overload run only (scraping")
	r.p("costs CPU, so the runs that measure CPU are not watched).")
	r.p("")
	r.p("`overload`: every fake writer delays each push by 3 s while the load generator sends at four times")
	r.p("the saturating rate, so requests pile up in the distributor. The in-flight budget")
	r.p("(`-distributor.max-inflight-bytes`) should cap what they hold; requests past it get 429")
	r.p("(`resource_exhausted`). `overload` runs the distributor with Go's defaults (GOGC 100, no memory")
	r.p("limit), so the heap also holds garbage up to the size of the live heap; `overload-memlimit` runs")
	r.p("it again, restarted with `GOMEMLIMIT` at 90%% of the in-flight limit (the share of a container")
	r.p("limit the distributor gives Go).")
	r.p("")
	r.p("| run | Go memory limit MiB | heap in use max MiB | in-flight bytes max MiB | in-flight limit MiB | goroutines max |")
	r.p("|---|---|---|---|---|---|")
	for _, m := range rows {
		limit := "none"
		if m.goMemLimit > 0 {
			limit = fmt.Sprintf("%.1f", m.goMemLimit)
		}
		r.p("| %s | %s | %.1f | %.1f | %.1f | %.0f |", m.run, limit, m.heapInUse, m.inflight, m.inflightLimit, m.goroutines)
	}
	r.p("")
}

// memoryFigures is what a load run saw of the distributor's memory in the
// /metrics it watched: maxima in MiB, and the count of goroutines.
type memoryFigures struct {
	run string
	// goMemLimit is the Go memory limit, 0 when none was set.
	goMemLimit                         float64
	heapInUse, inflight, inflightLimit float64
	goroutines                         float64
}

// memoryUse gives the figures of the runs among names that watched the
// distributor's /metrics, in the order of names.
func (r *report) memoryUse(names []string) []memoryFigures {
	const mib = 1 << 20
	var out []memoryFigures
	for _, n := range names {
		l := r.load[n]
		if l == nil || len(l.Watched) == 0 {
			continue
		}
		w := l.Watched
		m := memoryFigures{
			run:           n,
			heapInUse:     w["go_memstats_heap_inuse_bytes"].Max / mib,
			inflight:      w["pyrodist_distributor_inflight_bytes"].Max / mib,
			inflightLimit: w["pyrodist_distributor_inflight_bytes_limit"].Max / mib,
			goroutines:    w["go_goroutines"].Max,
		}
		// Go reports math.MaxInt64 when no limit is set.
		if v := w["go_gc_gomemlimit_bytes"].Max; v > 0 && v < 1<<62 {
			m.goMemLimit = v / mib
		}
		out = append(out, m)
	}
	return out
}

// memoryRuns are the load runs whose /metrics were watched, in report order.
var memoryRuns = []string{"saturation", "overload", "overload-memlimit"}

func loadOrder(n string) string {
	switch n {
	case "saturation":
		return "0"
	case "half":
		return "1"
	case "overload":
		return "9"
	case "overload-memlimit":
		return "91"
	case "isolated-connect":
		return "70"
	case "isolated-grpc":
		return "71"
	case "isolated-ingest":
		return "72"
	case "saturation-small-isolated":
		return "80"
	case "half-small-isolated":
		return "81"
	}
	return "2" + n
}

func errorsText(l *loadresult.Result) string {
	if len(l.Errors) == 0 && l.Skipped == 0 {
		return "0"
	}
	var parts []string
	for code, n := range l.Errors {
		parts = append(parts, fmt.Sprintf("%s %d", code, n))
	}
	sort.Strings(parts)
	if l.Skipped > 0 {
		parts = append(parts, fmt.Sprintf("skipped %d", l.Skipped))
	}
	return strings.Join(parts, ", ")
}

// others lists the remaining benchmarks (per-package hot-path benchmarks on
// their own test data, floor references) with absolute figures.
// protocolPairs are the ingest paths other than push.v1 pprof, each run
// next to a floor of its own on the same input.
var protocolPairs = []struct{ path, floor, ours, floorIs string }{
	{"OTLP export (decode, convert, pipeline)", "BenchmarkOTLP/floor", "BenchmarkOTLP/ours", "protobuf decode + pprof encode"},
	{"JFR on /ingest (scan, convert, pipeline)", "BenchmarkJFR/floor", "BenchmarkJFR/ours", "jfr-parser's own pprof conversion"},
	{"trie on /ingest (conversion)", "BenchmarkFormats/trie/floor", "BenchmarkFormats/trie/convert", "decode into a flat list of stacks"},
	{"tree on /ingest (conversion)", "BenchmarkFormats/tree/floor", "BenchmarkFormats/tree/convert", "decode into a flat list of stacks"},
	{"speedscope, sampled (conversion)", "BenchmarkFormats/speedscope-sampled/floor", "BenchmarkFormats/speedscope-sampled/convert", "json.Unmarshal of the document"},
	{"speedscope, evented (conversion)", "BenchmarkFormats/speedscope-evented/floor", "BenchmarkFormats/speedscope-evented/convert", "json.Unmarshal of the document"},
}

// protocols reports the other ingest paths against their own floors, in
// MB of input per CPU-second.
func (r *report) protocols() {
	var rows []string
	for _, pp := range protocolPairs {
		fl, okF := r.metric(pp.floor, "MB/cpu-s")
		ours, okO := r.metric(pp.ours, "MB/cpu-s")
		if !okF || !okO || ours == 0 {
			continue
		}
		rows = append(rows, fmt.Sprintf("| %s | %.1f | %.1f (%s) | **%.2f** |", pp.path, ours, fl, pp.floorIs, fl/ours))
	}
	if len(rows) == 0 {
		return
	}
	r.p("## Other ingest protocols, each against its own floor")
	r.p("")
	r.p("MB of input per CPU-second; cost ratio = floor ÷ ours, medians of the runs.")
	r.p("")
	r.p("| path | ours MB/CPU-s | floor MB/CPU-s | cost ratio |")
	r.p("|---|---|---|---|")
	for _, row := range rows {
		r.p("%s", row)
	}
	r.p("")
}

func isProtocolPair(name string) bool {
	for _, pp := range protocolPairs {
		if name == pp.floor || name == pp.ours {
			return true
		}
	}
	return false
}

func (r *report) others() {
	var names []string
	for n := range r.b {
		if !strings.HasPrefix(n, "BenchmarkCompare/") && !strings.HasPrefix(n, "BenchmarkStages/") && !isProtocolPair(n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return
	}
	sort.Slice(names, func(i, j int) bool {
		if r.b[names[i]].pkg != r.b[names[j]].pkg {
			return r.b[names[i]].pkg < r.b[names[j]].pkg
		}
		return names[i] < names[j]
	})
	fl, _ := r.floorMB()
	r.p("## Other benchmarks in this run")
	r.p("")
	r.p("Package benchmarks of the hot path (on their packages' own test profiles) and floor references.")
	r.p("MB/s is wall-clock on one goroutine; floor (mix) for comparison: %.1f MB/CPU-s.", fl)
	r.p("")
	r.p("| package | benchmark | ns/op | MB/s | MB/CPU-s | B/op | allocs/op |")
	r.p("|---|---|---|---|---|---|---|")
	for _, n := range names {
		b := r.b[n]
		r.p("| %s | %s | %s | %s | %s | %s | %s |", strings.TrimPrefix(b.pkg, "github.com/pyrodist/pyrodist/"), n,
			num(b, "ns/op", 1), num(b, "MB/s", 1), num(b, "MB/cpu-s", 1), num(b, "B/op", 0), num(b, "allocs/op", 0))
	}
	r.p("")
}

func num(b *bench, unit string, prec int) string {
	v, ok := b.metrics[unit]
	if !ok {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}
