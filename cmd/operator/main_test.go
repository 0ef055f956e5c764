package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// managerDeployment reads the operator Deployment from config/manager.
func managerDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "manager", "manager.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict(doc, &d); err != nil {
			var probe struct{ Kind string }
			if yaml.Unmarshal(doc, &probe) == nil && probe.Kind != "Deployment" {
				continue
			}
			t.Fatalf("manager.yaml: %v", err)
		}
		if d.Kind == "Deployment" {
			return &d
		}
	}
	t.Fatal("manager.yaml has no Deployment")
	return nil
}

func TestManagerManifestArgsAreOperatorFlags(t *testing.T) {
	d := managerDeployment(t)
	c := d.Spec.Template.Spec.Containers[0]
	fs := flag.NewFlagSet("operator", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o, _ := registerFlags(fs)
	if err := fs.Parse(c.Args); err != nil {
		t.Fatalf("config/manager args %v: %v", c.Args, err)
	}
	if !o.leaderElect || o.metricsAddr != ":8443" || o.probeAddr != ":8081" || o.allowPrivilegedPods {
		t.Fatalf("parsed %+v", *o)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["metrics"] != 8443 || ports["probes"] != 8081 {
		t.Fatalf("container ports %v do not match the flags", ports)
	}
}

// The operator pod meets the restricted Pod Security Standard.
func TestManagerManifestIsRestricted(t *testing.T) {
	d := managerDeployment(t)
	pod := d.Spec.Template.Spec
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Fatalf("pod security context %+v", pod.SecurityContext)
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			t.Fatalf("container %s security context %+v", c.Name, sc)
		}
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Fatalf("container %s has no memory request/limit", c.Name)
		}
	}
}

// Weakened distributor pods are refused unless the flag says otherwise.
func TestAllowPrivilegedPodsFlag(t *testing.T) {
	for args, want := range map[string]bool{"": false, "--allow-privileged-pods": true, "--allow-privileged-pods=false": false} {
		fs := flag.NewFlagSet("operator", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o, _ := registerFlags(fs)
		if err := fs.Parse(strings.Fields(args)); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if o.allowPrivilegedPods != want {
			t.Errorf("%q: allowPrivilegedPods = %v, want %v", args, o.allowPrivilegedPods, want)
		}
	}
}

func TestSplitList(t *testing.T) {
	cases := map[string][]string{
		"":              nil,
		"a":             {"a"},
		" a, b ,,c ":    {"a", "b", "c"},
		"team-a,team-b": {"team-a", "team-b"},
	}
	for in, want := range cases {
		got := splitList(in)
		if len(got) != len(want) {
			t.Fatalf("splitList(%q) = %v, want %v", in, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("splitList(%q) = %v, want %v", in, got, want)
			}
		}
	}
}
