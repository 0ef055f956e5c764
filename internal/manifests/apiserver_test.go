package manifests

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/pyrodist/pyrodist/test/testutil/envtestbin"
)

// Every object of every scenario passes a real kube-apiserver's validation
// (server-side dry run), so the golden files hold objects a cluster accepts.
func TestObjectsPassAPIServerValidation(t *testing.T) {
	c := envtestbin.Start(t, filepath.Join("..", ".."), &envtest.Environment{}, scheme.Scheme)
	ctx := context.Background()
	// The namespace enforces the restricted Pod Security Standard, so the
	// pods of every zone are checked by the API server's own PodSecurity
	// admission, not only by our reading of the standard.
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "profiling",
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}); err != nil {
		t.Fatal(err)
	}
	// The priority class a scenario names must exist for its pods to be admitted.
	if err := c.Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000}); err != nil {
		t.Fatal(err)
	}
	// Control: PodSecurity admission is active, so a pod passing below means something.
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "profiling", Name: "bare"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.com/c"}}}}
	if err := c.Create(ctx, bare, client.DryRunAll); err == nil || !strings.Contains(err.Error(), "restricted") {
		t.Fatalf("a pod without any hardening was not refused by PodSecurity admission: %v", err)
	}
	for _, sc := range scenarios {
		d := mustBuild(t, sc.pd())
		for _, o := range d.Objects() {
			if err := c.Create(ctx, o.DeepCopyObject().(client.Object), client.DryRunAll); err != nil {
				t.Errorf("%s: %s %s rejected: %v", sc.name, kindOf(o), o.GetName(), err)
			}
		}
		for _, z := range d.Zones {
			tmpl := z.Deployment.Spec.Template
			pod := &corev1.Pod{ObjectMeta: *tmpl.ObjectMeta.DeepCopy(), Spec: *tmpl.Spec.DeepCopy()}
			pod.Namespace, pod.Name = "profiling", z.Deployment.Name
			if err := c.Create(ctx, pod, client.DryRunAll); err != nil {
				t.Errorf("%s: a pod of zone %s is refused: %v", sc.name, z.Name, err)
			}
		}
	}
}
