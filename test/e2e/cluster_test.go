//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/pyrodist/pyrodist/test/localcluster"
)

// TestLocalControlPlane checks the harness itself: one Ready kwok node per zone,
// and a Deployment spread over zones whose pods the scheduler places and kwok runs.
func TestLocalControlPlane(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()

	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string]string{}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if !localcluster.NodeReady(n) {
			t.Errorf("node %s not Ready", n.Name)
		}
		zones[n.Labels[localcluster.ZoneLabel]] = n.Name
	}
	for _, z := range []string{"zone-a", "zone-b", "zone-c"} {
		if zones[z] == "" {
			t.Errorf("no node in zone %q (nodes by zone: %v)", z, zones)
		}
	}

	ns := "smoke"
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	labels := map[string]string{"app": "smoke"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: localcluster.ZoneLabel,
						WhenUnsatisfiable: corev1.DoNotSchedule,
						LabelSelector:     &metav1.LabelSelector{MatchLabels: labels},
					}},
					Containers: []corev1.Container{{
						Name:  "app",
						Image: "example.invalid/never-pulled:1", // kwok runs no containers
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("100m"),
						}},
					}},
				},
			},
		},
	}
	// The namespace's default ServiceAccount may lag its creation.
	eventually(t, 30*time.Second, "create Deployment", func(ctx context.Context) error {
		_, err := c.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
		return err
	})
	eventually(t, 60*time.Second, "3 pods Running, one per zone", func(ctx context.Context) error {
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=smoke"})
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodRunning || p.Spec.NodeName == "" {
				return fmt.Errorf("pod %s is %s on %q", p.Name, p.Status.Phase, p.Spec.NodeName)
			}
			seen[p.Spec.NodeName] = true
		}
		if len(pods.Items) != 3 || len(seen) != 3 {
			return fmt.Errorf("%d pods on %d nodes", len(pods.Items), len(seen))
		}
		return nil
	})
	eventually(t, 30*time.Second, "Deployment available", func(ctx context.Context) error {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "smoke", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas != 3 {
			return fmt.Errorf("available %d/3", d.Status.AvailableReplicas)
		}
		return nil
	})
}
