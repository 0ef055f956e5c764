package main

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
)

// fakeDistributor records what it receives over push.v1 and /ingest.
type fakeDistributor struct {
	mu       sync.Mutex
	tenants  map[string]int
	services map[string]int
	profiles int
	protos   map[string]int
	reject   string // tenant answered with resource_exhausted / 429
	t        *testing.T
}

func (f *fakeDistributor) Push(_ context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	tenant := req.Header().Get("X-Scope-OrgID")
	if tenant == f.reject {
		return nil, connect.NewError(connect.CodeResourceExhausted, errors.New("rate limited"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tenants[tenant]++
	f.protos[req.Peer().Protocol]++
	for _, s := range req.Msg.Series {
		var svc, name string
		for _, l := range s.Labels {
			switch l.Name {
			case "service_name":
				svc = l.Value
			case "__name__":
				name = l.Value
			}
		}
		if svc == "" || name == "" {
			f.t.Errorf("series without service_name or __name__: %v", s.Labels)
		}
		f.services[svc]++
		for _, smp := range s.Samples {
			f.check(smp.RawProfile)
			f.profiles++
		}
	}
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

// check asserts the profile is valid pprof stamped recently.
func (f *fakeDistributor) check(data []byte) {
	p, err := profile.ParseData(data)
	if err != nil {
		f.t.Errorf("profile does not parse: %v", err)
		return
	}
	if age := time.Since(time.Unix(0, p.TimeNanos)); age < 0 || age > time.Hour {
		f.t.Errorf("profile time is %v old: outside a distributor's ingestion window", age)
	}
}

func (f *fakeDistributor) ingest(w http.ResponseWriter, r *http.Request) {
	tenant := r.Header.Get("X-Scope-OrgID")
	if tenant == f.reject {
		http.Error(w, `{"code":"resource_exhausted","message":"rate limited"}`, http.StatusTooManyRequests)
		return
	}
	name := r.URL.Query().Get("name")
	svc, _, _ := strings.Cut(name, "{")
	if !strings.HasPrefix(svc, "svc-") || r.URL.Query().Get("from") == "" {
		f.t.Errorf("bad /ingest query %q", r.URL.RawQuery)
	}
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		f.t.Errorf("content type: %v", err)
		http.Error(w, err.Error(), 400)
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var got []byte
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.t.Errorf("multipart: %v", err)
			http.Error(w, err.Error(), 400)
			return
		}
		b, _ := io.ReadAll(part)
		if part.FormName() == "profile" {
			got = b
		}
	}
	if got == nil {
		f.t.Error("no profile part")
	}
	f.check(got)
	f.mu.Lock()
	f.tenants[tenant]++
	f.services[svc]++
	f.profiles++
	f.protos["ingest"]++
	f.mu.Unlock()
}

func startFake(t *testing.T, reject string) (*fakeDistributor, string) {
	f := &fakeDistributor{tenants: map[string]int{}, services: map[string]int{}, protos: map[string]int{}, reject: reject, t: t}
	mux := http.NewServeMux()
	mux.Handle(pushv1connect.NewPusherServiceHandler(f))
	mux.HandleFunc("POST /ingest", f.ingest)
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: &protos}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f, "http://" + ln.Addr().String()
}

func testConfig(url, protocol string) config {
	return config{
		url: url, protocol: protocol, mix: "cpu=3,heap=3,cpu-16k=1", tenants: 5, services: 20, zipf: 1.2,
		conns: 2, timeout: 5 * time.Second, restampEvery: time.Minute, serverPID: os.Getpid(),
		options: options{mode: "closed", workers: 4, duration: 300 * time.Millisecond, batch: 1, seed: 1},
	}
}

func TestClosedLoopProtocols(t *testing.T) {
	for _, protocol := range []string{"connect", "grpc", "ingest"} {
		t.Run(protocol, func(t *testing.T) {
			f, url := startFake(t, "")
			res, err := execute(context.Background(), testConfig(url, protocol))
			if err != nil {
				t.Fatal(err)
			}
			if res.OK == 0 || res.Requests != res.OK {
				t.Fatalf("requests %d, acked %d, errors %v", res.Requests, res.OK, res.Errors)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if int64(f.profiles) != res.OK {
				t.Errorf("server saw %d profiles, loadgen counted %d", f.profiles, res.OK)
			}
			wantProto := map[string]string{"connect": connect.ProtocolConnect, "grpc": connect.ProtocolGRPC, "ingest": "ingest"}[protocol]
			if f.protos[wantProto] != int(res.Requests) {
				t.Errorf("protocols seen %v, want %d %s", f.protos, res.Requests, wantProto)
			}
			if res.Requests > 20 && len(f.tenants) < 2 {
				t.Errorf("%d requests all went to tenants %v: no mix", res.Requests, f.tenants)
			}
			if res.RawMB <= 0 || res.LatencyMs.P50 <= 0 || res.LatencyMs.P50 > res.LatencyMs.Max {
				t.Errorf("implausible figures: %+v", res)
			}
			n := 0
			for name, l := range res.ByProfile {
				if _, ok := corpusNames[name]; !ok || l.Count == 0 || l.P50 > l.Max {
					t.Errorf("latency of %q: %+v", name, l)
				}
				n += l.Count
			}
			if int64(n) != res.Requests {
				t.Errorf("per-profile latencies count %d requests, want %d", n, res.Requests)
			}
			if res.Server == nil || res.Server.CPUSeconds < 0 {
				t.Errorf("no server cost with -server-pid: %+v", res.Server)
			}
		})
	}
}

var corpusNames = map[string]bool{"cpu": true, "heap": true, "cpu-16k": true}

func TestErrorsCountedByCode(t *testing.T) {
	for protocol, code := range map[string]string{"connect": "resource_exhausted", "grpc": "resource_exhausted", "ingest": "http_429"} {
		t.Run(protocol, func(t *testing.T) {
			// tenant-0 is the most frequent tenant under a Zipf mix.
			f, url := startFake(t, "tenant-0")
			res, err := execute(context.Background(), testConfig(url, protocol))
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors[code] == 0 {
				t.Fatalf("errors %v, want some %s", res.Errors, code)
			}
			if got := res.OK + res.Errors[code]; got != res.Requests {
				t.Errorf("acked %d + errors %d != requests %d", res.OK, res.Errors[code], res.Requests)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.tenants["tenant-0"] != 0 {
				t.Error("the rejected tenant was counted")
			}
		})
	}
}

func TestOpenLoopKeepsToSchedule(t *testing.T) {
	_, url := startFake(t, "")
	c := testConfig(url, "connect")
	c.mode, c.rate, c.maxInflight, c.batch = "open", 100, 50, 2
	c.duration = 400 * time.Millisecond
	res, err := execute(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	// The schedule allows at most rate x duration requests, never more.
	if res.Requests+res.Skipped == 0 || res.Requests+res.Skipped > 40 {
		t.Errorf("%d requests + %d skipped in an open loop of 100/s for 0.4s", res.Requests, res.Skipped)
	}
	var errs int64
	for _, n := range res.Errors {
		errs += n
	}
	if res.OK != 2*(res.Requests-errs) {
		t.Errorf("batch 2: %d profiles acked over %d requests, %d failed (%v)", res.OK, res.Requests, errs, res.Errors)
	}
}

func TestRateFrom(t *testing.T) {
	path := t.TempDir() + "/sat.json"
	if err := os.WriteFile(path, []byte(`{"requests_per_s": 40}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := rateFrom(path, 0.5); err != nil || r != 20 {
		t.Errorf("rateFrom = %v, %v; want 20", r, err)
	}
	if err := os.WriteFile(path, []byte(`{"requests_per_s": 0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := rateFrom(path, 0.5); err == nil {
		t.Error("a zero rate was accepted")
	}
	if _, err := rateFrom(path+".missing", 0.5); err == nil {
		t.Error("a missing file was accepted")
	}
}

func TestExecuteRejectsBadFlags(t *testing.T) {
	base := testConfig("http://127.0.0.1:1", "connect")
	for name, mutate := range map[string]func(*config){
		"mode":         func(c *config) { c.mode = "sideways" },
		"protocol":     func(c *config) { c.protocol = "smtp" },
		"profile":      func(c *config) { c.mix = "cpu,nope" },
		"weight":       func(c *config) { c.mix = "cpu=x" },
		"empty mix":    func(c *config) { c.mix = "cpu=0" },
		"zipf":         func(c *config) { c.zipf = 1 },
		"ingest batch": func(c *config) { c.protocol, c.batch = "ingest", 3 },
		"workers":      func(c *config) { c.workers = 0 },
		"rate":         func(c *config) { c.mode, c.rate = "open", 0 },
	} {
		c := base
		mutate(&c)
		if _, err := execute(context.Background(), c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	// Field 2 may hold spaces and parentheses; utime=250 and stime=50 ticks.
	line := "1234 (dist (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0"
	got, err := parseProcStat(line)
	if err != nil || got != 3.0 {
		t.Errorf("parseProcStat = %v, %v; want 3s", got, err)
	}
	if _, err := parseProcStat("garbage"); err == nil {
		t.Error("garbage parsed")
	}
	own, err := procCPUSeconds(os.Getpid())
	if err != nil || own < 0 {
		t.Errorf("own CPU: %v, %v", own, err)
	}
}

func TestParseCPUMetric(t *testing.T) {
	in := "# HELP process_cpu_seconds_total x\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5\n"
	if got, err := parseCPUMetric(strings.NewReader(in)); err != nil || got != 12.5 {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := parseCPUMetric(strings.NewReader("go_goroutines 3\n")); err == nil {
		t.Error("missing metric not reported")
	}
}

func TestPercentile(t *testing.T) {
	var l []time.Duration
	for i := 1; i <= 1000; i++ {
		l = append(l, time.Duration(i)*time.Millisecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.999, 999 * time.Millisecond}, {1, time.Second}} {
		if got := percentile(l, tt.q); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.q, got, tt.want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("empty percentile")
	}
}

func TestSumMetrics(t *testing.T) {
	in := `# HELP go_goroutines x
go_goroutines 12
pyrodist_distributor_inflight_bytes 1.5e+06
pyroscope_discarded_bytes_total{reason="rate_limited",tenant="a"} 3
pyroscope_discarded_bytes_total{reason="samples_limit",tenant="b"} 4
pyroscope_discarded_bytes_total_other 100
`
	got, err := sumMetrics(strings.NewReader(in), []string{"go_goroutines", "pyrodist_distributor_inflight_bytes", "pyroscope_discarded_bytes_total", "absent"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"go_goroutines": 12, "pyrodist_distributor_inflight_bytes": 1.5e6, "pyroscope_discarded_bytes_total": 7}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestWatchAndPost(t *testing.T) {
	var mu sync.Mutex
	var posts []string
	heap := 100
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "identity" {
			t.Errorf("metrics scraped with Accept-Encoding %q", r.Header.Get("Accept-Encoding"))
		}
		mu.Lock()
		defer mu.Unlock()
		heap += 100
		_, _ = io.WriteString(w, "go_memstats_heap_inuse_bytes "+strconv.Itoa(heap)+"\n")
	})
	mux.HandleFunc("POST /control", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		posts = append(posts, r.URL.RawQuery)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Handler: mux}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	_, url := startFake(t, "")
	c := testConfig(url, "connect")
	c.watchURL, c.watchNames, c.watchEvery = base+"/metrics", "go_memstats_heap_inuse_bytes", 100*time.Millisecond
	c.before, c.after = listFlag{base + "/control?x=1"}, listFlag{base + "/control?x=0"}
	res, err := execute(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	w, ok := res.Watched["go_memstats_heap_inuse_bytes"]
	if !ok || w.Max < 300 || w.Max != w.Last {
		t.Errorf("watched %+v: want at least two scrapes of a growing value", res.Watched)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(posts, ";") != "x=1;x=0" {
		t.Errorf("posts %v", posts)
	}
	c.before = listFlag{base + "/nothing"}
	if _, err := execute(context.Background(), c); err == nil {
		t.Error("a failed -post-before was ignored")
	}
}
