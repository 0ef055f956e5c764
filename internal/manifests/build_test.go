package manifests

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/dskit/services"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/overrides"
)

func mustBuild(t *testing.T, pd *v1.PyroscopeDistributor) *Desired {
	t.Helper()
	d, err := Build(pd, testFacts)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return d
}

// loadLikeDistributor runs the distributor's own loader on what a zone's pod
// would see: the ConfigMap's files (mounted in a temporary folder instead of
// /etc/pyrodist) and the container's arguments. It returns the config and the
// per-tenant limits the distributor would serve.
func loadLikeDistributor(t *testing.T, d *Desired, zone string) (*config.Config, *overrides.Overrides) {
	t.Helper()
	dir := t.TempDir()
	z := d.Zone(zone)
	if z == nil {
		t.Fatalf("no zone %s", zone)
	}
	// Lay out the files as kubelet would from the pod's config volume.
	byName := map[string]*corev1.ConfigMap{d.ConfigMap.Name: d.ConfigMap, d.Overrides.Name: d.Overrides}
	for _, v := range z.Deployment.Spec.Template.Spec.Volumes {
		if v.Name != configVolume {
			continue
		}
		for _, src := range v.Projected.Sources {
			cm := byName[src.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("the config volume projects %s, which Build does not make", src.ConfigMap.Name)
			}
			for _, item := range src.ConfigMap.Items {
				if err := os.WriteFile(filepath.Join(dir, item.Path), []byte(cm.Data[item.Key]), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var args []string
	for _, a := range z.Deployment.Spec.Template.Spec.Containers[0].Args {
		args = append(args, strings.ReplaceAll(a, configMountPath, dir))
	}
	fs := flag.NewFlagSet("distributor", flag.ContinueOnError)
	fs.String("log.level", "info", "registered by the distributor's main")
	c, err := config.Load(fs, args)
	if err != nil {
		t.Fatalf("config.Load(%v): %v\nconfig.yaml:\n%s", args, err, d.ConfigMap.Data[ConfigFileName])
	}
	tl := overrides.New(c.Limits, c.RuntimeConfig, nil, nil)
	if err := services.StartAndAwaitRunning(context.Background(), tl); err != nil {
		t.Fatalf("overrides.yaml: %v\n%s", err, d.Overrides.Data[OverridesFile])
	}
	t.Cleanup(func() { _ = services.StopAndAwaitTerminated(context.Background(), tl) })
	return c, tl
}

func TestConfigRoundTrip(t *testing.T) {
	pd := base("zone-a", "zone-b")
	pd.Spec.Memberlist = v1.MemberlistSpec{
		Join:         []string{"dns+pyroscope-memberlist.pyroscope.svc:7946", "10.0.0.7:7946"},
		ClusterLabel: "prod-eu",
		Port:         7950,
	}
	pd.Spec.Placement = v1.PlacementSpec{
		PreferSameZone: ptr.To(false),
		TenantShards:   ptr.To[int32](4),
		DatasetShards:  ptr.To[int32](2),
		LoadBalancing:  "round-robin",
	}
	pd.Spec.Multitenancy = true
	pd.Spec.Limits.Defaults = v1.TenantLimits{
		IngestionRate:      ptr.To(resource.MustParse("8Mi")),
		IngestionBurstSize: ptr.To(resource.MustParse("16Mi")),
	}
	pd.Spec.Limits.Overrides = map[string]v1.TenantLimits{
		"team-a": {IngestionRate: ptr.To(resource.MustParse("32Mi")), TenantShards: ptr.To[int32](8), LoadBalancing: "fingerprint"},
		"team-b": {IngestionBurstSize: ptr.To(resource.MustParse("1536Ki")), DatasetShards: ptr.To[int32](3)},
	}
	d := mustBuild(t, pd)

	for _, z := range d.Zones {
		c, tenants := loadLikeDistributor(t, d, z.Name)

		if c.Distributor.Zone != z.Name {
			t.Errorf("zone %s: distributor.zone = %q", z.Name, c.Distributor.Zone)
		}
		if c.Distributor.PreferSameZone {
			t.Errorf("prefer_same_zone = true, spec asked false")
		}
		wantJoin := []string{"dns+pyd-memberlist.profiling.svc:7950", "dns+pyroscope-memberlist.pyroscope.svc:7946", "10.0.0.7:7946"}
		if !slices.Equal(c.Memberlist.JoinMembers, wantJoin) {
			t.Errorf("join_members = %v, want %v", c.Memberlist.JoinMembers, wantJoin)
		}
		if c.Memberlist.ClusterLabel != "prod-eu" || c.Memberlist.BindPort != 7950 {
			t.Errorf("memberlist label/port = %q/%d", c.Memberlist.ClusterLabel, c.Memberlist.BindPort)
		}
		if !c.MultitenancyEnabled {
			t.Error("multitenancy_enabled = false")
		}
		if c.Server.HTTPListenPort != HTTPPort {
			t.Errorf("http port = %d", c.Server.HTTPListenPort)
		}
		if c.Limits.IngestionRateMB != 8 || c.Limits.IngestionBurstSizeMB != 16 {
			t.Errorf("default rate/burst = %v/%v MiB", c.Limits.IngestionRateMB, c.Limits.IngestionBurstSizeMB)
		}
		p := c.Limits.Placement
		if p.TenantShards != 4 || p.DefaultDatasetShards != 2 || p.LoadBalancing != config.LoadBalancingRoundRobin {
			t.Errorf("placement defaults = %+v", p)
		}
		if filepath.Base(c.RuntimeConfig.File) != OverridesFile {
			t.Errorf("runtime_config.file = %q", c.RuntimeConfig.File)
		}
		if err := c.Limits.Placement.Validate(); err != nil {
			t.Errorf("placement limits invalid: %v", err)
		}

		wantA := c.Limits
		wantA.IngestionRateMB = 32
		wantA.Placement.TenantShards = 8
		wantA.Placement.LoadBalancing = config.LoadBalancingFingerprint
		wantB := c.Limits
		wantB.IngestionBurstSizeMB = 1.5
		wantB.Placement.DefaultDatasetShards = 3
		for tenant, want := range map[string]config.Limits{"team-a": wantA, "team-b": wantB, "other": c.Limits} {
			if got := *tenants.ForTenant(tenant); !reflect.DeepEqual(got, want) {
				t.Errorf("tenant %s limits = %+v, want %+v", tenant, got, want)
			}
		}
	}
}

// The operator's defaults reach the file even when the spec leaves them to
// the CRD: same-zone preference on, one headless-service join address.
func TestConfigDefaults(t *testing.T) {
	pd := base("zone-a")
	pd.Spec.Placement.PreferSameZone = nil // as if the API server had not defaulted it
	pd.Spec.Memberlist = v1.MemberlistSpec{}
	d := mustBuild(t, pd)
	c, _ := loadLikeDistributor(t, d, "zone-a")
	if !c.Distributor.PreferSameZone {
		t.Error("prefer_same_zone must default to true in the operator")
	}
	if !slices.Equal(c.Memberlist.JoinMembers, []string{"dns+pyd-memberlist.profiling.svc:7946"}) {
		t.Errorf("join_members = %v", c.Memberlist.JoinMembers)
	}
	if c.Memberlist.BindPort != 7946 {
		t.Errorf("bind_port = %d", c.Memberlist.BindPort)
	}
	if got := d.Overrides.Data[OverridesFile]; got != "overrides: {}\n" {
		t.Errorf("overrides.yaml with no overrides = %q", got)
	}
	if regexp.MustCompile(`(?m)^\s*zone:`).MatchString(d.ConfigMap.Data[ConfigFileName]) {
		t.Errorf("config.yaml must not carry a zone (each Deployment passes its own):\n%s", d.ConfigMap.Data[ConfigFileName])
	}

	f := testFacts
	f.ClusterDomain = "cluster.example"
	d, err := Build(pd, f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.ConfigMap.Data[ConfigFileName], "dns+pyd-memberlist.profiling.svc.cluster.example:7946") {
		t.Errorf("cluster domain not used:\n%s", d.ConfigMap.Data[ConfigFileName])
	}
}

// Only config.yaml rolls pods; overrides.yaml is reloaded in place.
func TestConfigHashRollsOnlyOnConfig(t *testing.T) {
	before := mustBuild(t, threeZones())

	pd := threeZones()
	pd.Spec.Limits.Overrides["team-b"] = v1.TenantLimits{IngestionRate: ptr.To(resource.MustParse("1Mi"))}
	pd.Spec.Limits.Overrides["team-a"] = v1.TenantLimits{TenantShards: ptr.To[int32](2)}
	onlyOverrides := mustBuild(t, pd)
	if onlyOverrides.Overrides.Data[OverridesFile] == before.Overrides.Data[OverridesFile] {
		t.Fatal("overrides.yaml did not change")
	}
	if onlyOverrides.ConfigHash != before.ConfigHash || onlyOverrides.Version != before.Version ||
		onlyOverrides.ConfigMap.Name != before.ConfigMap.Name {
		t.Error("an overrides change changed the config hash, version or config version")
	}
	for i := range before.Zones {
		if !reflect.DeepEqual(before.Zones[i].Deployment, onlyOverrides.Zones[i].Deployment) {
			t.Errorf("zone %s: an overrides change changed the Deployment", before.Zones[i].Name)
		}
	}

	pd = threeZones()
	pd.Spec.Memberlist.ClusterLabel = "other"
	changed := mustBuild(t, pd)
	if changed.ConfigHash == before.ConfigHash || changed.Version == before.Version || changed.ConfigMap.Name == before.ConfigMap.Name {
		t.Fatal("a config.yaml change kept the hash, version or config version")
	}
	for _, z := range changed.Zones {
		tmpl := &z.Deployment.Spec.Template
		if got := tmpl.Annotations[AnnotationConfigHash]; got != changed.ConfigHash {
			t.Errorf("zone %s: pod template hash %q, want %q", z.Name, got, changed.ConfigHash)
		}
		if TemplateVersion(tmpl) != changed.Version || ConfigVersionOf("pyd", tmpl) != changed.ConfigMap.Name {
			t.Errorf("zone %s: version %q mounting %q, want %q mounting %q", z.Name,
				TemplateVersion(tmpl), ConfigVersionOf("pyd", tmpl), changed.Version, changed.ConfigMap.Name)
		}
	}

	// Same input, same output: the hash and objects are deterministic.
	again := mustBuild(t, threeZones())
	if !reflect.DeepEqual(again, before) {
		t.Error("two builds of the same spec differ")
	}
}

func TestReplicas(t *testing.T) {
	cases := []struct {
		name       string
		pd         func() *v1.PyroscopeDistributor
		zone       string
		want       *int32 // Deployment.spec.replicas
		autoscaled bool
		hpa        bool
	}{
		{"default per zone", func() *v1.PyroscopeDistributor { return base("a") }, "a", ptr.To[int32](2), false, false},
		{"spec replicas", threeZones, "eu-west-1a", ptr.To[int32](3), false, false},
		{"zone replicas win", threeZones, "eu-west-1c", ptr.To[int32](1), false, false},
		{"autoscaled", autoscaled, "zone-a", nil, true, true},
		{"disabled with autoscaling", zoneDisabled, "zone-b", ptr.To[int32](0), false, false},
		{"disabled fixed", func() *v1.PyroscopeDistributor {
			pd := threeZones()
			pd.Spec.Zones[0].Disabled = true
			return pd
		}, "eu-west-1a", ptr.To[int32](0), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := mustBuild(t, tc.pd())
			z := d.Zone(tc.zone)
			if z == nil {
				t.Fatalf("no zone %s", tc.zone)
			}
			if !reflect.DeepEqual(z.Deployment.Spec.Replicas, tc.want) {
				t.Errorf("deployment replicas = %v, want %v", ptrStr(z.Deployment.Spec.Replicas), ptrStr(tc.want))
			}
			if !reflect.DeepEqual(z.Replicas, tc.want) {
				t.Errorf("ZoneObjects.Replicas = %v, want %v", ptrStr(z.Replicas), ptrStr(tc.want))
			}
			if z.Autoscaled != tc.autoscaled || z.ReplicasManaged() == tc.autoscaled {
				t.Errorf("autoscaled = %v, managed = %v", z.Autoscaled, z.ReplicasManaged())
			}
			if (z.HPA != nil) != tc.hpa {
				t.Errorf("HPA present = %v, want %v", z.HPA != nil, tc.hpa)
			}
			if z.Service == nil || z.PDB == nil || z.Deployment == nil {
				t.Error("every zone, disabled or not, keeps its Deployment, Service and PDB")
			}
		})
	}
}

func ptrStr(p *int32) string {
	if p == nil {
		return "nil"
	}
	return itoa(int(*p))
}

func TestHPA(t *testing.T) {
	d := mustBuild(t, autoscaled())
	h := d.Zone("zone-b").HPA
	if h.Name != "pyd-zone-b" || h.Spec.ScaleTargetRef != (autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "pyd-zone-b"}) {
		t.Errorf("HPA %s targets %+v", h.Name, h.Spec.ScaleTargetRef)
	}
	if *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 10 {
		t.Errorf("min/max = %d/%d", *h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	targets := map[corev1.ResourceName]int32{}
	for _, m := range h.Spec.Metrics {
		targets[m.Resource.Name] = *m.Resource.Target.AverageUtilization
	}
	if !reflect.DeepEqual(targets, map[corev1.ResourceName]int32{corev1.ResourceCPU: 60, corev1.ResourceMemory: 80}) {
		t.Errorf("metrics = %v", targets)
	}

	pd := autoscaled()
	pd.Spec.Autoscaling = &v1.Autoscaling{MaxReplicas: 4, Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](600)},
	}}
	pd.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}
	d = mustBuild(t, pd)
	h = d.Zones[0].HPA
	if *h.Spec.MinReplicas != defaultAutoscalingMin {
		t.Errorf("default min = %d", *h.Spec.MinReplicas)
	}
	if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU || *h.Spec.Metrics[0].Resource.Target.AverageUtilization != defaultCPUTargetPercent {
		t.Errorf("default metrics = %+v", h.Spec.Metrics)
	}
	if *h.Spec.Behavior.ScaleDown.StabilizationWindowSeconds != 600 {
		t.Error("behavior not passed through")
	}
	if len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "requests.cpu") {
		t.Errorf("warnings = %q, want one about the missing CPU request", d.Warnings)
	}
}

// checkRestricted asserts what the restricted Pod Security Standard requires
// (plus a read-only root file system and no init containers).
func checkRestricted(t *testing.T, where string, p corev1.PodSpec) {
	t.Helper()
	fail := func(format string, args ...any) { t.Errorf(where+": "+format, args...) }
	if p.HostNetwork || p.HostPID || p.HostIPC {
		fail("host namespaces used")
	}
	if len(p.InitContainers) != 0 {
		fail("init containers present")
	}
	for _, v := range p.Volumes {
		if v.ConfigMap == nil && v.EmptyDir == nil && v.Secret == nil && v.Projected == nil && v.DownwardAPI == nil {
			fail("volume %s is not of a restricted-allowed type", v.Name)
		}
	}
	psc := p.SecurityContext
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		fail("pod seccomp profile is not RuntimeDefault")
	}
	podNonRoot := psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
	if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		fail("pod runs as uid 0")
	}
	for _, c := range p.Containers {
		sc := c.SecurityContext
		if sc == nil {
			fail("container %s has no security context", c.Name)
			continue
		}
		if !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
			fail("container %s may run as root", c.Name)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			fail("container %s runs as uid 0", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			fail("container %s allows privilege escalation", c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			fail("container %s is privileged", c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			fail("container %s has a writable root file system", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			fail("container %s does not drop ALL capabilities", c.Name)
		}
		if sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 { // not even NET_BIND_SERVICE: no port below 1024
			fail("container %s adds capabilities %v", c.Name, sc.Capabilities.Add)
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault && sc.SeccompProfile.Type != corev1.SeccompProfileTypeLocalhost {
			fail("container %s seccomp %s", c.Name, sc.SeccompProfile.Type)
		}
		for _, port := range c.Ports {
			if port.HostPort != 0 {
				fail("container %s uses a host port", c.Name)
			}
		}
	}
}

func TestPodSecurityRestricted(t *testing.T) {
	for _, sc := range scenarios {
		d := mustBuild(t, sc.pd())
		for _, z := range d.Zones {
			checkRestricted(t, sc.name+"/"+z.Name, z.Deployment.Spec.Template.Spec)
		}
	}

	// User overrides replace single fields and keep the rest of the hardening.
	pd := base("zone-a")
	pd.Spec.PodTemplate.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), FSGroup: ptr.To[int64](2000)}
	pd.Spec.PodTemplate.ContainerSecurityContext = &corev1.SecurityContext{RunAsGroup: ptr.To[int64](3000)}
	d := mustBuild(t, pd)
	spec := d.Zones[0].Deployment.Spec.Template.Spec
	checkRestricted(t, "overridden", spec)
	if *spec.SecurityContext.RunAsUser != 1000 || *spec.SecurityContext.FSGroup != 2000 || *spec.SecurityContext.RunAsGroup != nonRootID {
		t.Errorf("pod security context = %+v", spec.SecurityContext)
	}
	if *spec.Containers[0].SecurityContext.RunAsGroup != 3000 {
		t.Errorf("container security context = %+v", spec.Containers[0].SecurityContext)
	}
}

func TestPodShape(t *testing.T) {
	d := mustBuild(t, threeZones())
	for _, z := range d.Zones {
		p := z.Deployment.Spec.Template.Spec
		c := p.Containers[0]
		if len(p.Containers) != 1 {
			t.Fatalf("zone %s: %d containers", z.Name, len(p.Containers))
		}
		if !slices.Contains(c.Args, "-distributor.zone="+z.Name) ||
			!slices.Contains(c.Args, "-config.file=/etc/pyrodist/config.yaml") ||
			!slices.Contains(c.Args, "-runtime-config.file=/etc/pyrodist/overrides.yaml") {
			t.Errorf("zone %s args = %v", z.Name, c.Args)
		}
		if c.Args[len(c.Args)-1] != "-log.level=debug" {
			t.Errorf("extra args must come last: %v", c.Args)
		}
		ports := map[string]int32{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		if !reflect.DeepEqual(ports, map[string]int32{"http": 4040, "memberlist": 7946}) {
			t.Errorf("ports = %v", ports)
		}
		if c.ReadinessProbe.HTTPGet.Path != "/ready" || c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("probes = %s, %s", c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path)
		}
		def := config.Defaults()
		if grace := time.Duration(*p.TerminationGracePeriodSeconds) * time.Second; grace <= def.Server.ShutdownDelay+def.Server.GracefulTimeout {
			t.Errorf("grace %v does not outlast shutdown delay %v + drain %v", grace, def.Server.ShutdownDelay, def.Server.GracefulTimeout)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		if env["GOMEMLIMIT"] != "966367641" || env["GOGC"] != "200" { // 90% of 1Gi
			t.Errorf("env = %v", env)
		}
		if p.Containers[0].Image != testFacts.DefaultImage {
			t.Errorf("image = %s", c.Image)
		}
		if len(p.TopologySpreadConstraints) != 1 || p.TopologySpreadConstraints[0].TopologyKey != "kubernetes.io/hostname" ||
			p.TopologySpreadConstraints[0].LabelSelector.MatchLabels[LabelZone] != z.Name {
			t.Errorf("spread = %+v", p.TopologySpreadConstraints)
		}
		if z.Deployment.Spec.Template.Labels["team"] != "observability" || z.Deployment.Spec.Template.Annotations["example.com/scrape"] != "true" {
			t.Error("pod template extras missing")
		}
	}

	// Pinning: required node affinity on the zone label, or the zone's own selector.
	a := d.Zone("eu-west-1a").Deployment.Spec.Template.Spec
	req := a.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(req) != 1 || !reflect.DeepEqual(req[0].MatchExpressions, []corev1.NodeSelectorRequirement{{Key: v1.DefaultZoneLabelKey, Operator: corev1.NodeSelectorOpIn, Values: []string{"eu-west-1a"}}}) {
		t.Errorf("zone a affinity = %+v", req)
	}
	c := d.Zone("eu-west-1c").Deployment.Spec.Template.Spec
	if c.Affinity != nil || !reflect.DeepEqual(c.NodeSelector, map[string]string{"pool": "profiling-c"}) || len(c.Tolerations) != 1 {
		t.Errorf("zone c pinning = affinity %+v selector %v tolerations %v", c.Affinity, c.NodeSelector, c.Tolerations)
	}

	// A user's GOMEMLIMIT wins; no memory limit means no GOMEMLIMIT.
	pd := base("zone-a")
	pd.Spec.Image = "example.com/pyrodist:custom"
	pd.Spec.PodTemplate.Env = []corev1.EnvVar{{Name: "GOMEMLIMIT", Value: "500MiB"}}
	got := mustBuild(t, pd).Zones[0].Deployment.Spec.Template.Spec.Containers[0]
	if !reflect.DeepEqual(got.Env, []corev1.EnvVar{{Name: "GOMEMLIMIT", Value: "500MiB"}}) || got.Image != "example.com/pyrodist:custom" {
		t.Errorf("env = %v image = %s", got.Env, got.Image)
	}
	pd.Spec.Resources = &corev1.ResourceRequirements{}
	pd.Spec.PodTemplate.Env = nil
	if env := mustBuild(t, pd).Zones[0].Deployment.Spec.Template.Spec.Containers[0].Env; len(env) != 0 {
		t.Errorf("env without a memory limit = %v", env)
	}
}

func TestTrafficDistribution(t *testing.T) {
	cases := []struct {
		minor    int
		override string
		want     string // "" = field unset
		warn     bool
	}{
		{35, "", "PreferSameZone", false},
		{34, "", "PreferSameZone", false},
		{33, "", "PreferClose", false},
		{31, "", "PreferClose", false},
		{0, "", "PreferClose", false}, // unknown version: the value every supported server knows
		{29, "", "", true},
		{34, "None", "", false},
		{34, "PreferClose", "PreferClose", false},
		{33, "PreferSameZone", "PreferSameZone", true},
		{35, "PreferSameNode", "PreferSameNode", false},
	}
	for _, tc := range cases {
		pd := threeZones()
		pd.Spec.Service.TrafficDistribution = tc.override
		f := testFacts
		f.ServerMinor = tc.minor
		d, err := Build(pd, f)
		if err != nil {
			t.Fatal(err)
		}
		got := ptr.Deref(d.Service.Spec.TrafficDistribution, "")
		if got != tc.want {
			t.Errorf("1.%d override %q: trafficDistribution = %q, want %q", tc.minor, tc.override, got, tc.want)
		}
		status := tc.want
		if status == "" {
			status = "None"
		}
		if d.TrafficDistribution != status {
			t.Errorf("1.%d override %q: status value %q, want %q", tc.minor, tc.override, d.TrafficDistribution, status)
		}
		if (len(d.Warnings) > 0) != tc.warn {
			t.Errorf("1.%d override %q: warnings %q", tc.minor, tc.override, d.Warnings)
		}
		for _, o := range d.Objects() {
			if _, ok := o.GetAnnotations()["service.kubernetes.io/topology-mode"]; ok {
				t.Errorf("%s carries the topology-mode annotation", o.GetName())
			}
			if _, ok := o.GetAnnotations()["service.kubernetes.io/topology-aware-hints"]; ok {
				t.Errorf("%s carries the topology-aware-hints annotation", o.GetName())
			}
		}
		for _, z := range d.Zones {
			if z.Service.Spec.TrafficDistribution != nil {
				t.Errorf("zone Service %s has a trafficDistribution; only the shared one needs it", z.Service.Name)
			}
		}
	}
}

func TestServerMinor(t *testing.T) {
	for in, want := range map[[2]string]int{
		{"1", "34"}: 34, {"1", "33+"}: 33, {"1", ""}: 0, {"2", "1"}: 0, {"1", "x"}: 0,
	} {
		if got := ServerMinor(&version.Info{Major: in[0], Minor: in[1]}); got != want {
			t.Errorf("ServerMinor(%v) = %d, want %d", in, got, want)
		}
	}
	if ServerMinor(nil) != 0 {
		t.Error("nil info")
	}
}

func TestObjectsNamesLabelsAndOrder(t *testing.T) {
	d := mustBuild(t, autoscaled())
	objs := d.Objects()
	var names []string
	for _, o := range objs {
		names = append(names, kindOf(o)+"/"+o.GetName())
		for k, v := range OwnerLabels("pyd") {
			if o.GetLabels()[k] != v {
				t.Errorf("%s/%s lacks owner label %s=%s", kindOf(o), o.GetName(), k, v)
			}
		}
		if o.GetNamespace() != "profiling" {
			t.Errorf("%s in namespace %q", o.GetName(), o.GetNamespace())
		}
		if o.GetObjectKind().GroupVersionKind().Kind != kindOf(o) {
			t.Errorf("%s: TypeMeta kind %q", o.GetName(), o.GetObjectKind().GroupVersionKind().Kind)
		}
		if len(o.GetOwnerReferences()) != 0 {
			t.Errorf("%s: Build set owner references %v", o.GetName(), o.GetOwnerReferences())
		}
	}
	want := []string{
		"ServiceAccount/pyd", "ConfigMap/" + d.ConfigMap.Name, "ConfigMap/pyd-overrides", "Service/pyd-memberlist", "Service/pyd",
		"Service/pyd-zone-a", "PodDisruptionBudget/pyd-zone-a", "Deployment/pyd-zone-a", "HorizontalPodAutoscaler/pyd-zone-a",
		"Service/pyd-zone-b", "PodDisruptionBudget/pyd-zone-b", "Deployment/pyd-zone-b", "HorizontalPodAutoscaler/pyd-zone-b",
		"Service/pyd-zone-c", "PodDisruptionBudget/pyd-zone-c", "Deployment/pyd-zone-c", "HorizontalPodAutoscaler/pyd-zone-c",
	}
	if !slices.Equal(names, want) {
		t.Errorf("objects = %v\nwant %v", names, want)
	}

	ml := d.MemberlistService.Spec
	if ml.ClusterIP != corev1.ClusterIPNone || !ml.PublishNotReadyAddresses || ml.Ports[0].Port != 7946 {
		t.Errorf("memberlist Service = %+v", ml)
	}
	if d.Service.Spec.Selector[LabelZone] != "" {
		t.Error("the shared Service must select every zone")
	}
	for _, z := range d.Zones {
		sel := z.Deployment.Spec.Selector.MatchLabels
		if !reflect.DeepEqual(sel, z.Service.Spec.Selector) || !reflect.DeepEqual(sel, z.PDB.Spec.Selector.MatchLabels) {
			t.Errorf("zone %s: Deployment, Service and PDB select different pods", z.Name)
		}
		for k, v := range sel {
			if z.Deployment.Spec.Template.Labels[k] != v {
				t.Errorf("zone %s: pod template lacks selector label %s", z.Name, k)
			}
		}
		if z.PDB.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("zone %s PDB maxUnavailable = %v", z.Name, z.PDB.Spec.MaxUnavailable)
		}
	}
}

// Wants drives pruning: a removed zone's objects and a disabled zone's HPA
// are no longer wanted; everything else is.
func TestWants(t *testing.T) {
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: "profiling"} }
	zoneB := []client.Object{
		&appsv1.Deployment{ObjectMeta: meta("pyd-zone-b")},
		&corev1.Service{ObjectMeta: meta("pyd-zone-b")},
		&policyv1.PodDisruptionBudget{ObjectMeta: meta("pyd-zone-b")},
		&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta("pyd-zone-b")},
	}

	full := mustBuild(t, autoscaled())
	for _, o := range zoneB {
		if !full.Wants(o) {
			t.Errorf("3 zones: %s %s not wanted", kindOf(o), o.GetName())
		}
	}
	removed := mustBuild(t, zoneRemoved())
	for _, o := range zoneB {
		if removed.Wants(o) {
			t.Errorf("zone removed: %s %s still wanted", kindOf(o), o.GetName())
		}
	}
	if !removed.Wants(&appsv1.Deployment{ObjectMeta: meta("pyd-zone-a")}) || !removed.Wants(&corev1.ConfigMap{ObjectMeta: meta(removed.ConfigMap.Name)}) {
		t.Error("zone removed: kept objects not wanted")
	}
	disabled := mustBuild(t, zoneDisabled())
	for i, o := range zoneB {
		if got, want := disabled.Wants(o), i < 3; got != want {
			t.Errorf("zone disabled: Wants(%s) = %v, want %v", kindOf(o), got, want)
		}
	}
	if full.Wants(&corev1.Secret{ObjectMeta: meta("pyd")}) {
		t.Error("a kind the operator never makes is wanted")
	}
	if full.Wants(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "pyd-zone-a", Namespace: "elsewhere"}}) {
		t.Error("an object in another namespace is wanted")
	}

	kinds := map[string]bool{}
	for _, l := range OwnedObjectLists() {
		kinds[strings.TrimSuffix(reflect.TypeOf(l).Elem().Name(), "List")] = true
	}
	for _, o := range full.Objects() {
		if !kinds[kindOf(o)] {
			t.Errorf("OwnedObjectLists misses %s: pruning would never find it", kindOf(o))
		}
	}
}

func TestBuildErrors(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*v1.PyroscopeDistributor)
		facts  func(*ClusterFacts)
		want   string
	}{
		{"no zones", func(p *v1.PyroscopeDistributor) { p.Spec.Zones = nil }, nil, "at least one zone"},
		{"duplicate zone", func(p *v1.PyroscopeDistributor) { p.Spec.Zones = append(p.Spec.Zones, v1.Zone{Name: "zone-a"}) }, nil, "not unique"},
		{"bad zone name", func(p *v1.PyroscopeDistributor) { p.Spec.Zones[0].Name = "Zone A" }, nil, "not a DNS label"},
		{"reserved zone name", func(p *v1.PyroscopeDistributor) { p.Spec.Zones[0].Name = "memberlist" }, nil, "reserved"},
		{"name too long", func(p *v1.PyroscopeDistributor) { p.Name = strings.Repeat("n", 60) }, nil, "longer than 63"},
		{"replicas and autoscaling", func(p *v1.PyroscopeDistributor) {
			p.Spec.Replicas = ptr.To[int32](1)
			p.Spec.Autoscaling = &v1.Autoscaling{MaxReplicas: 2}
		}, nil, "mutually exclusive"},
		{"min above max", func(p *v1.PyroscopeDistributor) {
			p.Spec.Autoscaling = &v1.Autoscaling{MinReplicas: ptr.To[int32](3), MaxReplicas: 2}
		}, nil, "minReplicas"},
		{"no image", nil, func(f *ClusterFacts) { f.DefaultImage = "" }, "no default distributor image"},
		{"negative rate", func(p *v1.PyroscopeDistributor) {
			p.Spec.Limits.Defaults.IngestionRate = ptr.To(resource.MustParse("-1Mi"))
		}, nil, "must be positive"},
		{"bad load balancing", func(p *v1.PyroscopeDistributor) {
			p.Spec.Limits.Overrides = map[string]v1.TenantLimits{"t": {LoadBalancing: "random"}}
		}, nil, "loadBalancing"},
		{"empty tenant", func(p *v1.PyroscopeDistributor) {
			p.Spec.Limits.Overrides = map[string]v1.TenantLimits{"": {}}
		}, nil, "invalid tenant ID"},
		{"shard policy in limit defaults", func(p *v1.PyroscopeDistributor) {
			p.Spec.Limits.Defaults.DatasetShards = ptr.To[int32](2)
		}, nil, "belong in spec.placement"},
		{"negative tenant shards", func(p *v1.PyroscopeDistributor) {
			p.Spec.Limits.Overrides = map[string]v1.TenantLimits{"t": {TenantShards: ptr.To[int32](-1)}}
		}, nil, "must not be negative"},
		{"slash in tenant", func(p *v1.PyroscopeDistributor) {
			p.Spec.Limits.Overrides = map[string]v1.TenantLimits{"a/b": {}}
		}, nil, "invalid tenant ID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pd := base("zone-a")
			if tc.mutate != nil {
				tc.mutate(pd)
			}
			f := testFacts
			if tc.facts != nil {
				tc.facts(&f)
			}
			_, err := Build(pd, f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := Build(nil, testFacts); err == nil {
		t.Error("nil spec accepted")
	}
}

// The builder never writes into the spec it is given.
func TestBuildDoesNotMutateInput(t *testing.T) {
	for _, sc := range scenarios {
		pd := sc.pd()
		before := pd.DeepCopy()
		d := mustBuild(t, pd)
		// Scribble on the output: it must share no memory with the input.
		for _, z := range d.Zones {
			z.Deployment.Spec.Template.Labels["x"] = "y"
			z.Deployment.Spec.Template.Spec.Containers[0].Args[0] = "x"
			if z.Deployment.Spec.Template.Spec.NodeSelector != nil {
				z.Deployment.Spec.Template.Spec.NodeSelector["x"] = "y"
			}
			if z.HPA != nil && z.HPA.Spec.Behavior != nil {
				z.HPA.Spec.Behavior.ScaleDown = nil
			}
			for i := range z.Deployment.Spec.Template.Spec.Tolerations {
				z.Deployment.Spec.Template.Spec.Tolerations[i].Key = "x"
			}
			for i := range z.Deployment.Spec.Template.Spec.Containers[0].Env {
				z.Deployment.Spec.Template.Spec.Containers[0].Env[i].Value = "x"
			}
		}
		if d.Service.Annotations != nil {
			d.Service.Annotations["x"] = "y"
		}
		if !reflect.DeepEqual(pd, before) {
			t.Errorf("%s: Build or its output aliased the input", sc.name)
		}
	}
}

// The golden files must hold YAML a Kubernetes client can read back.
func TestGoldenFilesParse(t *testing.T) {
	for _, sc := range scenarios {
		d := mustBuild(t, sc.pd())
		for i, doc := range bytes.Split(render(t, d), []byte("---\n")) {
			var m map[string]any
			if err := yaml.Unmarshal(doc, &m); err != nil || m["kind"] == nil {
				t.Errorf("%s doc %d: %v", sc.name, i, err)
			}
		}
	}
}

// The shipped sample builds into three autoscaled zones.
func TestSampleBuilds(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", "profiling_v1alpha1_pyroscopedistributor.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pd := &v1.PyroscopeDistributor{}
	if err := sigsyaml.UnmarshalStrict(raw, pd); err != nil {
		t.Fatal(err)
	}
	pd.Namespace = "pyroscope"
	d := mustBuild(t, pd)
	if len(d.Zones) != 3 {
		t.Fatalf("%d zones", len(d.Zones))
	}
	for _, z := range d.Zones {
		if !z.Autoscaled || z.HPA == nil || z.Deployment.Spec.Replicas != nil {
			t.Errorf("zone %s not autoscaled", z.Name)
		}
	}
	if len(d.Warnings) != 0 {
		t.Errorf("warnings: %q", d.Warnings)
	}
}

// Build runs on every reconcile of every PyroscopeDistributor.
func BenchmarkBuild(b *testing.B) {
	pd := threeZones()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(pd, testFacts); err != nil {
			b.Fatal(err)
		}
	}
}

// Flags override config.yaml in the distributor, so shutdown settings given
// as extra args must stretch the pods' termination grace period too.
func TestTerminationGraceFollowsExtraArgs(t *testing.T) {
	def := config.Defaults().Server
	margin := graceMargin
	cases := []struct {
		name string
		args []string
		want time.Duration // shutdown delay + drain, before the margin
	}{
		{"defaults", nil, def.ShutdownDelay + def.GracefulTimeout},
		{"other flags", []string{"-log.level=debug", "-server.http-listen-port", "4040"}, def.ShutdownDelay + def.GracefulTimeout},
		{"longer delay", []string{"-shutdown-delay=2m"}, 2*time.Minute + def.GracefulTimeout},
		{"boolean flag", []string{"-server.enable-pprof", "-shutdown-delay=2m"}, 2*time.Minute + def.GracefulTimeout},
		{"separate value, double dash", []string{"--server.graceful-shutdown-timeout", "90s"}, def.ShutdownDelay + 90*time.Second},
		{"last one wins", []string{"-shutdown-delay=1m", "-shutdown-delay=10s"}, 10*time.Second + def.GracefulTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pd := base("zone-a")
			pd.Spec.PodTemplate.ExtraArgs = tc.args
			got := time.Duration(*mustBuild(t, pd).Zones[0].Deployment.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
			if got != tc.want+margin {
				t.Errorf("grace %v, want %v", got, tc.want+margin)
			}
		})
	}

	for _, args := range [][]string{{"-shutdown-delay=soon"}, {"-server.graceful-shutdown-timeout"}} {
		pd := base("zone-a")
		pd.Spec.PodTemplate.ExtraArgs = args
		if _, err := Build(pd, testFacts); err == nil || !strings.Contains(err.Error(), "extraArgs") {
			t.Errorf("%v: err = %v, want an extraArgs error", args, err)
		}
	}
}
