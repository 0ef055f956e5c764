//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dashboardKey is the dashboard's file name in the chart's ConfigMap.
const dashboardKey = "pyrodist-distributors.json"

// TestChartMonitoring: the dashboard ConfigMap carries the dashboard file
// verbatim with Grafana's sidecar label, and goes with its switch; the
// PrometheusRule is rendered only where the cluster serves PrometheusRules,
// and every alert links to a section of docs/runbooks.md that exists.
func TestChartMonitoring(t *testing.T) {
	file, err := os.ReadFile(filepath.Join(chartDir(), "monitoring", "dashboard-distributors.json"))
	if err != nil {
		t.Fatal(err)
	}
	objs := render(t)
	cm := find(objs, "ConfigMap", chartRelease+"-dashboards")
	if cm == nil {
		t.Fatal("no dashboard ConfigMap by default")
	}
	if str(cm, "metadata", "labels", "grafana_dashboard") != "1" {
		t.Errorf("dashboard ConfigMap labels %v lack grafana_dashboard: \"1\"", get(cm, "metadata", "labels"))
	}
	got := str(cm, "data", dashboardKey)
	if strings.TrimSpace(got) != strings.TrimSpace(string(file)) {
		t.Error("the ConfigMap's dashboard differs from charts/pyrodist/monitoring/dashboard-distributors.json")
	}
	var dash struct {
		UID    string           `json:"uid"`
		Panels []map[string]any `json:"panels"`
	}
	if err := json.Unmarshal([]byte(got), &dash); err != nil || dash.UID == "" || len(dash.Panels) == 0 {
		t.Errorf("dashboard JSON: %v (uid %q, %d panels)", err, dash.UID, len(dash.Panels))
	}
	if count(objs, "PrometheusRule") != 0 {
		t.Error("a PrometheusRule although the cluster serves no monitoring.coreos.com/v1")
	}
	if find(render(t, "monitoring.dashboards.enabled=false"), "ConfigMap", chartRelease+"-dashboards") != nil {
		t.Error("dashboard ConfigMap despite monitoring.dashboards.enabled=false")
	}

	out, err := helmCmd(t, "template", chartRelease, chartDir(), "--namespace", chartNamespace,
		"--api-versions", "monitoring.coreos.com/v1/PrometheusRule", "--set", "monitoring.prometheusRule.labels.release=prom")
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	rule := find(splitObjects(t, out), "PrometheusRule", chartRelease)
	if rule == nil {
		t.Fatal("no PrometheusRule where the cluster serves them")
	}
	if str(rule, "metadata", "labels", "release") != "prom" {
		t.Errorf("PrometheusRule labels %v", get(rule, "metadata", "labels"))
	}
	runbooks, err := os.ReadFile(filepath.Join(repoRoot, "docs", "runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (\S+)$`).FindAllStringSubmatch(string(runbooks), -1) {
		anchors[strings.ToLower(m[1])] = true
	}
	alerts := 0
	groups, _ := get(rule, "spec", "groups").([]any)
	for _, g := range groups {
		rules, _ := get(g, "rules").([]any)
		for _, r := range rules {
			alerts++
			name, url := str(r, "alert"), str(r, "annotations", "runbook_url")
			const base = "https://github.com/pyrodist/pyrodist/blob/main/docs/runbooks.md#"
			if !strings.HasPrefix(url, base) || !anchors[strings.TrimPrefix(url, base)] || strings.TrimPrefix(url, base) != strings.ToLower(name) {
				t.Errorf("alert %s: runbook_url %q is not docs/runbooks.md#%s (a \"## %s\" section)", name, url, strings.ToLower(name), name)
			}
			if str(r, "expr") == "" || str(r, "annotations", "summary") == "" {
				t.Errorf("alert %s lacks expr or summary", name)
			}
		}
	}
	if alerts == 0 {
		t.Error("the PrometheusRule has no alert")
	}
}
