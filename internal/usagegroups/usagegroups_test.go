package usagegroups

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/pyrodist/pyrodist/internal/metriclabel"
	"github.com/pyrodist/pyrodist/test/testutil/counters"
)

func ls(kv ...string) []*typesv1.LabelPair {
	var out []*typesv1.LabelPair
	for i := 0; i < len(kv); i += 2 {
		out = append(out, &typesv1.LabelPair{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// The cases of Pyroscope's TestUsageGroupConfig_GetUsageGroups
// (pkg/validation/usage_groups_test.go at 3fe6a45) and the selector forms
// promql accepts.
func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		groups map[string]string
		labels []*typesv1.LabelPair
		want   []string // resolved names
	}{
		{"single match", map[string]string{"app/foo": `{service_name="foo"}`}, ls("service_name", "foo"), []string{"app/foo"}},
		{"multiple matches", map[string]string{"app/foo": `{service_name="foo"}`, "app/foo2": `{service_name="foo", namespace=~"bar.*"}`},
			ls("namespace", "barbaz", "service_name", "foo"), []string{"app/foo", "app/foo2"}},
		{"no match", map[string]string{"app/foo": `{service_name="notfound"}`}, ls("service_name", "foo"), nil},
		{"wildcard", map[string]string{"app/foo": `{}`}, ls("service_name", "foo"), []string{"app/foo"}},
		{"no labels", map[string]string{"app/foo": `{service_name="foo"}`}, nil, nil},
		{"disjoint labels", map[string]string{"app/foo": `{namespace="foo", container="bar"}`}, ls("service_name", "foo"), nil},
		{"dynamic name", map[string]string{"app/${labels.service_name}": `{service_name=~"(.*)"}`}, ls("service_name", "foo"), []string{"app/foo"}},
		{"dynamic name, two placeholders", map[string]string{"${labels.env}/${labels.service_name}!": `{}`},
			ls("env", "prod", "service_name", "foo"), []string{"prod/foo!"}},
		{"dynamic name, missing label", map[string]string{"app/${labels.service_name}/${labels.env}": `{service_name=~"(.*)"}`}, ls("service_name", "foo"), nil},
		{"dynamic name, empty label", map[string]string{"app/${labels.service_name}": `{service_name=~"(.*)"}`}, ls("service_name", ""), nil},
		// A missing label never matches, even a matcher an empty value passes.
		{"missing label, not-equal", map[string]string{"g": `{env!="prod"}`}, ls("service_name", "foo"), nil},
		{"missing label, empty regexp", map[string]string{"g": `{env=~".*"}`}, ls("service_name", "foo"), nil},
		{"not-equal", map[string]string{"g": `{env!="prod"}`}, ls("env", "dev"), []string{"g"}},
		{"not-regexp", map[string]string{"g": `{env!~"pr.*"}`}, ls("env", "prod"), nil},
		{"regexp is anchored", map[string]string{"g": `{env=~"pro"}`}, ls("env", "prod"), nil},
		{"regexp dot matches newline", map[string]string{"g": `{env=~"a.b"}`}, ls("env", "a\nb"), []string{"g"}},
		{"metric name form", map[string]string{"g": `process_cpu{service_name="foo"}`}, ls("__name__", "process_cpu", "service_name", "foo"), []string{"g"}},
		{"bare metric name", map[string]string{"g": `memory`}, ls("__name__", "process_cpu"), nil},
		{"quoted label name", map[string]string{"g": `{"service.namespace"="a"}`}, ls("service.namespace", "a"), []string{"g"}},
		{"single quotes, escapes, trailing comma", map[string]string{"g": "{a='x\\'y', b=`c\\d`,}"}, ls("a", "x'y", "b", `c\d`), []string{"g"}},
		{"name is trimmed", map[string]string{"  app/foo  ": `{service_name="foo"}`}, ls("service_name", "foo"), []string{"app/foo"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.groups)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range c.Match(tc.labels, nil) {
				got = append(got, n.Resolved)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("matched %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMatchKeepsConfiguredName(t *testing.T) {
	c, err := Parse(map[string]string{"svc/${labels.service_name}": `{}`, "all": `{}`})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Match(ls("service_name", "foo"), nil)
	want := []Name{{Configured: "all", Resolved: "all"}, {Configured: "svc/${labels.service_name}", Resolved: "svc/foo"}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v (sorted by name)", got, want)
	}
	if !got[0].MoreSpecificThan(got[1]) || got[1].MoreSpecificThan(got[0]) || got[0].MoreSpecificThan(got[0]) {
		t.Fatal("a static group is more specific than a dynamic one, and only that")
	}
}

func TestNilConfigMatchesNothing(t *testing.T) {
	var c *Config
	if got := c.Match(ls("service_name", "foo"), nil); got != nil || c.Len() != 0 {
		t.Fatalf("nil config matched %v", got)
	}
	labels := ls("service_name", "foo")
	allocs := testing.AllocsPerRun(100, func() { _ = c.Match(labels, nil) })
	if allocs != 0 {
		t.Fatalf("%v allocations matching without groups", allocs)
	}
}

// The refusals of Pyroscope's TestNewUsageGroupConfig (error texts are
// Pyroscope's, but for the selector parser's own).
func TestParseErrors(t *testing.T) {
	tooMany := map[string]string{}
	for i := range MaxGroups + 1 {
		tooMany[fmt.Sprintf("app/foo%d", i)] = `{service_name="foo"}`
	}
	fifty := map[string]string{}
	for i := range MaxGroups {
		fifty[fmt.Sprintf("app/foo%d", i)] = `{service_name="foo"}`
	}
	if _, err := Parse(fifty); err != nil {
		t.Fatalf("%d groups: %v", MaxGroups, err)
	}
	for _, tc := range []struct {
		name   string
		groups map[string]string
		want   string // the error starts with it
	}{
		{"too many groups", tooMany, "maximum number of usage groups is 50, got 51"},
		{"invalid matcher", map[string]string{"app/foo": `????`}, `failed to parse matchers for usage group "app/foo": parse error`},
		{"empty matcher", map[string]string{"app/foo": ``}, `failed to parse matchers for usage group "app/foo": parse error: unexpected end of input`},
		{"unclosed braces", map[string]string{"app/foo": `{a="b"`}, `failed to parse matchers for usage group "app/foo": parse error`},
		{"unquoted value", map[string]string{"app/foo": `{a=b}`}, `failed to parse matchers for usage group "app/foo": parse error`},
		{"bad regexp", map[string]string{"app/foo": `{a=~"("}`}, `failed to parse matchers for usage group "app/foo": label "a": error parsing regexp`},
		{"trailing text", map[string]string{"app/foo": `{a="b"} x`}, `failed to parse matchers for usage group "app/foo": parse error`},
		{"empty name", map[string]string{"": `{service_name="foo"}`}, "usage group name cannot be empty"},
		{"blank name", map[string]string{"  ": `{service_name="foo"}`}, "usage group name cannot be empty"},
		{"reserved name", map[string]string{"other": `{service_name="foo"}`}, `usage group name "other" is reserved`},
		{"invalid UTF-8 name", map[string]string{"app/\x80foo": `{service_name="foo"}`}, `usage group name "app/\x80foo" is not valid UTF-8`},
		{"unclosed placeholder", map[string]string{"app/${labels.service_name": `{}`}, `failed to parse template for usage group "app/${labels.service_name": unclosed placeholder`},
		{"empty placeholder", map[string]string{"app/${labels.}": `{}`}, `failed to parse template for usage group "app/${labels.}": empty label name in placeholder`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.groups)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q...", err, tc.want)
			}
		})
	}
}

// Pyroscope's TestUsageGroupConfig_UnmarshalYAML cases, and the way back.
func TestYAML(t *testing.T) {
	var obj struct {
		UsageGroups *Config `yaml:"usage_groups"`
	}
	in := "\nusage_groups:\n  app/foo: '{service_name=\"foo\"}'\n  app/foo2: '{service_name=\"foo\", namespace=~\"bar.*\"}'"
	if err := yaml.Unmarshal([]byte(in), &obj); err != nil {
		t.Fatal(err)
	}
	if obj.UsageGroups.Len() != 2 || obj.UsageGroups.Groups()["app/foo2"] != `{service_name="foo", namespace=~"bar.*"}` {
		t.Fatalf("parsed %v", obj.UsageGroups.Groups())
	}
	out, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		UsageGroups *Config `yaml:"usage_groups"`
	}
	if err := yaml.Unmarshal(out, &back); err != nil || back.UsageGroups.Len() != 2 {
		t.Fatalf("round trip of %s: %v %v", out, back.UsageGroups.Groups(), err)
	}
	err = yaml.Unmarshal([]byte("usage_groups: ?????"), &obj)
	if err == nil || !strings.HasPrefix(err.Error(), "malformed usage group config: ") {
		t.Fatalf("err %v", err)
	}
	err = yaml.Unmarshal([]byte("usage_groups:\n  app/foo: ?????"), &obj)
	if err == nil || !strings.HasPrefix(err.Error(), `failed to parse matchers for usage group "app/foo"`) {
		t.Fatalf("err %v", err)
	}
}

// Pyroscope's TestUsageGroupMatch_CountReceivedBytes / _CountDiscardedBytes:
// every group of the profile, or "other" when none matched.
func TestMetrics(t *testing.T) {
	tenants := metriclabel.Tenants(10)
	for _, tc := range []struct {
		name   string
		groups []Name
		want   map[string]float64
	}{
		{"one group", []Name{{"app/foo", "app/foo"}}, map[string]float64{"app/foo": 100, "app/foo2": 0, "other": 0}},
		{"two groups", []Name{{"app/foo", "app/foo"}, {"app/foo2", "app/foo2"}}, map[string]float64{"app/foo": 100, "app/foo2": 100, "other": 0}},
		{"no group", nil, map[string]float64{"app/foo": 0, "app/foo2": 0, "other": 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m, err := NewMetrics(reg, tenants)
			if err != nil {
				t.Fatal(err)
			}
			m.Received("cpu", "tenant1", tc.groups, 100)
			m.Discarded("no_reason", "tenant1", tc.groups, 100)
			for g, want := range tc.want {
				if got := value(t, m.received, "cpu", "tenant1", g); got != want {
					t.Errorf("received %s: %v, want %v", g, got, want)
				}
				if got := value(t, m.discarded, "no_reason", "tenant1", g); got != want {
					t.Errorf("discarded %s: %v, want %v", g, got, want)
				}
			}
		})
	}
}

func value(t *testing.T, c *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.WithLabelValues(labels...).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestMetricsNamesAndBounds(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, metriclabel.Tenants(2))
	if err != nil {
		t.Fatal(err)
	}
	m.Received("cpu", "t1", []Name{{"svc/${labels.service_name}", "svc/a"}}, 1)
	m.Received("cpu", "t2", nil, 1) // the tenant Set has no room for t2: __other__
	for i := range MaxDynamicNames + 5 {
		m.Discarded("r", "t1", []Name{{"svc/${labels.service_name}", fmt.Sprintf("svc/%d", i)}}, 1)
	}
	got := counters.Gather(t, reg, "pyroscope_usage_group_received_decompressed_total")
	want := map[string]float64{
		"pyroscope_usage_group_received_decompressed_total{tenant=t1,type=cpu,usage_group=svc/a}":        1,
		"pyroscope_usage_group_received_decompressed_total{tenant=__other__,type=cpu,usage_group=other}": 1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("received series %v, want %v", got, want)
	}
	// The dynamic names take at most MaxDynamicNames series between them,
	// the rest are __other__.
	d := counters.Gather(t, reg, "pyroscope_usage_group_discarded_bytes_total")
	if len(d) > MaxDynamicNames+1 || d["pyroscope_usage_group_discarded_bytes_total{reason=r,tenant=t1,usage_group=__other__}"] == 0 {
		t.Fatalf("%d discarded series, want at most %d with one __other__", len(d), MaxDynamicNames+1)
	}
}
