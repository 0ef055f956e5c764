package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
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

// rolloutPhases are the phases a rollout can be in, each a series of
// rolloutGauge so that a halt reads as a 0 -> 1 step, not a new series.
var rolloutPhases = []v1alpha1.RolloutPhase{
	v1alpha1.RolloutRolling, v1alpha1.RolloutPausing, v1alpha1.RolloutHalted, v1alpha1.RolloutComplete,
}

// rolloutGauge is status.rollout.phase as a metric: 1 for the phase the
// PyroscopeDistributor's zone-by-zone rollout is in, 0 for the others.
var rolloutGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "pyrodist_distributor_rollout_phase",
	Help: "The phase of a PyroscopeDistributor's zone-by-zone rollout (1 for the current one): Rolling, Pausing, Halted or Complete.",
}, []string{"namespace", "name", "phase"})

// zoneVersionGauge says per zone whether its Deployment runs the version the
// rollout is heading for, so a dashboard shows how far a rollout got.
var zoneVersionGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "pyrodist_distributor_zone_target_version",
	Help: "Whether a zone's Deployment runs the rollout's target version (1) or an earlier one (0).",
}, []string{"namespace", "name", "zone"})

func init() {
	metrics.Registry.MustRegister(readyGauge, writersGauge, rolloutGauge, zoneVersionGauge)
}

// setRolloutMetrics mirrors status.rollout and the zones' versions.
func setRolloutMetrics(pd *v1alpha1.PyroscopeDistributor) {
	ro := pd.Status.Rollout
	if ro == nil {
		return
	}
	for _, p := range rolloutPhases {
		v := 0.0
		if p == ro.Phase {
			v = 1
		}
		rolloutGauge.WithLabelValues(pd.Namespace, pd.Name, string(p)).Set(v)
	}
	zoneVersionGauge.DeletePartialMatch(prometheus.Labels{"namespace": pd.Namespace, "name": pd.Name})
	for _, z := range pd.Status.Zones {
		v := 0.0
		if z.Version != "" && z.Version == ro.Version {
			v = 1
		}
		zoneVersionGauge.WithLabelValues(pd.Namespace, pd.Name, z.Name).Set(v)
	}
}

// forgetMetrics drops the series of a deleted PyroscopeDistributor.
func forgetMetrics(namespace, name string) {
	readyGauge.DeleteLabelValues(namespace, name)
	for _, g := range []*prometheus.GaugeVec{writersGauge, rolloutGauge, zoneVersionGauge} {
		g.DeletePartialMatch(prometheus.Labels{"namespace": namespace, "name": name})
	}
}
