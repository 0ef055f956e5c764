package legacy

import (
	"strconv"
	"strings"
	"time"
)

// ParseTime reads the from/until parameters as Pyroscope does: all digits are
// YYYYMMDD (8), ms (13), µs (16), ns (19) or else seconds; "now", "now-1h" and
// "now+5m" are relative. Empty or unreadable values mean now.
func ParseTime(s string, now time.Time) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return now
	}
	if rel, ok := strings.CutPrefix(s, "now"); ok {
		if rel == "" {
			return now
		}
		d, err := time.ParseDuration(rel)
		if err != nil {
			return now
		}
		return now.Add(d)
	}
	if !allDigits(s) {
		return now
	}
	if len(s) == 8 {
		if t, err := time.ParseInLocation("20060102", s, time.UTC); err == nil {
			return t
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return now
	}
	switch len(s) {
	case 13:
		return time.UnixMilli(v)
	case 16:
		return time.UnixMicro(v)
	case 19:
		return time.Unix(0, v)
	default:
		return time.Unix(v, 0)
	}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
