//go:build e2e

package e2e

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/pyrodist/pyrodist/test/localcluster"
)

var update = flag.Bool("update", false, "rewrite the chart golden files under testdata/chart")

const (
	chartNamespace = "pyrodist-system"
	chartRelease   = "pyrodist"
)

var (
	binOnce sync.Once
	bins    localcluster.Binaries
	binsErr error
)

// tools returns the cached tool binaries; a missing helm fails (never skips) the caller.
func tools(t *testing.T) localcluster.Binaries {
	t.Helper()
	binOnce.Do(func() { bins, binsErr = localcluster.ToolBinaries(repoRoot) })
	if binsErr != nil {
		t.Fatal(binsErr)
	}
	if _, err := os.Stat(bins.Helm); err != nil {
		t.Fatalf("helm is not built (%v): run `hack/build-tools.sh helm` or `make test-e2e`", err)
	}
	return bins
}

func chartDir() string { return filepath.Join(repoRoot, "charts", "pyrodist") }

// helmCmd runs the cached helm with state kept in a temporary directory.
func helmCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(tools(t).Helm, args...)
	cmd.Env = append(os.Environ(), localcluster.HelmEnv(t.TempDir())...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

// render runs `helm template` with --set style values and returns the objects.
func render(t *testing.T, sets ...string) []map[string]any {
	t.Helper()
	args := []string{"template", chartRelease, chartDir(), "--namespace", chartNamespace}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	out, err := helmCmd(t, args...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", sets, err, out)
	}
	return splitObjects(t, out)
}

func splitObjects(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, doc := range strings.Split("\n"+out, "\n---") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		if len(m) > 0 {
			objs = append(objs, m)
		}
	}
	return objs
}

func find(objs []map[string]any, kind, name string) map[string]any {
	for _, o := range objs {
		if o["kind"] == kind && str(o, "metadata", "name") == name {
			return o
		}
	}
	return nil
}

func count(objs []map[string]any, kind string) int {
	n := 0
	for _, o := range objs {
		if o["kind"] == kind {
			n++
		}
	}
	return n
}

// get walks nested maps; a missing key yields nil.
func get(o any, path ...string) any {
	for _, p := range path {
		m, ok := o.(map[string]any)
		if !ok {
			return nil
		}
		o = m[p]
	}
	return o
}

func str(o any, path ...string) string {
	s, _ := get(o, path...).(string)
	return s
}

func readYAML(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return splitObjects(t, string(b))
}

func TestChartLint(t *testing.T) {
	for _, sets := range [][]string{nil, {"watchNamespaces={team-a,team-b}", "metrics.serviceMonitor.enabled=true"}} {
		args := []string{"lint", "--strict", chartDir(), "--namespace", chartNamespace}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		out, err := helmCmd(t, args...)
		if err != nil {
			t.Errorf("helm lint %v: %v\n%s", sets, err, out)
		}
		if !strings.Contains(out, "0 chart(s) failed") {
			t.Errorf("helm lint %v:\n%s", sets, out)
		}
	}
}

// TestChartGolden compares `helm template` output per scenario with
// testdata/chart/<scenario>.yaml (go test -tags e2e -run TestChartGolden -update
// rewrites them). Generated parts that follow other packages (the CRD schema,
// the manager rules) are elided here and checked against their sources below.
func TestChartGolden(t *testing.T) {
	scenarios := []struct {
		name string
		sets []string
	}{
		{"default", nil},
		{"namespaced", []string{"watchNamespaces={team-a,team-b}"}},
		{"monitoring", []string{"metrics.serviceMonitor.enabled=true", "metrics.secure=false", "crds.keep=false",
			"metrics.serviceMonitor.labels.release=prometheus"}},
		{"minimal", []string{"crds.enabled=false", "metrics.enabled=false", "leaderElection.enabled=false",
			"image.tag=1.2.3", "distributorImage=registry.example/pyrodist:9.9.9", "serviceAccount.name=custom",
			"replicaCount=2", "extraArgs={--foo=bar}"}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			var buf bytes.Buffer
			for _, o := range render(t, sc.sets...) {
				elideGenerated(o)
				b, err := yaml.Marshal(o)
				if err != nil {
					t.Fatal(err)
				}
				buf.WriteString("---\n")
				buf.Write(b)
			}
			golden := filepath.Join("testdata", "chart", sc.name+".yaml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got := buf.String(); got != string(want) {
				t.Errorf("helm template differs from %s (run with -update to accept):\n%s", golden, diffLines(string(want), got))
			}
		})
	}
}

func elideGenerated(o map[string]any) {
	switch {
	case o["kind"] == "CustomResourceDefinition":
		o["spec"] = "<from config/crd/bases>"
	case o["kind"] == "ClusterRole" && strings.HasSuffix(str(o, "metadata", "name"), "-manager"):
		o["rules"] = "<from config/rbac/role.yaml>"
	case o["kind"] == "ConfigMap" && get(o, "data", dashboardKey) != nil:
		o["data"] = "<from charts/pyrodist/monitoring (TestChartMonitoring)>"
	}
}

// TestChartRulesMatchRole proves the chart grants the operator exactly what the
// controller's RBAC markers ask for.
func TestChartRulesMatchRole(t *testing.T) {
	var want any
	for _, o := range readYAML(t, filepath.Join(repoRoot, "config", "rbac", "role.yaml")) {
		if o["kind"] == "ClusterRole" {
			want = o["rules"]
		}
	}
	if want == nil {
		t.Fatal("config/rbac/role.yaml has no ClusterRole")
	}
	role := find(render(t), "ClusterRole", chartRelease+"-manager")
	if role == nil {
		t.Fatal("chart renders no manager ClusterRole")
	}
	if !reflect.DeepEqual(role["rules"], want) {
		t.Errorf("chart manager rules differ from config/rbac/role.yaml; run `make manifests`\nchart: %v\nrole.yaml: %v", role["rules"], want)
	}
}

// TestChartCRDs proves the chart's CRDs are config/crd/bases' and honour crds.enabled and crds.keep.
func TestChartCRDs(t *testing.T) {
	bases, err := filepath.Glob(filepath.Join(repoRoot, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(bases) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	objs := render(t)
	for _, b := range bases {
		src := readYAML(t, b)[0]
		name := str(src, "metadata", "name")
		got := find(objs, "CustomResourceDefinition", name)
		if got == nil {
			t.Fatalf("chart lacks CRD %s", name)
		}
		if !reflect.DeepEqual(got["spec"], src["spec"]) {
			t.Errorf("CRD %s spec differs from %s; run `make manifests`", name, b)
		}
		if v := str(got, "metadata", "annotations", "helm.sh/resource-policy"); v != "keep" {
			t.Errorf("CRD %s resource-policy = %q, want keep by default", name, v)
		}
		for k, v := range get(src, "metadata", "annotations").(map[string]any) {
			if str(got, "metadata", "annotations", k) != v {
				t.Errorf("CRD %s lost annotation %s", name, k)
			}
		}
		if str(got, "metadata", "labels", "app.kubernetes.io/managed-by") != "Helm" {
			t.Errorf("CRD %s lacks the chart labels", name)
		}
		if noKeep := find(render(t, "crds.keep=false"), "CustomResourceDefinition", name); get(noKeep, "metadata", "annotations", "helm.sh/resource-policy") != nil {
			t.Errorf("crds.keep=false still keeps CRD %s", name)
		}
	}
	if n := count(render(t, "crds.enabled=false"), "CustomResourceDefinition"); n != 0 {
		t.Errorf("crds.enabled=false renders %d CRDs", n)
	}
}

// TestChartOperatorPod checks the restricted Pod Security Standard and the flags each mode passes.
func TestChartOperatorPod(t *testing.T) {
	tests := []struct {
		name     string
		sets     []string
		wantArgs []string
		noArgs   []string
		bindings map[string]string // kind/namespace of manager bindings
	}{
		{
			name: "cluster-wide",
			wantArgs: []string{"--distributor-image=ghcr.io/pyrodist/pyrodist:0.1.0", "--leader-elect=true",
				"--metrics-bind-address=:8443", "--metrics-secure=true", "--allow-privileged-pods=false"},
			noArgs:   []string{"--watch-namespaces"},
			bindings: map[string]string{"ClusterRoleBinding": ""},
		},
		{
			name:     "namespaced",
			sets:     []string{"watchNamespaces={team-a,team-b}"},
			wantArgs: []string{"--watch-namespaces=team-a,team-b"},
			bindings: map[string]string{"RoleBinding/team-a": "team-a", "RoleBinding/team-b": "team-b"},
		},
		{
			name:     "privileged distributor pods allowed",
			sets:     []string{"allowPrivilegedPods=true"},
			wantArgs: []string{"--allow-privileged-pods=true"},
			noArgs:   []string{"--allow-privileged-pods=false"},
			bindings: map[string]string{"ClusterRoleBinding": ""},
		},
		{
			name:     "own distributor image, no metrics",
			sets:     []string{"distributorImage=registry.example/d:1", "metrics.enabled=false", "image.digest=sha256:" + strings.Repeat("a", 64)},
			wantArgs: []string{"--distributor-image=registry.example/d:1", "--metrics-bind-address=0"},
			noArgs:   []string{"--metrics-secure"},
			bindings: map[string]string{"ClusterRoleBinding": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := render(t, tt.sets...)
			dep := find(objs, "Deployment", chartRelease)
			if dep == nil {
				t.Fatal("no operator Deployment")
			}
			pod := get(dep, "spec", "template", "spec")
			if get(pod, "securityContext", "runAsNonRoot") != true || str(pod, "securityContext", "seccompProfile", "type") != "RuntimeDefault" {
				t.Errorf("pod securityContext not restricted: %v", get(pod, "securityContext"))
			}
			ctr := get(pod, "containers").([]any)[0]
			sc := get(ctr, "securityContext")
			if get(sc, "allowPrivilegeEscalation") != false || get(sc, "readOnlyRootFilesystem") != true ||
				!reflect.DeepEqual(get(sc, "capabilities", "drop"), []any{"ALL"}) {
				t.Errorf("container securityContext not restricted: %v", sc)
			}
			args := fmt.Sprint(get(ctr, "args"))
			for _, a := range tt.wantArgs {
				if !strings.Contains(args, a) {
					t.Errorf("args %s lack %s", args, a)
				}
			}
			for _, a := range tt.noArgs {
				if strings.Contains(args, a) {
					t.Errorf("args %s contain %s", args, a)
				}
			}
			if strings.Contains(strings.Join(tt.sets, ","), "image.digest") && !strings.Contains(str(ctr, "image"), "@sha256:") {
				t.Errorf("image %s ignores the digest", str(ctr, "image"))
			}
			got := map[string]string{}
			for _, o := range objs {
				k := o["kind"].(string)
				if (k == "ClusterRoleBinding" || k == "RoleBinding") && str(o, "roleRef", "name") == chartRelease+"-manager" {
					key := k
					if ns := str(o, "metadata", "namespace"); ns != "" {
						key += "/" + ns
					}
					got[key] = str(o, "metadata", "namespace")
					subj := get(o, "subjects").([]any)[0]
					if str(subj, "name") != chartRelease || str(subj, "namespace") != chartNamespace {
						t.Errorf("%s binds %v, want ServiceAccount %s/%s", key, subj, chartNamespace, chartRelease)
					}
				}
			}
			if !reflect.DeepEqual(got, tt.bindings) {
				t.Errorf("manager bindings = %v, want %v", got, tt.bindings)
			}
		})
	}
}

func TestChartSchemaRejectsBadValues(t *testing.T) {
	for _, set := range []string{"logLevel=verbose", "watchNamespaces={Bad_NS}", "metrics.port=0", "image.digest=latest", "unknownKey=1", "allowPrivilegedPods=yes"} {
		out, err := helmCmd(t, "template", chartRelease, chartDir(), "--set", set)
		if err == nil {
			t.Errorf("--set %s rendered; want a schema error", set)
		} else if !strings.Contains(out, "values don't meet the specifications of the schema") {
			t.Errorf("--set %s failed for another reason:\n%s", set, out)
		}
	}
}

// diffLines shows the first differing lines, enough to see what changed.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want: %s\n  got:  %s\n", i+1, wl, gl)
			if shown++; shown == 10 {
				b.WriteString("...\n")
				break
			}
		}
	}
	return b.String()
}
