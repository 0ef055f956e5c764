package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/manifests"
)

// envtest runs no controller-manager: nothing fills in a Deployment's
// status. These helpers play the Deployment controller.

// setRolledOut sets Deployment name's status as the Deployment controller
// would once every pod of its current template is available.
func setRolledOut(ns, name string) error {
	d := &appsv1.Deployment{}
	if err := k8sClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		return err
	}
	if zoneRolledOut(d) {
		return nil
	}
	n := int32(1)
	if d.Spec.Replicas != nil {
		n = *d.Spec.Replicas
	}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
	return k8sClient.Status().Update(testCtx, d)
}

// deploymentSim plays the Deployment controller for the Deployments of one
// namespace: a Deployment whose pod template has pods available (all of
// them, or those released by the test) gets the status of a finished
// rollout, also after changes that start no pods (the Deployment
// controller observes any new generation, and an annotation change bumps
// it); one with a new template waits until the test releases it.
type deploymentSim struct {
	ns  string
	all bool

	mu       sync.Mutex
	released map[string]string // Deployment name -> pod template with available pods
}

// simulateDeployments makes every pod template of ns available at once: for
// tests of other things whose spec changes must reach every zone.
func simulateDeployments(t *testing.T, ns string) *deploymentSim {
	return startDeploymentSim(t, &deploymentSim{ns: ns, all: true})
}

// simulateGatedDeployments makes a new pod template available only once
// the test releases its Deployment.
func simulateGatedDeployments(t *testing.T, ns string) *deploymentSim {
	return startDeploymentSim(t, &deploymentSim{ns: ns, released: map[string]string{}})
}

func startDeploymentSim(t *testing.T, s *deploymentSim) *deploymentSim {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var list appsv1.DeploymentList
			if err := k8sClient.List(ctx, &list, client.InNamespace(s.ns)); err == nil {
				for _, d := range list.Items {
					if !zoneRolledOut(&d) && s.available(&d) {
						_ = setRolledOut(s.ns, d.Name) // a conflict is retried on the next pass
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func templateKey(d *appsv1.Deployment) string {
	b, _ := json.Marshal(d.Spec.Template)
	return string(b)
}

func (s *deploymentSim) available(d *appsv1.Deployment) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.all || s.released[d.Name] == templateKey(d)
}

// release makes the pods of Deployment name's current template available.
func (s *deploymentSim) release(t *testing.T, name string) {
	t.Helper()
	d := get(t, s.ns, name, &appsv1.Deployment{})
	s.mu.Lock()
	s.released[name] = templateKey(d)
	s.mu.Unlock()
}

// mountedConfig returns the config version ConfigMap zone's pods mount.
func mountedConfig(t *testing.T, ns, name, zone string) *corev1.ConfigMap {
	t.Helper()
	d := zoneDeployment(t, ns, name, zone)
	cm := manifests.ConfigVersionOf(name, &d.Spec.Template)
	if cm == "" {
		t.Fatalf("%s mounts no config version: %+v", d.Name, d.Spec.Template.Spec.Volumes)
	}
	return get(t, ns, cm, &corev1.ConfigMap{})
}

// zoneVersionsNow returns each zone Deployment's pod template version.
func zoneVersionsNow(t *testing.T, ns, name string, zones ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, z := range zones {
		out[z] = manifests.TemplateVersion(&zoneDeployment(t, ns, name, z).Spec.Template)
	}
	return out
}

// rolloutPhase waits until status.rollout is in phase (for zone, unless
// zone is "*") and returns the object.
func rolloutPhase(t *testing.T, key types.NamespacedName, phase v1alpha1.RolloutPhase, zone string) *v1alpha1.PyroscopeDistributor {
	t.Helper()
	pd := &v1alpha1.PyroscopeDistributor{}
	eventually(t, waitFor, func() error {
		if err := k8sClient.Get(testCtx, key, pd); err != nil {
			return err
		}
		r := pd.Status.Rollout
		if r == nil || r.Phase != phase || zone != "*" && r.Zone != zone || pd.Status.ObservedGeneration != pd.Generation {
			return fmt.Errorf("rollout %+v, want %s %s", r, phase, zone)
		}
		return nil
	})
	return pd
}

var rolloutZones = []string{"zone-a", "zone-b", "zone-c"}

// createRolledOut creates PyroscopeDistributor name in three zones in a new
// namespace whose Deployments the returned simulator runs, makes every zone
// available, and waits for the rollout to be complete. First creation is
// not a rollout: every zone starts at once, on one version.
func createRolledOut(t *testing.T, name string) (string, *deploymentSim, *v1alpha1.PyroscopeDistributor) {
	t.Helper()
	ns := newNamespace(t)
	sim := simulateGatedDeployments(t, ns)
	key := types.NamespacedName{Namespace: ns, Name: name}
	mustCreate(t, newPD(ns, name, rolloutZones...))
	reconciled(t, key)
	v := zoneVersionsNow(t, ns, name, rolloutZones...)
	if v["zone-a"] == "" || v["zone-a"] != v["zone-b"] || v["zone-a"] != v["zone-c"] {
		t.Fatalf("zones created on different versions: %v", v)
	}
	for _, z := range rolloutZones {
		sim.release(t, name+"-"+z)
	}
	return ns, sim, rolloutPhase(t, key, v1alpha1.RolloutComplete, "")
}

// A pod template change rolls one zone at a time in spec order; a zone
// that does not become available in time halts the rollout; reverting the
// spec brings back the very ConfigMap an earlier version mounted; versions
// no zone mounts go once a rollout is complete.
func TestZoneByZoneRollout(t *testing.T) {
	const name = "roll"
	ns, sim, pd := createRolledOut(t, name)
	key := client.ObjectKeyFromObject(pd)
	v1 := zoneVersionsNow(t, ns, name, rolloutZones...)
	cm1 := mountedConfig(t, ns, name, "zone-a")
	zones := rolloutZones
	if pd.Status.Rollout.Version != v1["zone-a"] || pd.Status.Zones[0].Version != v1["zone-a"] || pd.Status.Zones[0].ConfigMap != cm1.Name {
		t.Fatalf("status rollout %+v zones %+v, want version %s config %s", pd.Status.Rollout, pd.Status.Zones, v1["zone-a"], cm1.Name)
	}
	assertNoWritesOnResync(t, key)

	// rollTo changes the spec and follows the rollout zone by zone, making
	// each zone available only when it is its turn; it returns the version.
	rollTo := func(t *testing.T, mutate func(*v1alpha1.PyroscopeDistributor)) string {
		t.Helper()
		before := zoneVersionsNow(t, ns, name, zones...)
		updatePD(t, key, mutate)
		for i, z := range zones {
			var now map[string]string
			eventually(t, waitFor, func() error {
				now = zoneVersionsNow(t, ns, name, zones...)
				if now[z] == before[z] {
					return fmt.Errorf("zone %s not rolled yet: %v", z, now)
				}
				return nil
			})
			// Later zones keep the old version while this one is not available,
			// however often the operator looks.
			reconcileNow(t, key)
			reconcileNow(t, key)
			now = zoneVersionsNow(t, ns, name, zones...)
			for _, later := range zones[i+1:] {
				if now[later] != before[later] {
					t.Fatalf("zone %s rolled before zone %s was available: %v", later, z, now)
				}
			}
			rolling := get(t, ns, name, &v1alpha1.PyroscopeDistributor{}).Status.Rollout
			if rolling == nil || rolling.Zone != z || rolling.Phase != v1alpha1.RolloutRolling {
				t.Fatalf("status.rollout %+v while zone %s rolls", rolling, z)
			}
			t.Logf("zone %s rolled to %s", z, now[z])
			sim.release(t, name+"-"+z)
		}
		return rolloutPhase(t, key, v1alpha1.RolloutComplete, "").Status.Rollout.Version
	}

	var cm2 *corev1.ConfigMap
	t.Run("config change rolls zone-a, then zone-b, then zone-c", func(t *testing.T) {
		v2 := rollTo(t, func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Multitenancy = true })
		if v2 == v1["zone-a"] {
			t.Fatal("the config change kept the version")
		}
		cm2 = mountedConfig(t, ns, name, "zone-c")
		if cm2.Name == cm1.Name {
			t.Fatalf("a new config.yaml kept the ConfigMap name %s", cm2.Name)
		}
		eventually(t, waitFor, func() error { return absent(ns, cm1.Name, &corev1.ConfigMap{}) })
		expectEvents(t, ns, name, EventZoneRolling, EventRolloutComplete)
		assertNoWritesOnResync(t, key)
	})

	t.Run("a zone that does not become available halts the rollout", func(t *testing.T) {
		updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) {
			pd.Spec.Memberlist.ClusterLabel = "other"
			pd.Spec.Rollout.ZoneTimeout = &metav1.Duration{Duration: 2 * time.Second}
		})
		// zone-a gets the new version and is never made available.
		pd := rolloutPhase(t, key, v1alpha1.RolloutHalted, "zone-a")
		c := condition(pd, v1alpha1.ConditionProgressing)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonRolloutHalted ||
			!containsAll(c.Message, "zone-a", "zone-b, zone-c keep their version") {
			t.Fatalf("Progressing %+v", c)
		}
		for _, z := range []string{"zone-b", "zone-c"} {
			if got := mountedConfig(t, ns, name, z).Name; got != cm2.Name {
				t.Fatalf("zone %s mounts %s during the halt, want %s", z, got, cm2.Name)
			}
		}
		if got := mountedConfig(t, ns, name, "zone-a").Name; got == cm2.Name {
			t.Fatal("zone-a was not rolled")
		}
		expectEvents(t, ns, name, EventRolloutHalted)
		expectRolloutMetrics(t, ns, name, v1alpha1.RolloutHalted, map[string]float64{"zone-a": 1, "zone-b": 0, "zone-c": 0})
		assertNoWritesOnResync(t, key)
	})

	t.Run("reverting mid-rollout restores the earlier version exactly", func(t *testing.T) {
		cm3 := mountedConfig(t, ns, name, "zone-a")
		updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Memberlist.ClusterLabel = "" })
		eventually(t, waitFor, func() error {
			if got := manifests.ConfigVersionOf(name, &zoneDeployment(t, ns, name, "zone-a").Spec.Template); got != cm2.Name {
				return fmt.Errorf("zone-a mounts %s, want %s", got, cm2.Name)
			}
			return nil
		})
		sim.release(t, name+"-zone-a")
		pd := rolloutPhase(t, key, v1alpha1.RolloutComplete, "")
		if c := condition(pd, v1alpha1.ConditionProgressing); c == nil || c.Reason == ReasonRolloutHalted {
			t.Fatalf("the halt outlived the spec change: %+v", c)
		}
		expectRolloutMetrics(t, ns, name, v1alpha1.RolloutComplete, map[string]float64{"zone-a": 1, "zone-b": 1, "zone-c": 1})
		eventually(t, waitFor, func() error {
			if err := absent(ns, cm3.Name, &corev1.ConfigMap{}); err != nil {
				var b strings.Builder
				for _, z := range zones {
					d := zoneDeployment(t, ns, name, z)
					fmt.Fprintf(&b, " %s gen %d status %+v;", z, d.Generation, d.Status)
				}
				return fmt.Errorf("%v:%s", err, b.String())
			}
			return nil
		})
		if now := get(t, ns, cm2.Name, &corev1.ConfigMap{}); now.UID != cm2.UID {
			t.Fatal("the config version zones b and c kept was replaced")
		}
	})

	t.Run("reverting after a completed rollout recreates the earlier ConfigMap", func(t *testing.T) {
		updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) {
			pd.Spec.Rollout.ZoneTimeout = nil
			pd.Spec.Rollout.PauseBetweenZones = &metav1.Duration{Duration: 5 * time.Second}
		})
		reconciled(t, key)
		done := make(chan struct{})
		paused := make(chan error, 1)
		go func() {
			// The pause shows in status between zones.
			deadline := time.Now().Add(waitFor)
			for time.Now().Before(deadline) {
				select {
				case <-done:
					paused <- errors.New("no Pausing phase seen")
					return
				default:
				}
				pd := &v1alpha1.PyroscopeDistributor{}
				if err := k8sClient.Get(testCtx, key, pd); err == nil && pd.Status.Rollout != nil &&
					pd.Status.Rollout.Phase == v1alpha1.RolloutPausing && pd.Status.Rollout.Zone == "zone-b" {
					paused <- nil
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			paused <- errors.New("no Pausing phase seen in time")
		}()
		version := rollTo(t, func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Multitenancy = false })
		close(done)
		if err := <-paused; err != nil {
			t.Error(err)
		}
		if version != v1["zone-a"] {
			t.Fatalf("reverted to version %s, want the first %s", version, v1["zone-a"])
		}
		now := mountedConfig(t, ns, name, "zone-b")
		if now.Name != cm1.Name || now.Data[manifests.ConfigFileName] != cm1.Data[manifests.ConfigFileName] {
			t.Fatalf("reverted config %s:\n%s\nwant %s:\n%s", now.Name, now.Data[manifests.ConfigFileName], cm1.Name, cm1.Data[manifests.ConfigFileName])
		}
		eventually(t, waitFor, func() error { return absent(ns, cm2.Name, &corev1.ConfigMap{}) })
		assertNoWritesOnResync(t, key)
	})
}

// Overrides are not a rollout: the one mutable ConfigMap changes in place.
func TestOverridesChangeRollsNoZone(t *testing.T) {
	ns := newNamespace(t)
	key := types.NamespacedName{Namespace: ns, Name: "ov"}
	mustCreate(t, newPD(ns, "ov", "zone-a", "zone-b"))
	reconciled(t, key)
	before := zoneVersionsNow(t, ns, "ov", "zone-a", "zone-b")
	ov := get(t, ns, manifests.OverridesConfigMapName("ov"), &corev1.ConfigMap{})
	updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) {
		pd.Spec.Limits.Overrides = map[string]v1alpha1.TenantLimits{"team-a": {TenantShards: ptrTo[int32](2)}}
	})
	reconciled(t, key)
	eventually(t, waitFor, func() error {
		now := get(t, ns, manifests.OverridesConfigMapName("ov"), &corev1.ConfigMap{})
		if now.UID != ov.UID || now.Data[manifests.OverridesFile] == ov.Data[manifests.OverridesFile] {
			return errors.New("overrides.yaml not changed in place")
		}
		return nil
	})
	if now := zoneVersionsNow(t, ns, "ov", "zone-a", "zone-b"); !equalMaps(now, before) {
		t.Fatalf("an overrides change rolled zones: %v -> %v", before, now)
	}
	if pd := get(t, ns, "ov", &v1alpha1.PyroscopeDistributor{}); pd.Status.Rollout.Phase != v1alpha1.RolloutComplete {
		t.Fatalf("status.rollout %+v", pd.Status.Rollout)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// Upgrading from an operator that mounted one mutable <name>-config (and put
// no version on pod templates) is a rollout like any other: zone by zone,
// and the old ConfigMap stays until the last zone no longer needs it.
func TestUpgradeFromUnversionedConfigRollsZoneByZone(t *testing.T) {
	const name = "up"
	ns, sim, pd := createRolledOut(t, name)
	key := client.ObjectKeyFromObject(pd)
	zones := rolloutZones

	// What the former operator left: a labelled, owned <name>-config and
	// pod templates mounting it, without a version.
	updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Paused = true })
	eventually(t, waitFor, func() error {
		if c := condition(get(t, ns, name, &v1alpha1.PyroscopeDistributor{}), v1alpha1.ConditionProgressing); c == nil || c.Reason != ReasonPaused {
			return fmt.Errorf("not paused yet: %+v", c)
		}
		return nil
	})
	legacy := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-config", Labels: manifests.OwnerLabels(name),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(pd, v1alpha1.GroupVersion.WithKind("PyroscopeDistributor"))}},
		Data: map[string]string{manifests.ConfigFileName: "{}\n", manifests.OverridesFile: "overrides: {}\n"},
	}
	mustCreate(t, legacy)
	// The former operator applied its Deployments with the same field
	// manager, so the new apply replaces its volume rather than adding to it.
	built, err := manifests.Build(pd, testReconciler.Facts)
	if err != nil {
		t.Fatal(err)
	}
	former := &applier{c: k8sClient, scheme: testScheme}
	for _, z := range zones {
		d := built.Zone(z).Deployment.DeepCopy()
		delete(d.Spec.Template.Annotations, manifests.AnnotationVersion)
		for i, v := range d.Spec.Template.Spec.Volumes {
			if v.Projected != nil {
				d.Spec.Template.Spec.Volumes[i].VolumeSource = corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: legacy.Name}}}
			}
		}
		obj, err := former.prepare(pd, d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := former.apply(testCtx, obj, FieldManager); err != nil {
			t.Fatal(err)
		}
		sim.release(t, d.Name)
	}

	updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Paused = false })
	for i, z := range zones {
		eventually(t, waitFor, func() error {
			if v := zoneVersionsNow(t, ns, name, z)[z]; v == "" {
				return fmt.Errorf("zone %s not rolled yet", z)
			}
			return nil
		})
		reconcileNow(t, key)
		for _, later := range zones[i+1:] {
			if got := manifests.ConfigMapsOf(&zoneDeployment(t, ns, name, later).Spec.Template); len(got) != 1 || got[0] != legacy.Name {
				t.Fatalf("zone %s left the former config (%v) before zone %s was available", later, got, z)
			}
		}
		get(t, ns, legacy.Name, &corev1.ConfigMap{}) // still mounted by later zones' pods
		sim.release(t, name+"-"+z)
	}
	rolloutPhase(t, key, v1alpha1.RolloutComplete, "")
	eventually(t, waitFor, func() error { return absent(ns, legacy.Name, &corev1.ConfigMap{}) })
}

// expectRolloutMetrics waits for the rollout gauges to show phase as the
// only current one and each zone's target-version flag as given.
func expectRolloutMetrics(t *testing.T, ns, name string, phase v1alpha1.RolloutPhase, zones map[string]float64) {
	t.Helper()
	eventually(t, waitFor, func() error {
		for _, p := range rolloutPhases {
			want := 0.0
			if p == phase {
				want = 1
			}
			if got := testutil.ToFloat64(rolloutGauge.WithLabelValues(ns, name, string(p))); got != want {
				return fmt.Errorf("pyrodist_distributor_rollout_phase{phase=%q} = %v, want %v", p, got, want)
			}
		}
		for z, want := range zones {
			if got := testutil.ToFloat64(zoneVersionGauge.WithLabelValues(ns, name, z)); got != want {
				return fmt.Errorf("pyrodist_distributor_zone_target_version{zone=%q} = %v, want %v", z, got, want)
			}
		}
		return nil
	})
}

// TestReconcileLockOutlivesForget: forgetting a deleted object while its
// reconcile still runs must not drop that reconcile's lock (a second
// reconcile of the name would run beside it), and the lock is gone once
// nobody holds it.
func TestReconcileLockOutlivesForget(t *testing.T) {
	var m rolloutMemory
	key := types.NamespacedName{Namespace: "ns", Name: "pd"}
	unlock := m.lock(key)
	m.forget(key)
	second := make(chan struct{})
	go func() {
		defer close(second)
		m.lock(key)()
	}()
	select {
	case <-second:
		t.Fatal("a second reconcile of the name ran while the first held its lock")
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	<-second
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.locks) != 0 {
		t.Errorf("%d locks left after every reconcile ended", len(m.locks))
	}
}
