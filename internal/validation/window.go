package validation

import (
	"fmt"
	"time"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
)

// CheckIngestionWindow rejects a profile timestamp (ns, > 0) outside the open
// interval (now - reject_older_than, now + reject_newer_than); a bound of 0 is
// off. Times are compared and printed at millisecond precision, as Pyroscope does.
func CheckIngestionWindow(l *config.Limits, timeNanos int64, now time.Time, ls []*typesv1.LabelPair) error {
	t := time.UnixMilli(timeNanos / int64(time.Millisecond)).UTC()
	nowMs := time.UnixMilli(now.UnixMilli()).UTC()
	var from, to time.Time
	if l.RejectOlderThan > 0 {
		from = nowMs.Add(-time.Duration(l.RejectOlderThan))
	}
	if l.RejectNewerThan > 0 {
		to = nowMs.Add(time.Duration(l.RejectNewerThan))
	}
	if (from.IsZero() || t.After(from)) && (to.IsZero() || t.Before(to)) {
		return nil
	}
	var detail string
	switch {
	case to.IsZero():
		detail = fmt.Sprintf("the ingestion window starts at %s", from)
	case from.IsZero():
		detail = fmt.Sprintf("the ingestion window ends at %s", to)
	default:
		detail = fmt.Sprintf("the ingestion window starts at %s and ends at %s", from, to)
	}
	return Errorf(NotInIngestionWindow, NotInIngestionWindowMsg, LabelsString(ls), t, detail)
}
