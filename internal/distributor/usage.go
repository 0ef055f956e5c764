package distributor

import (
	"strings"

	"connectrpc.com/connect"
	"github.com/go-kit/log/level"
	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/metriclabel"
	"github.com/pyrodist/pyrodist/internal/usagegroups"
	"github.com/pyrodist/pyrodist/internal/usagelimits"
	"github.com/pyrodist/pyrodist/internal/validation"
)

// Discard reasons of the usage limits (pkg/validation/validate.go at 3fe6a45);
// the debug log lines below are pushSeries' (pkg/distributor/distributor.go).
const (
	reasonIngestLimitReached validation.Reason = "ingest_limit_reached"
	reasonDroppedBySampling  validation.Reason = "dropped_by_sampling_rules"
)

// labelSampled marks a profile kept stripped to its totals.
const labelSampled = "__sampled__"

// usage applies the tenant's usage limits in the pipeline, where
// Pyroscope's pushSeries does (pkg/distributor/distributor.go at 3fe6a45):
// the tenant's hard limit before the rate limit; usage groups, their hard
// limits and sampling after it, before validation.
type usage struct {
	limiter *usagelimits.Limiter
	metrics *usagegroups.Metrics
}

func newUsage(reg prometheus.Registerer, tenants *metriclabel.Set, healthyDistributors func() int) (*usage, error) {
	m, err := usagegroups.NewMetrics(reg, tenants)
	if err != nil {
		return nil, err
	}
	return &usage{limiter: usagelimits.New(healthyDistributors, nil, nil), metrics: m}, nil
}

// verdict is what the usage limits decided for one profile.
type verdict struct {
	groups      []usagegroups.Name
	annotations []*typesv1.ProfileAnnotation
	drop        bool // sampled out: acknowledged, nothing sent
	strip       bool // sampled out, kept as its totals
}

// admitTenant applies the tenant's ingestion hard limit to a profile of
// cost bytes; a refusal is ResourceExhausted, counted as Pyroscope does.
func (d *Distributor) admitTenant(tenant string, lim *config.Limits, cost int, v *verdict) error {
	a, err := d.usage.limiter.CheckTenant(tenant, &lim.Usage.IngestionLimit)
	if err != nil {
		level.Debug(d.logger).Log("msg", "rejecting profile due to global ingest limit", "tenant", tenant, "err", err)
		d.metrics.discard(reasonIngestLimitReached, tenant, cost)
		return connect.NewError(connect.CodeResourceExhausted, err)
	}
	if a != nil {
		v.annotations = append(v.annotations, a)
	}
	return nil
}

// admitGroups matches the profile's usage groups, applies their hard
// limits and the sampling rules.
func (d *Distributor) admitGroups(tenant string, lim *config.Limits, labels []*typesv1.LabelPair, cost int, v *verdict) error {
	u := &lim.Usage
	v.groups = u.DistributorUsageGroups.Match(labels, nil)
	a, err := d.usage.limiter.CheckGroups(tenant, &u.IngestionLimit, v.groups)
	if err != nil {
		level.Debug(d.logger).Log("msg", "rejecting profile due to usage group ingest limit", "tenant", tenant, "err", err)
		d.metrics.discard(reasonIngestLimitReached, tenant, cost)
		d.usage.metrics.Discarded(string(reasonIngestLimitReached), tenant, v.groups, cost)
		return connect.NewError(connect.CodeResourceExhausted, err)
	}
	if a != nil {
		v.annotations = append(v.annotations, a)
	}
	keep, src := d.usage.limiter.Sample(&u.DistributorSampling, v.groups)
	if !keep {
		level.Debug(d.logger).Log("msg", "skipping profile due to sampling", "tenant", tenant,
			"usage_group", src.UsageGroup, "probability", src.Probability, "keep_stripped", u.KeepStrippedProfiles)
		if !u.KeepStrippedProfiles {
			d.metrics.discard(reasonDroppedBySampling, tenant, cost)
			d.usage.metrics.Discarded(string(reasonDroppedBySampling), tenant, v.groups, cost)
			v.drop = true
			return nil
		}
		v.strip = true
	}
	if src != nil {
		v.annotations = append(v.annotations, usagelimits.Sampled(src))
	}
	return nil
}

// admitted counts a decoded profile of size bytes (pprof) that passed the
// usage limits under each of its usage groups, as Pyroscope does before
// validation (a profile that does not decode never gets there in
// Pyroscope). Pyroscope's "sampled" stage of the received-bytes histogram
// is left out: a histogram per tenant would double that metric's series
// for what the "received" stage already shows.
func (d *Distributor) admitted(tenant, name string, size int, v *verdict) {
	d.usage.metrics.Received(d.metrics.types.Value(name), tenant, v.groups, size)
}

// stripped reduces p to its totals for keep_stripped_profiles and returns
// the labels with __sampled__="true" (a copy: labels are shared by the
// samples of a series). The stripped bytes count as discarded, the profile
// as dropped, as in Pyroscope; size is p's pprof size before.
func (d *Distributor) stripped(tenant string, p *profilev1.Profile, labels []*typesv1.LabelPair, size int, v *verdict) []*typesv1.LabelPair {
	usagelimits.StripToTotals(p)
	kept := p.SizeVT()
	d.metrics.discard(reasonDroppedBySampling, tenant, size-kept)
	d.usage.metrics.Discarded(string(reasonDroppedBySampling), tenant, v.groups, size-kept)
	return withLabel(labels, labelSampled, "true")
}

// withLabel returns a sorted copy of labels with name set to value.
func withLabel(labels []*typesv1.LabelPair, name, value string) []*typesv1.LabelPair {
	out := make([]*typesv1.LabelPair, 0, len(labels)+1)
	added := false
	for _, l := range labels {
		switch c := strings.Compare(l.Name, name); {
		case c == 0:
			out = append(out, &typesv1.LabelPair{Name: name, Value: value})
			added = true
			continue
		case c > 0 && !added:
			out = append(out, &typesv1.LabelPair{Name: name, Value: value})
			added = true
		}
		out = append(out, l)
	}
	if !added {
		out = append(out, &typesv1.LabelPair{Name: name, Value: value})
	}
	return out
}
