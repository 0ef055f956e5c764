package validation

import (
	"fmt"
	"testing"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/relabel"
)

// The hand-written defaults give what Pyroscope's five rules give when run
// by the rule engine, for every combination of the labels they read.
func TestRelabelDefaultsMatchTheRules(t *testing.T) {
	names := []string{"", "godeltaprof_memory", "godeltaprof_", "godeltaprof_wall", "wall", "process_cpu", "x/y"}
	types := []string{"", "cpu", "wall", "cpu/x"}
	replaced := []string{"", "godeltaprof_x", "wall", "other"}
	deltas := []string{"", "true"}
	n := 0
	for _, name := range names {
		for _, typ := range types {
			for _, rep := range replaced {
				for _, delta := range deltas {
					var ls []*typesv1.LabelPair
					for _, p := range [][2]string{{LabelName, name}, {LabelDelta, delta}, {LabelNameReplace, rep}, {LabelType, typ}, {"service_name", "svc"}} {
						if p[1] != "" {
							ls = append(ls, &typesv1.LabelPair{Name: p[0], Value: p[1]})
						}
					}
					want, keep := relabel.Defaults.Process(ls)
					got := RelabelDefaults(ls)
					if !keep || LabelsString(got) != LabelsString(want) {
						t.Errorf("%s: hand-written %s, rules %s", LabelsString(ls), LabelsString(got), LabelsString(want))
					}
					n++
				}
			}
		}
	}
	if n != len(names)*len(types)*len(replaced)*len(deltas) {
		t.Fatal(n)
	}
}

func TestRelabelPositions(t *testing.T) {
	in := []*typesv1.LabelPair{{Name: LabelName, Value: "godeltaprof_memory"}, {Name: "empty", Value: ""}, {Name: "service_name", Value: "svc"}}
	rename := relabel.Rules{{SourceLabels: []string{LabelName}, Separator: ";", Regex: relabel.MustNewRegexp("(.*)"), TargetLabel: "seen", Replacement: "$1", Action: relabel.Replace}}
	drop := relabel.Rules{{SourceLabels: []string{LabelName}, Separator: ";", Regex: relabel.MustNewRegexp("memory"), Replacement: "$1", Action: relabel.Drop}}
	for _, tc := range []struct {
		position string
		rules    relabel.Rules
		want     string // "drop" when dropped
	}{
		{"first", nil, `{__delta__="false", __name__="memory", __name_replaced__="godeltaprof_memory", service_name="svc"}`},
		{"", rename, `{__delta__="false", __name__="memory", __name_replaced__="godeltaprof_memory", seen="memory", service_name="svc"}`},
		{"last", rename, `{__delta__="false", __name__="memory", __name_replaced__="godeltaprof_memory", seen="godeltaprof_memory", service_name="svc"}`},
		{"disabled", rename, `{__name__="godeltaprof_memory", seen="godeltaprof_memory", service_name="svc"}`},
		{"disabled", nil, `{__name__="godeltaprof_memory", service_name="svc"}`},
		{"first", drop, "drop"},
		{"last", drop, `{__delta__="false", __name__="memory", __name_replaced__="godeltaprof_memory", service_name="svc"}`},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.position, len(tc.rules)), func(t *testing.T) {
			l := &config.Limits{IngestionRelabelingDefaultRulesPosition: tc.position, IngestionRelabelingRules: tc.rules}
			got, keep := Relabel(l, in)
			if s := LabelsString(got); (tc.want == "drop") == keep || keep && s != tc.want {
				t.Errorf("got %s keep=%v, want %s", s, keep, tc.want)
			}
		})
	}
}
