//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNamespacedMode installs a second release in namespaced mode watching
// team-a only (reusing the CRD TestOperator kept when there is one),
// runs the operator as that release's ServiceAccount, and checks that it
// reconciles in team-a, and that its RBAC stops at team-b.
func TestNamespacedMode(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	// Reuse the CRD TestOperator's release kept; run alone, install it with this release.
	crds := "crds.enabled=false"
	if _, err := c.Dynamic.Resource(pydGVR).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		crds = "crds.enabled=true"
	}
	const release, ns = "scoped", "pyrodist-scoped"
	for _, n := range []string{"team-a", "team-b"} {
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	if out, err := c.Helm(ctx, "install", release, chartDir(), "--namespace", ns, "--create-namespace",
		"--set", crds, "--set", "watchNamespaces={team-a}", "--wait", "--timeout", "2m"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sa := release + "-pyrodist"
	user := "system:serviceaccount:" + ns + ":" + sa
	for _, tc := range []struct {
		ns      string
		allowed bool
	}{{"team-a", true}, {"team-b", false}} {
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User:   user,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns},
			ResourceAttributes: &authzv1.ResourceAttributes{
				Namespace: tc.ns, Verb: "patch", Group: "apps", Resource: "deployments",
			},
		}}
		res, err := c.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status.Allowed != tc.allowed {
			t.Errorf("%s may patch deployments in %s: %v, want %v", user, tc.ns, res.Status.Allowed, tc.allowed)
		}
	}

	op, err := c.StartLocalOperator(ctx, buildOperator(t), ns, sa, "operator-scoped")
	if err != nil {
		t.Fatal(err)
	}
	defer op.Stop(10 * time.Second)
	if !strings.Contains(strings.Join(op.ChartArgs, " "), "--watch-namespaces=team-a") {
		t.Errorf("chart args %v lack --watch-namespaces=team-a", op.ChartArgs)
	}
	cr := "apiVersion: profiling.pyrodist.dev/v1alpha1\nkind: PyroscopeDistributor\nmetadata:\n  name: scoped\nspec:\n  zones:\n  - name: zone-a\n"
	for _, n := range []string{"team-a", "team-b"} {
		// A CRD installed just now may take a moment to be served.
		eventually(t, 30*time.Second, "apply CR in "+n, func(ctx context.Context) error {
			_, err := c.Kubectl(ctx, strings.NewReader(cr), "apply", "-n", n, "-f", "-")
			return err
		})
	}
	eventually(t, 60*time.Second, "team-a reconciled", func(ctx context.Context) error {
		d, err := c.Client.AppsV1().Deployments("team-a").Get(ctx, "scoped-zone-a", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.ReadyReplicas == 0 {
			return fmt.Errorf("scoped-zone-a not ready")
		}
		return nil
	})
	// The operator neither watches nor may write team-b: its CR has no status.
	u, err := c.Dynamic.Resource(pydGVR).Namespace("team-b").Get(ctx, "scoped", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := get(u.Object, "status"); st != nil {
		t.Errorf("the team-a-only operator touched team-b's CR: status %v", st)
	}
	if l, err := c.Client.AppsV1().Deployments("team-b").List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("Deployments in team-b: %v %v", namesOf(l, err), err)
	}
	if t.Failed() {
		t.Logf("operator log tail:\n%s", op.LogTail(30))
	}
}
