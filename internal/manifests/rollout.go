package manifests

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
)

// Zone-by-zone rollouts.
//
// Every zone's pod template carries the target version (Desired.Version, a
// hash of the zone-independent template, which names the config version it
// mounts). A zone whose live Deployment carries the target is done with
// this rollout. The others are rolled one at a time in spec.zones order
// (the user's order, so a canary zone can go first): the first zone not on
// the target gets it only once every zone before it is on the target and
// fully updated and available (the Deployment controller has seen its
// generation and every desired pod is updated, ready and available), and
// once spec.rollout.pauseBetweenZones has passed since the previous zone
// finished. Until then a zone keeps its live pod template (Hold), so it
// goes on serving, and mounting, the version it runs.
//
// A zone that is not available within spec.rollout.zoneTimeout of being
// rolled (or of the rollout starting to wait on it) halts the rollout: the
// zones after it keep their version. The halt ends when the target changes
// (a new spec) or when the zone becomes available after all, in which case
// the rollout carries on.
//
// Not rollouts: a zone without a Deployment is created on the target at
// once (first creation creates every zone together), and a disabled zone
// has no pods to roll, so it takes the target at once and is never waited on.
//
// PlanRollout is pure: the live state, the previous status.rollout and the
// time come in, the zones to hold and the next status.rollout go out. Times
// are kept to the second, as status stores them, so an unchanged world
// plans an unchanged status and a resync writes nothing.

// DefaultZoneTimeout is spec.rollout.zoneTimeout when unset.
const DefaultZoneTimeout = 10 * time.Minute

// LiveZone is what the planner needs to know of one zone's live Deployment.
type LiveZone struct {
	// Exists is false when the zone has no Deployment yet.
	Exists bool
	// Version is the live pod template's AnnotationVersion.
	Version string
	// Available: the Deployment controller has observed the current
	// generation and every desired pod is updated, ready and available
	// (none of an older template is left).
	Available bool
}

// RolloutPlan is the outcome of PlanRollout.
type RolloutPlan struct {
	// Status is the next status.rollout.
	Status v1.RolloutStatus
	// Hold names the zones that keep their live pod template.
	Hold map[string]bool
	// Started is the zone this step moves to the target ("" if none).
	Started string
	// Halted is true when this step halts the rollout.
	Halted bool
	// Finished is true when this step completes a rollout.
	Finished bool
	// Settled is true when every zone runs the target and none has pods of
	// an older template: config versions no Deployment mounts may go.
	Settled bool
	// RequeueAfter is when to look again without an event (a pause ending,
	// a timeout expiring); 0 for never.
	RequeueAfter time.Duration
}

// PlanRollout plans one step of the rollout of d.Version over d.Zones (spec
// order) given each zone's live state (by zone name), the rollout settings,
// the previous status.rollout (nil when none) and the current time.
func PlanRollout(d *Desired, live map[string]LiveZone, spec v1.RolloutSpec, prev *v1.RolloutStatus, now time.Time) RolloutPlan {
	now = now.Truncate(time.Second)
	timeout := DefaultZoneTimeout
	if spec.ZoneTimeout != nil && spec.ZoneTimeout.Duration > 0 {
		timeout = spec.ZoneTimeout.Duration
	}
	var pause time.Duration
	if spec.PauseBetweenZones != nil && spec.PauseBetweenZones.Duration > 0 {
		pause = spec.PauseBetweenZones.Duration
	}
	target := d.Version
	same := prev != nil && prev.Version == target
	p := RolloutPlan{Hold: map[string]bool{}}
	status := func(phase v1.RolloutPhase, zone, msg string) v1.RolloutStatus {
		since := metav1.NewTime(now)
		if same && prev.Phase == phase && prev.Zone == zone && prev.Since != nil {
			since = *prev.Since
		}
		return v1.RolloutStatus{Version: target, Phase: phase, Zone: zone, Since: &since, Message: msg}
	}

	// The zones that take part, in order: enabled, with a Deployment.
	var order []string
	pending := map[string]bool{}
	settled := true
	for _, z := range d.Zones {
		lz := live[z.Name]
		if !lz.Exists || !lz.Available || lz.Version != target && !z.Disabled {
			settled = false
		}
		if z.Disabled || !lz.Exists {
			continue
		}
		order = append(order, z.Name)
		if lz.Version != target {
			pending[z.Name] = true
		}
	}
	holdPending := func(except string) {
		for z := range pending {
			if z != except {
				p.Hold[z] = true
			}
		}
	}
	// wait plans waiting on zone w, on the target and not yet available.
	wait := func(w string) RolloutPlan {
		holdPending("")
		if same && prev.Zone == w && prev.Phase == v1.RolloutHalted {
			p.Status = *prev.DeepCopy()
			return p
		}
		p.Status = status(v1.RolloutRolling, w, "")
		left := p.Status.Since.Add(timeout).Sub(now)
		if left <= 0 {
			p.Halted = true
			p.Status = status(v1.RolloutHalted, w, "")
			p.Status.Message = fmt.Sprintf("zone %s did not become available within %s; %s", w, timeout, kept(order, pending))
			return p
		}
		p.Status.Message = fmt.Sprintf("waiting for zone %s to be updated and available (timeout %s)", w, timeout)
		p.RequeueAfter = left
		return p
	}

	next := ""
	for _, z := range order {
		if pending[z] {
			next = z
			break
		}
		// An earlier zone not available: wait for it when a later zone
		// needs rolling, or when it is the zone this rollout rolled last.
		ours := same && prev.Zone == z && (prev.Phase == v1.RolloutRolling || prev.Phase == v1.RolloutHalted)
		if !live[z].Available && (len(pending) > 0 || ours) {
			return wait(z)
		}
	}
	if next == "" {
		p.Status = status(v1.RolloutComplete, "", "every zone runs version "+target)
		p.Finished = same && prev.Phase != v1.RolloutComplete
		p.Settled = settled
		return p
	}

	// Every zone before next is on the target and available.
	switch {
	case !same, pause == 0:
		// The first zone of a rollout starts at once.
	case prev.Phase == v1.RolloutPausing && prev.Zone == next:
		if prev.Since != nil && prev.Since.Add(pause).After(now) {
			holdPending("")
			p.Status = *prev.DeepCopy()
			p.RequeueAfter = prev.Since.Add(pause).Sub(now)
			return p
		}
	default:
		holdPending("")
		p.Status = status(v1.RolloutPausing, next, "")
		p.Status.Message = fmt.Sprintf("zone %s starts at %s, after the pause between zones", next,
			p.Status.Since.Add(pause).UTC().Format(time.RFC3339))
		p.RequeueAfter = pause
		return p
	}
	holdPending(next)
	p.Started = next
	p.Status = status(v1.RolloutRolling, next, fmt.Sprintf("rolling zone %s to version %s (timeout %s)", next, target, timeout))
	p.RequeueAfter = timeout
	return p
}

// kept says which zones keep their version while the rollout is halted.
func kept(order []string, pending map[string]bool) string {
	var zones []string
	for _, z := range order {
		if pending[z] {
			zones = append(zones, z)
		}
	}
	switch len(zones) {
	case 0:
		return "no other zone waits for it"
	case 1:
		return zones[0] + " keeps its version"
	}
	return strings.Join(zones, ", ") + " keep their version"
}

// HoldZone makes zone's Deployment keep the live pod template instead of the
// target's: a copy, so what Build returned is left as it was.
func (d *Desired) HoldZone(zone string, live *corev1.PodTemplateSpec) {
	z := d.Zone(zone)
	if z == nil || live == nil {
		return
	}
	dep := z.Deployment.DeepCopy()
	dep.Spec.Template = *live.DeepCopy()
	z.Deployment = dep
}
