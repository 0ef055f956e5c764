package distributor

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/inflight"
	"github.com/pyrodist/pyrodist/internal/metriclabel"
	"github.com/pyrodist/pyrodist/internal/profile"
	"github.com/pyrodist/pyrodist/internal/validation"
)

// FineLatencyBuckets resolve the few milliseconds the distributor's own
// work should take, which Pyroscope's request buckets (5, 10, 25 ms) cannot.
var FineLatencyBuckets = []float64{.0005, .001, .002, .003, .004, .005, .0075, .01, .015, .02, .03, .05, .075, .1, .25, .5, 1, 2.5}

// metrics carry Pyroscope's names (docs/compatibility.md#metrics) so its
// dashboards keep working.
type metrics struct {
	receivedCompressed   *prometheus.HistogramVec
	receivedDecompressed *prometheus.HistogramVec
	receivedSamples      *prometheus.HistogramVec
	discardedBytes       *prometheus.CounterVec
	discardedProfiles    *prometheus.CounterVec
	inflightBytes        prometheus.GaugeFunc
	inflightLimit        prometheus.Gauge
	processing           prometheus.Histogram

	// tenants and types bound the tenant and type label values, which
	// clients choose.
	tenants, types *metriclabel.Set
}

func newMetrics(reg prometheus.Registerer, f *inflight.Budget, tenants, types *metriclabel.Set) (*metrics, error) {
	sizeBuckets := prometheus.ExponentialBucketsRange(1<<10, 1<<28, 30)
	m := &metrics{
		tenants: tenants,
		types:   types,
		receivedCompressed: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "pyroscope", Name: "distributor_received_compressed_bytes",
			Help:    "The compressed size of profiles received.",
			Buckets: sizeBuckets,
		}, []string{"type", "tenant"}),
		receivedDecompressed: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "pyroscope", Name: "distributor_received_decompressed_bytes_total",
			Help:    "The decompressed size of profiles received, by processing stage.",
			Buckets: sizeBuckets,
		}, []string{"tenant", "stage"}),
		receivedSamples: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "pyroscope", Name: "distributor_received_samples",
			Help:    "The number of samples per profile received.",
			Buckets: prometheus.ExponentialBuckets(100, 4, 8),
		}, []string{"type", "tenant"}),
		discardedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pyroscope", Name: "discarded_bytes_total",
			Help: "The total number of bytes that were discarded.",
		}, []string{"reason", "tenant"}),
		discardedProfiles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pyroscope", Name: "discarded_samples_total",
			Help: "The total number of profiles that were discarded.",
		}, []string{"reason", "tenant"}),
		inflightBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "pyrodist", Name: "distributor_inflight_bytes",
			Help: "Bytes held by requests in flight (bodies, inflated and decoded profiles), charged to the in-flight budget.",
		}, func() float64 { return float64(f.InUse()) }),
		inflightLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "pyrodist", Name: "distributor_inflight_bytes_limit",
			Help: "The in-flight budget in bytes; 0 means unlimited.",
		}),
		// The distributor's own share of a push's latency, apart from the
		// segment-writer calls (pyroscope_segment_writer_client_request_duration_seconds):
		// fine buckets, because a few milliseconds is what it should cost.
		processing: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "pyrodist", Name: "distributor_processing_duration_seconds",
			Help: "Time from the start of a push until each of its profiles is ready to send to a " +
				"segment-writer: inflate, decode, validation, normalization, split and encode, and any wait for CPU.",
			Buckets: FineLatencyBuckets,
		}),
	}
	m.inflightLimit.Set(float64(f.Max()))
	if reg != nil {
		for _, c := range []prometheus.Collector{m.receivedCompressed, m.receivedDecompressed, m.receivedSamples,
			m.discardedBytes, m.discardedProfiles, m.inflightBytes, m.inflightLimit, m.processing} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) discard(reason validation.Reason, tenant string, bytes int) {
	tenant = m.tenants.Value(tenant)
	m.discardedBytes.WithLabelValues(string(reason), tenant).Add(float64(bytes))
	m.discardedProfiles.WithLabelValues(string(reason), tenant).Inc()
}

// relabelDropped counts what ingestion relabel rules discarded of a profile
// as Pyroscope does: the bytes of every dropped part, and the profile only
// when nothing of it is left (visitSampleSeries in
// pkg/distributor/distributor.go at 3fe6a45).
func (m *metrics) relabelDropped(tenant string, d profile.Dropped) {
	if d.Bytes == 0 && !d.Profile {
		return
	}
	tenant = m.tenants.Value(tenant)
	reason := string(validation.DroppedByRelabelRules)
	if d.Bytes > 0 {
		m.discardedBytes.WithLabelValues(reason, tenant).Add(float64(d.Bytes))
	}
	if d.Profile {
		m.discardedProfiles.WithLabelValues(reason, tenant).Inc()
	}
}
