package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// workload is a small service doing what Go services spend CPU on: HTTP over
// loopback, JSON, gzip, hashing, regexps, sorting and maps, with pprof labels
// on the goroutines as instrumented services set them.
type workload struct {
	srv     *http.Server
	done    atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	retain  map[string][]byte // live heap for the heap profile
	clients []*http.Client
}

type order struct {
	ID       string            `json:"id"`
	Customer string            `json:"customer"`
	Items    []item            `json:"items"`
	Tags     map[string]string `json:"tags"`
	Created  time.Time         `json:"created"`
}

type item struct {
	SKU   string  `json:"sku"`
	Qty   int     `json:"qty"`
	Price float64 `json:"price"`
}

var skuPattern = regexp.MustCompile(`^[A-Z]{3}-\d{4,6}(-[a-z]+)?$`)

func startWorkload() *workload {
	w := &workload{retain: map[string][]byte{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", w.handleOrder)
	mux.HandleFunc("GET /report", w.handleReport)
	w.srv = &http.Server{Handler: mux}
	go func() { _ = w.srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()

	for i := range 3 {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		w.clients = append(w.clients, c)
		w.wg.Add(1)
		go pprof.Do(context.Background(), pprof.Labels("worker", "client", "client_id", strconv.Itoa(i)), func(ctx context.Context) {
			defer w.wg.Done()
			w.client(ctx, c, base, int64(i))
		})
	}
	w.wg.Add(1)
	go pprof.Do(context.Background(), pprof.Labels("worker", "batch"), func(context.Context) {
		defer w.wg.Done()
		w.batch()
	})
	return w
}

func (w *workload) stop() {
	w.done.Store(true)
	w.wg.Wait()
	_ = w.srv.Close()
	for _, c := range w.clients {
		c.CloseIdleConnections()
	}
}

func (w *workload) keepAlive() {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = len(w.retain)
}

func newOrder(r *rand.Rand) order {
	o := order{
		ID:       fmt.Sprintf("ord-%08x", r.Uint32()),
		Customer: fmt.Sprintf("cust-%d", r.Intn(5000)),
		Tags:     map[string]string{"region": []string{"eu", "us", "ap"}[r.Intn(3)], "channel": "web"},
		Created:  time.Unix(1_700_000_000+int64(r.Intn(1_000_000)), 0).UTC(),
	}
	for range 1 + r.Intn(20) {
		sku := fmt.Sprintf("%c%c%c-%d", 'A'+r.Intn(26), 'A'+r.Intn(26), 'A'+r.Intn(26), 1000+r.Intn(900000))
		if r.Intn(4) == 0 {
			sku += "-xl"
		}
		o.Items = append(o.Items, item{SKU: sku, Qty: 1 + r.Intn(9), Price: float64(r.Intn(100000)) / 100})
	}
	return o
}

func (w *workload) client(ctx context.Context, c *http.Client, base string, seed int64) {
	r := rand.New(rand.NewSource(seed))
	for !w.done.Load() {
		var body bytes.Buffer
		if err := json.NewEncoder(&body).Encode(newOrder(r)); err != nil {
			log.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/orders", &body)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if r.Intn(10) == 0 {
			if resp, err := c.Get(base + "/report"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		}
	}
}

func (w *workload) handleOrder(rw http.ResponseWriter, req *http.Request) {
	var o order
	if err := json.NewDecoder(req.Body).Decode(&o); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	total := 0.0
	for _, it := range o.Items {
		if !skuPattern.MatchString(it.SKU) {
			http.Error(rw, "bad sku "+it.SKU, http.StatusUnprocessableEntity)
			return
		}
		total += float64(it.Qty) * it.Price
	}
	sum := sha256.Sum256([]byte(o.ID + o.Customer))
	key := hex.EncodeToString(sum[:8])
	enc, _ := json.Marshal(o)
	w.mu.Lock()
	if len(w.retain) < 20000 {
		w.retain[key] = enc
	}
	w.mu.Unlock()
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(map[string]any{"id": o.ID, "total": strconv.FormatFloat(total, 'f', 2, 64)})
}

func (w *workload) handleReport(rw http.ResponseWriter, _ *http.Request) {
	w.mu.Lock()
	keys := make([]string, 0, len(w.retain))
	for k := range w.retain {
		keys = append(keys, k)
	}
	w.mu.Unlock()
	slices.Sort(keys)
	if len(keys) > 200 {
		keys = keys[:200]
	}
	rw.Header().Set("Content-Encoding", "gzip")
	zw := gzip.NewWriter(rw)
	fmt.Fprintf(zw, "%d orders\n%s\n", len(keys), strings.Join(keys, "\n"))
	_ = zw.Close()
}

// batch is a background job: compress, hash and sort in a loop.
func (w *workload) batch() {
	r := rand.New(rand.NewSource(99))
	buf := make([]byte, 64<<10)
	for !w.done.Load() {
		for i := range buf {
			buf[i] = byte('a' + r.Intn(8))
		}
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.DefaultCompression)
		_, _ = zw.Write(buf)
		_ = zw.Close()
		h := sha256.Sum256(z.Bytes())
		nums := make([]float64, 4096)
		for i := range nums {
			nums[i] = r.NormFloat64() + float64(h[i%32])
		}
		slices.Sort(nums)
		m := make(map[int]int, 1024)
		for i := range 8192 {
			m[r.Intn(2048)] += i
		}
	}
}
