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

func init() {
	metrics.Registry.MustRegister(readyGauge)
}
