package controllers

import (
	"bytes"
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
)

// Replica hand-over between the operator and a zone's HPA.
//
// With server-side apply, dropping spec.replicas from the operator's apply
// while it still owns the field removes the field, and the API server
// defaults it to 1: every pod but one would go. So when an HPA takes over, a
// second field manager first co-owns spec.replicas at the live count; the
// operator's next apply (without replicas) then only gives up its share, and
// the HPA's scale writes take the field from the hand-over manager. Going
// back, the operator's apply with replicas forces ownership and the count it
// sets wins at once.

// handoverFieldManager co-owns a Deployment's spec.replicas for the moment
// the operator lets go of it.
const handoverFieldManager = "pyrodist-operator-handover"

// syncAutoscaledDeployment applies the Deployment of a zone whose replicas
// belong to hpa; desired carries no replicas. A new Deployment starts at the
// HPA's minimum; one whose replicas the operator still owns is handed over
// at its live count (within the HPA's bounds) before the apply.
func (r *PyroscopeDistributorReconciler) syncAutoscaledDeployment(ctx context.Context, a *applier,
	pd *v1alpha1.PyroscopeDistributor, desired, live *appsv1.Deployment,
	hpa *autoscalingv2.HorizontalPodAutoscaler) (client.Object, error) {
	// Nothing to do when we hold no claim on replicas and everything else
	// matches.
	if live != nil && !ownsField(live, FieldManager, "spec", "replicas") && upToDate(desired, live) {
		return live, nil
	}
	// The cache may lag behind our own last write; reading straight from the
	// API server means a stale copy can never make us hand over (or create
	// at) the wrong count.
	var fresh *appsv1.Deployment
	got := &appsv1.Deployment{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(desired), got); err == nil {
		fresh = got
	} else if !apierrors.IsNotFound(err) {
		return nil, err
	}
	created := false
	if fresh == nil {
		// Create at the HPA's minimum instead of the API default of 1, then
		// hand the count over below like any other.
		first := desired.DeepCopy()
		first.Spec.Replicas = ptrTo(hpaMin(hpa))
		out, err := a.apply(ctx, first, FieldManager)
		if err != nil {
			return nil, err
		}
		r.deploymentEvents(pd, desired, nil)
		fresh, created = out.(*appsv1.Deployment), true
	}
	if ownsField(fresh, FieldManager, "spec", "replicas") {
		n := handoverCount(fresh, hpa)
		if err := a.handOverReplicas(ctx, desired, n); err != nil {
			return nil, err
		}
		if !created {
			r.Recorder.Eventf(pd, desired, corev1.EventTypeNormal, EventHPAHandover, "HandOver",
				"HPA %s now owns the replicas of Deployment %s, starting from %d", hpa.Name, desired.Name, n)
		}
	} else if upToDate(desired, fresh) {
		return fresh, nil
	}
	out, err := a.apply(ctx, desired, FieldManager)
	if err != nil {
		return nil, err
	}
	if !created {
		r.deploymentEvents(pd, desired, fresh)
	}
	return out, nil
}

// handOverReplicas makes handoverFieldManager co-own spec.replicas of d at
// the given count, so the operator's next apply without replicas leaves the
// field in place.
func (a *applier) handOverReplicas(ctx context.Context, d *appsv1.Deployment, replicas int32) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
	u.SetNamespace(d.Namespace)
	u.SetName(d.Name)
	if err := unstructured.SetNestedField(u.Object, int64(replicas), "spec", "replicas"); err != nil {
		return err
	}
	if err := a.c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(handoverFieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("hand over replicas of Deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	return nil
}

// handoverCount is the count an HPA inherits: the live one, kept within the
// HPA's bounds so the HPA does not start by scaling.
func handoverCount(live *appsv1.Deployment, hpa *autoscalingv2.HorizontalPodAutoscaler) int32 {
	if live.Spec.Replicas == nil {
		return hpaMin(hpa)
	}
	return clamp(*live.Spec.Replicas, hpaMin(hpa), hpa.Spec.MaxReplicas)
}

// takesReplicasBack reports whether applying desired takes spec.replicas
// back from whoever holds it (an HPA, or the hand-over manager): desired
// sets replicas and the operator does not own them in live.
func takesReplicasBack(desired, live *appsv1.Deployment) bool {
	return desired.Spec.Replicas != nil && !ownsField(live, FieldManager, "spec", "replicas")
}

// ownsField reports whether manager owns the field at path (of the main
// resource, not a subresource) according to obj's managedFields.
func ownsField(obj metav1.Object, manager string, path ...string) bool {
	want := make(fieldpath.Path, 0, len(path))
	for _, p := range path {
		name := p
		want = append(want, fieldpath.PathElement{FieldName: &name})
	}
	for _, mf := range obj.GetManagedFields() {
		if mf.Manager != manager || mf.Subresource != "" || mf.FieldsV1 == nil {
			continue
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(bytes.NewReader(mf.FieldsV1.Raw)); err != nil {
			continue
		}
		if set.Has(want) {
			return true
		}
	}
	return false
}

// hpaMin is the HPA's effective minimum (the API's default is 1).
func hpaMin(h *autoscalingv2.HorizontalPodAutoscaler) int32 {
	if h.Spec.MinReplicas != nil && *h.Spec.MinReplicas > 0 {
		return *h.Spec.MinReplicas
	}
	return 1
}

// clamp bounds v to [lo, hi]; a hi below lo is ignored.
func clamp(v, lo, hi int32) int32 {
	if v < lo {
		return lo
	}
	if hi >= lo && v > hi {
		return hi
	}
	return v
}
