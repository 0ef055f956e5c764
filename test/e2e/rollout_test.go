//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/pyrodist/pyrodist/internal/manifests"
	"github.com/pyrodist/pyrodist/test/localcluster"
)

// TestZoneByZoneRollout runs the operator (namespaced release) on the local
// control plane and changes a three-zone PyroscopeDistributor's config:
// zone-a rolls, then zone-b, then zone-c, each once the one before has its
// new pods Running and ready. Then, with zone-b's node cordoned, another
// change halts in zone-b (its new pods cannot be scheduled) while zone-c
// keeps its version; reverting the spec rolls back to the earlier config
// version, by name and content.
func TestZoneByZoneRollout(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	crds := "crds.enabled=false"
	if _, err := c.Dynamic.Resource(pydGVR).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		crds = "crds.enabled=true"
	}
	const release, opNS, ns, name = "rollout", "pyrodist-rollout", "rollout-e2e", "roll"
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if out, err := c.Helm(ctx, "install", release, chartDir(), "--namespace", opNS, "--create-namespace",
		"--set", crds, "--set", "watchNamespaces={"+ns+"}", "--wait", "--timeout", "2m"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() {
		_, _ = c.Helm(context.Background(), "uninstall", release, "--namespace", opNS, "--wait")
	})
	op, err := c.StartLocalOperator(ctx, buildOperator(t), opNS, release+"-pyrodist", "operator-rollout")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("operator log tail:\n%s", op.LogTail(40))
			for _, args := range [][]string{
				{"-n", ns, "get", "pyroscopedistributors", "-o", "yaml"},
				{"-n", ns, "get", "deploy,rs,pods,configmaps", "-o", "wide"},
				{"-n", ns, "get", "events", "--sort-by=.lastTimestamp"},
			} {
				out, _ := c.Kubectl(context.Background(), nil, args...)
				t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
			}
		}
		op.Stop(10 * time.Second)
	})

	zones := c.Zones
	cr := map[string]any{
		"apiVersion": "profiling.pyrodist.dev/v1alpha1", "kind": "PyroscopeDistributor",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"replicas": 1,
			"rollout":  map[string]any{"zoneTimeout": "20s"},
			"limits":   map[string]any{"defaults": map[string]any{"ingestionRate": "4Mi"}},
			"zones":    []any{map[string]any{"name": zones[0]}, map[string]any{"name": zones[1]}, map[string]any{"name": zones[2]}},
		},
	}
	raw, err := yaml.Marshal(cr)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "apply the CR", func(ctx context.Context) error {
		_, err := c.Kubectl(ctx, strings.NewReader(string(raw)), "apply", "-n", ns, "-f", "-")
		return err
	})
	r := &rolloutWatch{c: c, ns: ns, name: name, zones: zones}
	v1 := r.waitComplete(t, "", 120*time.Second)
	cm1 := r.mounted(t, zones[0])
	t.Logf("created: every zone on version %s, config %s", v1, cm1)

	// 1. A config change rolls zone by zone, in spec order.
	v2, times := r.rollTo(t, v1, `{"spec":{"limits":{"defaults":{"ingestionRate":"8Mi"}}}}`)
	for i := 1; i < len(zones); i++ {
		prev, z := zones[i-1], zones[i]
		if !times[z].switched.After(times[prev].ready) && !times[z].switched.Equal(times[prev].ready) {
			t.Errorf("zone %s switched at %s, before zone %s was ready at %s", z, stamp(times[z].switched), prev, stamp(times[prev].ready))
		}
	}
	cm2 := r.mounted(t, zones[0])
	if cm2 == cm1 {
		t.Fatalf("the config change kept ConfigMap %s", cm1)
	}
	eventually(t, 60*time.Second, "unused config version deleted", func(ctx context.Context) error {
		if _, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, cm1, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("%s still there (%v)", cm1, err)
		}
		return nil
	})

	// 2. zone-b's node cordoned: its new pods cannot be scheduled, the rollout halts there.
	nodeB := c.NodeName[zones[1]]
	if out, err := c.Kubectl(ctx, nil, "cordon", nodeB); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = c.Kubectl(context.Background(), nil, "uncordon", nodeB) })
	t.Logf("%s: cordoned node %s of zone %s", stamp(time.Now()), nodeB, zones[1])
	r.patch(t, `{"spec":{"limits":{"defaults":{"ingestionRate":"16Mi"}}}}`)
	eventually(t, 120*time.Second, "rollout halted in "+zones[1], func(ctx context.Context) error {
		u, err := r.get(ctx)
		if err != nil {
			return err
		}
		if str(u.Object, "status", "rollout", "phase") != "Halted" || str(u.Object, "status", "rollout", "zone") != zones[1] {
			return fmt.Errorf("rollout %v", get(u.Object, "status", "rollout"))
		}
		cond, _ := conditionOf(u, "Progressing")
		if str(cond, "status") != "False" || str(cond, "reason") != "RolloutHalted" || !strings.Contains(str(cond, "message"), zones[1]) {
			return fmt.Errorf("Progressing %v", cond)
		}
		t.Logf("%s: halted: %s", stamp(time.Now()), str(cond, "message"))
		return nil
	})
	if got := r.mounted(t, zones[2]); got != cm2 {
		t.Errorf("zone %s mounts %s during the halt, want its version %s", zones[2], got, cm2)
	}
	cm3 := r.mounted(t, zones[0])
	eventually(t, 30*time.Second, "RolloutHalted Event", func(ctx context.Context) error {
		evs, err := c.Client.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason == "RolloutHalted" && e.Regarding.Name == name {
				t.Logf("Event %s: %s", e.Reason, e.Note)
				return nil
			}
		}
		return fmt.Errorf("no RolloutHalted Event among %d", len(evs.Items))
	})

	// 3. Reverting the spec restores the earlier version: same ConfigMap, same content.
	content := r.configYAML(t, cm2)
	v, _ := r.rollTo(t, "", `{"spec":{"limits":{"defaults":{"ingestionRate":"8Mi"}}}}`)
	if v != v2 {
		t.Errorf("reverted to version %s, want %s", v, v2)
	}
	for _, z := range zones {
		if got := r.mounted(t, z); got != cm2 {
			t.Errorf("zone %s mounts %s after the revert, want %s", z, got, cm2)
		}
	}
	if got := r.configYAML(t, cm2); got != content {
		t.Errorf("config.yaml of %s changed:\n%s\nwant:\n%s", cm2, got, content)
	}
	eventually(t, 60*time.Second, "the halted version's ConfigMap deleted", func(ctx context.Context) error {
		if _, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, cm3, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("%s still there (%v)", cm3, err)
		}
		return nil
	})
}

func stamp(t time.Time) string { return t.UTC().Format("15:04:05.000") }

// rolloutWatch follows one PyroscopeDistributor's rollouts.
type rolloutWatch struct {
	c     *localcluster.Cluster
	ns    string
	name  string
	zones []string
}

type zoneTimes struct{ switched, ready time.Time }

func (r *rolloutWatch) get(ctx context.Context) (*unstructured.Unstructured, error) {
	return r.c.Dynamic.Resource(pydGVR).Namespace(r.ns).Get(ctx, r.name, metav1.GetOptions{})
}

func (r *rolloutWatch) patch(t *testing.T, patch string) int64 {
	t.Helper()
	u, err := r.c.Dynamic.Resource(pydGVR).Namespace(r.ns).Patch(context.Background(), r.name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: patched %s", stamp(time.Now()), patch)
	return u.GetGeneration()
}

// mounted returns the config version zone's Deployment mounts.
func (r *rolloutWatch) mounted(t *testing.T, zone string) string {
	t.Helper()
	d, err := r.c.Client.AppsV1().Deployments(r.ns).Get(context.Background(), r.name+"-"+zone, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return manifests.ConfigVersionOf(r.name, &d.Spec.Template)
}

func (r *rolloutWatch) configYAML(t *testing.T, cm string) string {
	t.Helper()
	m, err := r.c.Client.CoreV1().ConfigMaps(r.ns).Get(context.Background(), cm, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m.Data[manifests.ConfigFileName]
}

// waitComplete waits for status.rollout Complete on a version other than
// not, with every zone's pods on it ready, and returns the version.
func (r *rolloutWatch) waitComplete(t *testing.T, not string, timeout time.Duration) string {
	t.Helper()
	var version string
	eventually(t, timeout, "rollout complete", func(ctx context.Context) error {
		u, err := r.get(ctx)
		if err != nil {
			return err
		}
		if g, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); g != u.GetGeneration() {
			return fmt.Errorf("observedGeneration %d, generation %d", g, u.GetGeneration())
		}
		version = str(u.Object, "status", "rollout", "version")
		if str(u.Object, "status", "rollout", "phase") != "Complete" || version == not {
			return fmt.Errorf("rollout %v", get(u.Object, "status", "rollout"))
		}
		for _, z := range r.zones {
			if err := r.zoneReady(ctx, z, version); err != nil {
				return err
			}
		}
		return nil
	})
	return version
}

// zoneReady checks that zone's Deployment runs version with all its pods
// updated and ready.
func (r *rolloutWatch) zoneReady(ctx context.Context, zone, version string) error {
	d, err := r.c.Client.AppsV1().Deployments(r.ns).Get(ctx, r.name+"-"+zone, metav1.GetOptions{})
	if err != nil {
		return err
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	if manifests.TemplateVersion(&d.Spec.Template) != version || s.ObservedGeneration < d.Generation ||
		s.UpdatedReplicas != want || s.AvailableReplicas != want || s.Replicas != want {
		return fmt.Errorf("zone %s: version %s, status %+v", zone, manifests.TemplateVersion(&d.Spec.Template), s)
	}
	return nil
}

// rollTo applies patch and follows the rollout to completion, logging when
// each zone's Deployment took the new version and when its pods were ready.
func (r *rolloutWatch) rollTo(t *testing.T, from, patch string) (string, map[string]zoneTimes) {
	t.Helper()
	gen := r.patch(t, patch)
	times := map[string]zoneTimes{}
	target := ""
	eventually(t, 180*time.Second, "zone-by-zone rollout", func(ctx context.Context) error {
		u, err := r.get(ctx)
		if err != nil {
			return err
		}
		if g, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); g < gen {
			return fmt.Errorf("observedGeneration %d < %d", g, gen)
		}
		target = str(u.Object, "status", "rollout", "version")
		if target == "" || target == from {
			return fmt.Errorf("no new target yet: %v", get(u.Object, "status", "rollout"))
		}
		now := time.Now()
		for _, z := range r.zones {
			zt := times[z]
			d, err := r.c.Client.AppsV1().Deployments(r.ns).Get(ctx, r.name+"-"+z, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if zt.switched.IsZero() && manifests.TemplateVersion(&d.Spec.Template) == target {
				zt.switched = now
				t.Logf("%s: zone %s takes version %s (config %s)", stamp(now), z, target, manifests.ConfigVersionOf(r.name, &d.Spec.Template))
			}
			if !zt.switched.IsZero() && zt.ready.IsZero() && r.zoneReady(ctx, z, target) == nil {
				zt.ready = now
				t.Logf("%s: zone %s ready on version %s", stamp(now), z, target)
			}
			times[z] = zt
		}
		if str(u.Object, "status", "rollout", "phase") != "Complete" || str(u.Object, "status", "rollout", "version") != target {
			return fmt.Errorf("rollout %v", get(u.Object, "status", "rollout"))
		}
		for _, z := range r.zones {
			if times[z].ready.IsZero() {
				return fmt.Errorf("zone %s not ready on %s", z, target)
			}
		}
		return nil
	})
	return target, times
}

// conditionOf returns the condition of type typ of a PyroscopeDistributor.
func conditionOf(u *unstructured.Unstructured, typ string) (any, bool) {
	conds, _ := get(u.Object, "status", "conditions").([]any)
	for _, c := range conds {
		if str(c, "type") == typ {
			return c, true
		}
	}
	return nil, false
}
