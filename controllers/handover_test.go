package controllers

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
)

func TestOwnsField(t *testing.T) {
	d := &appsv1.Deployment{}
	d.ManagedFields = []metav1.ManagedFieldsEntry{
		{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply,
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{"f:a":{}}},"f:spec":{"f:template":{}}}`)}},
		{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "scale",
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:replicas":{}}}`)}},
	}
	if ownsField(d, FieldManager, "spec", "replicas") {
		t.Fatal("operator does not own spec.replicas")
	}
	if ownsField(d, "kube-controller-manager", "spec", "replicas") {
		t.Fatal("a scale-subresource entry is not the main resource")
	}
	d.ManagedFields[0].FieldsV1.Raw = []byte(`{"f:spec":{"f:replicas":{},"f:template":{}}}`)
	if !ownsField(d, FieldManager, "spec", "replicas") {
		t.Fatal("operator owns spec.replicas")
	}
}

func TestHandoverCount(t *testing.T) {
	hpa := func(min *int32, max int32) *autoscalingv2.HorizontalPodAutoscaler {
		return &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			MinReplicas: min, MaxReplicas: max}}
	}
	cases := []struct {
		name string
		live *int32
		hpa  *autoscalingv2.HorizontalPodAutoscaler
		want int32
	}{
		{"live count inside the bounds is kept", ptrTo[int32](3), hpa(ptrTo[int32](2), 10), 3},
		{"below the minimum starts at the minimum", ptrTo[int32](1), hpa(ptrTo[int32](2), 10), 2},
		{"above the maximum starts at the maximum", ptrTo[int32](12), hpa(ptrTo[int32](2), 10), 10},
		{"a zone scaled to 0 starts at the minimum", ptrTo[int32](0), hpa(ptrTo[int32](2), 10), 2},
		{"no live count starts at the minimum", nil, hpa(ptrTo[int32](4), 10), 4},
		{"no minimum means the API default of 1", ptrTo[int32](0), hpa(nil, 10), 1},
		{"a zero minimum means 1 as well", nil, hpa(ptrTo[int32](0), 10), 1},
		{"a maximum below the minimum is ignored", ptrTo[int32](7), hpa(ptrTo[int32](5), 3), 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			live := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: tc.live}}
			if got := handoverCount(live, tc.hpa); got != tc.want {
				t.Fatalf("handoverCount = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestTakesReplicasBack(t *testing.T) {
	ours := []metav1.ManagedFieldsEntry{{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply,
		FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:replicas":{}}}`)}}}
	hpas := []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate,
		Subresource: "scale", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:replicas":{}}}`)}}}
	cases := []struct {
		name     string
		desired  *int32
		managers []metav1.ManagedFieldsEntry
		want     bool
	}{
		{"replicas held by the HPA are taken back", ptrTo[int32](4), hpas, true},
		{"replicas the operator already owns", ptrTo[int32](4), ours, false},
		{"an autoscaled zone sets no replicas", nil, hpas, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			desired := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: tc.desired}}
			live := &appsv1.Deployment{}
			live.ManagedFields = tc.managers
			if got := takesReplicasBack(desired, live); got != tc.want {
				t.Fatalf("takesReplicasBack = %v, want %v", got, tc.want)
			}
		})
	}
}

// scaleAsHPA writes a Deployment's replicas through the scale subresource
// with the HPA controller's field manager, as a real HPA does.
func scaleAsHPA(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	d := get(t, ns, name, &appsv1.Deployment{})
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}
	if err := k8sClient.SubResource("scale").Update(testCtx, d, client.WithSubResourceBody(scale),
		client.FieldOwner("kube-controller-manager")); err != nil {
		t.Fatalf("scale %s as the HPA: %v", name, err)
	}
}

func replicasOf(t *testing.T, ns, name string) int32 {
	t.Helper()
	d := get(t, ns, name, &appsv1.Deployment{})
	if d.Spec.Replicas == nil {
		t.Fatalf("%s has no replicas", name)
	}
	return *d.Spec.Replicas
}

func TestAutoscalingHandOver(t *testing.T) {
	ns := newNamespace(t)
	key := types.NamespacedName{Namespace: ns, Name: "hpa"}
	pd := newPD(ns, "hpa", "zone-a", "zone-b")
	pd.Spec.Replicas = ptrTo[int32](3)
	mustCreate(t, pd)
	reconciled(t, key)
	for _, z := range []string{"zone-a", "zone-b"} {
		if n := replicasOf(t, ns, "hpa-"+z); n != 3 {
			t.Fatalf("%s replicas %d, want 3", z, n)
		}
	}

	t.Run("switching on keeps the live count", func(t *testing.T) {
		updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) {
			pd.Spec.Replicas = nil
			pd.Spec.Autoscaling = &v1alpha1.Autoscaling{MinReplicas: ptrTo[int32](2), MaxReplicas: 10}
		})
		reconciled(t, key)
		for _, z := range []string{"zone-a", "zone-b"} {
			h := get(t, ns, "hpa-"+z, &autoscalingv2.HorizontalPodAutoscaler{})
			if h.Spec.ScaleTargetRef.Name != "hpa-"+z || *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 10 {
				t.Fatalf("HPA %s: %+v", z, h.Spec)
			}
			d := zoneDeployment(t, ns, "hpa", z)
			if *d.Spec.Replicas != 3 {
				t.Fatalf("%s replicas fell to %d during the hand-over, want 3", z, *d.Spec.Replicas)
			}
			if ownsField(d, FieldManager, "spec", "replicas") {
				t.Fatalf("%s: the operator still owns spec.replicas", z)
			}
		}
	})

	t.Run("the HPA's count survives reconciles", func(t *testing.T) {
		scaleAsHPA(t, ns, "hpa-zone-a", 7)
		// The scale triggers a reconcile through the Deployment watch; run a
		// few more, and touch the spec too (a real change elsewhere).
		for range 3 {
			reconcileNow(t, key)
		}
		updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Image = "ghcr.io/pyrodist/pyrodist:v2" })
		reconciled(t, key)
		eventually(t, waitFor, func() error {
			if img := zoneDeployment(t, ns, "hpa", "zone-a").Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, ":v2") {
				return fmt.Errorf("image %s", img)
			}
			return nil
		})
		reconcileNow(t, key)
		if n := replicasOf(t, ns, "hpa-zone-a"); n != 7 {
			t.Fatalf("the operator changed the HPA's replicas: %d, want 7", n)
		}
		if n := replicasOf(t, ns, "hpa-zone-b"); n != 3 {
			t.Fatalf("zone-b replicas %d, want 3", n)
		}
		assertNoWritesOnResync(t, key)
	})

	t.Run("disabled zone loses its HPA and goes to 0", func(t *testing.T) {
		updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Zones[0].Disabled = true })
		reconciled(t, key)
		eventually(t, waitFor, func() error {
			return absent(ns, "hpa-zone-a", &autoscalingv2.HorizontalPodAutoscaler{})
		})
		if n := replicasOf(t, ns, "hpa-zone-a"); n != 0 {
			t.Fatalf("disabled zone replicas %d, want 0", n)
		}
		get(t, ns, "hpa-zone-a", &corev1.Service{}) // Service and PDB stay
		get(t, ns, "hpa-zone-a", &policyv1.PodDisruptionBudget{})
		get(t, ns, "hpa-zone-b", &autoscalingv2.HorizontalPodAutoscaler{})
	})

	t.Run("re-enabled zone gets its HPA back at its minimum", func(t *testing.T) {
		updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Zones[0].Disabled = false })
		reconciled(t, key)
		get(t, ns, "hpa-zone-a", &autoscalingv2.HorizontalPodAutoscaler{})
		d := zoneDeployment(t, ns, "hpa", "zone-a")
		if *d.Spec.Replicas != 2 {
			t.Fatalf("re-enabled zone replicas %d, want the HPA minimum 2", *d.Spec.Replicas)
		}
		if ownsField(d, FieldManager, "spec", "replicas") {
			t.Fatal("the operator owns spec.replicas of an autoscaled zone")
		}
	})

	t.Run("a zone added while autoscaling starts at the minimum", func(t *testing.T) {
		updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) {
			pd.Spec.Zones = append(pd.Spec.Zones, v1alpha1.Zone{Name: "zone-c"})
		})
		reconciled(t, key)
		get(t, ns, "hpa-zone-c", &autoscalingv2.HorizontalPodAutoscaler{})
		d := zoneDeployment(t, ns, "hpa", "zone-c")
		if *d.Spec.Replicas != 2 || ownsField(d, FieldManager, "spec", "replicas") {
			t.Fatalf("new autoscaled zone: replicas %d, operator owns them: %v", *d.Spec.Replicas,
				ownsField(d, FieldManager, "spec", "replicas"))
		}
	})

	t.Run("switching off takes replicas back at the configured count", func(t *testing.T) {
		updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) {
			pd.Spec.Autoscaling = nil
			pd.Spec.Replicas = ptrTo[int32](4)
		})
		reconciled(t, key)
		eventually(t, waitFor, func() error {
			return errors.Join(
				absent(ns, "hpa-zone-a", &autoscalingv2.HorizontalPodAutoscaler{}),
				absent(ns, "hpa-zone-b", &autoscalingv2.HorizontalPodAutoscaler{}),
				absent(ns, "hpa-zone-c", &autoscalingv2.HorizontalPodAutoscaler{}))
		})
		for _, z := range []string{"zone-a", "zone-b", "zone-c"} {
			d := zoneDeployment(t, ns, "hpa", z)
			if *d.Spec.Replicas != 4 || !ownsField(d, FieldManager, "spec", "replicas") {
				t.Fatalf("%s: replicas %d, operator owns them: %v", z, *d.Spec.Replicas,
					ownsField(d, FieldManager, "spec", "replicas"))
			}
		}
		expectEvents(t, ns, "hpa", EventHPAHandover, EventReplicasTaken)
		assertNoWritesOnResync(t, key)
	})
}
