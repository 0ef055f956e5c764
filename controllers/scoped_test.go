package controllers

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
)

// A least-privilege install (--watch-namespaces, the generated rules bound by
// a RoleBinding in the watched namespace only, nothing cluster-wide) starts,
// syncs its cache and reconciles: no watch or read reaches outside the
// namespace list.
func TestWatchNamespacesNeedsOnlyNamespacedRBAC(t *testing.T) {
	ns := newNamespace(t)
	const user = "pyrodist-operator-scoped"
	// The suite created the ClusterRole from config/rbac/role.yaml.
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pyrodist-operator"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "manager-role"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	mustCreate(t, binding)

	cfg := rest.CopyConfig(testCfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	mgr, r, err := newTestManager(cfg, []string{ns}, nil)
	if err != nil {
		t.Fatalf("as the scoped user: %v", err)
	}
	ctx, cancel := context.WithCancel(testCtx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("scoped manager: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitFor):
			t.Error("the scoped manager did not stop")
		}
	})
	key := types.NamespacedName{Namespace: ns, Name: "scoped"}
	mustCreate(t, newPD(ns, "scoped", "zone-a"))
	// Reconcile through the scoped reconciler (its cache may need a moment
	// to see the new object; the suite's manager reconciles it too).
	// A read through a cache whose list or watch is forbidden blocks until
	// its context ends, so each try gets a deadline.
	try := func() error {
		c, stop := context.WithTimeout(ctx, 10*time.Second)
		defer stop()
		if _, err := r.Reconcile(c, ctrl.Request{NamespacedName: key}); err != nil {
			return err
		}
		if err := r.Client.Get(c, key, &v1alpha1.PyroscopeDistributor{}); err != nil {
			return err
		}
		return r.Client.Get(c, types.NamespacedName{Namespace: ns, Name: "scoped-zone-a"}, &appsv1.Deployment{})
	}
	eventually(t, waitFor, try)
	// A resync through the scoped client is clean too.
	if err := try(); err != nil {
		t.Fatalf("reconcile with namespaced RBAC: %v", err)
	}
}
