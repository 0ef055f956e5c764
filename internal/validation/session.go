package validation

import (
	"encoding/binary"
	"encoding/hex"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// LimitSessions applies max_sessions_per_series to the first __session_id__
// label (limitMaxSessionsPerSeries in pkg/distributor/distributor.go at
// 3fe6a45): with 0 the label is removed; otherwise it is reduced modulo the
// limit, so a series has at most that many sessions. ls is not modified.
//
// The value's encoding is Pyroscope's SessionID (ParseSessionID and
// SessionID.String in pkg/model/labels.go): 16 hex digits, either case, are 8
// little-endian bytes of a 64-bit number. Pyroscope reduces that number as a
// signed int with Go's truncating %, so a value whose last byte is 0x80 or
// more gives a negative remainder, written back as its two's complement in
// lower-case hex. A value that does not parse is removed.
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
	if maxSessions != 0 {
		if id, ok := parseSessionID(ls[i].Value); ok {
			out = append(out, &typesv1.LabelPair{
				Name:  LabelSessionID,
				Value: formatSessionID(uint64(int64(id) % int64(maxSessions))),
			})
		}
	}
	return append(out, ls[i+1:]...)
}

func parseSessionID(s string) (uint64, bool) {
	var b [8]byte
	if len(s) != 2*len(b) {
		return 0, false
	}
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[:]), true
}

func formatSessionID(id uint64) string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], id)
	return hex.EncodeToString(b[:])
}
