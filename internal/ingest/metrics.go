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
)

// httpMetrics carry Pyroscope's (dskit's) HTTP metric names so existing
// dashboards keep working.
type httpMetrics struct {
	duration *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
	received *prometheus.HistogramVec
	sent     *prometheus.HistogramVec
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
	}
}

// instrument wraps a route: metrics, and the connection age check.
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connKey{}).(*connInfo); ok && !c.closeAfter.IsZero() && time.Now().After(c.closeAfter) {
			// On HTTP/1.1 the connection closes after this response; on
			// HTTP/2 Go's server turns it into a graceful GOAWAY.
			w.Header().Set("Connection", "close")
		}
		start := time.Now()
		inflight := s.metrics.inflight.WithLabelValues(r.Method, route)
		inflight.Inc()
		defer inflight.Dec()
		body := &countingBody{ReadCloser: r.Body}
		r.Body = body
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		s.metrics.duration.WithLabelValues(r.Method, route, strconv.Itoa(rec.status), "false").Observe(time.Since(start).Seconds())
		s.metrics.received.WithLabelValues(r.Method, route).Observe(float64(body.n))
		s.metrics.sent.WithLabelValues(r.Method, route).Observe(float64(rec.n))
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
