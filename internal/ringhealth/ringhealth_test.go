package ringhealth_test

import (
	"reflect"
	"testing"

	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/internal/ringhealth"
)

func TestFromRing(t *testing.T) {
	w := func(id, zone string, st placement.State) placement.Instance {
		return placement.Instance{ID: id, Addr: id + ":9095", Zone: zone, State: st, Tokens: 4}
	}
	ring := placement.NewRing([]placement.Instance{
		w("a-1", "a", placement.Active), w("a-2", "a", placement.Leaving),
		w("b-1", "b", placement.Active), w("b-2", "b", placement.Active),
		w("c-1", "c", placement.Joining),
	})
	for _, tc := range []struct {
		zone                 string
		activeInZone, active int
		fallingBack          bool
	}{
		{zone: "a", activeInZone: 1, active: 3},
		{zone: "b", activeInZone: 2, active: 3},
		{zone: "c", activeInZone: 0, active: 3, fallingBack: true}, // writers, none ACTIVE
		{zone: "d", activeInZone: 0, active: 3, fallingBack: true}, // no writer at all
		{zone: "", activeInZone: 0, active: 3, fallingBack: false}, // no zone: nothing to fall back from
	} {
		rep := ringhealth.FromRing(ring, tc.zone, true)
		if rep.Zone != tc.zone || rep.ActiveInZone != tc.activeInZone || rep.Active != tc.active || rep.FallingBack != tc.fallingBack {
			t.Errorf("zone %q: got zone %q activeInZone %d active %d fallingBack %v, want %d %d %v", tc.zone,
				rep.Zone, rep.ActiveInZone, rep.Active, rep.FallingBack, tc.activeInZone, tc.active, tc.fallingBack)
		}
		var names []string
		for _, z := range rep.Zones {
			names = append(names, z.Name)
		}
		if !reflect.DeepEqual(names, []string{"a", "b", "c"}) {
			t.Errorf("zones %v, want a b c", names)
		}
		a := rep.Zones[0]
		if !reflect.DeepEqual(a.States, map[string]int{"ACTIVE": 1, "LEAVING": 1}) || a.Active != 1 ||
			!reflect.DeepEqual(a.Writers, []ringhealth.Writer{{ID: "a-1", Addr: "a-1:9095", State: "ACTIVE"}, {ID: "a-2", Addr: "a-2:9095", State: "LEAVING"}}) {
			t.Errorf("zone a: %+v", a)
		}
	}

	empty := ringhealth.FromRing(placement.NewRing(nil), "a", false)
	if empty.Active != 0 || !empty.FallingBack || empty.Zones == nil || len(empty.Zones) != 0 {
		t.Errorf("empty ring: %+v (zones must encode as [], not null)", empty)
	}
}
