package membership

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pyrodist/pyrodist/internal/placement"
)

// The zone gauge follows the view: a zone whose writers all left has no
// series left, rather than its last count.
func TestSetZones(t *testing.T) {
	g := newZoneGauge()
	setZones(g, []placement.Instance{
		{ID: "a1", Zone: "a", State: placement.Active}, {ID: "a2", Zone: "a", State: placement.Active},
		{ID: "b1", Zone: "b", State: placement.Leaving},
	})
	if n := testutil.CollectAndCount(g); n != 2 {
		t.Errorf("%d series, want 2 (a ACTIVE, b LEAVING)", n)
	}
	if a, b := testutil.ToFloat64(g.WithLabelValues("a", "ACTIVE")), testutil.ToFloat64(g.WithLabelValues("b", "LEAVING")); a != 2 || b != 1 {
		t.Errorf("a ACTIVE = %v, b LEAVING = %v, want 2 and 1", a, b)
	}
	setZones(g, []placement.Instance{{ID: "a1", Zone: "a", State: placement.Active}})
	if n := testutil.CollectAndCount(g); n != 1 {
		t.Errorf("%d series after zone b left, want 1", n)
	}
}
