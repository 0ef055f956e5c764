package profile

import (
	"errors"
	"time"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pyrodist/pyrodist/internal/config"
)

// Bounds limit what decoding one profile may take. A few bytes of pprof can
// stand for a hundred bytes of decoded messages (an empty sample is two
// bytes on the wire and more than a hundred in memory), so neither the size
// limit nor a charge per byte of input bounds a decode: the count limits
// are applied and the memory charged while it runs.
type Bounds struct {
	// Limits are the tenant's: more samples than max_profile_stacktrace_samples
	// or a sample with more labels than max_profile_stacktrace_sample_labels
	// stops the decode before their memory is taken, with the error
	// Validate gives such a profile (computed from the fields not yet
	// decoded, which are counted, not decoded). nil: no count limits.
	Limits *config.Limits
	// Series and Now are Validate's arguments, for that error.
	Series []*typesv1.LabelPair
	Now    time.Time
	// Paid is decoded memory the caller charged already; Reserve (nil:
	// nothing charged) is charged for the rest before it is allocated, and
	// its error ends the decode and is returned as it is.
	Paid    int
	Reserve Reserver
}

// DecodeWithin is Decode in the arena's memory, within bounds. It returns
// the decoded profile and the decoded memory it accounted for (paid or
// reserved), or the first error among: a count limit's (a
// *validation.Error), the budget's, a decode error.
func (a *Arena) DecodeWithin(b []byte, bounds Bounds) (*profilev1.Profile, int, error) {
	p, err := a.d.decode(b, &bounds)
	return p, a.d.used, err
}

// errLabels stops the decode of a sample whose labels pass the limit; the
// decoder's overLabels has their number.
var errLabels = errors.New("sample labels over the limit")

// fallbackFactor bounds what UnmarshalVT allocates per byte of input
// (measured on inputs made of the smallest messages of each kind: at most
// 78 bytes per byte, for empty samples). The fallback cannot be charged as
// it goes, so it is charged this up front.
const fallbackFactor = 96

// head is what Validate checks before it looks at samples one by one.
type head struct {
	sampleTypes int
	timeNanos   int64 // the last one, as UnmarshalVT keeps
	samples     int
}

// tally adds to h the top-level fields of b, a profile's remaining bytes,
// without decoding them. It stops at the first malformed field: a profile
// that is malformed too is refused for its counts all the same.
func tally(b []byte, h *head) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		switch {
		case num == 1:
			h.sampleTypes++
		case num == 2:
			h.samples++
		case num == 9 && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return
			}
			h.timeNanos = int64(v)
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return
		}
		b = b[m:]
	}
}

// countField counts the fields numbered num in b, a message's bytes.
func countField(b []byte, num protowire.Number) int {
	c := 0
	for len(b) > 0 {
		n, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return c
		}
		b = b[k:]
		if n == num {
			c++
		}
		m := protowire.ConsumeFieldValue(n, typ, b)
		if m < 0 {
			return c
		}
		b = b[m:]
	}
	return c
}

// refuse ends a decode stopped by a count limit with the error Validate
// would give the whole profile: rest is the profile's bytes not decoded,
// and sample is -1 when the sample limit was reached, otherwise the index
// of the sample (not in p) whose labels passed the limit.
func (d *decoder) refuse(rest []byte, p *profilev1.Profile, sample int) error {
	h := head{sampleTypes: len(p.SampleType), timeNanos: p.TimeNanos, samples: len(p.Sample)}
	if sample >= 0 {
		h.samples++
	}
	tally(rest, &h)
	bd := d.bounds
	if _, err := checkHead(bd.Limits, h.sampleTypes, h.timeNanos, len(d.buf), h.samples, bd.Series, bd.Now); err != nil {
		return err
	}
	if sample < 0 { // not reached: the sample count passed the limit
		return tooManySamples(bd.Limits, h.samples, bd.Series)
	}
	// Validate looks at the samples before this one first.
	for i, s := range p.Sample {
		if len(s.Value) != h.sampleTypes {
			return valueCount(i, len(s.Value), h.sampleTypes)
		}
	}
	return tooManyLabels(bd.Limits, d.overLabels, bd.Series)
}

// boundFallback bounds the UnmarshalVT fallback of a decode within bounds,
// which may read much further than the fast path did (it accepts encodings
// the fast path leaves to it): a profile with too many samples is refused
// without it, and it is charged its worst case.
func (d *decoder) boundFallback(b []byte) error {
	if d.maxSamples > 0 {
		var h head
		tally(b, &h)
		if h.samples > d.maxSamples {
			bd := d.bounds
			if _, err := checkHead(bd.Limits, h.sampleTypes, h.timeNanos, len(b), h.samples, bd.Series, bd.Now); err != nil {
				return err
			}
		}
	}
	return d.charge(fallbackFactor * len(b))
}
