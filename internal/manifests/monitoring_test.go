package manifests

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
)

func TestPodMonitor(t *testing.T) {
	pd := &v1.PyroscopeDistributor{}
	pd.Name, pd.Namespace = "pyd", "profiling"
	if PodMonitor(pd) != nil {
		t.Fatal("a PodMonitor although spec.monitoring.podMonitor is off")
	}
	pd.Spec.Monitoring.PodMonitor = v1.PodMonitorSpec{Enabled: true, Labels: map[string]string{
		"release": "prom", LabelOwner: "someone-else"}}
	pm := PodMonitor(pd)
	if pm.GroupVersionKind() != PodMonitorGVK || pm.GetName() != "pyd" || pm.GetNamespace() != "profiling" {
		t.Fatalf("PodMonitor identity %v %s/%s", pm.GroupVersionKind(), pm.GetNamespace(), pm.GetName())
	}
	if l := pm.GetLabels(); l["release"] != "prom" || l[LabelOwner] != "pyd" || l[LabelManagedBy] != ManagedBy {
		t.Errorf("labels %v: the user's are added, the operator's win", l)
	}
	sel, _, _ := unstructured.NestedStringMap(pm.Object, "spec", "selector", "matchLabels")
	if len(sel) != 2 || sel[LabelName] != appName || sel[LabelInstance] != "pyd" {
		t.Errorf("selector %v", sel)
	}
	ep := endpoint(t, pm)
	if ep["port"] != HTTPPortName || ep["path"] != "/metrics" || ep["scheme"] != nil || ep["interval"] != nil {
		t.Errorf("plaintext endpoint %v", ep)
	}
	relabel := ep["relabelings"].([]any)[0].(map[string]any)
	if relabel["targetLabel"] != LabelZoneMetric ||
		relabel["sourceLabels"].([]any)[0] != "__meta_kubernetes_pod_label_profiling_pyrodist_dev_zone" {
		t.Errorf("zone relabeling %v (must name the pod label %s)", relabel, LabelZone)
	}

	pd.Spec.Monitoring.PodMonitor.Interval = "15s"
	pd.Spec.TLS.Server = &v1.ServerTLSSpec{SecretName: "pyd-tls"}
	ep = endpoint(t, PodMonitor(pd))
	ca, _, _ := unstructured.NestedStringMap(ep, "tlsConfig", "ca", "secret")
	if ep["scheme"] != "https" || ep["interval"] != "15s" || ca["name"] != "pyd-tls" || ca["key"] != "ca.crt" {
		t.Errorf("TLS endpoint %v", ep)
	}
}

func endpoint(t *testing.T, pm *unstructured.Unstructured) map[string]any {
	t.Helper()
	eps, _, err := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
	if err != nil || len(eps) != 1 {
		t.Fatalf("podMetricsEndpoints %v %v", eps, err)
	}
	return eps[0].(map[string]any)
}
