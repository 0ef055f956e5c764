package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/pyrodist/pyrodist/internal/ringhealth"
)

// printRingHealth shows each zone's distributor's view of the writer ring
// (GET /ring/writers), the report the operator turns into the
// WritersInZone condition. In the demo the operator cannot reach the
// distributors (its pods are kwok's; the processes run here), so the demo
// asks them itself.
func (d *demo) printRingHealth(ctx context.Context) error {
	var reps []ringhealth.Report
	for _, dist := range d.dists {
		rep, err := ringhealth.Get(ctx, http.DefaultClient, dist.http())
		if err != nil {
			return fmt.Errorf("distributor %s %s: %w", dist.zone, ringhealth.Path, err)
		}
		reps = append(reps, *rep)
	}
	d.step("ring health per zone, from each zone's distributor (GET %s)", ringhealth.Path)
	fmt.Print(ringHealthText(reps))
	return nil
}

// ringHealthText is one row per distributor zone: its ACTIVE writers in its
// own zone and overall, whether it falls back to other zones, and the ring
// it sees by writer zone and state.
func ringHealthText(reps []ringhealth.Report) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tACTIVE-IN-ZONE\tACTIVE\tFALLING-BACK\tRING (writer zone: states)")
	for _, r := range reps {
		var ring []string
		for _, z := range r.Zones {
			var states []string
			for _, s := range []string{"ACTIVE", "LEAVING", "PENDING", "JOINING"} {
				if n := z.States[s]; n > 0 {
					states = append(states, fmt.Sprintf("%s=%d", s, n))
				}
			}
			ring = append(ring, z.Name+": "+strings.Join(states, " "))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%v\t%s\n", r.Zone, r.ActiveInZone, r.Active, r.FallingBack, strings.Join(ring, ", "))
	}
	tw.Flush()
	return b.String()
}
