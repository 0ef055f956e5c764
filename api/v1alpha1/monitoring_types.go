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

// ConditionWritersInZone is True when the distributors of every enabled zone
// see at least one ACTIVE segment-writer in their own zone, False (naming the
// zones) while some zone's distributors must send to other zones, Unknown
// until the operator has read a distributor of each zone. The operator reads
// each zone's ring view from one ready pod (GET /ring/writers on port 4040)
// every 30 seconds.
const ConditionWritersInZone = "WritersInZone"

// MonitoringSpec is how Prometheus finds the distributors.
type MonitoringSpec struct {
	// PodMonitor, when enabled, creates a PodMonitor
	// (monitoring.coreos.com/v1) that scrapes /metrics of every distributor
	// pod. It needs the Prometheus Operator's CRDs; without them nothing is
	// created and the operator says so in an Event.
	// +optional
	PodMonitor PodMonitorSpec `json:"podMonitor,omitzero"`
}

// PodMonitorSpec configures the PodMonitor <metadata.name>.
type PodMonitorSpec struct {
	// Enabled creates the PodMonitor.
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// Interval between scrapes, as Prometheus durations (e.g. 30s, 1m).
	// Empty means Prometheus' own scrape interval.
	// +optional
	// +kubebuilder:validation:Pattern=`^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`
	// +kubebuilder:validation:MaxLength=32
	Interval string `json:"interval,omitempty"`

	// Labels added to the PodMonitor, for a Prometheus whose
	// podMonitorSelector picks monitors by label (e.g. release: prometheus).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}
