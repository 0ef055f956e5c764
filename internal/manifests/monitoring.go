package manifests

import (
	"maps"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
)

// PodMonitorGVK is the Prometheus Operator's PodMonitor. The operator
// builds it unstructured, so it needs neither the Prometheus Operator's Go
// module nor its CRDs to run.
var PodMonitorGVK = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "PodMonitor"}

// LabelZoneMetric is the label the PodMonitor gives every distributor
// series: the pod's zone (the dashboard and alerts group by it).
const LabelZoneMetric = "zone"

// ZonePodSelector selects the distributor pods of one zone of
// PyroscopeDistributor name.
func ZonePodSelector(name, zone string) map[string]string { return zoneSelectorLabels(name, zone) }

// PodMonitor is the PodMonitor <name> scraping /metrics on port 4040 of
// every distributor pod of pd, or nil when spec.monitoring.podMonitor is off.
// With TLS on port 4040 Prometheus verifies the pods against ca.crt of the
// server Secret (the pods are scraped by IP: their certificate must hold it).
func PodMonitor(pd *v1.PyroscopeDistributor) *unstructured.Unstructured {
	pm := pd.Spec.Monitoring.PodMonitor
	if !pm.Enabled {
		return nil
	}
	endpoint := map[string]any{
		"port": HTTPPortName,
		"path": "/metrics",
		"relabelings": []any{map[string]any{
			"action":       "replace",
			"sourceLabels": []any{"__meta_kubernetes_pod_label_profiling_pyrodist_dev_zone"},
			"targetLabel":  LabelZoneMetric,
		}},
	}
	if pm.Interval != "" {
		endpoint["interval"] = pm.Interval
	}
	if s := pd.Spec.TLS.Server; s != nil {
		endpoint["scheme"] = "https"
		endpoint["tlsConfig"] = map[string]any{
			"ca": map[string]any{"secret": map[string]any{"name": s.SecretName, "key": "ca.crt"}},
		}
	}
	labels := maps.Clone(pm.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, commonLabels(pd.Name))
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"selector":            map[string]any{"matchLabels": toAny(selectorLabels(pd.Name))},
			"podMetricsEndpoints": []any{endpoint},
		},
	}}
	u.SetGroupVersionKind(PodMonitorGVK)
	u.SetName(pd.Name)
	u.SetNamespace(pd.Namespace)
	u.SetLabels(labels)
	return u
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
