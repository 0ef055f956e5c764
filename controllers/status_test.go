package controllers

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

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

func TestStatusApplyConfig(t *testing.T) {
	pd := &v1alpha1.PyroscopeDistributor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pd", UID: "uid", ResourceVersion: "9", Generation: 3,
			Labels: map[string]string{"a": "1"}, Annotations: map[string]string{"b": "2"}},
		Spec: v1alpha1.PyroscopeDistributorSpec{Image: "img", Zones: []v1alpha1.Zone{{Name: "a"}, {Name: "b"}}},
	}
	pd.Status = v1alpha1.PyroscopeDistributorStatus{
		ObservedGeneration: 3, ZoneCount: 2, Replicas: 4, ReadyReplicas: 2, TrafficDistribution: "PreferSameZone",
		Zones: []v1alpha1.ZoneStatus{
			{Name: "a", Autoscaled: true, DesiredReplicas: 2, HPADesiredReplicas: ptrTo[int32](3)},
			{Name: "b", DesiredReplicas: 2, ReadyReplicas: 2},
		},
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonNotReady,
			Message: "m", ObservedGeneration: 3, LastTransitionTime: metav1.Unix(1700000000, 0)}},
	}
	keep := pd.DeepCopy()
	u, err := statusApplyConfig(pd)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pd, keep) {
		t.Fatal("statusApplyConfig changed its input")
	}

	// Nothing but identity and status: the apply claims no other field.
	var top []string
	for k := range u.Object {
		top = append(top, k)
	}
	if len(u.Object) != 4 || u.GetAPIVersion() != "profiling.pyrodist.dev/v1alpha1" || u.GetKind() != "PyroscopeDistributor" ||
		u.Object["status"] == nil {
		t.Fatalf("top-level keys %v, apiVersion %q, kind %q", top, u.GetAPIVersion(), u.GetKind())
	}
	md, _ := u.Object["metadata"].(map[string]any)
	if !reflect.DeepEqual(md, map[string]any{"name": "pd", "namespace": "ns"}) {
		t.Fatalf("metadata %v, want name and namespace only", md)
	}

	// The status survives the trip, and a field left unset is absent, not
	// null or zero: absent is what makes server-side apply remove it.
	var back v1alpha1.PyroscopeDistributorStatus
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object["status"].(map[string]any), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, pd.Status) {
		t.Fatalf("status round trip:\n got %+v\nwant %+v", back, pd.Status)
	}
	zones, _ := u.Object["status"].(map[string]any)["zones"].([]any)
	if len(zones) != 2 {
		t.Fatalf("zones %v", zones)
	}
	if _, ok := zones[1].(map[string]any)["hpaDesiredReplicas"]; ok {
		t.Fatalf("zone b carries hpaDesiredReplicas: %v", zones[1])
	}
}

// statusManagers returns the managedFields entries of pd's status
// subresource, and the field set of the operator's Apply entry there.
func statusManagers(t *testing.T, pd *v1alpha1.PyroscopeDistributor) ([]metav1.ManagedFieldsEntry, *fieldpath.Set) {
	t.Helper()
	var entries []metav1.ManagedFieldsEntry
	var ours *fieldpath.Set
	for _, mf := range pd.ManagedFields {
		if mf.Subresource != "status" {
			continue
		}
		entries = append(entries, mf)
		if mf.Manager == FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply && mf.FieldsV1 != nil {
			ours = &fieldpath.Set{}
			if err := ours.FromJSON(bytes.NewReader(mf.FieldsV1.Raw)); err != nil {
				t.Fatalf("managedFields of %s: %v", FieldManager, err)
			}
		}
	}
	return entries, ours
}

// Status is written by server-side apply on the status subresource, as
// FieldManager, which then owns the status fields and nothing else; a field
// the operator stops reporting goes away.
func TestStatusIsServerSideApplied(t *testing.T) {
	ns := newNamespace(t)
	key := types.NamespacedName{Namespace: ns, Name: "ssa"}
	pd := newPD(ns, "ssa", "zone-a", "zone-b")
	pd.Spec.Autoscaling = &v1alpha1.Autoscaling{MinReplicas: ptrTo[int32](2), MaxReplicas: 6}
	mustCreate(t, pd)
	pd = reconciled(t, key)

	entries, ours := statusManagers(t, pd)
	if ours == nil {
		t.Fatalf("no %s/Apply entry for the status subresource; status entries: %+v", FieldManager, entries)
	}
	for _, mf := range entries {
		if mf.Manager != FieldManager || mf.Operation != metav1.ManagedFieldsOperationApply {
			t.Errorf("status written by %s/%s too", mf.Manager, mf.Operation)
		}
	}
	for _, p := range []fieldpath.Path{
		fieldpath.MakePathOrDie("status", "observedGeneration"),
		fieldpath.MakePathOrDie("status", "zoneCount"),
		fieldpath.MakePathOrDie("status", "conditions", fieldpath.KeyByFields("type", v1alpha1.ConditionReady), "status"),
		fieldpath.MakePathOrDie("status", "conditions", fieldpath.KeyByFields("type", v1alpha1.ConditionDegraded), "reason"),
		fieldpath.MakePathOrDie("status", "zones", fieldpath.KeyByFields("name", "zone-b"), "autoscaled"),
	} {
		if !ours.Has(p) {
			t.Errorf("%s does not own %s", FieldManager, p)
		}
	}
	ours.Iterate(func(p fieldpath.Path) {
		if len(p) == 0 || p[0].FieldName == nil || *p[0].FieldName != "status" {
			t.Errorf("the status apply owns %s, outside status", p)
		}
	})

	// An HPA reports a target; the zone status shows it until autoscaling
	// is switched off, then the field is gone (not zero).
	hpa := get(t, ns, "ssa-zone-a", &autoscalingv2.HorizontalPodAutoscaler{})
	hpa.Status.DesiredReplicas = 4
	if err := k8sClient.Status().Update(testCtx, hpa); err != nil {
		t.Fatal(err)
	}
	zoneA := func(pd *v1alpha1.PyroscopeDistributor) v1alpha1.ZoneStatus {
		for _, z := range pd.Status.Zones {
			if z.Name == "zone-a" {
				return z
			}
		}
		return v1alpha1.ZoneStatus{}
	}
	eventually(t, waitFor, func() error {
		z := zoneA(get(t, ns, "ssa", &v1alpha1.PyroscopeDistributor{}))
		if z.HPADesiredReplicas == nil || *z.HPADesiredReplicas != 4 {
			return fmt.Errorf("zone-a status %+v", z)
		}
		return nil
	})
	updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) {
		pd.Spec.Autoscaling = nil
		pd.Spec.Zones = pd.Spec.Zones[:1]
	})
	reconciled(t, key)
	eventually(t, waitFor, func() error {
		pd := get(t, ns, "ssa", &v1alpha1.PyroscopeDistributor{})
		if len(pd.Status.Zones) != 1 {
			return fmt.Errorf("status zones %+v, want zone-a only", pd.Status.Zones)
		}
		if z := zoneA(pd); z.Autoscaled || z.HPADesiredReplicas != nil {
			return fmt.Errorf("zone-a status %+v, want no autoscaling fields", z)
		}
		return nil
	})
	assertNoWritesOnResync(t, key)
	entries, _ = statusManagers(t, get(t, ns, "ssa", &v1alpha1.PyroscopeDistributor{}))
	if len(entries) != 1 {
		t.Fatalf("status managers %+v, want %s/Apply alone", entries, FieldManager)
	}
}

// A reconcile that fails (the spec cannot be built, or applying it failed)
// is not progressing, whatever state the zones are in, and says why.
func TestComputeStatusFailureIsNotProgressing(t *testing.T) {
	for _, reason := range []string{ReasonInvalidSpec, ReasonApplyFailed, ReasonPodSecurityRefused} {
		t.Run(reason, func(t *testing.T) {
			pd := &v1alpha1.PyroscopeDistributor{ObjectMeta: metav1.ObjectMeta{Name: "pd", Generation: 4}}
			pd.Spec.Zones = []v1alpha1.Zone{{Name: "a"}, {Name: "b"}}
			obs := observed{deployments: map[string]*appsv1.Deployment{"pd-a": deployment("pd-a", 2, false)}}
			computeStatus(pd, obs, errors.New("spec.limits: boom"), reason)
			c := meta.FindStatusCondition(pd.Status.Conditions, v1alpha1.ConditionProgressing)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != reason || c.ObservedGeneration != 4 ||
				!strings.Contains(c.Message, "boom") {
				t.Fatalf("progressing %+v, want False/%s naming the error", c, reason)
			}
		})
	}
}

// A zone whose pods are ready but whose Service has EndpointSlices without a
// ready endpoint (its selector matches no ready pod) is reported; a Service
// without any EndpointSlice yet (or in a cluster without the EndpointSlice
// controller) is not.
func TestComputeStatusServiceSelectsNoPods(t *testing.T) {
	cases := []struct {
		name      string
		endpoints map[string]int32
		ready     metav1.ConditionStatus
		reason    string
		degraded  metav1.ConditionStatus
	}{
		{"every Service has ready endpoints", map[string]int32{"pd-a": 2, "pd-b": 3}, metav1.ConditionTrue, ReasonReady, metav1.ConditionFalse},
		{"no EndpointSlices known", nil, metav1.ConditionTrue, ReasonReady, metav1.ConditionFalse},
		{"zone b selects no pod", map[string]int32{"pd-a": 2, "pd-b": 0}, metav1.ConditionFalse, ReasonServiceSelectsNoPods, metav1.ConditionTrue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pd := &v1alpha1.PyroscopeDistributor{ObjectMeta: metav1.ObjectMeta{Name: "pd", Generation: 1}}
			pd.Spec.Zones = []v1alpha1.Zone{{Name: "a"}, {Name: "b"}}
			obs := observed{
				deployments:    map[string]*appsv1.Deployment{"pd-a": deployment("pd-a", 2, true), "pd-b": deployment("pd-b", 3, true)},
				readyEndpoints: tc.endpoints,
			}
			computeStatus(pd, obs, nil, "")
			r, d := meta.FindStatusCondition(pd.Status.Conditions, v1alpha1.ConditionReady),
				meta.FindStatusCondition(pd.Status.Conditions, v1alpha1.ConditionDegraded)
			if r.Status != tc.ready || r.Reason != tc.reason || d.Status != tc.degraded {
				t.Fatalf("ready %+v degraded %+v", r, d)
			}
			if tc.ready == metav1.ConditionFalse && (!strings.Contains(r.Message, "b") || !strings.Contains(d.Message, "pd-b")) {
				t.Fatalf("messages do not name zone b / Service pd-b: %q, %q", r.Message, d.Message)
			}
		})
	}
	// A disabled zone's Service selects nothing by design.
	pd := &v1alpha1.PyroscopeDistributor{ObjectMeta: metav1.ObjectMeta{Name: "pd", Generation: 1}}
	pd.Spec.Zones = []v1alpha1.Zone{{Name: "a"}, {Name: "b", Disabled: true}}
	computeStatus(pd, observed{
		deployments:    map[string]*appsv1.Deployment{"pd-a": deployment("pd-a", 2, true), "pd-b": deployment("pd-b", 0, true)},
		readyEndpoints: map[string]int32{"pd-a": 2, "pd-b": 0},
	}, nil, "")
	if r := meta.FindStatusCondition(pd.Status.Conditions, v1alpha1.ConditionReady); r.Status != metav1.ConditionTrue {
		t.Fatalf("a drained zone made the object not ready: %+v", r)
	}
}
