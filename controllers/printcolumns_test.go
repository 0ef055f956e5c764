package controllers

import (
	"encoding/json"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
)

// getTable asks the API server for the PyroscopeDistributors of ns as
// kubectl get does: as a Table, whose columns are the CRD's printer columns.
func getTable(t *testing.T, ns string) *metav1.Table {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(testCfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := dc.RESTClient().Get().
		AbsPath("/apis/profiling.pyrodist.dev/v1alpha1/namespaces", ns, "pyroscopedistributors").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		Do(testCtx).Raw()
	if err != nil {
		t.Fatalf("get as Table: %v", err)
	}
	table := &metav1.Table{}
	if err := json.Unmarshal(raw, table); err != nil {
		t.Fatal(err)
	}
	return table
}

// `kubectl get pyd` shows whether an object is Ready and, when not, why.
func TestGetShowsReadyAndReason(t *testing.T) {
	ns, _ := createReconciled(t, "cols", "zone-a") // no Deployment controller in envtest: not ready yet

	table := getTable(t, ns)
	col := map[string]int{}
	for i, c := range table.ColumnDefinitions {
		col[c.Name] = i
	}
	for _, name := range []string{"Ready", "Reason"} {
		if i, ok := col[name]; !ok || table.ColumnDefinitions[i].Priority != 0 {
			t.Fatalf("columns %+v: want %s shown by default", table.ColumnDefinitions, name)
		}
	}
	if len(table.Rows) != 1 {
		t.Fatalf("rows %+v", table.Rows)
	}
	cells := table.Rows[0].Cells
	if cells[col["Ready"]] != "False" || cells[col["Reason"]] != ReasonNotReady {
		t.Fatalf("Ready %v, Reason %v; want False, %s (cells %v)", cells[col["Ready"]], cells[col["Reason"]], ReasonNotReady, cells)
	}
}
