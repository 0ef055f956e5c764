// Package ringhealth is the distributor's report of its segment-writer ring
// view, as served on GET /ring/writers (port 4040) and read by the operator
// into a PyroscopeDistributor's status. Both sides share these types, so the
// wire form has one definition.
package ringhealth

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/pyrodist/pyrodist/internal/placement"
)

// Path is where a distributor serves its Report.
const Path = "/ring/writers"

// MaxReportBytes bounds what a reader of a Report accepts: a ring of a few
// thousand writers stays well below it.
const MaxReportBytes = 1 << 20

// Report is one distributor's view of the segment-writer ring.
type Report struct {
	// Zone is the distributor's own zone (-distributor.zone); empty when unset.
	Zone string `json:"zone"`
	// PreferSameZone is -distributor.prefer-same-zone.
	PreferSameZone bool `json:"preferSameZone"`
	// ActiveInZone counts the distinct ACTIVE writers owning shards in Zone,
	// as placement counts them (docs/compatibility.md#placement).
	ActiveInZone int `json:"activeInZone"`
	// Active counts the distinct ACTIVE writers owning shards, every zone.
	Active int `json:"active"`
	// FallingBack is true when Zone is set and has no ACTIVE writer: every
	// profile this distributor places goes to another zone's writers.
	FallingBack bool `json:"fallingBack"`
	// Zones lists the zones with writers in the view, sorted by name.
	Zones []Zone `json:"zones"`
}

// Zone is the writers of one zone.
type Zone struct {
	Name string `json:"name"`
	// States counts the zone's writers by ring state (ACTIVE, LEAVING,
	// PENDING, JOINING): those placement may see (fresh heartbeat).
	States map[string]int `json:"states"`
	// Active counts distinct ACTIVE writers owning shards in the zone.
	Active  int      `json:"active"`
	Writers []Writer `json:"writers"`
}

// Writer is one segment-writer instance.
type Writer struct {
	ID    string `json:"id"`
	Addr  string `json:"addr"`
	State string `json:"state"`
}

// FromRing builds the report of ring for a distributor of zone.
func FromRing(ring *placement.Ring, zone string, preferSameZone bool) Report {
	rep := Report{Zone: zone, PreferSameZone: preferSameZone, Active: ring.Active(), Zones: []Zone{}}
	for _, name := range ring.Zones() {
		z := Zone{Name: name, States: map[string]int{}, Active: ring.ActiveInZone(name)}
		for _, i := range ring.ZoneInstances(name) {
			in := ring.Instance(i)
			z.States[in.State.String()]++
			z.Writers = append(z.Writers, Writer{ID: in.ID, Addr: in.Addr, State: in.State.String()})
		}
		rep.Zones = append(rep.Zones, z)
	}
	slices.SortFunc(rep.Zones, func(a, b Zone) int { return cmp.Compare(a.Name, b.Name) })
	if zone != "" {
		rep.ActiveInZone = ring.ActiveInZone(zone)
		rep.FallingBack = rep.ActiveInZone == 0
	}
	return rep
}

// Get reads the Report a distributor serves at base (scheme://host:port)
// with hc, within ctx. It refuses an answer other than 200, one larger than
// MaxReportBytes and one that is not a Report.
func Get(ctx context.Context, hc *http.Client, base string) (*Report, error) {
	url := base + Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxReportBytes+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if len(body) > MaxReportBytes {
		return nil, fmt.Errorf("GET %s: report larger than %d bytes", url, MaxReportBytes)
	}
	var rep Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return &rep, nil
}
