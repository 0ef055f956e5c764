package usagegroups

import (
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/metriclabel"
)

// MaxDynamicNames bounds the usage_group label values that dynamic group
// names produce, process-wide: their values come from the clients' labels.
// Static names are bounded by the configuration (MaxGroups per tenant).
const MaxDynamicNames = 1000

// Metrics are Pyroscope's per-usage-group counters (names, help and labels
// of pkg/validation/usage_groups.go at 3fe6a45). Tenant label values go
// through the pipeline's tenant Set like its other metrics.
type Metrics struct {
	received  *prometheus.CounterVec
	discarded *prometheus.CounterVec
	tenants   *metriclabel.Set
	dynamic   *metriclabel.Set
}

// NewMetrics registers the counters on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer, tenants *metriclabel.Set) (*Metrics, error) {
	m := &Metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pyroscope", Name: "usage_group_received_decompressed_total",
			Help: "The total number of decompressed bytes per profile received by usage group.",
		}, []string{"type", "tenant", "usage_group"}),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pyroscope", Name: "usage_group_discarded_bytes_total",
			Help: "The total number of bytes that were discarded by usage group.",
		}, []string{"reason", "tenant", "usage_group"}),
		tenants: tenants,
		dynamic: metriclabel.NewSet(MaxDynamicNames, utf8.ValidString),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.received, m.discarded} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// Received counts n bytes of a profile of type profileType (a label value
// already bounded) under each of its groups, or under "other".
func (m *Metrics) Received(profileType, tenant string, groups []Name, n int) {
	m.count(m.received, profileType, tenant, groups, n)
}

// Discarded counts n bytes discarded for reason under each group of the
// profile, or under "other".
func (m *Metrics) Discarded(reason, tenant string, groups []Name, n int) {
	m.count(m.discarded, reason, tenant, groups, n)
}

func (m *Metrics) count(c *prometheus.CounterVec, first, tenant string, groups []Name, n int) {
	tenant = m.tenants.Value(tenant)
	if len(groups) == 0 {
		c.WithLabelValues(first, tenant, Other).Add(float64(n))
		return
	}
	for _, g := range groups {
		c.WithLabelValues(first, tenant, m.label(g)).Add(float64(n))
	}
}

// label is the usage_group value of g: a dynamic name is bounded like
// other values clients choose.
func (m *Metrics) label(g Name) string {
	if g.Resolved == g.Configured {
		return g.Resolved
	}
	return m.dynamic.Value(g.Resolved)
}
