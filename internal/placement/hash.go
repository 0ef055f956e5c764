package placement

import (
	"github.com/cespare/xxhash/v2"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// Fingerprint is the series-label hash Pyroscope places by (Labels.Hash in
// pkg/model/labels.go at 3fe6a45; docs/compatibility.md#series-fingerprint):
// XXH64 (seed 0) over name, 0xFF, value, 0xFF for each label in the given
// order. The labels must already be sorted by name, as they are sent. Series
// labels fit the stack buffer; longer ones spill to the heap.
func Fingerprint(labels []*typesv1.LabelPair) uint64 {
	var stack [1024]byte
	b := stack[:0]
	for _, l := range labels {
		b = append(b, l.GetName()...)
		b = append(b, 0xff)
		b = append(b, l.GetValue()...)
		b = append(b, 0xff)
	}
	return xxhash.Sum64(b)
}
