package ingest

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/pyrodist/pyrodist/internal/distributor"
	"github.com/pyrodist/pyrodist/internal/metriclabel"
)

// httpMetrics carry Pyroscope's (dskit's) HTTP metric names so existing
// dashboards keep working.
type httpMetrics struct {
	duration *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
	received *prometheus.HistogramVec
	sent     *prometheus.HistogramVec
	// added is ours: a push's latency less its waits on segment-writers.
	added *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	f := promauto.With(reg)
	sizes := prometheus.ExponentialBuckets(1024, 4, 10) // 1 KiB .. 256 MiB
	return &httpMetrics{
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pyroscope_request_duration_seconds",
			Help:    "Time (in seconds) spent serving HTTP requests.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "route", "status_code", "ws"}),
		inflight: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pyroscope_inflight_requests",
			Help: "Current number of inflight requests.",
		}, []string{"method", "route"}),
		received: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pyroscope_request_message_bytes",
			Help:    "Size (in bytes) of messages received in the request.",
			Buckets: sizes,
		}, []string{"method", "route"}),
		sent: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pyroscope_response_message_bytes",
			Help:    "Size (in bytes) of messages sent in response.",
			Buckets: sizes,
		}, []string{"method", "route"}),
		added: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "pyrodist", Name: "distributor_added_latency_seconds",
			Help: "Time (in seconds) from a push's arrival to its answer, less the time during which " +
				"at least one of its profiles waited for a segment-writer: the latency the distributor adds.",
			Buckets: distributor.FineLatencyBuckets,
		}, []string{"route"}),
	}
}

// instrument wraps a route: metrics, and the connection age check.
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return s.instrumented(route, h, false)
}

// instrumentPush is instrument for the push routes, which also measure the
// latency the distributor adds to the segment-writers' own.
func (s *Server) instrumentPush(route string, h http.Handler) http.Handler {
	return s.instrumented(route, h, true)
}

func (s *Server) instrumented(route string, h http.Handler, push bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connKey{}).(*connInfo); ok && !c.closeAfter.IsZero() && time.Now().After(c.closeAfter) {
			// On HTTP/1.1 the connection closes after this response; on
			// HTTP/2 Go's server turns it into a graceful GOAWAY.
			w.Header().Set("Connection", "close")
		}
		start := time.Now()
		// Routes without a method pattern take any token as a method.
		method := metriclabel.HTTPMethod(r.Method)
		inflight := s.metrics.inflight.WithLabelValues(method, route)
		inflight.Inc()
		defer inflight.Dec()
		body := &countingBody{ReadCloser: r.Body}
		r.Body = body
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		var wait *distributor.WriterWait
		if push {
			var ctx context.Context
			ctx, wait = distributor.WithWriterWait(r.Context())
			r = r.WithContext(ctx)
		}
		h.ServeHTTP(rec, r)
		took := time.Since(start)
		s.metrics.duration.WithLabelValues(method, route, strconv.Itoa(rec.status), "false").Observe(took.Seconds())
		if push {
			s.metrics.added.WithLabelValues(route).Observe(max(took-wait.Total(), 0).Seconds())
		}
		s.metrics.received.WithLabelValues(method, route).Observe(float64(body.n))
		s.metrics.sent.WithLabelValues(method, route).Observe(float64(rec.n))
	})
}

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// recorder notes the status and size of a response. It keeps Flush and
// Unwrap so connect's streaming and trailers work through it.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	n           int64
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(p)
	r.n += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	r.wroteHeader = true
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type connKey struct{}

// connInfo is per connection: when it should be asked to close.
type connInfo struct {
	closeAfter time.Time
}

// connContext gives each connection a max age with ±10% jitter, so clients
// that keep connections forever reconnect and new replicas get traffic.
func (s *Server) connContext(ctx context.Context, _ net.Conn) context.Context {
	c := &connInfo{}
	if age := s.opts.MaxConnectionAge; age > 0 {
		jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(age))
		c.closeAfter = time.Now().Add(age + jitter)
	}
	return context.WithValue(ctx, connKey{}, c)
}
