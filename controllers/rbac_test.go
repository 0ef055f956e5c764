package controllers

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// TestRoleIsLeastPrivilege pins the generated ClusterRole to what the
// reconciler uses, so a marker that grants more (a verb "just in case",
// secrets, nodes) fails here instead of shipping. The suite's manager runs
// with exactly this role, which proves it is also enough.
func TestRoleIsLeastPrivilege(t *testing.T) {
	// Why each verb: get/list/watch feed the cache and the API reader;
	// create+patch are server-side apply (the API server asks for create when
	// an apply creates the object); delete is pruning and recreating.
	children := []string{"create", "delete", "get", "list", "patch", "watch"}
	want := map[string][]string{
		"apps/deployments":                             children,
		"/services":                                    children,
		"/configmaps":                                  children,
		"/serviceaccounts":                             children,
		"autoscaling/horizontalpodautoscalers":         children,
		"policy/poddisruptionbudgets":                  children,
		"profiling.pyrodist.dev/pyroscopedistributors": {"get", "list", "watch"},
		// Status is written by server-side apply, which is a PATCH.
		"profiling.pyrodist.dev/pyroscopedistributors/status": {"patch"},
		// Owner references with blockOwnerDeletion need update on the owner's
		// finalizers where OwnerReferencesPermissionEnforcement is on.
		"profiling.pyrodist.dev/pyroscopedistributors/finalizers": {"update"},
		"events.k8s.io/events": {"create", "patch"},
		// EndpointSlices (from the cache) tell whether a zone's Service
		// selects ready pods.
		"discovery.k8s.io/endpointslices": {"list", "watch"},
		// The ring-health poller finds one pod per zone.
		"/pods": {"get", "list", "watch"},
		// PodMonitors are read uncached (never watched: the CRD may be absent).
		"monitoring.coreos.com/podmonitors": {"create", "delete", "get", "patch"},
	}

	raw, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(raw, &role); err != nil {
		t.Fatal(err)
	}
	if role.Name != "manager-role" {
		t.Errorf("ClusterRole name %q, want manager-role (kustomize prefixes it to pyrodist-manager-role)", role.Name)
	}
	got := map[string][]string{}
	for _, r := range role.Rules {
		if len(r.NonResourceURLs) > 0 || len(r.ResourceNames) > 0 {
			t.Errorf("unexpected rule %+v", r)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				k := g + "/" + res
				got[k] = append(got[k], r.Verbs...)
			}
		}
	}
	for k, verbs := range got {
		slices.Sort(verbs)
		w := slices.Clone(want[k])
		slices.Sort(w)
		if w == nil {
			t.Errorf("role grants %s %v; the reconciler needs nothing there", k, verbs)
		} else if !slices.Equal(verbs, w) {
			t.Errorf("role grants %s %s, want %s", k, strings.Join(verbs, ","), strings.Join(w, ","))
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("role lacks %s", k)
		}
	}
}
