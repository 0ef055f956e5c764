package placement

import (
	"github.com/cespare/xxhash/v2"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

var sep = []byte{0xff}

// Fingerprint is the series-label hash of spec §2.1: XXH64 (seed 0) over
// name, 0xFF, value, 0xFF for each label in the given order. The labels
// must already be sorted by name, as they are sent.
func Fingerprint(labels []*typesv1.LabelPair) uint64 {
	var d xxhash.Digest
	d.Reset()
	for _, l := range labels {
		_, _ = d.WriteString(l.GetName())
		_, _ = d.Write(sep)
		_, _ = d.WriteString(l.GetValue())
		_, _ = d.Write(sep)
	}
	return d.Sum64()
}
