package relabel

import (
	"strings"
	"testing"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"go.yaml.in/yaml/v3"
)

func labels(kv ...string) []*typesv1.LabelPair {
	var out []*typesv1.LabelPair
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, &typesv1.LabelPair{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func render(ls []*typesv1.LabelPair) string {
	var b strings.Builder
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name + "=" + l.Value)
	}
	return b.String()
}

func parseRules(t *testing.T, src string) Rules {
	t.Helper()
	var rs Rules
	if err := yaml.Unmarshal([]byte(src), &rs); err != nil {
		t.Fatalf("parse: %v", err)
	}
	if err := rs.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	return rs
}

func TestProcess(t *testing.T) {
	in := labels("__name__", "cpu", "env", "secrets", "pod", "p-1", "service_name", "svc")
	tests := []struct {
		name  string
		rules string
		want  string // "" with drop
		drop  bool
	}{
		{"drop matches anchored", `[{action: drop, source_labels: [env], regex: secret}]`, "__name__=cpu,env=secrets,pod=p-1,service_name=svc", false},
		{"drop", `[{action: drop, source_labels: [env], regex: secrets}]`, "", true},
		{"keep misses", `[{action: keep, source_labels: [env], regex: prod}]`, "", true},
		{"keep on joined sources", `[{action: keep, source_labels: [service_name, env], separator: "/", regex: "svc/.*"}]`, "__name__=cpu,env=secrets,pod=p-1,service_name=svc", false},
		{"replace adds a label", `[{action: replace, replacement: grafana-labs, target_label: powered_by}]`, "__name__=cpu,env=secrets,pod=p-1,powered_by=grafana-labs,service_name=svc", false},
		{"replace with groups", `[{source_labels: [pod], regex: "p-(.*)", target_label: pod_num}]`, "__name__=cpu,env=secrets,pod=p-1,pod_num=1,service_name=svc", false},
		{"replace with empty result deletes", `[{source_labels: [pod], regex: ".*", target_label: env, replacement: ""}]`, "__name__=cpu,pod=p-1,service_name=svc", false},
		{"replace without match keeps", `[{source_labels: [pod], regex: "q-(.*)", target_label: env}]`, "__name__=cpu,env=secrets,pod=p-1,service_name=svc", false},
		{"lowercase", `[{action: uppercase, source_labels: [env], target_label: env}]`, "__name__=cpu,env=SECRETS,pod=p-1,service_name=svc", false},
		{"hashmod", `[{action: hashmod, source_labels: [pod], modulus: 8, target_label: shard}]`, "__name__=cpu,env=secrets,pod=p-1,service_name=svc,shard=" + hashmod("p-1", 8), false},
		{"labelmap", `[{action: labelmap, regex: "po(.*)", replacement: "k8s_po$1"}]`, "__name__=cpu,env=secrets,k8s_pod=p-1,pod=p-1,service_name=svc", false},
		{"labeldrop", `[{action: labeldrop, regex: "env|pod"}]`, "__name__=cpu,service_name=svc", false},
		{"labelkeep", `[{action: labelkeep, regex: "__name__|service_name"}]`, "__name__=cpu,service_name=svc", false},
		{"dropequal", `[{action: dropequal, source_labels: [pod], target_label: pod}]`, "", true},
		{"keepequal", `[{action: keepequal, source_labels: [env], target_label: pod}]`, "", true},
		{"later rules see earlier results", `[{target_label: tier, replacement: gold}, {action: drop, source_labels: [tier], regex: gold}]`, "", true},
		{"missing source is empty", `[{action: keep, source_labels: [nope], regex: ""}]`, "__name__=cpu,env=secrets,pod=p-1,service_name=svc", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, keep := parseRules(t, tc.rules).Process(in)
			if keep == tc.drop {
				t.Fatalf("keep = %v, want %v", keep, !tc.drop)
			}
			if keep && render(got) != tc.want {
				t.Errorf("got %s\nwant %s", render(got), tc.want)
			}
		})
	}
	if render(in) != "__name__=cpu,env=secrets,pod=p-1,service_name=svc" {
		t.Errorf("input modified: %s", render(in))
	}
}

func hashmod(s string, m uint64) string {
	rs := Rules{{SourceLabels: []string{"x"}, Separator: ";", Regex: defaultRegex, Modulus: m, TargetLabel: "h", Replacement: "$1", Action: HashMod}}
	out, _ := rs.Process(labels("x", s))
	for _, l := range out {
		if l.Name == "h" {
			return l.Value
		}
	}
	return ""
}

// hashmod takes the last 8 bytes of the MD5 big-endian, as Prometheus
// does (figures computed outside Go).
func TestHashModValue(t *testing.T) {
	if got := hashmod("p-1", 1000); got != "625" {
		t.Errorf("hashmod(p-1, 1000) = %q, want 625", got)
	}
	if got := hashmod("p-1", 8); got != "1" {
		t.Errorf("hashmod(p-1, 8) = %q, want 1", got)
	}
}

func TestProcessDropsEmptyValues(t *testing.T) {
	got, keep := Rules(nil).Process(labels("__name__", "cpu", "env", "", "service_name", "svc"))
	if !keep || render(got) != "__name__=cpu,service_name=svc" {
		t.Errorf("got %s keep=%v", render(got), keep)
	}
}

func TestUnmarshalDefaultsAndErrors(t *testing.T) {
	var rs Rules
	if err := yaml.Unmarshal([]byte(`[{target_label: a}]`), &rs); err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	if r.Action != Replace || r.Separator != ";" || r.Regex.String() != "(.*)" || r.Replacement != "$1" {
		t.Errorf("defaults not applied: %+v", r)
	}
	if err := yaml.Unmarshal([]byte(`[{action: DROP, source_labels: [a]}]`), &rs); err != nil || rs[0].Action != Drop {
		t.Errorf("action case: %v %v", err, rs)
	}
	for _, bad := range []string{
		`[{action: explode}]`,
		`[{regex: "("}]`,
		`[{regexp: "x", action: drop}]`,
	} {
		if err := yaml.Unmarshal([]byte(bad), &rs); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct{ src, err string }{
		{`[{action: uppercase}]`, "requires 'target_label'"},
		{`[{action: hashmod, target_label: x}]`, "non-zero modulus"},
		{`[{action: lowercase, target_label: x, replacement: y}]`, "can not be set"},
		{`[{action: labeldrop, regex: x, source_labels: [a]}]`, "only 'regex'"},
		{`[{action: dropequal, source_labels: [a], target_label: b, regex: x}]`, "only 'source_labels'"},
		{`[{action: labelmap, replacement: ""}]`, "invalid 'replacement'"},
	} {
		var rs Rules
		if err := yaml.Unmarshal([]byte(tc.src), &rs); err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		err := rs.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "pos 0") {
			t.Errorf("%s: err = %v, want %q", tc.src, err, tc.err)
		}
	}
	rs := parseRules(t, `[{action: drop, source_labels: [__type__], regex: "alloc_.*"}, {action: replace, target_label: a, replacement: b}]`)
	if err := rs.ValidateFilter(); err == nil || !strings.Contains(err.Error(), "pos 1") {
		t.Errorf("ValidateFilter: %v", err)
	}
	if err := rs[:1].ValidateFilter(); err != nil {
		t.Errorf("ValidateFilter of a drop rule: %v", err)
	}
}

// A rule renders to YAML that parses back to the same rule, including an
// empty replacement (which an omitted key would turn into "$1").
// An empty rule is a replace without a target: valid, and it changes nothing.
func TestEmptyRule(t *testing.T) {
	rs := parseRules(t, `[{}]`)
	in := labels("__name__", "cpu", "service_name", "svc")
	if got, keep := rs.Process(in); !keep || render(got) != render(in) {
		t.Errorf("got %s keep=%v", render(got), keep)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	rs := parseRules(t, `
- {action: replace, source_labels: [a, b], separator: "/", regex: "x(.*)", target_label: c, replacement: ""}
- {action: hashmod, source_labels: [a], modulus: 3, target_label: h}
- {action: drop, source_labels: [__type__], regex: "alloc_.*"}
`)
	out, err := yaml.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	back := parseRules(t, string(out))
	out2, _ := yaml.Marshal(back)
	if string(out) != string(out2) || back[0].Replacement != "" || back[0].Separator != "/" || back[0].Regex.String() != "x(.*)" {
		t.Errorf("round trip changed the rules:\n%s\n%s", out, out2)
	}
}
