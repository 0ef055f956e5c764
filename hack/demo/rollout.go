package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pyrodist/pyrodist/internal/manifests"
)

var pydGVR = schema.GroupVersionResource{Group: "profiling.pyrodist.dev", Version: "v1alpha1", Resource: "pyroscopedistributors"}

// configFromCluster returns config.yaml from the config version zone's pods
// mount and overrides.yaml from the overrides ConfigMap.
func (d *demo) configFromCluster(ctx context.Context, zone string) (cfg, cfgMap, overrides string, err error) {
	c := d.c
	dep, err := c.Client.AppsV1().Deployments(sampleNS).Get(ctx, sampleName+"-"+zone, metav1.GetOptions{})
	if err != nil {
		return "", "", "", err
	}
	cfgMap = manifests.ConfigVersionOf(sampleName, &dep.Spec.Template)
	cm, err := c.Client.CoreV1().ConfigMaps(sampleNS).Get(ctx, cfgMap, metav1.GetOptions{})
	if err != nil {
		return "", "", "", err
	}
	ov, err := c.Client.CoreV1().ConfigMaps(sampleNS).Get(ctx, manifests.OverridesConfigMapName(sampleName), metav1.GetOptions{})
	if err != nil {
		return "", "", "", err
	}
	return cm.Data[manifests.ConfigFileName], cfgMap, ov.Data[manifests.OverridesFile], nil
}

// showRollout changes the sample's config.yaml (a higher default burst
// size) and prints the zone-by-zone rollout as the operator reports it in
// status: which zone rolls, and the version and config each zone runs.
func (d *demo) showRollout(ctx context.Context) error {
	c := d.c
	res := c.Dynamic.Resource(pydGVR).Namespace(sampleNS)
	patch := `{"spec":{"limits":{"defaults":{"ingestionBurstSize":"4Mi"}}}}`
	d.step("zone-by-zone rollout: kubectl patch pyd %s --type=merge -p '%s' (config.yaml changes)", sampleName, patch)
	before, err := res.Get(ctx, sampleName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	oldVersion, _, _ := unstructured.NestedString(before.Object, "status", "rollout", "version")
	patched, err := res.Patch(ctx, sampleName, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return err
	}
	start := time.Now()
	last := ""
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		u, err := res.Get(ctx, sampleName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		// Until observedGeneration reaches the patch, the status is the old one's.
		if observed, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); observed >= patched.GetGeneration() {
			line, version, phase := rolloutLine(u)
			if line != last {
				fmt.Printf("    [%5.1fs] %s\n", time.Since(start).Seconds(), line)
				last = line
			}
			if phase == "Complete" && version != oldVersion {
				break
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the rollout did not complete: %s", last)
		case <-time.After(250 * time.Millisecond):
		}
	}
	out, err := c.Kubectl(ctx, nil, "-n", sampleNS, "get", "configmaps", "-l", "profiling.pyrodist.dev/distributor="+sampleName)
	if err != nil {
		return err
	}
	fmt.Printf("    config versions left (unused ones are deleted once the rollout completes):\n%s\n", indent(out))
	return nil
}

// rolloutLine renders status.rollout and each zone's version and config.
func rolloutLine(u *unstructured.Unstructured) (line, version, phase string) {
	version, _, _ = unstructured.NestedString(u.Object, "status", "rollout", "version")
	phase, _, _ = unstructured.NestedString(u.Object, "status", "rollout", "phase")
	zone, _, _ := unstructured.NestedString(u.Object, "status", "rollout", "zone")
	var b strings.Builder
	fmt.Fprintf(&b, "rollout %-8s %-7s target %s |", phase, zone, version)
	zones, _, _ := unstructured.NestedSlice(u.Object, "status", "zones")
	for _, z := range zones {
		m, _ := z.(map[string]any)
		fmt.Fprintf(&b, " %v=%v (%v, %v/%v updated)", m["name"], m["version"], m["configMap"], m["updatedReplicas"], m["desiredReplicas"])
	}
	return b.String(), version, phase
}
