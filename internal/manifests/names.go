package manifests

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Labels and annotations the operator puts on what it builds.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelComponent = "app.kubernetes.io/component"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelOwner names the PyroscopeDistributor a child belongs to. Unlike
	// app.kubernetes.io/instance, nobody else has a reason to set it, so it is
	// what pruning selects on (together with owner references).
	LabelOwner = "profiling.pyrodist.dev/distributor"
	// LabelZone is the zone of a zonal object and of its pods.
	LabelZone = "profiling.pyrodist.dev/zone"

	// AnnotationConfigHash on the pod template is the sha256 of config.yaml,
	// for people and Events; what rolls pods is the config version
	// ConfigMap the template mounts (configversion.go).
	AnnotationConfigHash = "profiling.pyrodist.dev/config-hash"

	appName      = "pyrodist-distributor"
	componentVal = "distributor"
	partOfVal    = "pyrodist"
	// ManagedBy is the app.kubernetes.io/managed-by value of every child.
	ManagedBy = "pyrodist-operator"
)

// Fixed ports and paths of the distributor container.
const (
	HTTPPort        = 4040
	HTTPPortName    = "http"
	GossipPortName  = "memberlist"
	ContainerName   = "distributor"
	ConfigFileName  = "config.yaml"
	OverridesFile   = "overrides.yaml"
	configMountPath = "/etc/pyrodist"
	tmpMountPath    = "/tmp"
	// DistributorCommand is the distributor program inside the pyrodist image
	// (the image holds the operator too, so the command is explicit).
	DistributorCommand = "/distributor"
	// nonRootID is the uid/gid the pods run as (distroless "nonroot").
	nonRootID = 65532
)

// ZonalName is the name of zone's Deployment, Service, PodDisruptionBudget and
// HPA for PyroscopeDistributor name: <name>-<zone>.
func ZonalName(name, zone string) string { return name + "-" + zone }

// MemberlistServiceName is the headless Service the distributors gossip through.
func MemberlistServiceName(name string) string { return name + "-memberlist" }

// OwnerLabels are carried by every child of PyroscopeDistributor name; list
// with them as the selector to find candidates for pruning.
func OwnerLabels(name string) map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, LabelOwner: name}
}

func commonLabels(name string) map[string]string {
	return map[string]string{
		LabelName:      appName,
		LabelInstance:  name,
		LabelComponent: componentVal,
		LabelPartOf:    partOfVal,
		LabelManagedBy: ManagedBy,
		LabelOwner:     name,
	}
}

func zonalLabels(name, zone string) map[string]string {
	l := commonLabels(name)
	l[LabelZone] = zone
	return l
}

// selectorLabels select every distributor pod of a PyroscopeDistributor.
func selectorLabels(name string) map[string]string {
	return map[string]string{LabelName: appName, LabelInstance: name}
}

// zoneSelectorLabels select the pods of one zone. Deployment selectors are
// immutable, so these never change for a given (name, zone).
func zoneSelectorLabels(name, zone string) map[string]string {
	l := selectorLabels(name)
	l[LabelZone] = zone
	return l
}

// OwnedObjectLists returns empty lists of every kind the operator creates,
// for the controller to list (by OwnerLabels) when pruning.
func OwnedObjectLists() []client.ObjectList {
	return []client.ObjectList{
		&appsv1.DeploymentList{},
		&corev1.ServiceList{},
		&autoscalingv2.HorizontalPodAutoscalerList{},
		&policyv1.PodDisruptionBudgetList{},
		&corev1.ConfigMapList{},
		&corev1.ServiceAccountList{},
	}
}
