package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/test/testutil/envtestbin"
)

// startAPIServer installs the generated CRD into a real kube-apiserver, so the
// CEL rules, defaults and schema are exercised exactly as users meet them.
func startAPIServer(t *testing.T) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join("..", "..")
	return envtestbin.Start(t, root, &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}, scheme)
}

func valid(name string) *v1.PyroscopeDistributor {
	return &v1.PyroscopeDistributor{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1.PyroscopeDistributorSpec{
			Zones: []v1.Zone{{Name: "zone-a"}, {Name: "zone-b"}},
		},
	}
}

func TestCRDValidation(t *testing.T) {
	c := startAPIServer(t)
	ctx := context.Background()

	t.Run("defaults", func(t *testing.T) {
		pd := valid("defaults")
		if err := c.Create(ctx, pd); err != nil {
			t.Fatalf("create: %v", err)
		}
		got := &v1.PyroscopeDistributor{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(pd), got); err != nil {
			t.Fatal(err)
		}
		s := got.Spec
		if s.ZoneLabelKey != v1.DefaultZoneLabelKey {
			t.Errorf("zoneLabelKey = %q", s.ZoneLabelKey)
		}
		if s.ImagePullPolicy != "IfNotPresent" {
			t.Errorf("imagePullPolicy = %q", s.ImagePullPolicy)
		}
		if s.Memberlist.Port != 7946 {
			t.Errorf("memberlist.port = %d", s.Memberlist.Port)
		}
		if s.Placement.PreferSameZone == nil || !*s.Placement.PreferSameZone {
			t.Errorf("placement.preferSameZone = %v", s.Placement.PreferSameZone)
		}
		if s.Service.Type != "ClusterIP" {
			t.Errorf("service.type = %q", s.Service.Type)
		}
		if s.Resources == nil || s.Resources.Limits.Memory().String() != "1Gi" || s.Resources.Requests.Cpu().String() != "500m" {
			t.Errorf("resources = %+v", s.Resources)
		}
		if s.Replicas != nil || s.Autoscaling != nil {
			t.Errorf("replicas/autoscaling must not be defaulted (they are exclusive): %v %v", s.Replicas, s.Autoscaling)
		}
	})

	t.Run("autoscaling defaults", func(t *testing.T) {
		pd := valid("autoscaled")
		pd.Spec.Autoscaling = &v1.Autoscaling{MaxReplicas: 5}
		if err := c.Create(ctx, pd); err != nil {
			t.Fatalf("create: %v", err)
		}
		if pd.Spec.Autoscaling.MinReplicas == nil || *pd.Spec.Autoscaling.MinReplicas != 2 {
			t.Errorf("minReplicas = %v", pd.Spec.Autoscaling.MinReplicas)
		}
	})

	rejected := []struct {
		name   string
		mutate func(*v1.PyroscopeDistributor)
		want   string
	}{
		{"no zones", func(p *v1.PyroscopeDistributor) { p.Spec.Zones = nil }, "spec.zones"},
		{"empty zones", func(p *v1.PyroscopeDistributor) { p.Spec.Zones = []v1.Zone{} }, "spec.zones"},
		{"duplicate zone", func(p *v1.PyroscopeDistributor) { p.Spec.Zones = []v1.Zone{{Name: "a"}, {Name: "a"}} }, "Duplicate value"},
		{"zone not a DNS label", func(p *v1.PyroscopeDistributor) { p.Spec.Zones = []v1.Zone{{Name: "Zone_A"}} }, "zone name must be a DNS label"},
		{"replicas and autoscaling", func(p *v1.PyroscopeDistributor) {
			p.Spec.Replicas = ptr.To[int32](2)
			p.Spec.Autoscaling = &v1.Autoscaling{MaxReplicas: 3}
		}, "replicas and autoscaling are mutually exclusive"},
		{"zone replicas with autoscaling", func(p *v1.PyroscopeDistributor) {
			p.Spec.Zones[0].Replicas = ptr.To[int32](2)
			p.Spec.Autoscaling = &v1.Autoscaling{MaxReplicas: 3}
		}, "zones[].replicas cannot be set while autoscaling is on"},
		{"min above max", func(p *v1.PyroscopeDistributor) {
			p.Spec.Autoscaling = &v1.Autoscaling{MinReplicas: ptr.To[int32](4), MaxReplicas: 3}
		}, "must be less than or equal to autoscaling.maxReplicas"},
		{"default min above max", func(p *v1.PyroscopeDistributor) {
			p.Spec.Autoscaling = &v1.Autoscaling{MaxReplicas: 1}
		}, "must be less than or equal to autoscaling.maxReplicas"},
		{"memberlist on the http port", func(p *v1.PyroscopeDistributor) { p.Spec.Memberlist.Port = 4040 }, "memberlist.port cannot be 4040"},
		{"privileged memberlist port", func(p *v1.PyroscopeDistributor) { p.Spec.Memberlist.Port = 80 }, "spec.memberlist.port"},
		{"extra arg owned by the operator", func(p *v1.PyroscopeDistributor) {
			p.Spec.PodTemplate.ExtraArgs = []string{"-log.level=debug", "-distributor.zone=x"}
		}, "extraArgs cannot set"},
		{"name not a DNS-1035 label", func(p *v1.PyroscopeDistributor) { p.Name = "1abc" }, "metadata.name must be a DNS-1035 label"},
		{"name too long", func(p *v1.PyroscopeDistributor) { p.Name = strings.Repeat("a", 53) }, "at most 52 characters"},
		{"name and zone too long", func(p *v1.PyroscopeDistributor) {
			p.Name = strings.Repeat("a", 40)
			p.Spec.Zones = []v1.Zone{{Name: strings.Repeat("z", 23)}}
		}, "must fit 62 characters"},
		{"bad tenant ID", func(p *v1.PyroscopeDistributor) {
			p.Spec.Limits.Overrides = map[string]v1.TenantLimits{"team-a": {}, "bad/tenant": {}}
		}, "tenant IDs must be 1 to 150 characters"},
		{"dot tenant ID", func(p *v1.PyroscopeDistributor) {
			p.Spec.Limits.Overrides = map[string]v1.TenantLimits{"..": {}}
		}, "tenant IDs must be"},
		{"shard policy in limit defaults", func(p *v1.PyroscopeDistributor) {
			p.Spec.Limits.Defaults.TenantShards = ptr.To[int32](3)
		}, "set the defaults in spec.placement"},
		{"bad traffic distribution", func(p *v1.PyroscopeDistributor) { p.Spec.Service.TrafficDistribution = "Anywhere" }, "spec.service.trafficDistribution"},
		{"zero zone timeout", func(p *v1.PyroscopeDistributor) {
			p.Spec.Rollout.ZoneTimeout = &metav1.Duration{}
		}, "zoneTimeout must be between 1s and 24h"},
		{"pause longer than a day", func(p *v1.PyroscopeDistributor) {
			p.Spec.Rollout.PauseBetweenZones = &metav1.Duration{Duration: 25 * time.Hour}
		}, "pauseBetweenZones must be between 0s and 24h"},
		{"negative default rate", func(p *v1.PyroscopeDistributor) {
			p.Spec.Limits.Defaults.IngestionRate = ptr.To(resource.MustParse("-1Mi"))
		}, "ingestionRate must be a positive number of bytes per second"},
		{"zero default rate", func(p *v1.PyroscopeDistributor) {
			p.Spec.Limits.Defaults.IngestionRate = ptr.To(resource.MustParse("0"))
		}, "ingestionRate must be a positive number of bytes per second"},
		{"zero default burst", func(p *v1.PyroscopeDistributor) {
			p.Spec.Limits.Defaults.IngestionBurstSize = ptr.To(resource.MustParse("0Mi"))
		}, "ingestionBurstSize must be a positive number of bytes"},
		{"negative override rate", func(p *v1.PyroscopeDistributor) {
			p.Spec.Limits.Overrides = map[string]v1.TenantLimits{"team-a": {IngestionRate: ptr.To(resource.MustParse("-500k"))}}
		}, "spec.limits.overrides[team-a].ingestionRate"},
		{"negative override burst", func(p *v1.PyroscopeDistributor) {
			p.Spec.Limits.Overrides = map[string]v1.TenantLimits{"team-a": {IngestionBurstSize: ptr.To(resource.MustParse("-1"))}}
		}, "ingestionBurstSize must be a positive number of bytes"},
	}
	for i, tc := range rejected {
		t.Run(tc.name, func(t *testing.T) {
			pd := valid("bad-" + strings.Repeat("x", i+1))
			tc.mutate(pd)
			err := c.Create(ctx, pd)
			if err == nil {
				t.Fatalf("accepted; want an error containing %q", tc.want)
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v; want Invalid containing %q", err, tc.want)
			}
		})
	}

	t.Run("positive rates", func(t *testing.T) {
		pd := valid("rates")
		pd.Spec.Limits.Defaults.IngestionRate = ptr.To(resource.MustParse("8Mi"))
		pd.Spec.Limits.Defaults.IngestionBurstSize = ptr.To(resource.MustParse("0.5Mi")) // written as 512Ki
		pd.Spec.Limits.Overrides = map[string]v1.TenantLimits{"team-a": {IngestionRate: ptr.To(resource.MustParse("1"))}}
		if err := c.Create(ctx, pd); err != nil {
			t.Fatalf("create: %v", err)
		}
	})

	// YAML may give a quantity as a plain integer: the same rule holds.
	t.Run("integer rates", func(t *testing.T) {
		for _, tc := range []struct {
			rate int64
			ok   bool
		}{{4194304, true}, {0, false}, {-1, false}} {
			u := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": v1.GroupVersion.String(), "kind": "PyroscopeDistributor",
				"metadata": map[string]any{"name": fmt.Sprintf("int-rate-%d", tc.rate+1), "namespace": "default"},
				"spec": map[string]any{
					"zones":  []any{map[string]any{"name": "zone-a"}},
					"limits": map[string]any{"overrides": map[string]any{"t": map[string]any{"ingestionRate": tc.rate}}},
				},
			}}
			err := c.Create(ctx, u)
			if tc.ok && err != nil {
				t.Errorf("rate %d refused: %v", tc.rate, err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "ingestionRate must be a positive number")) {
				t.Errorf("rate %d: error %v, want the positive-rate message", tc.rate, err)
			}
		}
	})

	t.Run("sample", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", "profiling_v1alpha1_pyroscopedistributor.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		pd := &v1.PyroscopeDistributor{}
		if err := yaml.UnmarshalStrict(raw, pd); err != nil {
			t.Fatalf("sample does not decode strictly: %v", err)
		}
		pd.Namespace = "default"
		if err := c.Create(ctx, pd); err != nil {
			t.Fatalf("sample rejected: %v", err)
		}
	})

	t.Run("rollout settings", func(t *testing.T) {
		pd := valid("rollout")
		pd.Spec.Rollout = v1.RolloutSpec{
			PauseBetweenZones: &metav1.Duration{Duration: 0},
			ZoneTimeout:       &metav1.Duration{Duration: 15 * time.Minute},
		}
		if err := c.Create(ctx, pd); err != nil {
			t.Fatalf("create: %v", err)
		}
	})

	t.Run("zoneLabelKey is immutable", func(t *testing.T) {
		pd := valid("immutable")
		if err := c.Create(ctx, pd); err != nil {
			t.Fatal(err)
		}
		pd.Spec.ZoneLabelKey = "example.com/zone"
		err := c.Update(ctx, pd)
		if err == nil || !strings.Contains(err.Error(), "zoneLabelKey is immutable") {
			t.Fatalf("update error = %v; want zoneLabelKey is immutable", err)
		}
	})

	t.Run("zones can change", func(t *testing.T) {
		pd := valid("mutable")
		if err := c.Create(ctx, pd); err != nil {
			t.Fatal(err)
		}
		pd.Spec.Zones = append(pd.Spec.Zones[1:], v1.Zone{Name: "zone-c", Disabled: true})
		pd.Spec.Replicas = ptr.To[int32](3)
		if err := c.Update(ctx, pd); err != nil {
			t.Fatalf("update: %v", err)
		}
	})
}
