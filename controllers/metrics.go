package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// readyGauge is 1 for each PyroscopeDistributor whose Ready condition is True,
// 0 otherwise; the series goes away with the object. controller-runtime's own
// metrics (controller_runtime_reconcile_total, _errors_total, _time_seconds)
// cover reconcile counts, errors and durations.
var readyGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "pyrodist_distributor_ready",
	Help: "Whether a PyroscopeDistributor is Ready (1) or not (0).",
}, []string{"namespace", "name"})

// writersGauge is the WritersInZone condition's data as a metric: the
// ACTIVE segment-writers a distributor of each zone last reported in its own
// zone. No series while no report is at hand (the condition is Unknown).
var writersGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "pyrodist_distributor_zone_writers_active",
	Help: "ACTIVE segment-writers in a zone, as a distributor of that zone last reported (GET /ring/writers).",
}, []string{"namespace", "name", "zone"})

func init() {
	metrics.Registry.MustRegister(readyGauge, writersGauge)
}
