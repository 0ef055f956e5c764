package controllers

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/manifests"
)

// recordedReasons drains a fake recorder: the reason of each Event, in order.
func recordedReasons(rec *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			f := strings.Fields(e) // "<type> <reason> <note>"
			out = append(out, f[1])
		default:
			return out
		}
	}
}

// The Events of a zone Deployment's apply say what happened: a new zone, a
// deleted Deployment created again, a hand scale undone, replicas taken back
// from an HPA, a config roll (not in a zone with no pods to roll).
func TestDeploymentEventReasons(t *testing.T) {
	zoneDeploy := func(replicas *int32, configHash string) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "pd-a", Namespace: "ns",
			Labels: map[string]string{manifests.LabelZone: "a"}}}
		d.Spec.Replicas = replicas
		d.Spec.Template.Annotations = map[string]string{manifests.AnnotationConfigHash: configHash}
		return d
	}
	// ours: live whose replicas the operator still owns (nothing to take back).
	ours := func(d *appsv1.Deployment) *appsv1.Deployment {
		d.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply,
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:replicas":{}}}`)}}}
		return d
	}
	cases := []struct {
		name   string
		known  *v1alpha1.ZoneStatus // zone a in the status before this reconcile
		zone   v1alpha1.Zone
		desire *appsv1.Deployment
		live   *appsv1.Deployment
		want   []string
	}{
		{"zone added", nil, v1alpha1.Zone{Name: "a"}, zoneDeploy(ptrTo[int32](2), "h1"), nil, []string{EventZoneAdded}},
		{"deleted Deployment of a known zone", &v1alpha1.ZoneStatus{Name: "a", DesiredReplicas: 2}, v1alpha1.Zone{Name: "a"},
			zoneDeploy(ptrTo[int32](2), "h1"), nil, []string{EventChildRecreated}},
		{"zone listed by a reconcile that failed before creating it", &v1alpha1.ZoneStatus{Name: "a"}, v1alpha1.Zone{Name: "a"},
			zoneDeploy(ptrTo[int32](2), "h1"), nil, []string{EventZoneAdded}},
		{"scaled by hand", &v1alpha1.ZoneStatus{Name: "a", DesiredReplicas: 2}, v1alpha1.Zone{Name: "a"},
			zoneDeploy(ptrTo[int32](2), "h1"), zoneDeploy(ptrTo[int32](9), "h1"), []string{EventScaleRestored}},
		{"autoscaling switched off", &v1alpha1.ZoneStatus{Name: "a", Autoscaled: true}, v1alpha1.Zone{Name: "a"},
			zoneDeploy(ptrTo[int32](4), "h1"), zoneDeploy(ptrTo[int32](7), "h1"), []string{EventReplicasTaken}},
		{"config changed", &v1alpha1.ZoneStatus{Name: "a", DesiredReplicas: 2}, v1alpha1.Zone{Name: "a"},
			zoneDeploy(ptrTo[int32](2), "h2"), ours(zoneDeploy(ptrTo[int32](2), "h1")), []string{EventConfigRolled}},
		{"config changed in a disabled zone", &v1alpha1.ZoneStatus{Name: "a", Disabled: true}, v1alpha1.Zone{Name: "a", Disabled: true},
			zoneDeploy(ptrTo[int32](0), "h2"), ours(zoneDeploy(ptrTo[int32](0), "h1")), nil},
		{"config changed in an autoscaled zone", &v1alpha1.ZoneStatus{Name: "a", Autoscaled: true}, v1alpha1.Zone{Name: "a"},
			zoneDeploy(nil, "h2"), zoneDeploy(ptrTo[int32](3), "h1"), []string{EventConfigRolled}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := events.NewFakeRecorder(10)
			r := &PyroscopeDistributorReconciler{Recorder: rec}
			// Generation 3 not yet observed: the last reconcile failed,
			// or this one applies a new spec.
			pd := &v1alpha1.PyroscopeDistributor{ObjectMeta: metav1.ObjectMeta{Name: "pd", Namespace: "ns", Generation: 3}}
			pd.Status.ObservedGeneration = 2
			pd.Spec.Zones = []v1alpha1.Zone{tc.zone}
			if tc.known != nil {
				pd.Status.Zones = []v1alpha1.ZoneStatus{*tc.known}
			}
			r.deploymentEvents(pd, tc.desire, tc.live)
			if got := recordedReasons(rec); !slices.Equal(got, tc.want) {
				t.Fatalf("events %v, want %v", got, tc.want)
			}
		})
	}
}

// Every Event reason the operator records is documented, once, in the
// table of docs/operator.md, and the table lists no reason the code lacks.
func TestEventReasonsAreDocumented(t *testing.T) {
	code := map[string]bool{}
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, id := range vs.Names {
				if !strings.HasPrefix(id.Name, "Event") || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, _ := strconv.Unquote(lit.Value)
					code[v] = true
				}
			}
			return true
		})
	}
	if len(code) < 5 {
		t.Fatalf("found only %d Event reason constants: %v", len(code), code)
	}

	raw, err := os.ReadFile(filepath.Join("..", "docs", "operator.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(raw), "## Events")
	if !ok {
		t.Fatal("docs/operator.md has no Events section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	documented := map[string]int{}
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			continue
		}
		reason := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if reason == "" || reason == "Reason" || strings.HasPrefix(reason, "-") {
			continue
		}
		documented[reason]++
	}
	for r := range code {
		if documented[r] != 1 {
			t.Errorf("Event reason %s is documented %d times in docs/operator.md, want once", r, documented[r])
		}
	}
	for r := range documented {
		if !code[r] {
			t.Errorf("docs/operator.md documents Event reason %s, which the operator does not record", r)
		}
	}
}

// Against the API server: a zone Deployment deleted by hand comes back with
// ChildRecreated (not ZoneAdded), and one scaled by hand is set back with
// ScaleRestored (not the HPA hand-back's ReplicasTakenBack).
func TestEventsAboutHandEdits(t *testing.T) {
	ns, key := createReconciled(t, "ev", "zone-a")

	deleteAndAwaitRecreated(t, zoneDeployment(t, ns, "ev", "zone-a"), nil)
	expectEvents(t, ns, "ev", EventZoneAdded, EventChildRecreated)

	scale := &autoscalingv1.Scale{}
	d := zoneDeployment(t, ns, "ev", "zone-a")
	if err := k8sClient.SubResource("scale").Get(testCtx, d, scale); err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 7
	if err := k8sClient.SubResource("scale").Update(testCtx, d, client.WithSubResourceBody(scale),
		client.FieldOwner("kubectl-scale")); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitFor, func() error {
		if n := *zoneDeployment(t, ns, "ev", "zone-a").Spec.Replicas; n != 2 {
			return fmt.Errorf("replicas %d, want 2 back", n)
		}
		return nil
	})
	expectEvents(t, ns, "ev", EventScaleRestored)
	var list eventsv1.EventList
	if err := k8sClient.List(testCtx, &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Reason == EventReplicasTaken {
			t.Errorf("a hand scale was reported as an HPA hand-back: %s", e.Note)
		}
	}
	assertNoWritesOnResync(t, key)
}
