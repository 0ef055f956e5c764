// Command loadgen pushes the profile corpus (test/corpus) to a
// distributor and reports throughput, latency and errors.
//
// It speaks push.v1 over Connect or gRPC (h2c, the generated client) and the
// legacy /ingest multipart form, in closed loop (N workers, each waiting for
// its answer) or open loop (a fixed request rate), over many tenants
// (X-Scope-OrgID) and services drawn with Zipf weights. Given the
// distributor's pid or /metrics URL it also reports the distributor's CPU
// seconds per GB ingested.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pyrodist/pyrodist/test/corpus"
	"github.com/pyrodist/pyrodist/test/loadresult"
)

type config struct {
	url, protocol, mix string
	tenants, services  int
	zipf               float64
	conns              int
	timeout            time.Duration
	jsonOut            string
	serverPID          int
	serverMetrics      string
	restampEvery       time.Duration
	rateFrom           string
	rateFactor         float64
	watchURL           string
	watchNames         string
	watchEvery         time.Duration
	before, after      listFlag
	options
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "http://127.0.0.1:4040", "distributor base URL")
	flag.StringVar(&c.protocol, "protocol", "connect", "connect, grpc (push.v1 over h2c) or ingest (/ingest multipart)")
	flag.StringVar(&c.mode, "mode", "closed", "closed (-workers wait for their answers) or open (-rate requests/s)")
	flag.IntVar(&c.workers, "workers", 8, "concurrent requests in closed loop")
	flag.Float64Var(&c.rate, "rate", 50, "requests per second in open loop")
	flag.IntVar(&c.maxInflight, "max-inflight", 1000, "open loop: skip (and count) requests beyond this many in flight")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long to send")
	flag.IntVar(&c.batch, "batch", 1, "profiles per push.v1 request (always 1 for /ingest)")
	flag.StringVar(&c.mix, "profiles", corpus.Names(), "profile mix, name[=weight],... from: "+corpus.Names())
	flag.IntVar(&c.tenants, "tenants", 10, "number of tenants (X-Scope-OrgID tenant-N)")
	flag.IntVar(&c.services, "services", 50, "number of services (service_name svc-N)")
	flag.Float64Var(&c.zipf, "zipf", 1.2, "Zipf exponent (> 1) of the tenant and service mix")
	flag.IntVar(&c.conns, "conns", 8, "HTTP connections")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.Int64Var(&c.seed, "seed", 1, "random seed")
	flag.StringVar(&c.jsonOut, "json", "", "also write the result as JSON to this file (- for stdout, then no text)")
	flag.IntVar(&c.serverPID, "server-pid", 0, "distributor pid: report its CPU seconds (from /proc) per GB ingested")
	flag.StringVar(&c.serverMetrics, "server-metrics", "", "distributor /metrics URL: same from process_cpu_seconds_total")
	flag.StringVar(&c.rateFrom, "rate-from", "", "open loop: take the rate from a previous -json result (its requests/s times -rate-factor)")
	flag.Float64Var(&c.rateFactor, "rate-factor", 0.5, "multiplier of the rate read with -rate-from")
	flag.StringVar(&c.watchURL, "watch-metrics", "", "scrape this /metrics URL during the run and report the max of the -watch metrics")
	flag.StringVar(&c.watchNames, "watch", "go_memstats_heap_inuse_bytes,pyrodist_distributor_inflight_bytes,pyrodist_distributor_inflight_bytes_limit,go_goroutines,go_gc_gomemlimit_bytes",
		"metrics -watch-metrics reports (summed over label sets)")
	flag.DurationVar(&c.watchEvery, "watch-interval", 500*time.Millisecond, "how often -watch-metrics scrapes (each scrape costs the server CPU)")
	flag.Var(&c.before, "post-before", "POST to this URL before the run (repeatable), e.g. a fake writer's /control/latency?duration=2s")
	flag.Var(&c.after, "post-after", "POST to this URL after the run (repeatable), e.g. /control/latency?duration=0")
	flag.DurationVar(&c.restampEvery, "restamp", 5*time.Minute, "re-stamp the profiles' time this often (ingestion window)")
	probe := flag.String("probe", "", "only GET this URL and exit 0 if it answers 200 (readiness checks in scripts)")
	probeOut := flag.String("probe-out", "", "with -probe: write the body to this file (e.g. a /metrics snapshot)")
	flag.Parse()

	if *probe != "" {
		if err := probeURL(*probe, *probeOut); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := execute(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	if c.jsonOut != "-" {
		printText(os.Stdout, res)
	}
	if c.jsonOut != "" {
		out, _ := json.MarshalIndent(res, "", "  ")
		out = append(out, '\n')
		if c.jsonOut == "-" {
			_, err = os.Stdout.Write(out)
		} else {
			err = os.WriteFile(c.jsonOut, out, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(2)
		}
	}
}

func execute(ctx context.Context, c config) (*loadresult.Result, error) {
	switch c.mode {
	case "closed":
		if c.workers < 1 {
			return nil, fmt.Errorf("-workers must be >= 1")
		}
	case "open":
		if c.rateFrom != "" {
			r, err := rateFrom(c.rateFrom, c.rateFactor)
			if err != nil {
				return nil, err
			}
			c.rate = r
		}
		if c.rate <= 0 || c.maxInflight < 1 {
			return nil, fmt.Errorf("-rate and -max-inflight must be > 0")
		}
	default:
		return nil, fmt.Errorf("-mode %q: want closed or open", c.mode)
	}
	if c.batch < 1 || c.conns < 1 || c.duration <= 0 {
		return nil, fmt.Errorf("-batch, -conns and -duration must be positive")
	}
	wl, err := newWorkload(c.mix, c.tenants, c.services, c.zipf)
	if err != nil {
		return nil, err
	}
	stopFresh := make(chan struct{})
	defer close(stopFresh)
	go wl.keepFresh(c.restampEvery, stopFresh)

	var t target
	switch c.protocol {
	case "connect", "grpc":
		t = newPushTarget(c.url, c.protocol == "grpc", c.conns, c.timeout, wl)
	case "ingest":
		if c.batch != 1 {
			return nil, fmt.Errorf("/ingest carries one profile per request: use -batch 1")
		}
		t = newIngestTarget(c.url, c.conns, c.timeout, wl)
	default:
		return nil, fmt.Errorf("-protocol %q: want connect, grpc or ingest", c.protocol)
	}
	defer t.close()

	if err := post(c.before); err != nil {
		return nil, err
	}
	cpu := cpuReader(c)
	cpu0, cpuErr := cpu()
	if cpuErr != nil {
		return nil, fmt.Errorf("reading the distributor's CPU time: %w", cpuErr)
	}
	var watch *watcher
	if c.watchURL != "" {
		watch = startWatcher(c.watchURL, strings.Split(c.watchNames, ","), c.watchEvery)
	}
	s := run(ctx, t, wl, c.options)
	var seen map[string]loadresult.Watched
	if watch != nil {
		seen = watch.finish()
	}
	if err := post(c.after); err != nil {
		return nil, err
	}
	cpu1, cpuErr := cpu()
	if cpuErr != nil {
		return nil, fmt.Errorf("reading the distributor's CPU time: %w", cpuErr)
	}

	secs := s.elapsed.Seconds()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	summary := func(l []time.Duration) loadresult.Latency {
		l = sorted(l)
		return loadresult.Latency{
			P50: ms(percentile(l, 0.50)), P90: ms(percentile(l, 0.90)), P99: ms(percentile(l, 0.99)),
			P999: ms(percentile(l, 0.999)), Max: ms(percentile(l, 1)), Count: len(l),
		}
	}
	res := &loadresult.Result{
		Protocol: c.protocol, Mode: c.mode, Batch: c.batch, Profiles: c.mix,
		Tenants: c.tenants, Services: c.services, DurationS: secs,
		Requests: s.requests, OK: s.profiles, Skipped: s.skipped, Errors: s.errors,
		ReqPerS:      float64(s.requests) / secs,
		ProfilesPerS: float64(s.profiles) / secs,
		RawMB:        float64(s.rawBytes) / 1e6,
		RawMBPerS:    float64(s.rawBytes) / 1e6 / secs,
		WireMBPerS:   float64(s.wireBytes) / 1e6 / secs,
		LatencyMs:    summary(s.latencies),
		Watched:      seen,
	}
	if len(s.byProfile) > 0 {
		res.ByProfile = map[string]loadresult.Latency{}
		for i, l := range s.byProfile {
			res.ByProfile[wl.profiles[i].Name] = summary(l)
		}
	}
	if c.mode == "closed" {
		res.Workers = c.workers
	} else {
		res.TargetRate = c.rate
	}
	if c.serverPID != 0 || c.serverMetrics != "" {
		used := cpu1 - cpu0
		sc := &loadresult.ServerCost{CPUSeconds: used, Cores: used / secs}
		if used > 0 {
			sc.MBPerCPUSec = res.RawMB / used
		}
		if res.RawMB > 0 {
			sc.CPUSecPerGB = used / (res.RawMB / 1000)
		}
		res.Server = sc
	}
	return res, nil
}

func probeURL(url, out string) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if out == "" {
		return nil
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// rateFrom reads the requests/s of an earlier run, e.g. to load a server at
// half of the rate that saturated it.
func rateFrom(path string, factor float64) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var prev loadresult.Result
	if err := json.Unmarshal(b, &prev); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if prev.ReqPerS <= 0 || factor <= 0 {
		return 0, fmt.Errorf("%s: no usable rate (%.2f req/s x %.2f)", path, prev.ReqPerS, factor)
	}
	return prev.ReqPerS * factor, nil
}

// cpuReader returns how the distributor's CPU seconds are read, or a reader
// of zeros when none was asked for.
func cpuReader(c config) func() (float64, error) {
	switch {
	case c.serverPID != 0:
		return func() (float64, error) { return procCPUSeconds(c.serverPID) }
	case c.serverMetrics != "":
		return func() (float64, error) { return scrapeCPUSeconds(c.serverMetrics) }
	default:
		return func() (float64, error) { return 0, nil }
	}
}

// procCPUSeconds reads utime + stime of a process from /proc. The kernel
// reports clock ticks of USER_HZ, 100 on every Linux architecture Go runs on
// (the Prometheus process collector assumes the same).
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStat(string(b))
}

func parseProcStat(s string) (float64, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc stat: %d fields", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc stat times")
	}
	return float64(ut+st) / 100, nil
}

func scrapeCPUSeconds(url string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return parseCPUMetric(resp.Body)
}

func parseCPUMetric(r io.Reader) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "process_cpu_seconds_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no process_cpu_seconds_total in the metrics")
}

func printText(w io.Writer, r *loadresult.Result) {
	switch r.Mode {
	case "closed":
		fmt.Fprintf(w, "%s, closed loop, %d workers, %.1fs, batch %d, profiles %s, %d tenants, %d services\n",
			r.Protocol, r.Workers, r.DurationS, r.Batch, r.Profiles, r.Tenants, r.Services)
	default:
		fmt.Fprintf(w, "%s, open loop at %.1f req/s, %.1fs, batch %d, profiles %s, %d tenants, %d services\n",
			r.Protocol, r.TargetRate, r.DurationS, r.Batch, r.Profiles, r.Tenants, r.Services)
	}
	var errs int64
	codes := make([]string, 0, len(r.Errors))
	for code, n := range r.Errors {
		errs += n
		codes = append(codes, code)
	}
	sort.Strings(codes)
	fmt.Fprintf(w, "requests     %d (%.1f/s), profiles acked %d, errors %d", r.Requests, r.ReqPerS, r.OK, errs)
	if r.Skipped > 0 {
		fmt.Fprintf(w, ", skipped (over -max-inflight) %d", r.Skipped)
	}
	fmt.Fprintln(w)
	for _, code := range codes {
		fmt.Fprintf(w, "  %-24s %d\n", code, r.Errors[code])
	}
	fmt.Fprintf(w, "throughput   %.1f profiles/s, %.2f MB/s uncompressed pprof (%.2f MB/s gzipped)\n", r.ProfilesPerS, r.RawMBPerS, r.WireMBPerS)
	l := r.LatencyMs
	fmt.Fprintf(w, "latency ms   p50 %.2f  p90 %.2f  p99 %.2f  p999 %.2f  max %.2f\n", l.P50, l.P90, l.P99, l.P999, l.Max)
	profs := make([]string, 0, len(r.ByProfile))
	for n := range r.ByProfile {
		profs = append(profs, n)
	}
	sort.Strings(profs)
	for _, n := range profs {
		l := r.ByProfile[n]
		fmt.Fprintf(w, "  %-10s %5d requests: p50 %.2f  p90 %.2f  p99 %.2f  p999 %.2f  max %.2f\n", n, l.Count, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "distributor  %.2f CPU-s (%.2f cores): %.1f MB per CPU-second, %.1f CPU-s per GB\n",
			s.CPUSeconds, s.Cores, s.MBPerCPUSec, s.CPUSecPerGB)
	}
	names := make([]string, 0, len(r.Watched))
	for n := range r.Watched {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "watched      %s max %.0f last %.0f\n", n, r.Watched[n].Max, r.Watched[n].Last)
	}
}
