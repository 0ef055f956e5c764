package manifests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Every object of every scenario passes a real kube-apiserver's validation
// (server-side dry run), so the golden files hold objects a cluster accepts.
func TestObjectsPassAPIServerValidation(t *testing.T) {
	// Without KUBEBUILDER_ASSETS, use the project's tool cache; missing
	// binaries fail the test rather than skip it, so a green run has run it.
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		out, err := exec.Command(filepath.Join("..", "..", "hack", "build-tools.sh"), "path", "k8s-dir").Output()
		if err != nil {
			t.Fatalf("locating kube-apiserver and etcd (hack/build-tools.sh path k8s-dir): %v; run `make k8s-bins` or set KUBEBUILDER_ASSETS", err)
		}
		assets = strings.TrimSpace(string(out))
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
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
