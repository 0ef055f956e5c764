package validation

import (
	"strings"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

const godeltaprofPrefix = "godeltaprof_"

// RelabelDefaults applies Pyroscope's default ingestion relabeling rules to a
// sorted label set and returns a sorted set (defaultRelabelRules in
// pkg/validation/relabeling.go at 3fe6a45):
//   - __name__=godeltaprof_X becomes __name__=X with __name_replaced__ holding
//     the old name and __delta__="false" (the profile is already a delta);
//   - __name__=wall with __type__=cpu becomes __name__=process_cpu (Pyroscope
//     also sets __name_replaced__="wall": docs/compatibility.md#not-yet-reproduced).
//
// Neither rule drops a profile. ls is not modified; the result shares the
// unchanged pairs.
func RelabelDefaults(ls []*typesv1.LabelPair) []*typesv1.LabelPair {
	name := Get(ls, LabelName)
	switch {
	case strings.HasPrefix(name, godeltaprofPrefix):
		out := make([]*typesv1.LabelPair, 0, len(ls)+2)
		for _, p := range ls {
			switch p.Name {
			case LabelName, LabelDelta, LabelNameReplace:
				continue
			}
			out = append(out, p)
		}
		out = append(out,
			&typesv1.LabelPair{Name: LabelName, Value: strings.TrimPrefix(name, godeltaprofPrefix)},
			&typesv1.LabelPair{Name: LabelNameReplace, Value: name},
			&typesv1.LabelPair{Name: LabelDelta, Value: "false"},
		)
		SortLabels(out)
		return out
	case name == "wall" && Get(ls, LabelType) == "cpu":
		out := make([]*typesv1.LabelPair, len(ls))
		for i, p := range ls {
			if p.Name == LabelName {
				p = &typesv1.LabelPair{Name: LabelName, Value: "process_cpu"}
			}
			out[i] = p
		}
		return out
	}
	return ls
}
