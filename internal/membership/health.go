package membership

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/internal/ringhealth"
)

// HealthHandler serves the ring view as a ringhealth.Report, for a
// distributor of zone (GET ringhealth.Path on port 4040). The operator reads
// it into the PyroscopeDistributor's status; people can read it too.
func (w *WriterRing) HealthHandler(zone string, preferSameZone bool) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		body, err := json.Marshal(ringhealth.FromRing(w.Ring(), zone, preferSameZone))
		if err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.Header().Set("Cache-Control", "no-store")
		_, _ = rw.Write(append(body, '\n'))
	})
}

// newZoneGauge is the ring size by the writers' zone and state: the
// dashboards' view of what each zone's distributors can send to. Zones come
// from the writers' own registrations (one per availability zone), so the
// label stays small. It is writer_zone, not zone: scrapers label every
// series with the distributor's own zone (the operator's PodMonitor does).
func newZoneGauge() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pyrodist_segment_writer_ring_zone_instances",
		Help: "Segment-writers in the placement view by their zone and state (healthy: fresh heartbeat and state ACTIVE, LEAVING, PENDING or JOINING).",
	}, []string{"writer_zone", "state"})
}

// setZones replaces the gauge's series with the counts of instances, so a
// zone whose writers all left drops to no series rather than a stale count.
func setZones(g *prometheus.GaugeVec, instances []placement.Instance) {
	g.Reset()
	for _, in := range instances {
		g.WithLabelValues(in.Zone, in.State.String()).Inc()
	}
}
