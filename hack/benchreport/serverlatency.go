package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// histogram is a cumulative Prometheus histogram: upper bound -> count.
type histogram map[float64]float64

var bucketLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)_bucket\{(.*)\} (\S+)$`)
var leLabel = regexp.MustCompile(`(?:^|,)le="([^"]+)"`)

// readHistograms sums, per metric name, the buckets of every series whose
// labels contain all of want (e.g. `route="push_v1_PusherService_Push"`).
func readHistograms(path string, want map[string][]string) (map[string]histogram, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]histogram{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := bucketLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		filters, ok := want[m[1]]
		if !ok {
			continue
		}
		matches := true
		for _, f := range filters {
			if !strings.Contains(m[2], f) {
				matches = false
			}
		}
		le := leLabel.FindStringSubmatch(m[2])
		if !matches || le == nil {
			continue
		}
		bound, err1 := strconv.ParseFloat(le[1], 64)
		v, err2 := strconv.ParseFloat(m[3], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if out[m[1]] == nil {
			out[m[1]] = histogram{}
		}
		out[m[1]][bound] += v
	}
	return out, sc.Err()
}

// sub is the histogram of what happened between two snapshots.
func (h histogram) sub(before histogram) histogram {
	d := histogram{}
	for b, v := range h {
		d[b] = v - before[b]
	}
	return d
}

func (h histogram) bounds() []float64 {
	bs := make([]float64, 0, len(h))
	for b := range h {
		bs = append(bs, b)
	}
	sort.Float64s(bs)
	return bs
}

func (h histogram) count() float64 { return h[math.Inf(1)] }

// share is the fraction of observations at or below bound (a bucket edge).
func (h histogram) share(bound float64) float64 {
	if h.count() == 0 {
		return 0
	}
	return h[bound] / h.count()
}

// quantile interpolates linearly inside the bucket holding q, as
// Prometheus' histogram_quantile does; ok is false without data or when q
// falls in the +Inf bucket.
func (h histogram) quantile(q float64) (v float64, ok bool) {
	n := h.count()
	if n == 0 {
		return 0, false
	}
	rank := q * n
	lower, below := 0.0, 0.0
	for _, b := range h.bounds() {
		if h[b] >= rank {
			if math.IsInf(b, 1) {
				return lower, false
			}
			inBucket := h[b] - below
			if inBucket <= 0 {
				return b, true
			}
			return lower + (b-lower)*(rank-below)/inBucket, true
		}
		lower, below = b, h[b]
	}
	return 0, false
}

// Series the distributor exposes: its own request duration for push.v1
// Push (Pyroscope's metric and buckets) and the duration of its calls to
// the segment-writers.
const (
	requestDuration    = "pyroscope_request_duration_seconds"
	writerDuration     = "pyroscope_segment_writer_client_request_duration_seconds"
	processingDuration = "pyrodist_distributor_processing_duration_seconds"
	addedLatency       = "pyrodist_distributor_added_latency_seconds"
)

// serverLatency reports the distributor's own view of a run's latency, from
// /metrics snapshots taken before and after it (<run>.metrics.before and
// .after in the load directory).
func (r *report) serverLatency(dir, run string) {
	if dir == "" || r.load[run] == nil {
		return
	}
	want := map[string][]string{
		requestDuration:    {`route="push_v1_PusherService_Push"`, `status_code="200"`},
		writerDuration:     {`status_code="OK"`},
		processingDuration: {},
		addedLatency:       {`route="push_v1_PusherService_Push"`},
	}
	before, err1 := readHistograms(dir+"/"+run+".metrics.before", want)
	after, err2 := readHistograms(dir+"/"+run+".metrics.after", want)
	if err1 != nil || err2 != nil {
		return
	}
	req := after[requestDuration].sub(before[requestDuration])
	wr := after[writerDuration].sub(before[writerDuration])
	if req.count() == 0 {
		return
	}
	r.p("### Server-side latency of `%s`", run)
	r.p("")
	r.p("From the distributor's own histograms, read before and after the run; quantiles are")
	r.p("interpolated inside a bucket as `histogram_quantile` does, so they are only as fine as the")
	r.p("buckets (Pyroscope's 5/10/25 ms for the request). *Processing* is the time from the start of")
	r.p("the push to its profile being ready to send (inflate, decode, validate, normalize, split,")
	r.p("encode, and any wait for the CPU); *calls to segment-writers* are the gRPC calls to the fake")
	r.p("writers, which run on the other CPUs next to the load generator; *request* is arrival to")
	r.p("answer, both included; *added* is each request's arrival to answer less the time it waited")
	r.p("on a writer: the latency the distributor adds (reading the body, waiting for CPU, the")
	r.p("pipeline, answering).")
	r.p("")
	r.p("| histogram | requests | p50 ms | p99 ms | share ≤ 5 ms | share ≤ 10 ms |")
	r.p("|---|---|---|---|---|---|")
	row := func(name string, h histogram) {
		q := func(v float64) string {
			x, ok := h.quantile(v)
			if !ok {
				return "-"
			}
			return fmt.Sprintf("%.2f", x*1000)
		}
		share := func(b float64) string {
			if _, ok := h[b]; !ok {
				return "-"
			}
			return fmt.Sprintf("%.1f%%", 100*h.share(b))
		}
		r.p("| %s | %.0f | %s | %s | %s | %s |", name, h.count(), q(0.5), q(0.99), share(0.005), share(0.01))
	}
	if pr := after[processingDuration].sub(before[processingDuration]); pr.count() > 0 {
		row("processing (the distributor's own)", pr)
	}
	if ad := after[addedLatency].sub(before[addedLatency]); ad.count() > 0 {
		row("**added** (request less its writer waits)", ad)
	}
	row("request (arrival to answer)", req)
	if wr.count() > 0 {
		row("calls to segment-writers", wr)
	}
	r.p("")
}
