// Package envtestbin finds and starts the real kube-apiserver and etcd that
// the envtests (controllers, api/v1alpha1, internal/manifests) run against.
package envtestbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Dir is the directory holding kube-apiserver and etcd: KUBEBUILDER_ASSETS
// when set, else the project's tool cache (hack/build-tools.sh path k8s-dir,
// under repoRoot). Missing binaries are an error, never a skip: a green run
// must have run the envtests.
func Dir(repoRoot string) (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		root, err := filepath.Abs(repoRoot)
		if err != nil {
			return "", err
		}
		cmd := exec.Command(filepath.Join(root, "hack", "build-tools.sh"), "path", "k8s-dir")
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("cannot locate the Kubernetes test binaries (hack/build-tools.sh path k8s-dir: %v); run `make k8s-bins` or set KUBEBUILDER_ASSETS", err)
		}
		dir = strings.TrimSpace(string(out))
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("%s not found in %s: run `make k8s-bins` to build kube-apiserver and etcd (or set KUBEBUILDER_ASSETS)", b, dir)
		}
	}
	return dir, nil
}

// Start runs env on the binaries Dir finds, stops it when t ends, and
// returns a client for it that knows scheme's types.
func Start(t testing.TB, repoRoot string, env *envtest.Environment, scheme *runtime.Scheme) client.Client {
	t.Helper()
	dir, err := Dir(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	env.BinaryAssetsDirectory = dir
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
