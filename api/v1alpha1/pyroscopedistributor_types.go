/*
Copyright 2026 The pyrodist Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of a PyroscopeDistributor (status.conditions[].type).
const (
	// ConditionReady is True when every enabled zone has all its desired
	// replicas updated and ready for the current generation.
	ConditionReady = "Ready"
	// ConditionProgressing is True while children are being created, scaled
	// or rolled to match the spec.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True when the spec cannot be (fully) realised:
	// a reconcile error, a zone without schedulable pods, and the like.
	ConditionDegraded = "Degraded"
)

// Values of spec.service.trafficDistribution and status.trafficDistribution.
const (
	TrafficDistributionPreferSameZone = "PreferSameZone"
	TrafficDistributionPreferClose    = "PreferClose"
	TrafficDistributionPreferSameNode = "PreferSameNode"
	// TrafficDistributionNone leaves spec.trafficDistribution unset on the
	// shared Service: kube-proxy then spreads traffic over every zone.
	TrafficDistributionNone = "None"
)

// DefaultZoneLabelKey is the well-known node label naming a node's zone.
const DefaultZoneLabelKey = "topology.kubernetes.io/zone"

// PyroscopeDistributorSpec is the desired state of a PyroscopeDistributor.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.replicas) && has(self.autoscaling))",message="replicas and autoscaling are mutually exclusive: set replicas for a fixed size per zone, or autoscaling to let one HPA per zone size it"
// +kubebuilder:validation:XValidation:rule="!has(self.autoscaling) || self.zones.all(z, !has(z.replicas))",message="zones[].replicas cannot be set while autoscaling is on: each zone's HPA owns its replicas"
type PyroscopeDistributorSpec struct {
	// Image is the container image holding the pyrodist distributor.
	// Empty means the operator's default image, which follows operator upgrades.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`

	// ImagePullPolicy is the pull policy of the distributor container.
	// +optional
	// +kubebuilder:default=IfNotPresent
	// +kubebuilder:validation:Enum=Always;Never;IfNotPresent
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// Zones lists the availability zones to run distributors in: one
	// Deployment, Service and PodDisruptionBudget (and HPA when autoscaling is
	// on) per zone. Removing a zone deletes its objects; disabling it scales
	// it to zero and keeps the objects.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:XValidation:rule="self.all(z, self.exists_one(y, y.name == z.name))",message="zone names must be unique"
	Zones []Zone `json:"zones"`

	// ZoneLabelKey is the node label whose value names a node's zone. Each
	// zone's pods require nodes with this label equal to the zone name,
	// unless the zone sets its own nodeSelector. It cannot be changed after
	// creation: it defines which nodes every zone means, and changing it
	// would re-pin all zones at once; create a new PyroscopeDistributor instead.
	// +optional
	// +kubebuilder:default="topology.kubernetes.io/zone"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=317
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="zoneLabelKey is immutable; create a new PyroscopeDistributor to use another label"
	ZoneLabelKey string `json:"zoneLabelKey,omitempty"`

	// Replicas is the number of distributor pods in each zone when
	// autoscaling is off (a zone's own replicas wins). Unset with autoscaling
	// unset means 2 per zone. Mutually exclusive with autoscaling.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Replicas *int32 `json:"replicas,omitempty"`

	// Autoscaling, when set, creates one HorizontalPodAutoscaler
	// (autoscaling/v2) per enabled zone and leaves each zone's replica count
	// to it. Mutually exclusive with replicas.
	// +optional
	Autoscaling *Autoscaling `json:"autoscaling,omitempty"`

	// Resources of the distributor container. Default: requests of 500m CPU
	// and 512Mi memory, a 1Gi memory limit. The memory limit also sets
	// GOMEMLIMIT (90% of it), so the Go runtime collects before the kernel
	// kills. Autoscaling targets are relative to the requests.
	// +optional
	// +kubebuilder:default={requests:{cpu:"500m",memory:"512Mi"},limits:{memory:"1Gi"}}
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// Memberlist is how distributors join the gossip cluster of the
	// Pyroscope v2 deployment whose segment-writers they send to.
	// +optional
	// +kubebuilder:default={}
	Memberlist MemberlistSpec `json:"memberlist,omitzero"`

	// TLS secures port 4040, the connections to segment-writers and gossip,
	// each on its own, with Secrets the pods mount. Unset: plaintext.
	// +optional
	TLS TLSSpec `json:"tls,omitzero"`

	// Storage is the Pyroscope cluster's object storage, with credentials
	// from Secrets the pods read. Unset: none (static placement rules, no debug info uploads).
	// +optional
	Storage *StorageSpec `json:"storage,omitempty"`

	// Placement tunes which segment-writers receive a profile.
	// +optional
	// +kubebuilder:default={}
	Placement PlacementSpec `json:"placement,omitzero"`

	// Limits are the per-tenant ingestion limits: defaults for every tenant
	// and overrides per tenant. Overrides are reloaded by running
	// distributors, so changing them restarts no pod.
	// +optional
	// +kubebuilder:default={}
	Limits LimitsSpec `json:"limits,omitzero"`

	// Multitenancy requires an X-Scope-OrgID header on every request; when
	// false every profile belongs to the tenant "anonymous".
	// +optional
	// +kubebuilder:default=false
	Multitenancy bool `json:"multitenancy,omitempty"`

	// Service configures the shared Service that agents send to.
	// +optional
	// +kubebuilder:default={}
	Service ServiceSpec `json:"service,omitzero"`

	// PodTemplate adds to the pods of every zone.
	// +optional
	PodTemplate PodTemplateExtras `json:"podTemplate,omitzero"`

	// Rollout tunes the zone-by-zone rollout of pod template changes.
	// +optional
	Rollout RolloutSpec `json:"rollout,omitzero"`
	// Monitoring: a PodMonitor for Prometheus.
	// +optional
	Monitoring MonitoringSpec `json:"monitoring,omitzero"`

	// Paused stops the operator from changing any child object of this
	// PyroscopeDistributor (status is still reported). Use it for manual
	// intervention; unpausing applies the spec again.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// Zone is one availability zone to run distributors in.
type Zone struct {
	// Name is the zone: the value of the zone node label, the zone the
	// segment-writers register with, and the distributor's -distributor.zone.
	// It names this zone's objects (<metadata.name>-<name>), so it must be a
	// DNS label.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="zone name must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit (it is part of the zone's object names)"
	// +kubebuilder:validation:XValidation:rule="self != 'memberlist'",message="zone name 'memberlist' is reserved: <name>-memberlist is the gossip Service"
	Name string `json:"name"`

	// NodeSelector, when set, replaces the required node affinity on the zone
	// label: this zone's pods run on nodes with all of these labels.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations of this zone's pods (e.g. for zone-dedicated node pools).
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// Replicas overrides spec.replicas for this zone. Not allowed with autoscaling.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Replicas *int32 `json:"replicas,omitempty"`

	// Disabled drains the zone during an incident: its Deployment is scaled
	// to 0 and its HPA removed; its Service, PodDisruptionBudget and
	// Deployment stay. Setting it back to false restores the zone.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
}

// Autoscaling configures one HorizontalPodAutoscaler per enabled zone.
//
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",message="autoscaling.minReplicas (default 2) must be less than or equal to autoscaling.maxReplicas"
type Autoscaling struct {
	// MinReplicas is the lowest number of pods of each zone.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MinReplicas *int32 `json:"minReplicas,omitempty"`

	// MaxReplicas is the highest number of pods of each zone.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MaxReplicas int32 `json:"maxReplicas"`

	// TargetCPUUtilizationPercentage is the average CPU use, in percent of
	// the CPU request, the HPA keeps pods at. Unset with the memory target
	// also unset means 70.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	TargetCPUUtilizationPercentage *int32 `json:"targetCPUUtilizationPercentage,omitempty"`

	// TargetMemoryUtilizationPercentage is the average memory use, in percent
	// of the memory request, the HPA keeps pods at. Unset: no memory metric.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	TargetMemoryUtilizationPercentage *int32 `json:"targetMemoryUtilizationPercentage,omitempty"`

	// Behavior is the HPA's scale-up and scale-down behaviour, as in
	// autoscaling/v2. Unset: the HPA defaults (scale down after 5 minutes of
	// stability).
	// +optional
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
}

// MemberlistSpec is the distributor's membership of the Pyroscope cluster.
type MemberlistSpec struct {
	// Join lists members of the Pyroscope v2 cluster to join, as
	// host:port, dns+host:port or dnssrv+_service._proto.domain (for example
	// dns+pyroscope-memberlist.pyroscope.svc.cluster.local:7946). The
	// operator always adds this PyroscopeDistributor's own headless
	// memberlist Service.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=512
	Join []string `json:"join,omitempty"`

	// ClusterLabel is the memberlist cluster label; it must equal the
	// Pyroscope cluster's -memberlist.cluster-label. Empty means none.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	ClusterLabel string `json:"clusterLabel,omitempty"`

	// Port is the memberlist (gossip) port, TCP.
	// +optional
	// +kubebuilder:default=7946
	// +kubebuilder:validation:Minimum=1024
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:validation:XValidation:rule="self != 4040",message="memberlist.port cannot be 4040, the distributor's HTTP port"
	Port int32 `json:"port,omitempty"`
}

// LoadBalancing is how a profile picks a shard among its dataset's shards.
// +kubebuilder:validation:Enum=dynamic;fingerprint;round-robin
type LoadBalancing string

// PlacementSpec tunes placement of profiles onto segment-writers.
type PlacementSpec struct {
	// PreferSameZone makes each zone's distributors try the segment-writers
	// of their own zone first. The shard stays the one Pyroscope picks; only
	// the writer order changes, so storage locality is kept while cross-zone
	// traffic drops.
	// +optional
	// +kubebuilder:default=true
	PreferSameZone *bool `json:"preferSameZone,omitempty"`

	// TenantShards is the default number of shards a tenant's data may spread
	// over (adaptive_placement_tenant_shards); 0 means all shards.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65536
	TenantShards *int32 `json:"tenantShards,omitempty"`

	// DatasetShards is the default number of shards one dataset (service_name)
	// of a tenant is spread over (adaptive_placement_default_dataset_shards).
	// Unset means 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65536
	DatasetShards *int32 `json:"datasetShards,omitempty"`

	// LoadBalancing is the default shard pick within a dataset
	// (adaptive_placement_load_balancing): dynamic, fingerprint or round-robin.
	// Unset means the distributor's default.
	// +optional
	LoadBalancing LoadBalancing `json:"loadBalancing,omitempty"`
}

// LimitsSpec are the per-tenant ingestion limits.
type LimitsSpec struct {
	// Defaults apply to every tenant without an override. The default shard
	// policy is set in spec.placement, not here.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.tenantShards) && !has(self.datasetShards) && !has(self.loadBalancing)",message="limits.defaults cannot set tenantShards, datasetShards or loadBalancing: set the defaults in spec.placement"
	// +kubebuilder:validation:XValidation:rule="!has(self.usage)",message="limits.defaults cannot set usage: usage groups, sampling and ingestion limits are per tenant (limits.overrides)"
	Defaults TenantLimits `json:"defaults,omitzero"`

	// Overrides maps a tenant ID to the limits that replace the defaults for
	// that tenant; fields left unset keep the defaults. Rendered into
	// overrides.yaml, which running distributors reload: no pod restarts.
	// +optional
	// +kubebuilder:validation:MaxProperties=10000
	// +kubebuilder:validation:XValidation:rule=`self.all(t, size(t) <= 150 && t != "." && t != ".." && t.matches("^[a-zA-Z0-9!._*'()-]+$"))`,message="tenant IDs must be 1 to 150 characters of letters, digits and !-_.*'() and not '.' or '..' (as the distributor accepts them)"
	Overrides map[string]TenantLimits `json:"overrides,omitempty"`
}

// TenantLimits are limits of one tenant. Unset fields keep the defaults.
//
// The rate and burst rules compare strings instead of parsing the quantity:
// up to 10000 overrides make the API server's cost estimate of a parse (which
// scales with the unbounded length of an int-or-string) exceed its budget,
// while a comparison with a one-character literal costs 1. A quantity as
// Kubernetes writes it (Quantity.String: "4Mi", "512Ki", "1500m") is positive
// exactly when it starts with 1-9; "0", "-1Mi" and hand-written forms such as
// "0.5Mi" or "+4Mi" are refused.
type TenantLimits struct {
	// IngestionRate is the tenant's ingestion rate in bytes per second of
	// uncompressed profile data, shared by all distributors (e.g. 4Mi).
	// Unset in defaults means 4Mi.
	// +optional
	// +kubebuilder:validation:XValidation:rule="type(self) in [int] ? self > 0 : self >= '1' && self < ':'",message="ingestionRate must be a positive number of bytes per second starting with a digit 1-9, as Kubernetes writes quantities (e.g. 4Mi or 512Ki, not 0.5Mi): zero or negative rates are refused"
	IngestionRate *resource.Quantity `json:"ingestionRate,omitempty"`

	// IngestionBurstSize is the tenant's burst size in bytes; set it at
	// least to the largest expected profile (e.g. 2Mi). Unset in defaults
	// means 2Mi.
	// +optional
	// +kubebuilder:validation:XValidation:rule="type(self) in [int] ? self > 0 : self >= '1' && self < ':'",message="ingestionBurstSize must be a positive number of bytes starting with a digit 1-9, as Kubernetes writes quantities (e.g. 2Mi or 512Ki, not 0.5Mi): zero or negative sizes are refused"
	IngestionBurstSize *resource.Quantity `json:"ingestionBurstSize,omitempty"`

	// TenantShards overrides placement.tenantShards for this tenant
	// (overrides only).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65536
	TenantShards *int32 `json:"tenantShards,omitempty"`

	// DatasetShards overrides placement.datasetShards for this tenant
	// (overrides only).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65536
	DatasetShards *int32 `json:"datasetShards,omitempty"`

	// LoadBalancing overrides placement.loadBalancing for this tenant
	// (overrides only).
	// +optional
	LoadBalancing LoadBalancing `json:"loadBalancing,omitempty"`

	// IngestionLimits are the other per-tenant ingestion keys of Pyroscope's
	// overrides file (ingestion_limits_types.go).
	IngestionLimits `json:",inline"`
	// Usage are the tenant's usage groups, sampling and ingestion hard limit (overrides only).
	// +optional
	Usage *UsageLimits `json:"usage,omitempty"`
}

// ServiceSpec configures the shared Service <metadata.name>.
type ServiceSpec struct {
	// Type of the shared Service.
	// +optional
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	Type corev1.ServiceType `json:"type,omitempty"`

	// Annotations added to the shared Service (e.g. for a cloud load balancer).
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// TrafficDistribution overrides the shared Service's
	// spec.trafficDistribution. Unset: PreferSameZone on Kubernetes 1.34 and
	// later, PreferClose on 1.31 to 1.33, none before. None leaves the field
	// unset (no zone preference). The topology-mode annotation is never used.
	// +optional
	// +kubebuilder:validation:Enum=PreferSameZone;PreferClose;PreferSameNode;None
	TrafficDistribution string `json:"trafficDistribution,omitempty"`
}

// PodTemplateExtras adds to the distributor pods of every zone.
type PodTemplateExtras struct {
	// Labels added to every pod. The operator's own labels win on conflict.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Annotations added to every pod. The operator's own annotations win on conflict.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// PriorityClassName of the pods.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// SecurityContext fields set here replace the same fields of the
	// operator's pod security context (which meets the restricted Pod
	// Security Standard: non-root, seccomp RuntimeDefault). Values that
	// weaken it (runAsUser 0, runAsNonRoot false, seccomp or AppArmor
	// Unconfined, a privileged SELinux type) are refused unless the operator
	// runs with --allow-privileged-pods: Ready turns False with reason
	// PodSecurityRefused and nothing is applied.
	// +optional
	SecurityContext *corev1.PodSecurityContext `json:"securityContext,omitempty"`

	// ContainerSecurityContext fields set here replace the same fields of the
	// operator's container security context (read-only root file system, no
	// privilege escalation, all capabilities dropped). Values that weaken it
	// (privileged, allowPrivilegeEscalation true, capabilities added or not
	// all dropped, runAsUser 0, runAsNonRoot false, readOnlyRootFilesystem
	// false, seccomp or AppArmor Unconfined, procMount Unmasked) are refused
	// unless the operator runs with --allow-privileged-pods: Ready turns False
	// with reason PodSecurityRefused and nothing is applied.
	// +optional
	ContainerSecurityContext *corev1.SecurityContext `json:"containerSecurityContext,omitempty"`

	// Env adds environment variables to the distributor container. GOMEMLIMIT
	// set here replaces the operator's.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=128
	Env []corev1.EnvVar `json:"env,omitempty"`

	// ExtraArgs are appended to the distributor's command line (e.g.
	// -log.level=debug). The flags the operator owns (-config.file,
	// -runtime-config.file, -distributor.zone) cannot be given here.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.all(a, !(a.startsWith('-config.file') || a.startsWith('--config.file') || a.startsWith('-runtime-config.file') || a.startsWith('--runtime-config.file') || a.startsWith('-distributor.zone') || a.startsWith('--distributor.zone')))",message="extraArgs cannot set -config.file, -runtime-config.file or -distributor.zone: the operator owns them"
	ExtraArgs []string `json:"extraArgs,omitempty"`

	// ImagePullSecrets of the pods.
	// +optional
	// +listType=atomic
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
}

// PyroscopeDistributorStatus is the observed state of a PyroscopeDistributor.
type PyroscopeDistributorStatus struct {
	// ObservedGeneration is the metadata.generation last reconciled
	// successfully; conditions describe that generation.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, Progressing and Degraded, each with the generation
	// it was computed for.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Zones is the state of each zone of the spec.
	// +optional
	// +listType=map
	// +listMapKey=name
	Zones []ZoneStatus `json:"zones,omitempty"`

	// ZoneCount is the number of zones in the spec (enabled or not).
	// +optional
	ZoneCount int32 `json:"zoneCount,omitempty"`

	// Replicas is the desired number of pods over all zones.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// ReadyReplicas is the number of ready pods over all zones.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// TrafficDistribution is the spec.trafficDistribution set on the shared
	// Service, or None.
	// +optional
	TrafficDistribution string `json:"trafficDistribution,omitempty"`

	// Rollout is the state of the zone-by-zone rollout of the current version.
	// +optional
	Rollout *RolloutStatus `json:"rollout,omitempty"`
}

// ZoneStatus is the state of one zone.
type ZoneStatus struct {
	// Name of the zone.
	Name string `json:"name"`

	// Disabled mirrors spec.zones[].disabled.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// Autoscaled is true when an HPA owns this zone's replica count.
	// +optional
	Autoscaled bool `json:"autoscaled,omitempty"`

	// DesiredReplicas is the replica count of the zone's Deployment.
	// +optional
	DesiredReplicas int32 `json:"desiredReplicas,omitempty"`

	// ReadyReplicas is the number of ready pods of the zone.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// UpdatedReplicas is the number of pods of the zone running the current pod template.
	// +optional
	UpdatedReplicas int32 `json:"updatedReplicas,omitempty"`

	// HPADesiredReplicas is the replica count the zone's HPA currently asks
	// for; unset when the zone is not autoscaled.
	// +optional
	HPADesiredReplicas *int32 `json:"hpaDesiredReplicas,omitempty"`

	ZoneRolloutStatus `json:",inline"`
	// WritersActiveInZone is the number of ACTIVE segment-writers in this
	// zone, as a ready distributor of the zone last reported; unset until one
	// has. 0 means the zone's distributors send to other zones.
	// +optional
	WritersActiveInZone *int32 `json:"writersActiveInZone,omitempty"`

	// WritersActive is the number of ACTIVE segment-writers in every zone, as
	// the same distributor reported.
	// +optional
	WritersActive *int32 `json:"writersActive,omitempty"`
}

// PyroscopeDistributor runs a zone-aware Pyroscope v2 distributor tier: one
// Deployment per availability zone, sending profiles to the segment-writers of
// a Pyroscope cluster it joins over memberlist.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pyd,categories=pyrodist
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Zones",type=integer,JSONPath=`.status.zoneCount`
// +kubebuilder:printcolumn:name="Pods",type=integer,JSONPath=`.status.readyReplicas`,description="Ready pods over all zones"
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.status.replicas`
// +kubebuilder:printcolumn:name="Rolling",type=string,JSONPath=`.status.rollout.zone`
// +kubebuilder:printcolumn:name="Writers-In-Zone",type=string,JSONPath=`.status.conditions[?(@.type=="WritersInZone")].status`
// +kubebuilder:printcolumn:name="Traffic",type=string,JSONPath=`.status.trafficDistribution`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 52",message="metadata.name must be a DNS-1035 label of at most 52 characters (lowercase letters, digits, '-', starting with a letter): it names Services such as <name>-memberlist"
// +kubebuilder:validation:XValidation:rule="self.spec.zones.all(z, size(self.metadata.name) + size(z.name) <= 62)",message="metadata.name and each zone name together must fit 62 characters: <name>-<zone> names the zone's Service"
type PyroscopeDistributor struct {
	metav1.TypeMeta `json:",inline"`

	// Standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// Spec is the desired state.
	Spec PyroscopeDistributorSpec `json:"spec"`

	// Status is the observed state, written by the operator.
	// +optional
	Status PyroscopeDistributorStatus `json:"status,omitzero"`
}

// PyroscopeDistributorList is a list of PyroscopeDistributors.
//
// +kubebuilder:object:root=true
type PyroscopeDistributorList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitzero"`
	// Items are the PyroscopeDistributors.
	Items []PyroscopeDistributor `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PyroscopeDistributor{}, &PyroscopeDistributorList{})
}
