package manifests

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
)

// ClusterFacts is what the builders need to know about the cluster and the
// operator, gathered by the controller once (not per reconcile).
type ClusterFacts struct {
	// ServerMinor is the Kubernetes server's minor version (1.<minor>); 0
	// when unknown. It picks the shared Service's trafficDistribution.
	ServerMinor int
	// DefaultImage is the distributor image used when spec.image is empty.
	DefaultImage string
	// ClusterDomain, when set, makes the memberlist join address a fully
	// qualified name (<svc>.<ns>.svc.<domain>); empty relies on the pods'
	// DNS search path, which works whatever the domain is.
	ClusterDomain string
	// AllowPrivilegedPods lets spec.podTemplate weaken the pods' restricted
	// security contexts (root, privileged, added capabilities, a writable
	// root file system...). Off, Build refuses such a spec with a
	// *PodSecurityError. Set by the operator's --allow-privileged-pods.
	AllowPrivilegedPods bool
}

// ServerMinor reads the minor version from discovery's version info; cloud
// providers report minors such as "34+". It returns 0 when it cannot tell.
func ServerMinor(info *version.Info) int {
	if info == nil || info.Major != "1" {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimRight(info.Minor, "+"))
	if err != nil {
		return 0
	}
	return n
}

// Desired is every object a PyroscopeDistributor wants.
type Desired struct {
	ServiceAccount *corev1.ServiceAccount
	// ConfigMap is the immutable config version <name>-config-<hash10>
	// holding config.yaml (configversion.go).
	ConfigMap *corev1.ConfigMap
	// Overrides is the mutable <name>-overrides holding overrides.yaml.
	Overrides *corev1.ConfigMap
	// Service is the shared Service agents send to, over all zones.
	Service *corev1.Service
	// MemberlistService is the headless gossip Service.
	MemberlistService *corev1.Service
	// Zones are in spec order.
	Zones []ZoneObjects

	// ConfigHash is the sha256 of config.yaml, as on every pod template.
	ConfigHash string
	// Version is the target version: AnnotationVersion of every zone's
	// pod template (rollout.go).
	Version string
	// KeepConfigMaps are ConfigMaps Wants keeps besides the desired ones:
	// earlier config versions some zone's pods still mount (set by the
	// controller from the live Deployments, see KeepConfigVersions).
	KeepConfigMaps map[string]bool
	// KeepAllConfigMaps keeps every owned ConfigMap: a rollout is under way,
	// so old pods may still mount any earlier version.
	KeepAllConfigMaps bool
	// TrafficDistribution is the shared Service's spec.trafficDistribution,
	// or "None" when it is left unset.
	TrafficDistribution string
	// Warnings are notes for the user (an Event each), not errors.
	Warnings []string
}

// ZoneObjects are the objects of one zone.
type ZoneObjects struct {
	Name     string
	Disabled bool
	// Autoscaled is true when the zone's HPA owns the Deployment's replicas:
	// Deployment.Spec.Replicas is then nil and must not be applied.
	Autoscaled bool
	// Replicas is the count the operator applies when !Autoscaled (0 when
	// Disabled); nil when Autoscaled.
	Replicas   *int32
	Deployment *appsv1.Deployment
	Service    *corev1.Service
	PDB        *policyv1.PodDisruptionBudget
	// HPA is nil unless Autoscaled.
	HPA *autoscalingv2.HorizontalPodAutoscaler
}

// ReplicasManaged is true when the operator, not an HPA, sets the replicas.
func (z *ZoneObjects) ReplicasManaged() bool { return !z.Autoscaled }

// Objects returns every object in apply order: what others reference comes
// before what references it (ConfigMap and ServiceAccount before Deployments,
// Deployments before their HPAs).
func (d *Desired) Objects() []client.Object {
	objs := []client.Object{d.ServiceAccount, d.ConfigMap, d.Overrides, d.MemberlistService, d.Service}
	for i := range d.Zones {
		z := &d.Zones[i]
		objs = append(objs, z.Service, z.PDB, z.Deployment)
		if z.HPA != nil {
			objs = append(objs, z.HPA)
		}
	}
	return objs
}

// Zone returns the objects of the named zone, or nil.
func (d *Desired) Zone(name string) *ZoneObjects {
	for i := range d.Zones {
		if d.Zones[i].Name == name {
			return &d.Zones[i]
		}
	}
	return nil
}

// Wants reports whether obj (matched by Go type and name) is one of the
// desired objects. An owned child it does not want is to be deleted.
func (d *Desired) Wants(obj client.Object) bool {
	k := kindOf(obj)
	if k == "" {
		return false
	}
	if k == "ConfigMap" && (d.KeepAllConfigMaps || d.KeepConfigMaps[obj.GetName()]) {
		return true
	}
	for _, o := range d.Objects() {
		if kindOf(o) == k && o.GetName() == obj.GetName() && o.GetNamespace() == obj.GetNamespace() {
			return true
		}
	}
	return false
}

func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *appsv1.Deployment:
		return "Deployment"
	case *corev1.Service:
		return "Service"
	case *autoscalingv2.HorizontalPodAutoscaler:
		return "HorizontalPodAutoscaler"
	case *policyv1.PodDisruptionBudget:
		return "PodDisruptionBudget"
	case *corev1.ConfigMap:
		return "ConfigMap"
	case *corev1.ServiceAccount:
		return "ServiceAccount"
	}
	return ""
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

type builder struct {
	pd           *v1.PyroscopeDistributor
	facts        ClusterFacts
	image        string
	zoneLabelKey string
	resources    corev1.ResourceRequirements
	cfg          *renderedConfig
}

// Build returns the objects pd wants. It fails on a spec the API server's
// validation should already have refused, and on what the schema cannot
// check (no image at all, a non-positive rate), and with a *PodSecurityError
// on pods weaker than the restricted defaults unless facts.AllowPrivilegedPods.
func Build(pd *v1.PyroscopeDistributor, facts ClusterFacts) (*Desired, error) {
	if pd == nil {
		return nil, errors.New("nil PyroscopeDistributor")
	}
	if err := check(pd); err != nil {
		return nil, err
	}
	b := &builder{pd: pd, facts: facts, image: pd.Spec.Image, zoneLabelKey: pd.Spec.ZoneLabelKey}
	if b.image == "" {
		b.image = facts.DefaultImage
	}
	if b.image == "" {
		return nil, errors.New("spec.image is empty and the operator has no default distributor image")
	}
	if b.zoneLabelKey == "" {
		b.zoneLabelKey = v1.DefaultZoneLabelKey
	}
	if pd.Spec.Resources != nil {
		b.resources = *pd.Spec.Resources.DeepCopy()
	} else {
		b.resources = DefaultResources()
	}
	cfg, err := renderConfig(pd, facts)
	if err != nil {
		return nil, err
	}
	b.cfg = cfg

	d := &Desired{ConfigHash: cfg.hash}
	d.ServiceAccount = b.serviceAccount()
	d.ConfigMap = b.configVersion()
	d.Overrides = b.overrides()
	d.MemberlistService = b.memberlistService()
	td, warn := trafficDistribution(pd.Spec.Service.TrafficDistribution, facts.ServerMinor)
	if warn != "" {
		d.Warnings = append(d.Warnings, warn)
	}
	d.TrafficDistribution = td
	d.Service = b.sharedService(td)
	d.Warnings = append(d.Warnings, b.autoscalingWarnings()...)
	if d.Version, err = b.templateVersion(); err != nil {
		return nil, err
	}
	for _, z := range pd.Spec.Zones {
		zo, err := b.zone(z)
		if err != nil {
			return nil, fmt.Errorf("zone %s: %w", z.Name, err)
		}
		zo.Deployment.Spec.Template.Annotations[AnnotationVersion] = d.Version
		d.Zones = append(d.Zones, zo)
	}
	if err := b.checkPodSecurity(d); err != nil {
		return nil, err
	}
	return d, nil
}

// check repeats the CRD's rules that matter for building correct objects, so
// a spec that bypassed validation yields an error rather than bad objects.
func check(pd *v1.PyroscopeDistributor) error {
	s := &pd.Spec
	if pd.Name == "" || pd.Namespace == "" {
		return errors.New("metadata.name and metadata.namespace are required")
	}
	if len(s.Zones) == 0 {
		return errors.New("spec.zones: at least one zone is required")
	}
	if s.Replicas != nil && s.Autoscaling != nil {
		return errors.New("spec.replicas and spec.autoscaling are mutually exclusive")
	}
	seen := map[string]bool{}
	for i, z := range s.Zones {
		switch {
		case !dnsLabel.MatchString(z.Name) || len(z.Name) > 63:
			return fmt.Errorf("spec.zones[%d].name %q is not a DNS label", i, z.Name)
		case z.Name == "memberlist":
			return fmt.Errorf("spec.zones[%d].name %q is reserved", i, z.Name)
		case seen[z.Name]:
			return fmt.Errorf("spec.zones[%d].name %q is not unique", i, z.Name)
		case len(pd.Name)+1+len(z.Name) > 63:
			return fmt.Errorf("spec.zones[%d]: %s-%s is longer than 63 characters", i, pd.Name, z.Name)
		case z.Replicas != nil && s.Autoscaling != nil:
			return fmt.Errorf("spec.zones[%d].replicas cannot be set with spec.autoscaling", i)
		}
		seen[z.Name] = true
	}
	if a := s.Autoscaling; a != nil {
		if a.MaxReplicas < 1 {
			return errors.New("spec.autoscaling.maxReplicas must be at least 1")
		}
		if a.MinReplicas != nil && (*a.MinReplicas < 1 || *a.MinReplicas > a.MaxReplicas) {
			return errors.New("spec.autoscaling.minReplicas must be between 1 and maxReplicas")
		}
	}
	return nil
}

// trafficDistribution picks the shared Service's mode: PreferSameZone where
// the server has it on by default (1.34+), PreferClose (its older alias) from
// 1.31, nothing before. An explicit override is used as given.
func trafficDistribution(override string, minor int) (value, warning string) {
	switch override {
	case v1.TrafficDistributionNone:
		return v1.TrafficDistributionNone, ""
	case v1.TrafficDistributionPreferSameZone, v1.TrafficDistributionPreferSameNode:
		if minor != 0 && minor < 34 {
			warning = fmt.Sprintf("service.trafficDistribution %s needs Kubernetes 1.34 or later; this server (1.%d) may ignore it", override, minor)
		}
		return override, warning
	case v1.TrafficDistributionPreferClose:
		return override, ""
	}
	switch {
	case minor >= 34:
		return v1.TrafficDistributionPreferSameZone, ""
	case minor == 0 || minor >= 31:
		return v1.TrafficDistributionPreferClose, ""
	default:
		return v1.TrafficDistributionNone, fmt.Sprintf("Kubernetes 1.%d has no Service trafficDistribution; traffic is not kept in its zone", minor)
	}
}

func objectMeta(name, ns string, labels, annotations map[string]string) metav1.ObjectMeta {
	if len(annotations) == 0 {
		annotations = nil
	}
	return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: annotations}
}

func (b *builder) serviceAccount() *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:                     metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta:                   objectMeta(b.pd.Name, b.pd.Namespace, commonLabels(b.pd.Name), nil),
		AutomountServiceAccountToken: ptr.To(false),
	}
}

func httpServicePort() corev1.ServicePort {
	return corev1.ServicePort{
		Name:       HTTPPortName,
		Port:       HTTPPort,
		TargetPort: intstr.FromString(HTTPPortName),
		Protocol:   corev1.ProtocolTCP,
	}
}

func (b *builder) sharedService(td string) *corev1.Service {
	s := &b.pd.Spec.Service
	typ := s.Type
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(b.pd.Name, b.pd.Namespace, commonLabels(b.pd.Name), maps.Clone(s.Annotations)),
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: selectorLabels(b.pd.Name),
			Ports:    []corev1.ServicePort{httpServicePort()},
		},
	}
	if td != v1.TrafficDistributionNone {
		svc.Spec.TrafficDistribution = ptr.To(td)
	}
	return svc
}

// memberlistService is headless (gossip needs every pod's address) and
// publishes pods before they are ready: a distributor must join the cluster
// to become ready at all.
func (b *builder) memberlistService() *corev1.Service {
	port := int32(b.cfg.cfg.Memberlist.BindPort)
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(MemberlistServiceName(b.pd.Name), b.pd.Namespace, commonLabels(b.pd.Name), nil),
		Spec: corev1.ServiceSpec{
			Type:                     corev1.ServiceTypeClusterIP,
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 selectorLabels(b.pd.Name),
			Ports: []corev1.ServicePort{{
				Name:       GossipPortName,
				Port:       port,
				TargetPort: intstr.FromString(GossipPortName),
				Protocol:   corev1.ProtocolTCP,
			}},
		},
	}
}

func (b *builder) zone(z v1.Zone) (ZoneObjects, error) {
	name, ns := ZonalName(b.pd.Name, z.Name), b.pd.Namespace
	labels := func() map[string]string { return zonalLabels(b.pd.Name, z.Name) }
	zo := ZoneObjects{Name: z.Name, Disabled: z.Disabled}
	a := b.pd.Spec.Autoscaling
	switch {
	case z.Disabled:
		zo.Replicas = ptr.To[int32](0)
	case a != nil:
		zo.Autoscaled = true
	case z.Replicas != nil:
		zo.Replicas = ptr.To(*z.Replicas)
	case b.pd.Spec.Replicas != nil:
		zo.Replicas = ptr.To(*b.pd.Spec.Replicas)
	default:
		zo.Replicas = ptr.To[int32](defaultReplicasPerZone)
	}

	tmpl, err := b.podTemplate(z)
	if err != nil {
		return zo, err
	}
	zo.Deployment = &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(name, ns, labels(), nil),
		Spec: appsv1.DeploymentSpec{
			Replicas: zo.Replicas,
			Selector: &metav1.LabelSelector{MatchLabels: zoneSelectorLabels(b.pd.Name, z.Name)},
			Template: tmpl,
			// Never below the zone's capacity during a rollout.
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromString("25%")),
				},
			},
			RevisionHistoryLimit: ptr.To[int32](5),
		},
	}
	zo.Service = &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(name, ns, labels(), nil),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: zoneSelectorLabels(b.pd.Name, z.Name),
			Ports:    []corev1.ServicePort{httpServicePort()},
		},
	}
	zo.PDB = &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: objectMeta(name, ns, labels(), nil),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: zoneSelectorLabels(b.pd.Name, z.Name)},
			// A crash-looping pod must not block node drains.
			UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
		},
	}
	if zo.Autoscaled {
		zo.HPA = b.hpa(name, labels())
	}
	return zo, nil
}

// autoscalingWarnings: utilization targets are relative to requests, so an
// HPA without the matching request never scales.
func (b *builder) autoscalingWarnings() []string {
	a := b.pd.Spec.Autoscaling
	if a == nil {
		return nil
	}
	var w []string
	for _, m := range b.hpaMetrics() {
		r := m.Resource.Name
		if _, ok := b.resources.Requests[r]; !ok {
			w = append(w, fmt.Sprintf("autoscaling on %s needs spec.resources.requests.%s; the HPAs cannot compute utilization without it", r, r))
		}
	}
	return w
}

func (b *builder) hpa(name string, labels map[string]string) *autoscalingv2.HorizontalPodAutoscaler {
	a := b.pd.Spec.Autoscaling
	minR := int32(defaultAutoscalingMin)
	if a.MinReplicas != nil {
		minR = *a.MinReplicas
	}
	if minR > a.MaxReplicas {
		minR = a.MaxReplicas
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: objectMeta(name, b.pd.Namespace, labels, nil),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
				APIVersion: "apps/v1", Kind: "Deployment", Name: name,
			},
			MinReplicas: ptr.To(minR),
			MaxReplicas: a.MaxReplicas,
			Metrics:     b.hpaMetrics(),
			Behavior:    a.Behavior.DeepCopy(),
		},
	}
}

// hpaMetrics: CPU at 70% when no target is given.
func (b *builder) hpaMetrics() []autoscalingv2.MetricSpec {
	a := b.pd.Spec.Autoscaling
	util := func(r corev1.ResourceName, pct int32) autoscalingv2.MetricSpec {
		return autoscalingv2.MetricSpec{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{
				Name: r,
				Target: autoscalingv2.MetricTarget{
					Type:               autoscalingv2.UtilizationMetricType,
					AverageUtilization: ptr.To(pct),
				},
			},
		}
	}
	var metrics []autoscalingv2.MetricSpec
	cpu := a.TargetCPUUtilizationPercentage
	if cpu == nil && a.TargetMemoryUtilizationPercentage == nil {
		cpu = ptr.To[int32](defaultCPUTargetPercent)
	}
	if cpu != nil {
		metrics = append(metrics, util(corev1.ResourceCPU, *cpu))
	}
	if m := a.TargetMemoryUtilizationPercentage; m != nil {
		metrics = append(metrics, util(corev1.ResourceMemory, *m))
	}
	return metrics
}
