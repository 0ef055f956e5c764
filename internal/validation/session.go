package validation

import (
	"fmt"
	"strconv"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// LimitSessions applies max_sessions_per_series to the __session_id__ label
// (limitMaxSessionsPerSeries in pkg/distributor/distributor.go at 3fe6a45):
// with 0 the label is removed; otherwise its 16-hex-digit
// value is reduced modulo the limit, so a series has at most that many
// sessions. A value that is not 16 hex digits is left as it is. ls is not
// modified. With a limit above 0 Pyroscope differs: see
// docs/compatibility.md#not-yet-reproduced.
func LimitSessions(ls []*typesv1.LabelPair, maxSessions int) []*typesv1.LabelPair {
	i := -1
	for j, l := range ls {
		if l.Name == LabelSessionID {
			i = j
			break
		}
	}
	if i < 0 {
		return ls
	}
	out := make([]*typesv1.LabelPair, 0, len(ls))
	out = append(out, ls[:i]...)
	if maxSessions > 0 {
		v := ls[i].Value
		if id, err := strconv.ParseUint(v, 16, 64); err == nil && len(v) == 16 {
			v = fmt.Sprintf("%016x", id%uint64(maxSessions))
		}
		out = append(out, &typesv1.LabelPair{Name: LabelSessionID, Value: v})
	}
	return append(out, ls[i+1:]...)
}
