package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/ringhealth"
)

func TestCPUProfileIsValidPprof(t *testing.T) {
	at := time.Unix(1700000000, 0)
	a, err := cpuProfile("checkout", at)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(bytes.NewReader(a))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	if len(p.Sample) == 0 || p.TimeNanos != at.UnixNano() || p.SampleType[1].Type != "cpu" {
		t.Errorf("unexpected profile: %d samples, time %d, types %v", len(p.Sample), p.TimeNanos, p.SampleType)
	}
	// Services get different stacks, so their profiles differ.
	b, err := cpuProfile("cart", at)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Error("two services produced the same profile")
	}
}

func TestLocalizeConfigReplacesOnlyJoinMembers(t *testing.T) {
	rendered := `distributor:
  prefer_same_zone: true
memberlist:
  cluster_label: pyroscope
  join_members:
  - dns+pyd-memberlist.ns.svc:7946
multitenancy_enabled: true
`
	out, err := localizeConfig(rendered, []string{"127.0.0.1:7946"})
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := yaml.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(rendered), &want); err != nil {
		t.Fatal(err)
	}
	want["memberlist"].(map[string]any)["join_members"] = []any{"127.0.0.1:7946"}
	if string(mustJSON(t, got)) != string(mustJSON(t, want)) {
		t.Errorf("localized config:\n%s\nwant:\n%s", mustJSON(t, got), mustJSON(t, want))
	}
	if clusterLabel(rendered) != "pyroscope" {
		t.Errorf("clusterLabel = %q", clusterLabel(rendered))
	}
	if _, err := localizeConfig("memberlist: [", nil); err == nil {
		t.Error("bad YAML accepted")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The rollout line reads the status fields by their JSON names: render one
// from a typed status to catch a name that does not exist.
func TestRolloutLineReadsTheStatus(t *testing.T) {
	pd := &v1alpha1.PyroscopeDistributor{Status: v1alpha1.PyroscopeDistributorStatus{
		Rollout: &v1alpha1.RolloutStatus{Version: "new0000000", Phase: v1alpha1.RolloutRolling, Zone: "zone-b"},
		Zones: []v1alpha1.ZoneStatus{
			{Name: "zone-a", DesiredReplicas: 2, UpdatedReplicas: 2, ZoneRolloutStatus: v1alpha1.ZoneRolloutStatus{Version: "new0000000", ConfigMap: "pd-config-bbb"}},
			{Name: "zone-b", DesiredReplicas: 2, UpdatedReplicas: 1, ZoneRolloutStatus: v1alpha1.ZoneRolloutStatus{Version: "new0000000", ConfigMap: "pd-config-bbb"}},
		},
	}}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pd)
	if err != nil {
		t.Fatal(err)
	}
	line, version, phase := rolloutLine(&unstructured.Unstructured{Object: m})
	want := "rollout Rolling  zone-b  target new0000000 | zone-a=new0000000 (pd-config-bbb, 2/2 updated) zone-b=new0000000 (pd-config-bbb, 1/2 updated)"
	if line != want || version != "new0000000" || phase != "Rolling" {
		t.Errorf("rolloutLine = %q, %q, %q\nwant %q", line, version, phase, want)
	}
}

func TestRingHealthText(t *testing.T) {
	got := ringHealthText([]ringhealth.Report{
		{Zone: "zone-a", ActiveInZone: 2, Active: 3, Zones: []ringhealth.Zone{
			{Name: "zone-a", States: map[string]int{"ACTIVE": 2}}, {Name: "zone-b", States: map[string]int{"ACTIVE": 1, "LEAVING": 1}}}},
		{Zone: "zone-c", Active: 3, FallingBack: true},
	})
	for _, want := range []string{
		"ZONE    ACTIVE-IN-ZONE  ACTIVE  FALLING-BACK",
		"zone-a  2               3       false         zone-a: ACTIVE=2, zone-b: ACTIVE=1 LEAVING=1",
		"zone-c  0               3       true",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ring health table lacks %q:\n%s", want, got)
		}
	}
}
