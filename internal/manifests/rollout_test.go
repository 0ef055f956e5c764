package manifests

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
)

func TestPlanRollout(t *testing.T) {
	now := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(-d)); return &t }
	const old, target = "old0000000", "new0000000"
	on := func(version string, available bool) LiveZone {
		return LiveZone{Exists: true, Version: version, Available: available}
	}
	prev := func(version string, phase v1.RolloutPhase, zone string, since *metav1.Time) *v1.RolloutStatus {
		return &v1.RolloutStatus{Version: version, Phase: phase, Zone: zone, Since: since}
	}
	pause30s := v1.RolloutSpec{PauseBetweenZones: &metav1.Duration{Duration: 30 * time.Second}}

	for _, tc := range []struct {
		name     string
		disabled []string
		live     map[string]LiveZone
		spec     v1.RolloutSpec
		prev     *v1.RolloutStatus

		hold      []string
		started   string
		phase     v1.RolloutPhase
		zone      string
		since     *metav1.Time // nil: now
		halted    bool
		finished  bool
		settled   bool
		requeue   time.Duration
		inMessage []string
	}{{
		name:  "first creation creates every zone at once",
		live:  map[string]LiveZone{},
		phase: v1.RolloutComplete,
	}, {
		name:    "a new version starts with the first zone",
		live:    map[string]LiveZone{"a": on(old, true), "b": on(old, true), "c": on(old, true)},
		prev:    prev(old, v1.RolloutComplete, "", ago(time.Hour)),
		hold:    []string{"b", "c"},
		started: "a", phase: v1.RolloutRolling, zone: "a", requeue: DefaultZoneTimeout,
	}, {
		name: "the next zone waits until the rolled one is available",
		live: map[string]LiveZone{"a": on(target, false), "b": on(old, true), "c": on(old, true)},
		prev: prev(target, v1.RolloutRolling, "a", ago(time.Minute)),
		hold: []string{"b", "c"},
		// since is kept: the timeout runs from when zone a was rolled
		phase: v1.RolloutRolling, zone: "a", since: ago(time.Minute), requeue: 9 * time.Minute,
		inMessage: []string{"zone a"},
	}, {
		name:    "one zone done: the next one rolls",
		live:    map[string]LiveZone{"a": on(target, true), "b": on(old, true), "c": on(old, true)},
		prev:    prev(target, v1.RolloutRolling, "a", ago(time.Minute)),
		hold:    []string{"c"},
		started: "b", phase: v1.RolloutRolling, zone: "b", requeue: DefaultZoneTimeout,
	}, {
		name:  "one zone done, with a pause: the next one waits",
		live:  map[string]LiveZone{"a": on(target, true), "b": on(old, true), "c": on(old, true)},
		spec:  pause30s,
		prev:  prev(target, v1.RolloutRolling, "a", ago(time.Minute)),
		hold:  []string{"b", "c"},
		phase: v1.RolloutPausing, zone: "b", requeue: 30 * time.Second,
		inMessage: []string{"zone b starts at 2026-12-04T18:00:30Z"},
	}, {
		name:  "pause not elapsed",
		live:  map[string]LiveZone{"a": on(target, true), "b": on(old, true), "c": on(old, true)},
		spec:  pause30s,
		prev:  prev(target, v1.RolloutPausing, "b", ago(10*time.Second)),
		hold:  []string{"b", "c"},
		phase: v1.RolloutPausing, zone: "b", since: ago(10 * time.Second), requeue: 20 * time.Second,
	}, {
		name:    "pause elapsed",
		live:    map[string]LiveZone{"a": on(target, true), "b": on(old, true), "c": on(old, true)},
		spec:    pause30s,
		prev:    prev(target, v1.RolloutPausing, "b", ago(30*time.Second)),
		hold:    []string{"c"},
		started: "b", phase: v1.RolloutRolling, zone: "b", requeue: DefaultZoneTimeout,
	}, {
		name:  "timeout halts, later zones keep their version",
		live:  map[string]LiveZone{"a": on(target, true), "b": on(target, false), "c": on(old, true)},
		spec:  v1.RolloutSpec{ZoneTimeout: &metav1.Duration{Duration: 5 * time.Minute}},
		prev:  prev(target, v1.RolloutRolling, "b", ago(5*time.Minute)),
		hold:  []string{"c"},
		phase: v1.RolloutHalted, zone: "b", halted: true,
		inMessage: []string{"zone b did not become available within 5m0s", "; c keeps its version"},
	}, {
		name:  "a halted rollout stays halted",
		live:  map[string]LiveZone{"a": on(target, true), "b": on(target, false), "c": on(old, true)},
		prev:  prev(target, v1.RolloutHalted, "b", ago(time.Hour)),
		hold:  []string{"c"},
		phase: v1.RolloutHalted, zone: "b", since: ago(time.Hour),
	}, {
		name:    "a halted zone that recovers lets the rollout go on",
		live:    map[string]LiveZone{"a": on(target, true), "b": on(target, true), "c": on(old, true)},
		prev:    prev(target, v1.RolloutHalted, "b", ago(time.Hour)),
		started: "c", phase: v1.RolloutRolling, zone: "c", requeue: DefaultZoneTimeout,
	}, {
		name:    "a new version resets a halt",
		live:    map[string]LiveZone{"a": on(old, true), "b": on(old, false), "c": on("older00000", true)},
		prev:    prev(old, v1.RolloutHalted, "b", ago(time.Hour)),
		hold:    []string{"b", "c"},
		started: "a", phase: v1.RolloutRolling, zone: "a", requeue: DefaultZoneTimeout,
	}, {
		name:     "a disabled zone is skipped",
		disabled: []string{"b"},
		live:     map[string]LiveZone{"a": on(target, true), "b": on(old, false), "c": on(old, true)},
		prev:     prev(target, v1.RolloutRolling, "a", ago(time.Minute)),
		started:  "c", phase: v1.RolloutRolling, zone: "c", requeue: DefaultZoneTimeout,
	}, {
		name: "revert mid-rollout rolls the changed zone back first",
		// a already runs the reverted-away version; b and c never left the target
		live:    map[string]LiveZone{"a": on(old, true), "b": on(target, true), "c": on(target, true)},
		prev:    prev(old, v1.RolloutRolling, "b", ago(time.Minute)),
		started: "a", phase: v1.RolloutRolling, zone: "a", requeue: DefaultZoneTimeout,
	}, {
		name:  "the last zone is waited for",
		live:  map[string]LiveZone{"a": on(target, true), "b": on(target, true), "c": on(target, false)},
		prev:  prev(target, v1.RolloutRolling, "c", ago(time.Minute)),
		phase: v1.RolloutRolling, zone: "c", since: ago(time.Minute), requeue: 9 * time.Minute,
	}, {
		name:     "every zone available: complete, old versions may go",
		live:     map[string]LiveZone{"a": on(target, true), "b": on(target, true), "c": on(target, true)},
		prev:     prev(target, v1.RolloutRolling, "c", ago(time.Minute)),
		phase:    v1.RolloutComplete,
		finished: true, settled: true,
	}, {
		name:  "a zone added during a rollout is created on the target and not waited for",
		live:  map[string]LiveZone{"a": on(target, true), "b": on(target, true)},
		prev:  prev(target, v1.RolloutComplete, "", ago(time.Hour)),
		phase: v1.RolloutComplete, since: ago(time.Hour),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Desired{Version: target}
			for _, z := range []string{"a", "b", "c"} {
				d.Zones = append(d.Zones, ZoneObjects{Name: z, Disabled: slices.Contains(tc.disabled, z)})
			}
			p := PlanRollout(d, tc.live, tc.spec, tc.prev, now)
			if got := slices.Sorted(maps.Keys(p.Hold)); !slices.Equal(got, tc.hold) {
				t.Errorf("hold %v, want %v", got, tc.hold)
			}
			since := tc.since
			if since == nil {
				n := metav1.NewTime(now)
				since = &n
			}
			s := p.Status
			if s.Version != target || s.Phase != tc.phase || s.Zone != tc.zone || s.Since == nil || !s.Since.Equal(since) {
				t.Errorf("status %+v (since %v), want %s %q since %v", s, s.Since, tc.phase, tc.zone, since)
			}
			if p.Started != tc.started || p.Halted != tc.halted || p.Finished != tc.finished || p.Settled != tc.settled {
				t.Errorf("started %q halted %v finished %v settled %v, want %q %v %v %v",
					p.Started, p.Halted, p.Finished, p.Settled, tc.started, tc.halted, tc.finished, tc.settled)
			}
			if p.RequeueAfter != tc.requeue {
				t.Errorf("requeue after %s, want %s", p.RequeueAfter, tc.requeue)
			}
			for _, m := range tc.inMessage {
				if !strings.Contains(s.Message, m) {
					t.Errorf("message %q lacks %q", s.Message, m)
				}
			}
			// Planning again from the outcome, nothing else changed, is a no-op:
			// a resync writes nothing.
			if !p.Halted && p.Started == "" {
				again := PlanRollout(d, tc.live, tc.spec, &s, now)
				if !again.Status.Since.Equal(s.Since) || again.Status.Phase != s.Phase || again.Status.Message != s.Message || again.Finished {
					t.Errorf("replanning moved the status: %+v -> %+v", s, again.Status)
				}
			}
		})
	}
}
