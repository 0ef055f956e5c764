package manifests

import (
	"context"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Every object of every scenario passes a real kube-apiserver's validation
// (server-side dry run), so the golden files hold objects a cluster accepts.
func TestObjectsPassAPIServerValidation(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set; run through `make test` or set it to a folder with kube-apiserver and etcd")
	}
	env := &envtest.Environment{}
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
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "profiling"}}); err != nil {
		t.Fatal(err)
	}
	for _, sc := range scenarios {
		d := mustBuild(t, sc.pd())
		for _, o := range d.Objects() {
			if err := c.Create(ctx, o.DeepCopyObject().(client.Object), client.DryRunAll); err != nil {
				t.Errorf("%s: %s %s rejected: %v", sc.name, kindOf(o), o.GetName(), err)
			}
		}
	}
}
