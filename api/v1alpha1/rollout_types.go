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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RolloutSpec tunes how a change of the pod template (config, image,
// resources, ...) is rolled out: one zone at a time, in spec.zones order.
type RolloutSpec struct {
	// PauseBetweenZones is how long the operator waits after one zone is
	// fully updated and available before it starts the next. Unset: no pause.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('24h')",message="pauseBetweenZones must be between 0s and 24h"
	PauseBetweenZones *metav1.Duration `json:"pauseBetweenZones,omitempty"`

	// ZoneTimeout is how long a zone may take to become fully updated and
	// available. A zone that takes longer halts the rollout: the zones after
	// it keep their version until the spec changes again (or the zone
	// recovers). Unset: 10m.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="zoneTimeout must be between 1s and 24h"
	ZoneTimeout *metav1.Duration `json:"zoneTimeout,omitempty"`
}

// RolloutPhase is where a rollout stands (status.rollout.phase).
// +kubebuilder:validation:Enum=Rolling;Pausing;Halted;Complete
type RolloutPhase string

// Rollout phases.
const (
	// RolloutRolling: status.rollout.zone runs the target version's
	// template and the operator waits for it to be updated and available.
	RolloutRolling RolloutPhase = "Rolling"
	// RolloutPausing: the previous zone finished; status.rollout.zone starts
	// once spec.rollout.pauseBetweenZones has passed.
	RolloutPausing RolloutPhase = "Pausing"
	// RolloutHalted: status.rollout.zone did not become available within
	// spec.rollout.zoneTimeout; the zones after it keep their version.
	RolloutHalted RolloutPhase = "Halted"
	// RolloutComplete: every enabled zone runs the target version.
	RolloutComplete RolloutPhase = "Complete"
)

// RolloutStatus is the state of the zone-by-zone rollout of the current
// target version.
type RolloutStatus struct {
	// Version is the target version: a hash of the zone-independent pod
	// template, which names the config version it mounts.
	// +optional
	Version string `json:"version,omitempty"`

	// Phase is Rolling, Pausing, Halted or Complete.
	// +optional
	Phase RolloutPhase `json:"phase,omitempty"`

	// Zone is the zone rolling, about to roll (Pausing) or halted; empty
	// when Complete.
	// +optional
	Zone string `json:"zone,omitempty"`

	// Since is when the rollout entered this phase (for this zone).
	// +optional
	Since *metav1.Time `json:"since,omitempty"`

	// Message says what the rollout waits for.
	// +optional
	Message string `json:"message,omitempty"`
}

// ZoneRolloutStatus is the version part of a zone's status.
type ZoneRolloutStatus struct {
	// Version is the version of the pod template the zone's Deployment runs
	// (status.rollout.version once the zone is rolled).
	// +optional
	Version string `json:"version,omitempty"`

	// ConfigMap is the immutable config version (ConfigMap name) the zone's
	// pods mount.
	// +optional
	ConfigMap string `json:"configMap,omitempty"`
}
