package controllers

import (
	"fmt"
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/manifests"
)

func TestPrepare(t *testing.T) {
	owner := &v1alpha1.PyroscopeDistributor{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pd", UID: "uid-1"}}
	a := &applier{scheme: testScheme}
	built := func() *corev1.ConfigMap {
		return &corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pd-config", Labels: map[string]string{"a": "1"}},
			Data:       map[string]string{"k": "v"},
		}
	}
	hashOf := func(t *testing.T, obj client.Object) string {
		t.Helper()
		out, err := a.prepare(owner, obj)
		if err != nil {
			t.Fatal(err)
		}
		return out.GetAnnotations()[appliedHashAnnotation]
	}

	t.Run("the copy is owned and hashed, the input untouched", func(t *testing.T) {
		in := built()
		keep := in.DeepCopy()
		out, err := a.prepare(owner, in)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, keep) {
			t.Fatalf("prepare changed its input:\n got %+v\nwant %+v", in, keep)
		}
		ref := metav1.GetControllerOf(out)
		if ref == nil || ref.UID != owner.UID || ref.Kind != "PyroscopeDistributor" || ref.BlockOwnerDeletion == nil {
			t.Fatalf("controller reference %+v", ref)
		}
		if out.GetAnnotations()[appliedHashAnnotation] == "" || out.GetNamespace() != "ns" {
			t.Fatalf("annotations %v namespace %q", out.GetAnnotations(), out.GetNamespace())
		}
		// The copy shares no memory with the input.
		out.GetLabels()["a"] = "changed"
		out.(*corev1.ConfigMap).Data["k"] = "changed"
		if !reflect.DeepEqual(in, keep) {
			t.Fatal("the prepared copy shares maps with the input")
		}
	})

	t.Run("the hash is stable and ignores a stale hash annotation", func(t *testing.T) {
		h := hashOf(t, built())
		if again := hashOf(t, built()); again != h {
			t.Fatalf("hash %s then %s for the same object", h, again)
		}
		stale := built()
		stale.Annotations = map[string]string{appliedHashAnnotation: "stale"}
		if got := hashOf(t, stale); got != h {
			t.Fatalf("hash with a stale annotation %s, want %s", got, h)
		}
	})

	t.Run("the hash follows the content", func(t *testing.T) {
		h := hashOf(t, built())
		for name, edit := range map[string]func(*corev1.ConfigMap){
			"data":       func(c *corev1.ConfigMap) { c.Data["k"] = "w" },
			"label":      func(c *corev1.ConfigMap) { c.Labels["a"] = "2" },
			"annotation": func(c *corev1.ConfigMap) { c.Annotations = map[string]string{"note": ""} },
		} {
			c := built()
			edit(c)
			if hashOf(t, c) == h {
				t.Errorf("a change of %s kept the hash", name)
			}
		}
	})
}

// The reconciler applies copies: whatever Build returned is exactly as Build
// left it after the whole apply path ran, creating, handing replicas over to
// HPAs, and re-applying a hand-edited child.
func TestSyncLeavesBuiltObjectsAlone(t *testing.T) {
	ns := newNamespace(t)
	pd := newPD(ns, "pure", "zone-a", "zone-b")
	// Paused: the suite's manager leaves the children to this test.
	pd.Spec.Paused = true
	pd.Spec.Autoscaling = &v1alpha1.Autoscaling{MinReplicas: ptrTo[int32](2), MaxReplicas: 5}
	mustCreate(t, pd)
	pd = get(t, ns, "pure", &v1alpha1.PyroscopeDistributor{})

	desired, err := manifests.Build(pd, testReconciler.Facts)
	if err != nil {
		t.Fatal(err)
	}
	keep := make([]client.Object, 0, len(desired.Objects()))
	for _, obj := range desired.Objects() {
		keep = append(keep, obj.DeepCopyObject().(client.Object))
	}
	unchanged := func(t *testing.T, step string) {
		t.Helper()
		for i, obj := range desired.Objects() {
			if !equality.Semantic.DeepEqual(obj, keep[i]) {
				t.Fatalf("%s: %T %s changed after Build:\n got %+v\nwant %+v", step, obj, obj.GetName(), obj, keep[i])
			}
		}
	}

	if _, err := testReconciler.sync(testCtx, pd, desired); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	unchanged(t, "create")
	// The applied children do carry what the applier added to its copies.
	for _, obj := range keep {
		live := obj.DeepCopyObject().(client.Object)
		if err := k8sClient.Get(testCtx, client.ObjectKeyFromObject(obj), live); err != nil {
			t.Fatal(err)
		}
		if ref := metav1.GetControllerOf(live); ref == nil || ref.UID != pd.UID {
			t.Errorf("%T %s: controller reference %+v", live, live.GetName(), ref)
		}
		if live.GetAnnotations()[appliedHashAnnotation] == "" {
			t.Errorf("%T %s has no applied hash", live, live.GetName())
		}
	}

	d := get(t, ns, "pure-zone-a", &appsv1.Deployment{})
	d.Spec.Template.Spec.Containers[0].Image = "edited:by-hand"
	if err := k8sClient.Update(testCtx, d, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitFor, func() error {
		if _, err := testReconciler.sync(testCtx, pd, desired); err != nil {
			return err
		}
		if img := zoneDeployment(t, ns, "pure", "zone-a").Spec.Template.Spec.Containers[0].Image; img == "edited:by-hand" {
			return fmt.Errorf("image %s not restored yet", img)
		}
		return nil
	})
	unchanged(t, "re-apply")
}
