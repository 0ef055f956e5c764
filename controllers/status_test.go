package controllers

import (
	"errors"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
)

func deployment(name string, replicas int32, rolled bool) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 2}}
	d.Spec.Replicas = &replicas
	if rolled {
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: replicas,
			UpdatedReplicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas}
	} else {
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: replicas, ReadyReplicas: replicas}
	}
	return d
}

func TestComputeStatus(t *testing.T) {
	stalled := deployment("pd-b", 2, false)
	stalled.Status.Conditions = []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}}

	cases := []struct {
		name        string
		disabledB   bool
		deployments []*appsv1.Deployment
		err         error
		ready       metav1.ConditionStatus
		readyReason string
		progressing metav1.ConditionStatus
		degraded    metav1.ConditionStatus
		degReason   string
	}{
		{"every zone rolled out", false, []*appsv1.Deployment{deployment("pd-a", 2, true), deployment("pd-b", 3, true)}, nil,
			metav1.ConditionTrue, ReasonReady, metav1.ConditionFalse, metav1.ConditionFalse, ReasonAsExpected},
		{"one zone rolling", false, []*appsv1.Deployment{deployment("pd-a", 2, true), deployment("pd-b", 3, false)}, nil,
			metav1.ConditionFalse, ReasonNotReady, metav1.ConditionTrue, metav1.ConditionFalse, ReasonAsExpected},
		{"a zone missing its Deployment", false, []*appsv1.Deployment{deployment("pd-a", 2, true)}, nil,
			metav1.ConditionFalse, ReasonNotReady, metav1.ConditionTrue, metav1.ConditionFalse, ReasonAsExpected},
		{"a stalled rollout", false, []*appsv1.Deployment{deployment("pd-a", 2, true), stalled}, nil,
			metav1.ConditionFalse, ReasonNotReady, metav1.ConditionTrue, metav1.ConditionTrue, ReasonZoneStalled},
		{"disabled zone drained to 0 is ready", true, []*appsv1.Deployment{deployment("pd-a", 2, true), deployment("pd-b", 0, true)}, nil,
			metav1.ConditionTrue, ReasonReady, metav1.ConditionFalse, metav1.ConditionFalse, ReasonAsExpected},
		{"reconcile error", false, []*appsv1.Deployment{deployment("pd-a", 2, true), deployment("pd-b", 3, true)}, errors.New("boom"),
			metav1.ConditionFalse, ReasonApplyFailed, metav1.ConditionFalse, metav1.ConditionTrue, ReasonApplyFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pd := &v1alpha1.PyroscopeDistributor{ObjectMeta: metav1.ObjectMeta{Name: "pd", Generation: 7}}
			pd.Spec.Zones = []v1alpha1.Zone{{Name: "b", Disabled: tc.disabledB}, {Name: "a"}}
			obs := observed{deployments: map[string]*appsv1.Deployment{}, traffic: "PreferSameZone"}
			for _, d := range tc.deployments {
				obs.deployments[d.Name] = d
			}
			reason := ""
			if tc.err != nil {
				reason = ReasonApplyFailed
			}
			computeStatus(pd, obs, tc.err, reason)

			for _, want := range []struct {
				typ    string
				status metav1.ConditionStatus
				reason string
			}{
				{v1alpha1.ConditionReady, tc.ready, tc.readyReason},
				{v1alpha1.ConditionProgressing, tc.progressing, ""},
				{v1alpha1.ConditionDegraded, tc.degraded, tc.degReason},
			} {
				c := meta.FindStatusCondition(pd.Status.Conditions, want.typ)
				if c == nil || c.Status != want.status || (want.reason != "" && c.Reason != want.reason) || c.ObservedGeneration != 7 {
					t.Errorf("%s = %+v, want %s/%s at generation 7", want.typ, c, want.status, want.reason)
				}
			}
			if pd.Status.Zones[0].Name != "a" || pd.Status.ZoneCount != 2 || pd.Status.TrafficDistribution != "PreferSameZone" {
				t.Errorf("status %+v", pd.Status)
			}
		})
	}
}

func TestComputeStatusReportsTheHPATarget(t *testing.T) {
	pd := &v1alpha1.PyroscopeDistributor{ObjectMeta: metav1.ObjectMeta{Name: "pd", Generation: 1}}
	pd.Spec.Zones = []v1alpha1.Zone{{Name: "a"}}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "pd-a"}}
	hpa.Status.DesiredReplicas = 5
	obs := observed{
		deployments: map[string]*appsv1.Deployment{"pd-a": deployment("pd-a", 4, false)},
		hpas:        map[string]*autoscalingv2.HorizontalPodAutoscaler{"pd-a": hpa},
	}
	computeStatus(pd, obs, nil, "")
	z := pd.Status.Zones[0]
	if !z.Autoscaled || z.HPADesiredReplicas == nil || *z.HPADesiredReplicas != 5 || z.DesiredReplicas != 4 {
		t.Fatalf("zone status %+v", z)
	}
	if pd.Status.TrafficDistribution != v1alpha1.TrafficDistributionNone {
		t.Fatalf("traffic %q, want None without a shared Service mode", pd.Status.TrafficDistribution)
	}
}
