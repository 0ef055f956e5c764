package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/test/testutil/slowclient"
)

// The hostile-input campaign: one distributor with a 64 MiB in-flight
// budget in front of one fake writer, attacked with each input that once
// took its memory or its budget, alone and then all at once, while a
// well-behaved client keeps pushing. The distributor's RSS is sampled
// throughout; it must stay under the budget plus 100 MB, the attacks must
// get their answers, and the well-behaved client must never be refused.
// PYRODIST_CAMPAIGN=long runs the inputs at the sizes they were first
// measured at (400 and 300 connections, a 300 MB body); the default is a
// short version for make test.

const (
	campaignBudget = 64 << 20
	rssAllowance   = 100 << 20
)

type attack struct {
	name string
	// run attacks base (http://host:port) and returns the answers it got,
	// counted by kind.
	run func(t *testing.T, base string, long bool) map[string]int
}

func TestHostileInputs(t *testing.T) {
	requireBinaries(t)
	long := os.Getenv("PYRODIST_CAMPAIGN") == "long"
	dir := t.TempDir()
	const wip, dip = "127.0.0.61", "127.0.0.62"
	w := &writerNode{id: "sw-h", zone: "zone-a", ip: wip, grpcPort: freePort(t, wip), httpPort: freePort(t, wip),
		gossipPort: freePort(t, wip), recordFile: filepath.Join(dir, "sw-h.jsonl")}
	startWriter(t, dir, w, nil)
	waitHTTP(t, w.p, w.http()+"/ready", 30*time.Second, nil)
	d := &distNode{id: "dist-h", zone: "zone-a", ip: dip, httpPort: freePort(t, dip), gossipPort: freePort(t, dip)}
	startDistributor(t, dir, d, []string{w.gossip()},
		"-distributor.max-inflight-bytes="+strconv.Itoa(campaignBudget), "-auth.multitenancy-enabled=false",
		"-distributor.ingestion-rate-limit-mb=1000", "-distributor.ingestion-burst-size-mb=1000")
	waitHTTP(t, d.p, d.http()+"/ready", 60*time.Second, nil)
	base := d.http()
	pid := d.p.cmd.Process.Pid

	attacks := []attack{
		{"push.v1 declaring 22 MB, 1 byte at a time", func(t *testing.T, base string, long bool) map[string]int {
			return trickleMany(base, "/push.v1.PusherService/Push", "application/proto", 1, 22<<20)
		}},
		{"slow connections declaring 60 KB (push.v1)", func(t *testing.T, base string, long bool) map[string]int {
			return trickleMany(base, "/push.v1.PusherService/Push", "application/proto", scale(long, 100, 400), 60<<10)
		}},
		{"slow h2c gRPC streams", func(t *testing.T, base string, long bool) map[string]int {
			return slowGRPCStreams(base, scale(long, 50, 200))
		}},
		{"gzip envelope inflating to 1 GB (Connect)", func(t *testing.T, base string, long bool) map[string]int {
			return gzipBomb(t, base, false, scale(long, 1, 3))
		}},
		{"gzip envelope inflating to 1 GB (gRPC)", func(t *testing.T, base string, long bool) map[string]int {
			return gzipBomb(t, base, true, scale(long, 1, 3))
		}},
		{"/ingest chunked body of 300 MB", func(t *testing.T, base string, long bool) map[string]int {
			return hugeIngest(base, int64(scale(long, 100, 300))<<20)
		}},
		{"slow /ingest connections", func(t *testing.T, base string, long bool) map[string]int {
			return trickleMany(base, "/ingest?name=app.cpu&format=pprof", "application/octet-stream", scale(long, 100, 300), 1<<20)
		}},
		{"4 KB pushes of 2 million empty samples, 8 at once", func(t *testing.T, base string, long bool) map[string]int {
			return emptySamples(t, base, 8)
		}},
	}

	var report strings.Builder
	fmt.Fprintf(&report, "| input | RSS before | RSS max | RSS after | answers |\n|---|---|---|---|---|\n")
	runOne := func(name string, fn func() map[string]int) {
		rssBefore := rss(t, pid)
		sampler := sampleRSS(pid)
		good := goodClient(base)
		answers := fn()
		refused := good.stop()
		peak := sampler.stop()
		time.Sleep(500 * time.Millisecond) // the last requests end
		after := rss(t, pid)
		fmt.Fprintf(&report, "| %s | %s | %s | %s | %s |\n", name, mib(rssBefore), mib(peak), mib(after), answersText(answers))
		if peak > campaignBudget+rssAllowance {
			t.Errorf("%s: RSS peaked at %s, over the budget + 100 MB", name, mib(peak))
		}
		if refused != "" {
			t.Errorf("%s: a well-behaved push was refused meanwhile: %s", name, refused)
		}
		if d.p.exited() {
			t.Fatalf("%s: the distributor died", name)
		}
	}
	for _, a := range attacks {
		runOne(a.name, func() map[string]int { return a.run(t, base, long) })
	}
	runOne("all of the above at once", func() map[string]int {
		var mu sync.Mutex
		all := map[string]int{}
		var wg sync.WaitGroup
		for _, a := range attacks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got := a.run(t, base, long)
				mu.Lock()
				for k, v := range got {
					all[k] += v
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		return all
	})
	t.Logf("hostile inputs against a %s budget:\n%s", mib(campaignBudget), report.String())
}

func scale(long bool, short, full int) int {
	if long {
		return full
	}
	return short
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

func answersText(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// rss is the process's anonymous resident memory from /proc: what requests
// can grow. The file-backed part (the binary's own pages, about 38 MiB once
// the object-storage SDKs came in, 22 MiB before) is reclaimable page
// cache that no input changes, and would only shift every figure.
func rss(t *testing.T, pid int) int64 {
	n, err := readRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssAnon:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no RssAnon for %d", pid)
}

type rssSampler struct {
	done chan struct{}
	peak atomic.Int64
	wg   sync.WaitGroup
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			if n, err := readRSS(pid); err == nil && n > s.peak.Load() {
				s.peak.Store(n)
			}
			select {
			case <-s.done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() int64 { close(s.done); s.wg.Wait(); return s.peak.Load() }

// goodClient pushes a small real profile every 200 ms and remembers the
// first refusal.
type good struct {
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	refused string
}

func goodClient(base string) *good {
	g := &good{done: make(chan struct{})}
	c := pushv1connect.NewPusherServiceClient(&http.Client{Timeout: 20 * time.Second}, base)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			req := connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
				Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "memory"}, {Name: "service_name", Value: "good"}},
				Samples: []*pushv1.RawSample{{RawProfile: heapProfile()}},
			}}})
			if _, err := c.Push(context.Background(), req); err != nil {
				g.mu.Lock()
				if g.refused == "" {
					g.refused = err.Error()
				}
				g.mu.Unlock()
			}
			select {
			case <-g.done:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return g
}

func (g *good) stop() string { close(g.done); g.wg.Wait(); return g.refused }

var (
	heapOnce  sync.Once
	heapBytes []byte
)

// heapProfile is a small pprof of this test process (gzipped by runtime/pprof).
func heapProfile() []byte {
	heapOnce.Do(func() {
		var buf bytes.Buffer
		_ = pprof.Lookup("heap").WriteTo(&buf, 0)
		heapBytes = buf.Bytes()
	})
	return heapBytes
}

// trickleMany opens n HTTP/1.1 requests that each declare a body of
// declared bytes and send one byte every 100 ms until the server answers.
func trickleMany(base, path, contentType string, n, declared int) map[string]int {
	addr := strings.TrimPrefix(base, "http://")
	return tally(n, func() string {
		return slowclient.Trickle(addr, path, contentType, declared, 100*time.Millisecond, 60*time.Second)
	})
}

// tally makes n attempts at once and counts their answers.
func tally(n int, attempt func() string) map[string]int {
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answer := attempt()
			mu.Lock()
			got[answer]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return got
}

// slowGRPCStreams opens n h2c gRPC calls whose message trickles in.
func slowGRPCStreams(base string, n int) map[string]int {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 60 * time.Second}
	defer client.CloseIdleConnections()
	return tally(n, func() string {
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write([]byte{0, 0, 0x10, 0, 0}) // a frame announcing 1 MB
			for range 600 {
				time.Sleep(100 * time.Millisecond)
				if _, err := pw.Write([]byte{0}); err != nil {
					return
				}
			}
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, base+pushv1connect.PusherServicePushProcedure, pr)
		req.Header.Set("Content-Type", "application/grpc")
		answer := "transport error"
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			answer = "grpc-status " + resp.Trailer.Get("Grpc-Status")
		}
		_ = pw.CloseWithError(io.ErrClosedPipe)
		return answer
	})
}

var (
	bombOnce sync.Once
	bomb     []byte
)

// gzipBomb sends n push.v1 requests whose whole envelope is gzip that
// inflates to 1 GB of zeros, over Connect or gRPC.
func gzipBomb(t *testing.T, base string, grpc bool, n int) map[string]int {
	bombOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zeros := make([]byte, 1<<20)
		for range 1 << 10 {
			_, _ = zw.Write(zeros)
		}
		_ = zw.Close()
		bomb = buf.Bytes()
	})
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	p.SetHTTP1(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 60 * time.Second}
	defer client.CloseIdleConnections()
	return tally(n, func() string {
		var req *http.Request
		if grpc {
			frame := make([]byte, 5, 5+len(bomb))
			frame[0] = 1 // compressed
			binary.BigEndian.PutUint32(frame[1:], uint32(len(bomb)))
			req, _ = http.NewRequest(http.MethodPost, base+pushv1connect.PusherServicePushProcedure, bytes.NewReader(append(frame, bomb...)))
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("Grpc-Encoding", "gzip")
		} else {
			req, _ = http.NewRequest(http.MethodPost, base+pushv1connect.PusherServicePushProcedure, bytes.NewReader(bomb))
			req.Header.Set("Content-Type", "application/proto")
			req.Header.Set("Content-Encoding", "gzip")
		}
		answer := "transport error"
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			answer = resp.Status
			if grpc {
				answer = "grpc-status " + resp.Trailer.Get("Grpc-Status")
			}
		}
		return answer
	})
}

// hugeIngest streams a chunked /ingest body of size bytes.
func hugeIngest(base string, size int64) map[string]int {
	req, _ := http.NewRequest(http.MethodPost, base+"/ingest?name=app.cpu&format=folded", io.LimitReader(foldedLines{}, size))
	req.ContentLength = -1
	resp, err := (&http.Client{Timeout: 120 * time.Second}).Do(req)
	if err != nil {
		return map[string]int{"transport error": 1}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return map[string]int{resp.Status: 1}
}

// foldedLines is an endless folded-stack body.
type foldedLines struct{}

func (foldedLines) Read(p []byte) (int, error) {
	const line = "main;app;work 1\n"
	for i := range p {
		p[i] = line[i%len(line)]
	}
	return len(p), nil
}

// emptySamples sends n concurrent pushes of a pprof holding 2 million
// empty samples: 4 MB on the wire, about 4 KB gzipped.
func emptySamples(t *testing.T, base string, n int) map[string]int {
	var raw bytes.Buffer
	// sample_type {type: 1, unit: 2}; string_table "", "cpu", "nanoseconds"
	raw.Write([]byte{0x0a, 0x04, 0x08, 0x01, 0x10, 0x02})
	for range 2_000_000 {
		raw.Write([]byte{0x12, 0x00}) // an empty sample
	}
	for _, s := range []string{"", "cpu", "nanoseconds"} {
		raw.WriteByte(0x32)
		raw.WriteByte(byte(len(s)))
		raw.WriteString(s)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	_, _ = zw.Write(raw.Bytes())
	_ = zw.Close()
	c := pushv1connect.NewPusherServiceClient(&http.Client{Timeout: 60 * time.Second}, base)
	return tally(n, func() string {
		id := make([]byte, 8)
		_, _ = rand.Read(id)
		_, err := c.Push(context.Background(), connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
			Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: fmt.Sprintf("empty-%x", id)}},
			Samples: []*pushv1.RawSample{{RawProfile: gz.Bytes()}},
		}}}))
		if err != nil {
			return connect.CodeOf(err).String()
		}
		return "ok"
	})
}
