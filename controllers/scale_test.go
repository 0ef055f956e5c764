package controllers

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
)

// TestManyDistributorsConvergeAndResyncWritesNothing creates 100
// PyroscopeDistributors of 3 zones each (a third of them autoscaled), waits until every one is reconciled
// (its generation observed, its 3 zone Deployments present), then resyncs all
// of them and counts the operator's mutating requests: there must be none.
// The convergence time is logged, not asserted.
func TestManyDistributorsConvergeAndResyncWritesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the 100-object convergence run")
	}
	const n = 100
	ns := newNamespace(t)

	// A user-side client that is not the bottleneck of the measurement.
	cfg := rest.CopyConfig(testCfg)
	cfg.QPS, cfg.Burst = 500, 1000
	user, err := client.New(cfg, client.Options{Scheme: testScheme})
	if err != nil {
		t.Fatal(err)
	}

	writesBefore := managerRequests.mark()
	start := time.Now()
	for i := range n {
		pd := newPD(ns, fmt.Sprintf("pd-%03d", i), "zone-a", "zone-b", "zone-c")
		switch i % 3 { // a mix: default size, fixed size, autoscaled
		case 1:
			pd.Spec.Replicas = ptrTo[int32](3)
		case 2:
			pd.Spec.Autoscaling = &v1alpha1.Autoscaling{MinReplicas: ptrTo[int32](2), MaxReplicas: 6}
		}
		if err := user.Create(testCtx, pd); err != nil {
			t.Fatal(err)
		}
	}
	created := time.Since(start)

	eventually(t, 5*time.Minute, func() error {
		var list v1alpha1.PyroscopeDistributorList
		if err := user.List(testCtx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		pending := 0
		for _, pd := range list.Items {
			if pd.Status.ObservedGeneration != pd.Generation {
				pending++
			}
		}
		if pending > 0 {
			return fmt.Errorf("%d of %d not reconciled", pending, len(list.Items))
		}
		var ds appsv1.DeploymentList
		if err := user.List(testCtx, &ds, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(ds.Items) != 3*n {
			return fmt.Errorf("%d Deployments, want %d", len(ds.Items), 3*n)
		}
		return nil
	})
	converged := time.Since(start)
	writes := len(managerRequests.mutatingSince(writesBefore, ns))
	t.Logf("%d PyroscopeDistributors x 3 zones: created in %s, converged %s after the first create; %d mutating requests by the operator (%.1f per object)",
		n, created.Round(time.Millisecond), converged.Round(time.Millisecond), writes, float64(writes)/n)

	// A resync of every object: reconcile each once, as a periodic resync
	// would, and count what the operator sends. Watch events of the last
	// writes may still be on their way to the cache, so first wait until a
	// full pass is quiet, then measure a second pass.
	resync := func() (writes []string, all int, took time.Duration) {
		mark := managerRequests.mark()
		s := time.Now()
		for i := range n {
			reconcileNow(t, types.NamespacedName{Namespace: ns, Name: fmt.Sprintf("pd-%03d", i)})
		}
		return managerRequests.mutatingSince(mark, ns), managerRequests.mark() - mark, time.Since(s)
	}
	eventually(t, time.Minute, func() error {
		if w, _, _ := resync(); len(w) > 0 {
			return fmt.Errorf("%d writes, first %s", len(w), w[0])
		}
		return nil
	})
	w, all, took := resync()
	t.Logf("resync of %d objects: %d mutating requests, %d requests of any kind (reads come from the cache), %s",
		n, len(w), all, took.Round(time.Millisecond))
	if len(w) != 0 {
		t.Fatalf("a resync of unchanged objects made %d mutating requests: %v", len(w), w[:min(len(w), 10)])
	}
}
