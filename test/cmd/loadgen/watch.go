package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pyrodist/pyrodist/test/loadresult"
)

// watcher scrapes a /metrics URL every interval and keeps, for each named
// metric, the max and the last of its value summed over label sets: e.g. the
// distributor's heap in use while its writers stall.
type watcher struct {
	url   string
	names []string
	mu    sync.Mutex
	seen  map[string]*loadresult.Watched
	stop  chan struct{}
	done  chan struct{}
}

func startWatcher(url string, names []string, interval time.Duration) *watcher {
	w := &watcher{url: url, names: names, seen: map[string]*loadresult.Watched{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			w.scrape()
			select {
			case <-w.stop:
				w.scrape()
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *watcher) finish() map[string]loadresult.Watched {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]loadresult.Watched{}
	for k, v := range w.seen {
		out[k] = *v
	}
	return out
}

func (w *watcher) scrape() {
	c := http.Client{Timeout: 2 * time.Second}
	req, err := http.NewRequest(http.MethodGet, w.url, nil)
	if err != nil {
		return
	}
	// Uncompressed: gzipping the exposition would add to the CPU measured.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := c.Do(req)
	if err != nil {
		return // a missed sample; the others still count
	}
	defer resp.Body.Close()
	vals, err := sumMetrics(resp.Body, w.names)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, v := range vals {
		s := w.seen[name]
		if s == nil {
			s = &loadresult.Watched{Max: v}
			w.seen[name] = s
		}
		s.Max = max(s.Max, v)
		s.Last = v
	}
}

// sumMetrics reads Prometheus text format and sums each named metric over
// its label sets.
func sumMetrics(r io.Reader, names []string) (map[string]float64, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 || !want[line[:end]] {
			continue
		}
		rest := line[end:]
		if rest[0] == '{' {
			i := strings.LastIndexByte(rest, '}')
			if i < 0 {
				continue
			}
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[line[:end]] += v
	}
	return out, sc.Err()
}

// post sends an empty POST to each URL (e.g. a fake writer's fault
// injection) and fails on any non-2xx answer.
func post(urls []string) error {
	c := http.Client{Timeout: 5 * time.Second}
	for _, u := range urls {
		resp, err := c.Post(u, "text/plain", nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("POST %s: %s", u, resp.Status)
		}
	}
	return nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }
