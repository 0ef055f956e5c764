//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pyrodist/pyrodist/test/localcluster"
)

// checkServiceSelectorDrift runs against the sample once it is Ready, with
// the cluster's own EndpointSlice controller: a key added by hand to zone z's
// Service selector leaves the Service without endpoints, which a paused
// object reports (Ready=False, ServiceSelectsNoPods); unpaused, the operator
// puts its selector back whole and the object is Ready again.
func checkServiceSelectorDrift(t *testing.T, c *localcluster.Cluster, z string) {
	t.Helper()
	ctx := context.Background()
	pause := func(paused bool) {
		t.Helper()
		patch := fmt.Appendf(nil, `{"spec":{"paused":%t}}`, paused)
		if _, err := c.Dynamic.Resource(pydGVR).Namespace(sampleNS).Patch(ctx, sampleName, types.MergePatchType, patch,
			metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	name := sampleName + "-" + z
	svc, err := c.Client.CoreV1().Services(sampleNS).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := maps.Clone(svc.Spec.Selector)

	pause(true)
	svc.Spec.Selector["e2e"] = "by-hand"
	if _, err := c.Client.CoreV1().Services(sampleNS).Update(ctx, svc, metav1.UpdateOptions{FieldManager: "e2e-edit"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "Ready=False ServiceSelectsNoPods", func(ctx context.Context) error {
		cond, err := sampleStatusEntry(ctx, c, "conditions", "type", "Ready")
		if err != nil {
			return err
		}
		if str(cond, "status") != "False" || str(cond, "reason") != "ServiceSelectsNoPods" {
			return fmt.Errorf("Ready=%s %s: %s", str(cond, "status"), str(cond, "reason"), str(cond, "message"))
		}
		return nil
	})

	pause(false)
	eventually(t, 60*time.Second, "selector restored", func(ctx context.Context) error {
		svc, err := c.Client.CoreV1().Services(sampleNS).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !maps.Equal(svc.Spec.Selector, want) {
			return fmt.Errorf("selector %v, want %v", svc.Spec.Selector, want)
		}
		return nil
	})
	eventually(t, 60*time.Second, "PyroscopeDistributor Ready again", func(ctx context.Context) error {
		return conditionTrue(ctx, c, "Ready")
	})
	t.Logf("a hand-edited selector of Service %s was reported and then restored", name)
}
