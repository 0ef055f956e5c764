package validation

import (
	"strings"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
)

// Relabel applies a tenant's ingestion relabel rules to a sorted label set,
// with the default rules first, last or not at all as
// ingestion_relabeling_default_rules_position says (IngestionRelabelingRules
// in pkg/validation/relabeling.go at 3fe6a45). keep is false when a rule
// dropped the set. As Pyroscope's labels builder does, labels with an empty
// value are left out of the result. Without tenant rules this is the
// hand-written defaults and no more.
func Relabel(l *config.Limits, ls []*typesv1.LabelPair) (_ []*typesv1.LabelPair, keep bool) {
	rules := l.IngestionRelabelingRules
	switch l.IngestionRelabelingDefaultRulesPosition {
	case "disabled":
		if len(rules) == 0 {
			return withoutEmpty(ls), true
		}
		return rules.Process(ls)
	case "last":
		if len(rules) > 0 {
			if ls, keep = rules.Process(ls); !keep {
				return nil, false
			}
		}
		return RelabelDefaults(withoutEmpty(ls)), true
	default:
		ls = RelabelDefaults(withoutEmpty(ls))
		if len(rules) == 0 {
			return ls, true
		}
		return rules.Process(ls)
	}
}

// withoutEmpty returns ls without the labels whose value is empty; ls itself
// when there are none.
func withoutEmpty(ls []*typesv1.LabelPair) []*typesv1.LabelPair {
	for i, p := range ls {
		if p.Value != "" {
			continue
		}
		out := append(make([]*typesv1.LabelPair, 0, len(ls)-1), ls[:i]...)
		for _, q := range ls[i+1:] {
			if q.Value != "" {
				out = append(out, q)
			}
		}
		return out
	}
	return ls
}

const godeltaprofPrefix = "godeltaprof_"

// RelabelDefaults applies Pyroscope's default ingestion relabeling rules to a
// sorted label set and returns a sorted set (defaultRelabelRules in
// pkg/validation/relabeling.go at 3fe6a45). They are five Prometheus
// "replace" rules run in order, each seeing the previous one's result, so a
// rule's effect can feed the next (godeltaprof_wall with __type__=cpu ends as
// process_cpu with __name_replaced__="wall"):
//  1. __name__ matching godeltaprof_.* sets __name_replaced__ to __name__;
//  2. __name_replaced__ matching godeltaprof_.* (set by 1, or sent by the
//     client) sets __delta__="false": the profile is already a delta;
//  3. __name__ matching godeltaprof_(.*) becomes its suffix; an empty suffix
//     deletes __name__, as a replace with an empty result does;
//  4. __name__="wall" with __type__="cpu" sets __name_replaced__="wall";
//  5. the same condition sets __name__="process_cpu".
//
// Prometheus anchors the regexps and lets "." match any character, so a
// prefix test is the same match. Neither rule drops a profile. ls is not
// modified; the result shares the unchanged pairs.
func RelabelDefaults(ls []*typesv1.LabelPair) []*typesv1.LabelPair {
	r := relabeler{ls: ls}
	if name := Get(r.ls, LabelName); strings.HasPrefix(name, godeltaprofPrefix) {
		r.set(LabelNameReplace, name)
	}
	if strings.HasPrefix(Get(r.ls, LabelNameReplace), godeltaprofPrefix) {
		r.set(LabelDelta, "false")
	}
	if name := Get(r.ls, LabelName); strings.HasPrefix(name, godeltaprofPrefix) {
		r.set(LabelName, strings.TrimPrefix(name, godeltaprofPrefix))
	}
	// The two source labels are joined with "/", so only this exact pair
	// gives "wall/cpu" (a value holding "/" would add a second one).
	if Get(r.ls, LabelName) == "wall" && Get(r.ls, LabelType) == "cpu" {
		r.set(LabelNameReplace, "wall")
		r.set(LabelName, "process_cpu")
	}
	if r.copied {
		SortLabels(r.ls)
	}
	return r.ls
}

// relabeler edits a label set copy-on-write, as a Prometheus labels.Builder
// does: setting a name replaces every pair of that name, setting "" deletes.
type relabeler struct {
	ls     []*typesv1.LabelPair
	copied bool
}

func (r *relabeler) set(name, value string) {
	if Get(r.ls, name) == value && (value != "" || count(r.ls, name) == 0) && count(r.ls, name) <= 1 {
		return // unchanged
	}
	out := make([]*typesv1.LabelPair, 0, len(r.ls)+1)
	for _, p := range r.ls {
		if p.Name != name {
			out = append(out, p)
		}
	}
	if value != "" {
		out = append(out, &typesv1.LabelPair{Name: name, Value: value})
	}
	r.ls, r.copied = out, true
}

func count(ls []*typesv1.LabelPair, name string) int {
	n := 0
	for _, p := range ls {
		if p.Name == name {
			n++
		}
	}
	return n
}
