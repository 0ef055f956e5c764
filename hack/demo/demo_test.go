package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"sigs.k8s.io/yaml"

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
