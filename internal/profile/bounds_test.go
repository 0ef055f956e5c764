package profile

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pyrodist/pyrodist/internal/validation"
	"github.com/pyrodist/pyrodist/test/testutil/hostile"
)

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// decodeWithin decodes with an Arena of its own, left to the garbage
// collector: the profile stays valid.
func decodeWithin(b []byte, bd Bounds) (*profilev1.Profile, int, error) {
	return new(Arena).DecodeWithin(b, bd)
}

// Two million empty samples are 4 MB of pprof that decoded to 300 MB
// before Validate counted them: the decoder stops at the limit, with
// Validate's error and the full count.
func TestDecodeWithinRefusesTooManySamples(t *testing.T) {
	raw := hostile.EmptySamples(2_000_000)
	l, now := limits(), time.Now()
	var err error
	n := allocated(func() { _, _, err = decodeWithin(raw, Bounds{Limits: l, Series: series, Now: now}) })
	want := tooManySamples(l, 2_000_000, series)
	if err == nil || err.Error() != want.Error() || reasonOf(err) != validation.SamplesLimit {
		t.Fatalf("err %v, want %v", err, want)
	}
	if n > 8<<20 {
		t.Fatalf("refusing took %d MB", n>>20)
	}
	t.Logf("refused after allocating %d KB", n>>10)

	// The same profile behind a field the fast path leaves to UnmarshalVT
	// (a group) is refused before UnmarshalVT runs.
	group := protowire.AppendTag(nil, 100, protowire.StartGroupType)
	group = protowire.AppendTag(group, 100, protowire.EndGroupType)
	n = allocated(func() { _, _, err = decodeWithin(append(group, raw...), Bounds{Limits: l, Series: series, Now: now}) })
	if err == nil || err.Error() != want.Error() {
		t.Fatalf("behind a group: err %v, want %v", err, want)
	}
	if n > 8<<20 {
		t.Fatalf("refusing behind a group took %d MB", n>>20)
	}
}

// One sample with two million empty labels: refused at the label limit.
func TestDecodeWithinRefusesTooManySampleLabels(t *testing.T) {
	var smp []byte
	for range 2_000_000 {
		smp = append(smp, 0x1a, 0x00)
	}
	raw := protowire.AppendTag(hostile.EmptySamples(0), 2, protowire.BytesType)
	raw = protowire.AppendVarint(raw, uint64(len(smp)))
	raw = append(raw, smp...)
	l := limits()
	var err error
	n := allocated(func() { _, _, err = decodeWithin(raw, Bounds{Limits: l, Series: series, Now: time.Now()}) })
	want := tooManyLabels(l, 2_000_000, series)
	if err == nil || err.Error() != want.Error() || reasonOf(err) != validation.SampleLabelsLimit {
		t.Fatalf("err %v, want %v", err, want)
	}
	if n > 8<<20 {
		t.Fatalf("refusing took %d MB", n>>20)
	}
}

// A profile refused for a count gets exactly the error Validate gives the
// fully decoded profile: Validate's order (sample types, time, size, sample
// count, then sample by sample) holds although the decoder has not read
// the fields after the one that passed the limit.
func TestDecodeWithinAgreesWithValidate(t *testing.T) {
	now := time.Now()
	l := limits()
	l.MaxProfileStacktraceSamples, l.MaxProfileStacktraceSampleLabels = 4, 3
	labels := func(n int) []*profilev1.Label {
		ls := make([]*profilev1.Label, n)
		for i := range ls {
			ls[i] = &profilev1.Label{Key: 5, Str: 6}
		}
		return ls
	}
	// samples returns a profile with n copies of small's sample.
	samples := func(n int) *profilev1.Profile {
		p := small(now)
		s := p.Sample[0]
		p.Sample = nil
		for range n {
			p.Sample = append(p.Sample, &profilev1.Sample{LocationId: s.LocationId, Value: s.Value})
		}
		return p
	}
	old := now.Add(-2 * time.Hour).UnixNano()
	tail := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
	}
	cases := []struct {
		name  string
		p     *profilev1.Profile
		after []byte // fields appended after the marshalled profile
	}{
		{name: "within limits", p: samples(4)},
		{name: "too many samples", p: samples(6)},
		{name: "too many samples, no sample types", p: func() *profilev1.Profile { p := samples(6); p.SampleType = nil; return p }()},
		{name: "too many samples, too old", p: func() *profilev1.Profile { p := samples(6); p.TimeNanos = old; return p }()},
		{name: "too many samples, too old at the end", p: samples(6), after: tail(9, uint64(old))},
		{name: "too old at the end, then recent", p: samples(6), after: append(tail(9, uint64(old)), tail(9, uint64(now.UnixNano()))...)},
		{name: "too many samples, one with too many labels", p: func() *profilev1.Profile { p := samples(6); p.Sample[1].Label = labels(5); return p }()},
		{name: "too many labels", p: func() *profilev1.Profile { p := samples(3); p.Sample[2].Label = labels(5); return p }()},
		{name: "too many labels, too old", p: func() *profilev1.Profile { p := samples(3); p.Sample[1].Label = labels(5); p.TimeNanos = old; return p }()},
		{name: "too many labels after a bad value count", p: func() *profilev1.Profile {
			p := samples(3)
			p.Sample[0].Value = []int64{1}
			p.Sample[2].Label = labels(5)
			return p
		}()},
		{name: "too many labels before a bad value count", p: func() *profilev1.Profile {
			p := samples(3)
			p.Sample[1].Label = labels(5)
			p.Sample[2].Value = []int64{1}
			return p
		}()},
		{name: "too many labels, a sample type at the end", p: func() *profilev1.Profile { p := samples(3); p.Sample[1].Label = labels(5); return p }(),
			after: protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), tail(1, 3))},
		{name: "labels at the limit", p: func() *profilev1.Profile { p := samples(4); p.Sample[3].Label = labels(3); return p }()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := tc.p.MarshalVT()
			if err != nil {
				t.Fatal(err)
			}
			raw = append(raw, tc.after...)
			full, err := Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			_, want := Validate(l, full, len(raw), series, now)
			p, _, got := decodeWithin(raw, Bounds{Limits: l, Series: series, Now: now})
			if got == nil {
				_, got = Validate(l, p, len(raw), series, now)
			}
			if (got == nil) != (want == nil) || got != nil && (got.Error() != want.Error() || reasonOf(got) != reasonOf(want)) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

// The decoded memory beyond what the caller paid is charged before it is
// allocated, so a budget stops a profile that decodes to many times its
// size although it passes every limit.
func TestDecodeWithinChargesDecodedMemory(t *testing.T) {
	raw := hostile.Locations(1 << 20)
	l := limits()
	var reserved int
	count := func(n int) error { reserved += n; return nil }
	a := GetArena()
	var used int
	n := allocated(func() {
		_, u, err := a.DecodeWithin(raw, Bounds{Limits: l, Paid: 64 << 10, Reserve: count})
		if err != nil {
			t.Fatal(err)
		}
		used = u
	})
	a.Release()
	if used != reserved+64<<10 {
		t.Fatalf("used %d, reserved %d beyond 64 KB paid", used, reserved)
	}
	if uint64(used) < n*9/10 {
		t.Fatalf("charged %d bytes, the decode allocated %d", used, n)
	}
	t.Logf("%d bytes of pprof: %d allocated, %d charged", len(raw), n, used)

	errFull := errors.New("budget exhausted")
	reserved = 0
	full := func(k int) error {
		if reserved+k > 4<<20 {
			return errFull
		}
		reserved += k
		return nil
	}
	var err error
	n = allocated(func() { _, _, err = decodeWithin(raw, Bounds{Limits: l, Reserve: full}) })
	if err != errFull {
		t.Fatalf("err %v, want the budget's", err)
	}
	if n > 6<<20 {
		t.Fatalf("a decode refused at 4 MB allocated %d bytes", n)
	}
}

// fallbackFactor bounds what UnmarshalVT allocates per byte on inputs made
// of the smallest messages of every kind.
func TestFallbackFactor(t *testing.T) {
	rep := func(unit []byte, n int) []byte { return []byte(strings.Repeat(string(unit), n)) }
	inMessage := func(num protowire.Number, body []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), body)
	}
	const n = 1 << 18
	cases := map[string][]byte{
		"samples":      rep([]byte{0x12, 0}, n),
		"sample types": rep([]byte{0x0a, 0}, n),
		"mappings":     rep([]byte{0x1a, 0}, n),
		"locations":    rep([]byte{0x22, 0}, n),
		"functions":    rep([]byte{0x2a, 0}, n),
		"strings":      rep([]byte{0x32, 0}, n),
		"comments":     rep([]byte{0x68, 0}, n),
		"labels":       inMessage(2, rep([]byte{0x1a, 0}, n)),
		"lines":        inMessage(4, rep([]byte{0x22, 0}, n)),
		"unpacked ids": inMessage(2, rep([]byte{0x08, 1}, n)),
	}
	for name, b := range cases {
		var err error
		got := allocated(func() { err = (&profilev1.Profile{}).UnmarshalVT(b) })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if per := float64(got) / float64(len(b)); per > fallbackFactor {
			t.Errorf("%s: UnmarshalVT allocates %.1f bytes per byte, fallbackFactor is %d", name, per, fallbackFactor)
		}
	}
}
