package manifests

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current builders")

var testFacts = ClusterFacts{ServerMinor: 34, DefaultImage: "ghcr.io/pyrodist/pyrodist:v0.1.0"}

// base is a PyroscopeDistributor as the API server would hand it over after
// defaulting (the CRD markers' values filled in).
func base(zones ...string) *v1.PyroscopeDistributor {
	pd := &v1.PyroscopeDistributor{
		ObjectMeta: metav1.ObjectMeta{Name: "pyd", Namespace: "profiling", Generation: 1},
		Spec: v1.PyroscopeDistributorSpec{
			ImagePullPolicy: corev1.PullIfNotPresent,
			ZoneLabelKey:    v1.DefaultZoneLabelKey,
			Resources:       ptr.To(DefaultResources()),
			Memberlist: v1.MemberlistSpec{
				Join:         []string{"dns+pyroscope-memberlist.pyroscope.svc.cluster.local:7946"},
				ClusterLabel: "pyroscope",
				Port:         7946,
			},
			Placement: v1.PlacementSpec{PreferSameZone: ptr.To(true)},
			Service:   v1.ServiceSpec{Type: corev1.ServiceTypeClusterIP},
		},
	}
	for _, z := range zones {
		pd.Spec.Zones = append(pd.Spec.Zones, v1.Zone{Name: z})
	}
	return pd
}

func threeZones() *v1.PyroscopeDistributor {
	pd := base("eu-west-1a", "eu-west-1b", "eu-west-1c")
	pd.Spec.Replicas = ptr.To[int32](3)
	pd.Spec.Zones[2].Replicas = ptr.To[int32](1)
	pd.Spec.Zones[2].NodeSelector = map[string]string{"pool": "profiling-c"}
	pd.Spec.Zones[2].Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "profiling", Effect: corev1.TaintEffectNoSchedule}}
	pd.Spec.Limits.Defaults.IngestionRate = ptr.To(resource.MustParse("8Mi"))
	pd.Spec.Limits.Overrides = map[string]v1.TenantLimits{
		"team-a": {IngestionRate: ptr.To(resource.MustParse("32Mi")), TenantShards: ptr.To[int32](8)},
	}
	pd.Spec.Multitenancy = true
	pd.Spec.PodTemplate.Labels = map[string]string{"team": "observability"}
	pd.Spec.PodTemplate.Annotations = map[string]string{"example.com/scrape": "true"}
	pd.Spec.PodTemplate.PriorityClassName = "high"
	pd.Spec.PodTemplate.ExtraArgs = []string{"-log.level=debug"}
	pd.Spec.PodTemplate.Env = []corev1.EnvVar{{Name: "GOGC", Value: "200"}}
	pd.Spec.Service.Annotations = map[string]string{"example.com/lb": "internal"}
	return pd
}

func autoscaled() *v1.PyroscopeDistributor {
	pd := base("zone-a", "zone-b", "zone-c")
	pd.Spec.Autoscaling = &v1.Autoscaling{
		MinReplicas:                       ptr.To[int32](2),
		MaxReplicas:                       10,
		TargetCPUUtilizationPercentage:    ptr.To[int32](60),
		TargetMemoryUtilizationPercentage: ptr.To[int32](80),
	}
	return pd
}

func zoneDisabled() *v1.PyroscopeDistributor {
	pd := autoscaled()
	pd.Spec.Zones[1].Disabled = true
	return pd
}

// zoneRemoved is autoscaled() after zone-b was deleted from the spec.
func zoneRemoved() *v1.PyroscopeDistributor {
	pd := autoscaled()
	pd.Spec.Zones = []v1.Zone{pd.Spec.Zones[0], pd.Spec.Zones[2]}
	return pd
}

var scenarios = []struct {
	name string
	pd   func() *v1.PyroscopeDistributor
}{
	{"one-zone", func() *v1.PyroscopeDistributor { return base("zone-a") }},
	{"three-zones", threeZones},
	{"autoscaling", autoscaled},
	{"zone-disabled", zoneDisabled},
	{"zone-removed", zoneRemoved},
}

// render writes every object as one YAML stream, the way kubectl shows them.
func render(t *testing.T, d *Desired) []byte {
	t.Helper()
	var buf bytes.Buffer
	for i, o := range d.Objects() {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			d, err := Build(sc.pd(), testFacts)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			checkGolden(t, sc.name, render(t, d))
		})
	}
}

// lineDiff shows the first differing lines, enough to see what moved.
func lineDiff(want, got []byte) string {
	w, g := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	var out bytes.Buffer
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var wl, gl []byte
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if !bytes.Equal(wl, gl) {
			out.WriteString("line " + itoa(i+1) + ":\n  want: " + string(wl) + "\n  got:  " + string(gl) + "\n")
			shown++
		}
	}
	return out.String()
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

// checkGolden compares got with testdata/<name>.golden.yaml, or writes it
// there with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.yaml")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/manifests -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the builders' output; review and run with -update if intended.\n%s", path, lineDiff(want, got))
	}
}
