//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestKustomizeInstall proves `kubectl apply -k config/default` installs the
// operator (CRD, RBAC, Deployment in pyrodist-system), that config/samples
// applies cleanly against that CRD, and that `kubectl delete -k` removes it all
// again, so the Helm install that follows starts from a clean cluster.
func TestKustomizeInstall(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	defaultDir := filepath.Join(repoRoot, "config", "default")
	if out, err := c.Kubectl(ctx, nil, "apply", "--server-side", "-k", defaultDir); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := c.Kubectl(context.Background(), nil, "delete", "-k", defaultDir, "--ignore-not-found", "--wait", "--timeout=90s"); err != nil {
			t.Errorf("kubectl delete -k: %v\n%s", err, out)
		}
		eventually(t, 60*time.Second, "kustomize install removed", func(ctx context.Context) error {
			if _, err := c.Client.CoreV1().Namespaces().Get(ctx, "pyrodist-system", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("namespace pyrodist-system still there (%v)", err)
			}
			return nil
		})
	})
	eventually(t, 60*time.Second, "operator Deployment available", func(ctx context.Context) error {
		deps, err := c.Client.AppsV1().Deployments("pyrodist-system").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(deps.Items) != 1 {
			return fmt.Errorf("%d Deployments in pyrodist-system, want 1", len(deps.Items))
		}
		d := deps.Items[0]
		if d.Status.AvailableReplicas != 1 {
			return fmt.Errorf("%s: %d available", d.Name, d.Status.AvailableReplicas)
		}
		return nil
	})
	// The operator's pod runs under the restricted Pod Security Standard its namespace enforces.
	ns, err := c.Client.CoreV1().Namespaces().Get(ctx, "pyrodist-system", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace labels %v: want pod-security enforce=restricted", ns.Labels)
	}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sampleNS}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "samples apply (server dry-run)", func(ctx context.Context) error {
		_, err := c.Kubectl(ctx, nil, "apply", "--dry-run=server", "-n", sampleNS, "-k", filepath.Join(repoRoot, "config", "samples"))
		return err
	})
}
