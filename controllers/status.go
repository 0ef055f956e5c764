package controllers

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/manifests"
)

// Condition reasons.
const (
	ReasonReady          = "AllZonesReady"
	ReasonNotReady       = "ZonesNotReady"
	ReasonRollingOut     = "RollingOut"
	ReasonComplete       = "Complete"
	ReasonPaused         = "Paused"
	ReasonAsExpected     = "AsExpected"
	ReasonInvalidSpec    = "InvalidSpec"
	ReasonApplyFailed    = "ApplyFailed"
	ReasonZoneStalled    = "ZoneStalled"
	ReasonNoEnabledZones = "NoEnabledZones"
	// ReasonServiceSelectsNoPods: a zone's Deployment has ready pods but its
	// Service has no ready endpoint, so the zone receives no traffic.
	ReasonServiceSelectsNoPods = "ServiceSelectsNoPods"
)

// ReasonPodSecurityRefused: spec.podTemplate asks for pods weaker than the
// restricted defaults and the operator runs without --allow-privileged-pods.
// Nothing is applied until the spec changes.
const ReasonPodSecurityRefused = "PodSecurityRefused"

// observed is what the status is computed from: the live (or just applied)
// children of one PyroscopeDistributor, by name.
type observed struct {
	deployments map[string]*appsv1.Deployment
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	// traffic is the spec.trafficDistribution of the shared Service, "" if none.
	traffic string
	// readyEndpoints counts the ready endpoints of each Service, by name,
	// over its EndpointSlices; a Service without any EndpointSlice is absent.
	readyEndpoints map[string]int32
}

// computeStatus fills pd.Status (except observedGeneration) from what was
// observed. reconcileErr, when set, makes the object Degraded and not Ready.
// Only observed state goes in, so a resync of an unchanged world computes an
// identical status and writes nothing.
func computeStatus(pd *v1alpha1.PyroscopeDistributor, obs observed, reconcileErr error, errReason string) {
	st := &pd.Status
	st.Zones = st.Zones[:0]
	st.ZoneCount = int32(len(pd.Spec.Zones))
	st.Replicas, st.ReadyReplicas = 0, 0
	if obs.traffic == "" {
		st.TrafficDistribution = v1alpha1.TrafficDistributionNone
	} else {
		st.TrafficDistribution = obs.traffic
	}

	var notReady, stalled, noEndpoints []string
	enabled := 0
	for _, z := range pd.Spec.Zones {
		zs := v1alpha1.ZoneStatus{Name: z.Name, Disabled: z.Disabled}
		name := manifests.ZonalName(pd.Name, z.Name)
		d := obs.deployments[name]
		if h := obs.hpas[name]; h != nil && !z.Disabled {
			zs.Autoscaled = true
			if h.Status.DesiredReplicas > 0 || h.Status.LastScaleTime != nil {
				v := h.Status.DesiredReplicas
				zs.HPADesiredReplicas = &v
			}
		}
		if !z.Disabled {
			enabled++
		}
		if d != nil {
			if d.Spec.Replicas != nil {
				zs.DesiredReplicas = *d.Spec.Replicas
			}
			zs.ReadyReplicas = d.Status.ReadyReplicas
			zs.UpdatedReplicas = d.Status.UpdatedReplicas
			if deploymentStalled(d) {
				stalled = append(stalled, z.Name)
			}
			// Only a Service the EndpointSlice controller has reported on:
			// before its first slice (or without that controller) we know
			// nothing. Only a rolled-out zone: while pods come and go the
			// slices trail the Deployment's counts by a moment. A drained
			// zone selects nothing by design.
			if n, ok := obs.readyEndpoints[name]; ok && n == 0 && !z.Disabled &&
				d.Status.ReadyReplicas > 0 && zoneRolledOut(d) {
				noEndpoints = append(noEndpoints, fmt.Sprintf("%s (zone %s)", name, z.Name))
			}
		}
		if !zoneRolledOut(d) {
			notReady = append(notReady, z.Name)
		}
		st.Replicas += zs.DesiredReplicas
		st.ReadyReplicas += zs.ReadyReplicas
		st.Zones = append(st.Zones, zs)
	}
	sort.Slice(st.Zones, func(i, j int) bool { return st.Zones[i].Name < st.Zones[j].Name })

	gen := pd.Generation
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen,
		})
	}

	sort.Strings(noEndpoints)
	noEndpointsMsg := "Services with no ready endpoint while their zone has ready pods (check their selector): " +
		strings.Join(noEndpoints, ", ")

	switch {
	case reconcileErr != nil:
		set(v1alpha1.ConditionDegraded, metav1.ConditionTrue, errReason, truncate(reconcileErr.Error()))
	case len(noEndpoints) > 0:
		set(v1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonServiceSelectsNoPods, noEndpointsMsg)
	case len(stalled) > 0:
		set(v1alpha1.ConditionDegraded, metav1.ConditionTrue, ReasonZoneStalled,
			"Deployments exceeded their progress deadline in zones: "+strings.Join(stalled, ", "))
	default:
		set(v1alpha1.ConditionDegraded, metav1.ConditionFalse, ReasonAsExpected, "All children are applied.")
	}

	switch {
	case reconcileErr != nil:
		// Nothing rolls while the spec cannot be built or applied: say so,
		// and why, rather than "rolling out" forever.
		set(v1alpha1.ConditionProgressing, metav1.ConditionFalse, errReason,
			truncate("Not progressing: the last reconcile failed: "+reconcileErr.Error()))
	case len(notReady) > 0:
		set(v1alpha1.ConditionProgressing, metav1.ConditionTrue, ReasonRollingOut,
			"Waiting for zones to be updated and ready: "+strings.Join(notReady, ", "))
	default:
		set(v1alpha1.ConditionProgressing, metav1.ConditionFalse, ReasonComplete, "Every zone is updated and ready.")
	}

	switch {
	case reconcileErr != nil:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, errReason, "The last reconcile failed; see the Degraded condition.")
	case enabled == 0:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonNoEnabledZones, "Every zone is disabled.")
	case len(noEndpoints) > 0:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonServiceSelectsNoPods, noEndpointsMsg)
	case len(notReady) > 0:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, ReasonNotReady,
			fmt.Sprintf("%d of %d zones are not ready: %s", len(notReady), len(pd.Spec.Zones), strings.Join(notReady, ", ")))
	default:
		set(v1alpha1.ConditionReady, metav1.ConditionTrue, ReasonReady,
			fmt.Sprintf("%d ready replicas in %d zones.", st.ReadyReplicas, enabled))
	}
}

// zoneRolledOut reports whether a zone's Deployment has been seen by the
// Deployment controller at its current generation and every desired pod is
// updated, ready and available (a zone scaled to 0 is trivially so).
func zoneRolledOut(d *appsv1.Deployment) bool {
	if d == nil {
		return false
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return s.ObservedGeneration >= d.Generation &&
		s.UpdatedReplicas == want && s.ReadyReplicas == want && s.AvailableReplicas == want && s.Replicas == want
}

// deploymentStalled reports the Deployment controller's verdict that a
// rollout stopped making progress.
func deploymentStalled(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			return true
		}
	}
	return false
}

// truncate keeps condition messages within a size users can read (the API
// allows 32768 bytes).
func truncate(s string) string {
	const max = 1024
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// statusApplyConfig is the body of the status apply: the object's identity
// and the status the operator computed, nothing else, so the apply claims no
// field outside status. Every status field is the operator's: one it leaves
// out (a zone gone from the spec, an HPA count no longer reported) is removed.
func statusApplyConfig(pd *v1alpha1.PyroscopeDistributor) (*unstructured.Unstructured, error) {
	st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&pd.Status)
	if err != nil {
		return nil, fmt.Errorf("status of %s/%s: %w", pd.Namespace, pd.Name, err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": st}}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("PyroscopeDistributor"))
	u.SetNamespace(pd.Namespace)
	u.SetName(pd.Name)
	return u, nil
}
