package ringhealth_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
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

// Get refuses what it cannot trust: an error status, a body over the bound,
// or no JSON report.
func TestGet(t *testing.T) {
	big := strings.Repeat(" ", ringhealth.MaxReportBytes) + `{"zone":"a"}`
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		wantErr string
	}{
		{"ok", 200, `{"zone":"a","activeInZone":1,"active":3}`, ""},
		{"error status", 503, `{"zone":"a"}`, "503"},
		{"too large", 200, big, "larger than"},
		{"not json", 200, "<html>", "invalid character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var path string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				path = r.URL.Path
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			rep, err := ringhealth.Get(context.Background(), srv.Client(), srv.URL)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("get: %v", err)
			case tc.wantErr == "" && (rep.Zone != "a" || rep.ActiveInZone != 1 || rep.Active != 3):
				t.Errorf("report %+v", rep)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
			if path != ringhealth.Path {
				t.Errorf("GET %s, want %s", path, ringhealth.Path)
			}
		})
	}
}
