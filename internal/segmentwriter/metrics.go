package segmentwriter

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/pyrodist/pyrodist/internal/metriclabel"
)

type metrics struct {
	sentBytes    *prometheus.HistogramVec
	duration     *prometheus.HistogramVec
	zoneFallback prometheus.Counter
	rejected     *prometheus.CounterVec
	abandoned    *prometheus.CounterVec
	// tenants bounds sentBytes' tenant label, which clients choose.
	tenants *metriclabel.Set
}

func newMetrics(reg prometheus.Registerer, tenants *metriclabel.Set) (*metrics, error) {
	m := &metrics{
		tenants: tenants,
		// Pyroscope's name, labels and buckets.
		sentBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "pyroscope_segment_writer_client_sent_bytes",
			Help:                            "Bytes of profile data acked by segment-writers.",
			Buckets:                         prometheus.ExponentialBucketsRange(100, 100<<20, 30),
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  50,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"shard", "tenant", "addr"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "pyroscope_segment_writer_client_request_duration_seconds",
			Help:                            "Duration of Push attempts to a segment-writer, by gRPC status code.",
			Buckets:                         prometheus.ExponentialBuckets(0.001, 2, 15),
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  50,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"addr", "status_code"}),
		zoneFallback: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pyrodist_segment_writer_zone_fallback_total",
			Help: "Profiles acked by a segment-writer outside this distributor's zone while same-zone preference is on.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pyrodist_segment_writer_client_circuit_open_total",
			Help: "Push attempts not sent because the writer's circuit breaker was open.",
		}, []string{"addr"}),
		abandoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pyrodist_segment_writer_client_abandoned_attempts_total",
			Help: "Slow push attempts given up for the next candidate because the writer did not answer a health probe.",
		}, []string{"addr"}),
	}
	if reg != nil {
		// A second client in one process shares the registered collectors.
		if err := register(reg, m.sentBytes, &m.sentBytes); err != nil {
			return nil, err
		}
		if err := register(reg, m.duration, &m.duration); err != nil {
			return nil, err
		}
		if err := register(reg, m.zoneFallback, &m.zoneFallback); err != nil {
			return nil, err
		}
		if err := register(reg, m.rejected, &m.rejected); err != nil {
			return nil, err
		}
		if err := register(reg, m.abandoned, &m.abandoned); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(addr string, code codes.Code, d time.Duration) {
	m.duration.WithLabelValues(addr, code.String()).Observe(d.Seconds())
}

// forget drops the series of an address that left the ring: writer
// addresses churn with pod IPs.
func (m *metrics) forget(addr string) {
	m.sentBytes.DeletePartialMatch(prometheus.Labels{"addr": addr})
	m.duration.DeletePartialMatch(prometheus.Labels{"addr": addr})
	m.rejected.DeletePartialMatch(prometheus.Labels{"addr": addr})
	m.abandoned.DeletePartialMatch(prometheus.Labels{"addr": addr})
}

func register[T prometheus.Collector](reg prometheus.Registerer, c T, dst *T) error {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			*dst = existing
			return nil
		}
	}
	return err
}
