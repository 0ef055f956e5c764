package controllers

import (
	"context"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/manifests"
)

// Zone-by-zone rollouts: manifests.PlanRollout decides, from the live zone
// Deployments and the last status.rollout, which zones take the target pod
// template now and which keep theirs; this file feeds it, applies its
// decision to the desired objects, and reports it (status, conditions,
// Events). Waiting for a pause or a timeout is a RequeueAfter, never a loop.

// Event and condition reasons of rollouts.
const (
	EventZoneRolling     = "ZoneRolling"
	EventRolloutHalted   = "RolloutHalted"
	EventRolloutComplete = "RolloutComplete"
	ReasonRolloutHalted  = "RolloutHalted"
)

// planRollout plans this reconcile's step of the rollout and makes desired
// follow it: held zones keep their live pod template, and the config
// versions live pods may still mount are kept from pruning.
func (r *PyroscopeDistributorReconciler) planRollout(ctx context.Context, pd *v1alpha1.PyroscopeDistributor,
	desired *manifests.Desired) (manifests.RolloutPlan, error) {
	plan, live, err := r.planFrom(ctx, r.Client, pd, desired)
	if err != nil {
		return plan, err
	}
	if len(plan.Hold) > 0 || plan.Started != "" || plan.Status.Phase != v1alpha1.RolloutComplete {
		// A rollout is under way. Holding a zone re-applies its live template,
		// and a cache that has not yet seen our last roll would hand back
		// the template the zone just left: read the Deployments afresh.
		if plan, live, err = r.planFrom(ctx, r.APIReader, pd, desired); err != nil {
			return plan, err
		}
	}
	for zone := range plan.Hold {
		desired.HoldZone(zone, &live[zone].Spec.Template)
	}
	// Garbage: until the rollout settles (every zone on the target with
	// status.replicas == updatedReplicas, so no older ReplicaSet has pods
	// left, which spares the operator any ReplicaSet access) every owned
	// ConfigMap stays, whatever old pods mount. Then the config versions no
	// zone's Deployment mounts are pruned with the other unwanted children.
	desired.KeepAllConfigMaps = !plan.Settled
	desired.KeepConfigMaps = map[string]bool{}
	for _, d := range live {
		for _, cm := range manifests.ConfigMapsOf(&d.Spec.Template) {
			desired.KeepConfigMaps[cm] = true
		}
	}
	return plan, nil
}

// planFrom plans from the zone Deployments read through reader; it returns
// them by zone name.
func (r *PyroscopeDistributorReconciler) planFrom(ctx context.Context, reader client.Reader, pd *v1alpha1.PyroscopeDistributor,
	desired *manifests.Desired) (manifests.RolloutPlan, map[string]*appsv1.Deployment, error) {
	var list appsv1.DeploymentList
	if err := reader.List(ctx, &list, client.InNamespace(pd.Namespace), client.MatchingLabels(manifests.OwnerLabels(pd.Name))); err != nil {
		return manifests.RolloutPlan{}, nil, err
	}
	byName := controlledByName(list.Items, pd)
	live := map[string]*appsv1.Deployment{}
	state := map[string]manifests.LiveZone{}
	for _, z := range desired.Zones {
		d := byName[manifests.ZonalName(pd.Name, z.Name)]
		if d == nil {
			continue
		}
		live[z.Name] = d
		state[z.Name] = manifests.LiveZone{
			Exists:    true,
			Version:   manifests.TemplateVersion(&d.Spec.Template),
			Available: zoneRolledOut(d),
		}
	}
	prev := r.rollouts.get(pd)
	if prev == nil {
		prev = pd.Status.Rollout
	}
	return manifests.PlanRollout(desired, state, pd.Spec.Rollout, prev, time.Now()), live, nil
}

// rolloutMemory is the status.rollout the operator last wrote, per object.
// The planner needs the rollout's own last step (which zone it rolled, when
// a pause began), and the cached object may not show our latest status
// write yet: planning from an older one could, say, take a zone that was
// just rolled and is still starting for a zone nobody rolled. The operator
// is the only writer of status.rollout, so what it wrote last is the truth;
// after a restart the first read of the object is.
//
// Reconciles of one object run one at a time (lock): the controller's work
// queue already ensures it, and a direct call (a test's resync) must not
// plan from a step another reconcile is still taking.
type rolloutMemory struct {
	mu    sync.Mutex
	m     map[types.NamespacedName]rememberedRollout
	locks map[types.NamespacedName]*keyLock
}

// keyLock is one object's reconcile lock and how many reconciles hold or
// wait for it: the last one out removes it, so a deleted object leaves
// nothing behind and a lock is never dropped while held.
type keyLock struct {
	sync.Mutex
	users int
}

// lock holds key's reconcile lock until the returned function is called.
func (m *rolloutMemory) lock(key types.NamespacedName) func() {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = map[types.NamespacedName]*keyLock{}
	}
	l := m.locks[key]
	if l == nil {
		l = &keyLock{}
		m.locks[key] = l
	}
	l.users++
	m.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		m.mu.Lock()
		if l.users--; l.users == 0 {
			delete(m.locks, key)
		}
		m.mu.Unlock()
	}
}

type rememberedRollout struct {
	uid    types.UID
	status v1alpha1.RolloutStatus
}

func (m *rolloutMemory) get(pd *v1alpha1.PyroscopeDistributor) *v1alpha1.RolloutStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.m[types.NamespacedName{Namespace: pd.Namespace, Name: pd.Name}]
	if !ok || r.uid != pd.UID {
		return nil
	}
	return r.status.DeepCopy()
}

func (m *rolloutMemory) put(pd *v1alpha1.PyroscopeDistributor) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[types.NamespacedName]rememberedRollout{}
	}
	key := types.NamespacedName{Namespace: pd.Namespace, Name: pd.Name}
	if pd.Status.Rollout == nil {
		delete(m.m, key)
		return
	}
	m.m[key] = rememberedRollout{uid: pd.UID, status: *pd.Status.Rollout.DeepCopy()}
}

func (m *rolloutMemory) forget(key types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, key)
}

// rolloutEvents records what this step of the rollout did, once: each
// Event is about the zone's Deployment too, so the recorder does not fold
// the Events of different zones into one series.
func (r *PyroscopeDistributorReconciler) rolloutEvents(pd *v1alpha1.PyroscopeDistributor, desired *manifests.Desired,
	plan manifests.RolloutPlan) {
	related := func(zone string) *appsv1.Deployment {
		if z := desired.Zone(zone); z != nil {
			return z.Deployment
		}
		return nil
	}
	if plan.Started != "" {
		r.Recorder.Eventf(pd, related(plan.Started), corev1.EventTypeNormal, EventZoneRolling, "Roll",
			"Rolling zone %s to version %s (config %s)", plan.Started, desired.Version, desired.ConfigMap.Name)
	}
	if plan.Halted {
		r.Recorder.Eventf(pd, related(plan.Status.Zone), corev1.EventTypeWarning, EventRolloutHalted, "Halt",
			"Rollout of version %s halted: %s", desired.Version, plan.Status.Message)
	}
	if plan.Finished {
		r.Recorder.Eventf(pd, nil, corev1.EventTypeNormal, EventRolloutComplete, "Roll",
			"Every zone runs version %s (config %s)", desired.Version, desired.ConfigMap.Name)
	}
}

// rolloutStatus puts the plan's status.rollout, each zone's version and the
// rollout's view of Progressing (and Degraded when halted) into pd.Status,
// after computeStatus. prev are the conditions before computeStatus: a
// condition this overrides keeps its lastTransitionTime when its status is
// the same as there, so a resync computes an identical status.
func rolloutStatus(pd *v1alpha1.PyroscopeDistributor, prev []metav1.Condition, obs observed, plan manifests.RolloutPlan) {
	st := &pd.Status
	st.Rollout = plan.Status.DeepCopy()
	zoneVersions(pd, obs)
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		c := metav1.Condition{
			Type: t, Status: s, Reason: reason, Message: truncate(msg), ObservedGeneration: pd.Generation,
		}
		if was := meta.FindStatusCondition(prev, t); was != nil && was.Status == s {
			c.LastTransitionTime = was.LastTransitionTime
		}
		meta.RemoveStatusCondition(&st.Conditions, t)
		meta.SetStatusCondition(&st.Conditions, c)
	}
	switch plan.Status.Phase {
	case v1alpha1.RolloutHalted:
		set(v1alpha1.ConditionProgressing, metav1.ConditionFalse, ReasonRolloutHalted, "Rollout halted: "+plan.Status.Message)
		if !meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionDegraded) {
			set(v1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonRolloutHalted, "Rollout halted: "+plan.Status.Message)
		}
	case v1alpha1.RolloutRolling, v1alpha1.RolloutPausing:
		set(v1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonRollingOut, "Zone by zone: "+plan.Status.Message)
	}
}

// zoneVersions fills each zone's version and config version from its live
// Deployment's pod template.
func zoneVersions(pd *v1alpha1.PyroscopeDistributor, obs observed) {
	for i := range pd.Status.Zones {
		zs := &pd.Status.Zones[i]
		zs.ZoneRolloutStatus = v1alpha1.ZoneRolloutStatus{}
		if d := obs.deployments[manifests.ZonalName(pd.Name, zs.Name)]; d != nil {
			zs.Version = manifests.TemplateVersion(&d.Spec.Template)
			zs.ConfigMap = manifests.ConfigVersionOf(pd.Name, &d.Spec.Template)
		}
	}
}
