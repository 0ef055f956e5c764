package controllers

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/manifests"
)

const waitFor = 60 * time.Second

func newPD(ns, name string, zones ...string) *v1alpha1.PyroscopeDistributor {
	pd := &v1alpha1.PyroscopeDistributor{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.PyroscopeDistributorSpec{
			Image: "ghcr.io/pyrodist/pyrodist:v1",
			Memberlist: v1alpha1.MemberlistSpec{
				Join: []string{"dns+pyroscope-memberlist.pyroscope.svc:7946"},
			},
		},
	}
	for _, z := range zones {
		pd.Spec.Zones = append(pd.Spec.Zones, v1alpha1.Zone{Name: z})
	}
	return pd
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8sClient.Create(testCtx, obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// updatePD re-reads pd, applies mutate and updates it, retrying on conflicts
// (the operator writes status concurrently).
func updatePD(t *testing.T, key types.NamespacedName, mutate func(*v1alpha1.PyroscopeDistributor)) *v1alpha1.PyroscopeDistributor {
	t.Helper()
	for range 20 {
		pd := &v1alpha1.PyroscopeDistributor{}
		if err := k8sClient.Get(testCtx, key, pd); err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		mutate(pd)
		err := k8sClient.Update(testCtx, pd)
		if err == nil {
			return pd
		}
		if !apierrors.IsConflict(err) {
			t.Fatalf("update %s: %v", key, err)
		}
	}
	t.Fatalf("update %s: too many conflicts", key)
	return nil
}

// reconciled waits until the operator has reconciled the current generation.
func reconciled(t *testing.T, key types.NamespacedName) *v1alpha1.PyroscopeDistributor {
	t.Helper()
	pd := &v1alpha1.PyroscopeDistributor{}
	eventually(t, waitFor, func() error {
		if err := k8sClient.Get(testCtx, key, pd); err != nil {
			return err
		}
		if pd.Status.ObservedGeneration != pd.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", pd.Status.ObservedGeneration, pd.Generation)
		}
		return nil
	})
	return pd
}

// createReconciled creates PyroscopeDistributor name with zones in a new
// namespace and waits until the operator has reconciled it.
func createReconciled(t *testing.T, name string, zones ...string) (string, types.NamespacedName) {
	t.Helper()
	ns := newNamespace(t)
	key := types.NamespacedName{Namespace: ns, Name: name}
	mustCreate(t, newPD(ns, name, zones...))
	reconciled(t, key)
	return ns, key
}

func get[T client.Object](t *testing.T, ns, name string, obj T) T {
	t.Helper()
	if err := k8sClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("get %T %s/%s: %v", obj, ns, name, err)
	}
	return obj
}

func absent(ns, name string, obj client.Object) error {
	err := k8sClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: name}, obj)
	if err == nil {
		return fmt.Errorf("%T %s still exists", obj, name)
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// reconcileNow runs one reconcile of key in the test goroutine, as a resync
// would, and fails on error.
func reconcileNow(t *testing.T, key types.NamespacedName) {
	t.Helper()
	if _, err := testReconciler.Reconcile(testCtx, ctrl.Request{NamespacedName: key}); err != nil {
		t.Fatalf("reconcile %s: %v", key, err)
	}
}

// assertNoWritesOnResync reconciles key and asserts the operator sent no
// mutating request (status and events included) while doing so.
func assertNoWritesOnResync(t *testing.T, key types.NamespacedName) {
	t.Helper()
	// Let the watch events of our own last writes land in the cache first.
	eventually(t, waitFor, func() error {
		mark := managerRequests.mark()
		reconcileNow(t, key)
		if w := managerRequests.mutatingSince(mark, key.Namespace); len(w) > 0 {
			return fmt.Errorf("resync wrote: %v", w)
		}
		return nil
	})
	for range 3 {
		mark := managerRequests.mark()
		reconcileNow(t, key)
		if w := managerRequests.mutatingSince(mark, key.Namespace); len(w) > 0 {
			t.Fatalf("a no-op resync made %d mutating requests: %v", len(w), w)
		}
	}
}

func zoneDeployment(t *testing.T, ns, name, zone string) *appsv1.Deployment {
	t.Helper()
	return get(t, ns, name+"-"+zone, &appsv1.Deployment{})
}

// The CRD installs from config/crd/bases and a PyroscopeDistributor
// round-trips through a real API server.
func TestCRDInstalledCreateAndReadBack(t *testing.T) {
	ns := newNamespace(t)
	pd := newPD(ns, "roundtrip", "zone-a")
	pd.Spec.Paused = true // only the API is under test here
	mustCreate(t, pd)

	got := get(t, ns, "roundtrip", &v1alpha1.PyroscopeDistributor{})
	if got.Spec.Image != pd.Spec.Image || len(got.Spec.Zones) != 1 || got.Spec.Zones[0].Name != "zone-a" {
		t.Fatalf("read back %+v", got.Spec)
	}
	if got.Spec.ZoneLabelKey != v1alpha1.DefaultZoneLabelKey {
		t.Fatalf("zoneLabelKey default = %q", got.Spec.ZoneLabelKey)
	}
	var list v1alpha1.PyroscopeDistributorList
	if err := k8sClient.List(testCtx, &list, client.InNamespace(ns)); err != nil || len(list.Items) != 1 {
		t.Fatalf("list: %v, %d items", err, len(list.Items))
	}
}

func TestCreateBuildsEveryChild(t *testing.T) {
	ns := newNamespace(t)
	key := types.NamespacedName{Namespace: ns, Name: "prod"}
	pd := newPD(ns, "prod", "zone-a", "zone-b", "zone-c")
	mustCreate(t, pd)
	pd = reconciled(t, key)

	isOwned := func(obj client.Object) {
		t.Helper()
		ref := metav1.GetControllerOf(obj)
		if ref == nil || ref.UID != pd.UID || ref.Kind != "PyroscopeDistributor" {
			t.Errorf("%T %s: controller reference %+v", obj, obj.GetName(), ref)
		}
		if obj.GetLabels()[manifests.LabelOwner] != "prod" {
			t.Errorf("%T %s: labels %v", obj, obj.GetName(), obj.GetLabels())
		}
		managers := []string{}
		for _, mf := range obj.GetManagedFields() {
			managers = append(managers, mf.Manager+"/"+string(mf.Operation))
		}
		if !slices.Contains(managers, FieldManager+"/Apply") {
			t.Errorf("%T %s: managers %v, want %s/Apply", obj, obj.GetName(), managers, FieldManager)
		}
	}
	isOwned(get(t, ns, "prod", &corev1.ServiceAccount{}))
	cm := mountedConfig(t, ns, "prod", "zone-a")
	isOwned(cm)
	if cm.Data[manifests.ConfigFileName] == "" || cm.Immutable == nil || !*cm.Immutable {
		t.Errorf("config version %s: immutable %v, data %v", cm.Name, cm.Immutable, cm.Data)
	}
	ov := get(t, ns, manifests.OverridesConfigMapName("prod"), &corev1.ConfigMap{})
	isOwned(ov)
	if _, ok := ov.Data[manifests.OverridesFile]; !ok || ov.Immutable != nil {
		t.Errorf("overrides ConfigMap: immutable %v, data %v", ov.Immutable, ov.Data)
	}
	shared := get(t, ns, "prod", &corev1.Service{})
	isOwned(shared)
	if shared.Spec.TrafficDistribution == nil || *shared.Spec.TrafficDistribution != v1alpha1.TrafficDistributionPreferSameZone {
		t.Errorf("shared Service trafficDistribution = %v, want PreferSameZone on 1.37", shared.Spec.TrafficDistribution)
	}
	if _, ok := shared.Annotations["service.kubernetes.io/topology-mode"]; ok {
		t.Error("the topology-mode annotation must never be set")
	}
	gossip := get(t, ns, manifests.MemberlistServiceName("prod"), &corev1.Service{})
	isOwned(gossip)
	if gossip.Spec.ClusterIP != corev1.ClusterIPNone || !gossip.Spec.PublishNotReadyAddresses {
		t.Errorf("memberlist Service: clusterIP %q publishNotReady %v", gossip.Spec.ClusterIP, gossip.Spec.PublishNotReadyAddresses)
	}

	for _, z := range []string{"zone-a", "zone-b", "zone-c"} {
		d := zoneDeployment(t, ns, "prod", z)
		isOwned(d)
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			t.Errorf("%s replicas = %v, want the default 2", d.Name, d.Spec.Replicas)
		}
		c := d.Spec.Template.Spec.Containers[0]
		if c.Image != "ghcr.io/pyrodist/pyrodist:v1" || !slices.Contains(c.Args, "-distributor.zone="+z) {
			t.Errorf("%s container: image %s args %v", d.Name, c.Image, c.Args)
		}
		if d.Spec.Template.Annotations[manifests.AnnotationConfigHash] == "" {
			t.Errorf("%s has no config hash on its pod template", d.Name)
		}
		na := d.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
		if na == nil || na.NodeSelectorTerms[0].MatchExpressions[0].Key != v1alpha1.DefaultZoneLabelKey ||
			na.NodeSelectorTerms[0].MatchExpressions[0].Values[0] != z {
			t.Errorf("%s is not pinned to its zone: %+v", d.Name, na)
		}
		isOwned(get(t, ns, "prod-"+z, &corev1.Service{}))
		isOwned(get(t, ns, "prod-"+z, &policyv1.PodDisruptionBudget{}))
		if err := absent(ns, "prod-"+z, &autoscalingv2.HorizontalPodAutoscaler{}); err != nil {
			t.Error(err)
		}
	}

	if len(pd.Status.Zones) != 3 || pd.Status.ZoneCount != 3 || pd.Status.Replicas != 6 {
		t.Errorf("status zones %+v count %d replicas %d", pd.Status.Zones, pd.Status.ZoneCount, pd.Status.Replicas)
	}
	if pd.Status.TrafficDistribution != v1alpha1.TrafficDistributionPreferSameZone {
		t.Errorf("status trafficDistribution = %q", pd.Status.TrafficDistribution)
	}
	assertNoWritesOnResync(t, key)
}

// podTemplateHashes returns each zone Deployment's config hash annotation.
func podTemplateHashes(t *testing.T, ns, name string, zones ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, z := range zones {
		out[z] = zoneDeployment(t, ns, name, z).Spec.Template.Annotations[manifests.AnnotationConfigHash]
	}
	return out
}

func TestUpdatesFollowTheSpec(t *testing.T) {
	ns := newNamespace(t)
	key := types.NamespacedName{Namespace: ns, Name: "web"}
	simulateDeployments(t, ns)
	mustCreate(t, newPD(ns, "web", "zone-a", "zone-b"))
	reconciled(t, key)
	hashes := podTemplateHashes(t, ns, "web", "zone-a", "zone-b")

	t.Run("image", func(t *testing.T) {
		updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Image = "ghcr.io/pyrodist/pyrodist:v2" })
		reconciled(t, key)
		eventually(t, waitFor, func() error {
			for _, z := range []string{"zone-a", "zone-b"} {
				if img := zoneDeployment(t, ns, "web", z).Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/pyrodist/pyrodist:v2" {
					return fmt.Errorf("%s image %s", z, img)
				}
			}
			return nil
		})
		if got := podTemplateHashes(t, ns, "web", "zone-a", "zone-b"); !equalMaps(got, hashes) {
			t.Fatalf("an image change moved the config hash: %v -> %v", hashes, got)
		}
	})

	t.Run("replicas", func(t *testing.T) {
		updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) {
			pd.Spec.Replicas = ptrTo[int32](3)
			pd.Spec.Zones[1].Replicas = ptrTo[int32](5)
		})
		reconciled(t, key)
		eventually(t, waitFor, func() error {
			a, b := zoneDeployment(t, ns, "web", "zone-a"), zoneDeployment(t, ns, "web", "zone-b")
			if *a.Spec.Replicas != 3 || *b.Spec.Replicas != 5 {
				return fmt.Errorf("replicas %d, %d; want 3, 5", *a.Spec.Replicas, *b.Spec.Replicas)
			}
			return nil
		})
	})

	t.Run("zone added", func(t *testing.T) {
		updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) {
			pd.Spec.Zones = append(pd.Spec.Zones, v1alpha1.Zone{Name: "zone-c"})
		})
		reconciled(t, key)
		eventually(t, waitFor, func() error {
			for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}, &policyv1.PodDisruptionBudget{}} {
				if err := k8sClient.Get(testCtx, client.ObjectKey{Namespace: ns, Name: "web-zone-c"}, obj); err != nil {
					return err
				}
			}
			return nil
		})
	})

	t.Run("zone removed is pruned", func(t *testing.T) {
		updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) {
			pd.Spec.Zones = slices.DeleteFunc(pd.Spec.Zones, func(z v1alpha1.Zone) bool { return z.Name == "zone-a" })
		})
		pd := reconciled(t, key)
		eventually(t, waitFor, func() error {
			return errors.Join(
				absent(ns, "web-zone-a", &appsv1.Deployment{}),
				absent(ns, "web-zone-a", &corev1.Service{}),
				absent(ns, "web-zone-a", &policyv1.PodDisruptionBudget{}))
		})
		zoneDeployment(t, ns, "web", "zone-b") // the others stay
		zoneDeployment(t, ns, "web", "zone-c")
		if len(pd.Status.Zones) != 2 {
			t.Fatalf("status zones %+v", pd.Status.Zones)
		}
	})

	hashes = podTemplateHashes(t, ns, "web", "zone-b", "zone-c")

	t.Run("overrides change rolls nothing", func(t *testing.T) {
		overrides := manifests.OverridesConfigMapName("web")
		before := get(t, ns, overrides, &corev1.ConfigMap{}).Data[manifests.OverridesFile]
		updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) {
			rate := resource.MustParse("8Mi")
			pd.Spec.Limits.Overrides = map[string]v1alpha1.TenantLimits{"team-a": {IngestionRate: &rate}}
		})
		reconciled(t, key)
		eventually(t, waitFor, func() error {
			now := get(t, ns, overrides, &corev1.ConfigMap{}).Data[manifests.OverridesFile]
			if now == before || !strings.Contains(now, "team-a") {
				return fmt.Errorf("overrides.yaml not updated: %q", now)
			}
			return nil
		})
		if got := podTemplateHashes(t, ns, "web", "zone-b", "zone-c"); !equalMaps(got, hashes) {
			t.Fatalf("an overrides change rolled pods: %v -> %v", hashes, got)
		}
	})

	t.Run("config change rolls every zone", func(t *testing.T) {
		before := mountedConfig(t, ns, "web", "zone-b").Data[manifests.ConfigFileName]
		updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Multitenancy = true })
		reconciled(t, key)
		eventually(t, waitFor, func() error {
			for _, z := range []string{"zone-b", "zone-c"} {
				if mountedConfig(t, ns, "web", z).Data[manifests.ConfigFileName] == before {
					return fmt.Errorf("zone %s: config.yaml not updated", z)
				}
			}
			got := podTemplateHashes(t, ns, "web", "zone-b", "zone-c")
			for z, h := range got {
				if h == hashes[z] || h == "" {
					return fmt.Errorf("zone %s pod template hash did not move: %s", z, h)
				}
			}
			return nil
		})
	})
	rolloutPhase(t, key, v1alpha1.RolloutComplete, "") // the simulated zones are rolled one by one
	expectEvents(t, ns, "web", EventZoneAdded, EventZoneRemoved, EventConfigRolled)
	assertNoWritesOnResync(t, key)
}

// expectEvents waits until events with all the given reasons were recorded
// about PyroscopeDistributor name.
func expectEvents(t *testing.T, ns, name string, reasons ...string) {
	t.Helper()
	eventually(t, waitFor, func() error {
		var list eventsv1.EventList
		if err := k8sClient.List(testCtx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, e := range list.Items {
			if e.Regarding.Kind == "PyroscopeDistributor" && e.Regarding.Name == name {
				seen[e.Reason] = true
			}
		}
		for _, r := range reasons {
			if !seen[r] {
				return fmt.Errorf("no %s event about %s (seen %v)", r, name, seen)
			}
		}
		return nil
	})
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// deleteAndAwaitRecreated deletes a child and waits until the reconciler has
// created it again (a new UID) and, when restored is given, restored(now) holds.
func deleteAndAwaitRecreated[T any, P interface {
	*T
	client.Object
}](t *testing.T, old P, restored func(now P) bool) {
	t.Helper()
	if err := k8sClient.Delete(testCtx, old); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitFor, func() error {
		now := P(new(T))
		if err := k8sClient.Get(testCtx, client.ObjectKeyFromObject(old), now); err != nil {
			return err
		}
		if now.GetUID() == old.GetUID() {
			return errors.New("not recreated yet")
		}
		if restored != nil && !restored(now) {
			return errors.New("not restored yet")
		}
		return nil
	})
}

func TestChildrenEditedOrDeletedByHandAreRestored(t *testing.T) {
	ns := newNamespace(t)
	key := types.NamespacedName{Namespace: ns, Name: "fix"}
	mustCreate(t, newPD(ns, "fix", "zone-a"))
	reconciled(t, key)

	t.Run("deleted Service", func(t *testing.T) {
		deleteAndAwaitRecreated(t, get(t, ns, "fix-zone-a", &corev1.Service{}), nil)
	})

	t.Run("deleted ConfigMap", func(t *testing.T) {
		cm := mountedConfig(t, ns, "fix", "zone-a")
		deleteAndAwaitRecreated(t, cm, func(now *corev1.ConfigMap) bool {
			return now.Data[manifests.ConfigFileName] == cm.Data[manifests.ConfigFileName]
		})
	})

	t.Run("edited Deployment", func(t *testing.T) {
		d := zoneDeployment(t, ns, "fix", "zone-a")
		d.Spec.Template.Spec.Containers[0].Image = "evil:latest"
		d.Spec.Replicas = ptrTo[int32](9)
		d.Labels[manifests.LabelOwner] = "someone-else"
		if err := k8sClient.Update(testCtx, d, client.FieldOwner("kubectl-edit")); err != nil {
			t.Fatal(err)
		}
		eventually(t, waitFor, func() error {
			d := zoneDeployment(t, ns, "fix", "zone-a")
			if img := d.Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/pyrodist/pyrodist:v1" {
				return fmt.Errorf("image %s", img)
			}
			if *d.Spec.Replicas != 2 || d.Labels[manifests.LabelOwner] != "fix" {
				return fmt.Errorf("replicas %d labels %v", *d.Spec.Replicas, d.Labels)
			}
			return nil
		})
	})

	t.Run("owner reference removed", func(t *testing.T) {
		pdb := get(t, ns, "fix-zone-a", &policyv1.PodDisruptionBudget{})
		pdb.OwnerReferences = nil
		if err := k8sClient.Update(testCtx, pdb, client.FieldOwner("kubectl-edit")); err != nil {
			t.Fatal(err)
		}
		eventually(t, waitFor, func() error {
			pdb := get(t, ns, "fix-zone-a", &policyv1.PodDisruptionBudget{})
			if ref := metav1.GetControllerOf(pdb); ref == nil || ref.Name != "fix" {
				return fmt.Errorf("owner references %+v", pdb.OwnerReferences)
			}
			return nil
		})
	})

	t.Run("edited Service port", func(t *testing.T) {
		svc := get(t, ns, "fix", &corev1.Service{})
		svc.Spec.Ports[0].Port = 9999
		if err := k8sClient.Update(testCtx, svc, client.FieldOwner("kubectl-edit")); err != nil {
			t.Fatal(err)
		}
		eventually(t, waitFor, func() error {
			svc := get(t, ns, "fix", &corev1.Service{})
			for _, p := range svc.Spec.Ports {
				if p.Port == manifests.HTTPPort {
					return nil
				}
			}
			return fmt.Errorf("ports %+v", svc.Spec.Ports)
		})
	})
	assertNoWritesOnResync(t, key)
}

// markRolledOut writes a zone Deployment's status as the Deployment
// controller would once every pod is updated and ready.
func markRolledOut(t *testing.T, ns, name string) {
	t.Helper()
	if err := setRolledOut(ns, name); err != nil {
		t.Fatalf("status of %s: %v", name, err)
	}
}

func condition(pd *v1alpha1.PyroscopeDistributor, typ string) *metav1.Condition {
	return meta.FindStatusCondition(pd.Status.Conditions, typ)
}

func TestStatusConditionsAndObservedGeneration(t *testing.T) {
	ns := newNamespace(t)
	key := types.NamespacedName{Namespace: ns, Name: "st"}
	mustCreate(t, newPD(ns, "st", "zone-a", "zone-b"))
	pd := reconciled(t, key)

	check := func(pd *v1alpha1.PyroscopeDistributor, typ string, want metav1.ConditionStatus) error {
		c := condition(pd, typ)
		switch {
		case c == nil:
			return fmt.Errorf("no %s condition", typ)
		case c.Status != want:
			return fmt.Errorf("%s = %s (%s: %s), want %s", typ, c.Status, c.Reason, c.Message, want)
		case c.ObservedGeneration != pd.Generation:
			return fmt.Errorf("%s observedGeneration %d, generation %d", typ, c.ObservedGeneration, pd.Generation)
		}
		return nil
	}
	// No Deployment controller runs in envtest: nothing is ready yet.
	if err := errors.Join(check(pd, v1alpha1.ConditionReady, metav1.ConditionFalse),
		check(pd, v1alpha1.ConditionProgressing, metav1.ConditionTrue),
		check(pd, v1alpha1.ConditionDegraded, metav1.ConditionFalse)); err != nil {
		t.Fatal(err)
	}

	markRolledOut(t, ns, "st-zone-a")
	markRolledOut(t, ns, "st-zone-b")
	eventually(t, waitFor, func() error {
		pd := get(t, ns, "st", &v1alpha1.PyroscopeDistributor{})
		if err := errors.Join(check(pd, v1alpha1.ConditionReady, metav1.ConditionTrue),
			check(pd, v1alpha1.ConditionProgressing, metav1.ConditionFalse),
			check(pd, v1alpha1.ConditionDegraded, metav1.ConditionFalse)); err != nil {
			return err
		}
		if pd.Status.ReadyReplicas != 4 || pd.Status.Zones[0].ReadyReplicas != 2 || pd.Status.Zones[0].UpdatedReplicas != 2 {
			return fmt.Errorf("status %+v", pd.Status)
		}
		return nil
	})
	if v := gaugeValue(t, ns, "st"); v != 1 {
		t.Fatalf("ready gauge %v, want 1", v)
	}
	assertNoWritesOnResync(t, key)

	// A new generation is Progressing again until the zones roll.
	updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Image = "ghcr.io/pyrodist/pyrodist:v3" })
	pd = reconciled(t, key)
	if pd.Generation < 2 {
		t.Fatalf("generation %d", pd.Generation)
	}
	eventually(t, waitFor, func() error {
		pd := get(t, ns, "st", &v1alpha1.PyroscopeDistributor{})
		return errors.Join(check(pd, v1alpha1.ConditionReady, metav1.ConditionFalse),
			check(pd, v1alpha1.ConditionProgressing, metav1.ConditionTrue))
	})
	if v := gaugeValue(t, ns, "st"); v != 0 {
		t.Fatalf("ready gauge %v, want 0", v)
	}

	// Paused: children are left alone and status says so; observedGeneration
	// does not move for a generation that was not applied.
	updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) {
		pd.Spec.Paused = true
		pd.Spec.Image = "ghcr.io/pyrodist/pyrodist:v4"
	})
	eventually(t, waitFor, func() error {
		pd := get(t, ns, "st", &v1alpha1.PyroscopeDistributor{})
		c := condition(pd, v1alpha1.ConditionProgressing)
		if c == nil || c.Reason != ReasonPaused || c.ObservedGeneration != pd.Generation {
			return fmt.Errorf("progressing %+v", c)
		}
		if pd.Status.ObservedGeneration == pd.Generation {
			return errors.New("observedGeneration moved while paused")
		}
		return nil
	})
	reconcileNow(t, key)
	if img := zoneDeployment(t, ns, "st", "zone-a").Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, ":v3") {
		t.Fatalf("a paused object's Deployment changed: %s", img)
	}
	updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Paused = false })
	reconciled(t, key)
	eventually(t, waitFor, func() error {
		if img := zoneDeployment(t, ns, "st", "zone-a").Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, ":v4") {
			return fmt.Errorf("image %s after unpausing", img)
		}
		return nil
	})

	// The gauge series goes away with the object.
	if err := k8sClient.Delete(testCtx, get(t, ns, "st", &v1alpha1.PyroscopeDistributor{})); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitFor, func() error {
		if gaugeHas(ns, "st") {
			return errors.New("ready gauge still reports a deleted object")
		}
		return nil
	})
}

// gaugeHas reports whether the ready gauge has a series for ns/name.
func gaugeHas(ns, name string) bool {
	ch := make(chan prometheus.Metric, 1024)
	go func() { readyGauge.Collect(ch); close(ch) }()
	found := false
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil {
			continue
		}
		l := map[string]string{}
		for _, p := range d.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		if l["namespace"] == ns && l["name"] == name {
			found = true
		}
	}
	return found
}

func gaugeValue(t *testing.T, ns, name string) float64 {
	t.Helper()
	var m dto.Metric
	if err := readyGauge.WithLabelValues(ns, name).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

func TestCELRejectsInvalidSpecs(t *testing.T) {
	ns := newNamespace(t)
	cases := []struct {
		name   string
		mutate func(*v1alpha1.PyroscopeDistributor)
		want   string
	}{
		{"duplicate zone names", func(pd *v1alpha1.PyroscopeDistributor) {
			pd.Spec.Zones = []v1alpha1.Zone{{Name: "zone-a"}, {Name: "zone-a"}}
		}, "zone names must be unique"},
		{"no zones", func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Zones = []v1alpha1.Zone{} }, "spec.zones"},
		{"min above max", func(pd *v1alpha1.PyroscopeDistributor) {
			pd.Spec.Autoscaling = &v1alpha1.Autoscaling{MinReplicas: ptrTo[int32](5), MaxReplicas: 2}
		}, "must be less than or equal to autoscaling.maxReplicas"},
		{"replicas and autoscaling", func(pd *v1alpha1.PyroscopeDistributor) {
			pd.Spec.Replicas = ptrTo[int32](2)
			pd.Spec.Autoscaling = &v1alpha1.Autoscaling{MaxReplicas: 4}
		}, "mutually exclusive"},
		{"bad zone name", func(pd *v1alpha1.PyroscopeDistributor) {
			pd.Spec.Zones = []v1alpha1.Zone{{Name: "Zone_A"}}
		}, "zone name must be a DNS label"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pd := newPD(ns, fmt.Sprintf("bad-%d", i), "zone-a")
			tc.mutate(pd)
			err := k8sClient.Create(testCtx, pd)
			if err == nil {
				t.Fatal("the API server accepted an invalid spec")
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want an Invalid error mentioning %q", err, tc.want)
			}
			t.Logf("rejected: %v", err)
		})
	}
}

// A same-named object the operator did not create is never taken over: the
// PyroscopeDistributor reports Degraded until the name is free, then heals.
func TestForeignObjectIsNotAdopted(t *testing.T) {
	ns := newNamespace(t)
	key := types.NamespacedName{Namespace: ns, Name: "taken"}
	foreign := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken-overrides"},
		Data:       map[string]string{"mine": "yes"},
	}
	mustCreate(t, foreign)
	mustCreate(t, newPD(ns, "taken", "zone-a"))

	eventually(t, waitFor, func() error {
		pd := get(t, ns, "taken", &v1alpha1.PyroscopeDistributor{})
		c := condition(pd, v1alpha1.ConditionDegraded)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonApplyFailed ||
			!strings.Contains(c.Message, "taken-overrides") || !strings.Contains(c.Message, "not controlled by this PyroscopeDistributor") {
			return fmt.Errorf("degraded %+v", c)
		}
		if pd.Status.ObservedGeneration == pd.Generation {
			return errors.New("observedGeneration set by a failed reconcile")
		}
		return nil
	})
	cm := get(t, ns, "taken-overrides", &corev1.ConfigMap{})
	if cm.Data["mine"] != "yes" || metav1.GetControllerOf(cm) != nil {
		t.Fatalf("the foreign ConfigMap was changed: %+v", cm)
	}

	if err := k8sClient.Delete(testCtx, cm); err != nil {
		t.Fatal(err)
	}
	reconcileNow(t, key) // the failed object waits in backoff; a resync retries it
	pd := reconciled(t, key)
	if c := condition(pd, v1alpha1.ConditionDegraded); c == nil || c.Status != metav1.ConditionFalse {
		t.Fatalf("still degraded: %+v", c)
	}
}
