package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/manifests"
)

// EventPodMonitorUnavailable: spec.monitoring.podMonitor is on but the
// cluster has no PodMonitor CRD (the Prometheus Operator is not installed).
const EventPodMonitorUnavailable = "PodMonitorUnavailable"

// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=podmonitors,verbs=get;create;patch;delete

// syncPodMonitor applies the PodMonitor spec.monitoring asks for, or deletes
// ours when it asks for none. PodMonitors are read straight from the API
// server, never watched or cached: the operator starts and runs the same
// whether the Prometheus Operator's CRDs exist or not, and whether they come
// or go while it runs (the RESTMapper is asked on every reconcile).
func (r *PyroscopeDistributorReconciler) syncPodMonitor(ctx context.Context, a *applier, pd *v1alpha1.PyroscopeDistributor) error {
	desired := manifests.PodMonitor(pd)
	if !r.podMonitorCRD() {
		if desired != nil && pd.Status.ObservedGeneration != pd.Generation {
			r.Recorder.Eventf(pd, nil, corev1.EventTypeWarning, EventPodMonitorUnavailable, "Apply",
				"spec.monitoring.podMonitor.enabled is true but the cluster has no PodMonitor CRD (%s): install the Prometheus Operator",
				manifests.PodMonitorGVK.GroupVersion())
		}
		return nil
	}
	key := client.ObjectKey{Namespace: pd.Namespace, Name: pd.Name}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(manifests.PodMonitorGVK)
	if err := r.APIReader.Get(ctx, key, live); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("get PodMonitor %s: %w", key, err)
		}
		live = nil
	}
	if desired == nil {
		if live == nil || !metav1.IsControlledBy(live, pd) {
			return nil
		}
		uid := live.GetUID()
		if err := r.Client.Delete(ctx, live, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete PodMonitor %s: %w", key, err)
		}
		return nil
	}
	obj, err := a.prepare(pd, desired)
	if err != nil {
		return err
	}
	if live != nil {
		if !ours(live, pd) {
			return fmt.Errorf("PodMonitor %s %w", key, errForeign)
		}
		if upToDate(obj, live) {
			return nil
		}
	}
	_, err = a.apply(ctx, obj, FieldManager)
	return err
}

// podMonitorCRD reports whether the API server serves PodMonitors now (a
// discovery error counts as no: the next reconcile asks again).
// controller-runtime's RESTMapper looks an unknown group up again on a
// miss, so a CRD installed after the operator started is found.
func (r *PyroscopeDistributorReconciler) podMonitorCRD() bool {
	gvk := manifests.PodMonitorGVK
	_, err := r.Client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	return err == nil
}
