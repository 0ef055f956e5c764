package distributor

import (
	"context"
	"testing"
	"time"

	"github.com/pyrodist/pyrodist/internal/profile"
	"github.com/pyrodist/pyrodist/test/corpus"
	"github.com/pyrodist/pyrodist/test/testutil/cputime"
)

type nopSender struct{}

func (nopSender) Send(context.Context, *Profile) error { return nil }

// BenchmarkPush: the full Push path (rate limit, inflate, decode, validate,
// normalize, split, encode, fingerprint, id) with a no-op sender. MB/s is
// of uncompressed pprof.
func BenchmarkPush(b *testing.B) {
	for _, cp := range corpus.All() {
		name, raw := cp.Name, cp.Gzipped
		l := defaultLimits()
		l.RejectOlderThan, l.RejectNewerThan = 0, 0
		l.IngestionRateMB, l.IngestionBurstSizeMB = 1<<20, 1<<20
		buf := profile.GetBuffer()
		data, _ := profile.Inflate(raw, 0, buf, nil)
		size := len(data)
		b.Run(name, func(b *testing.B) {
			d := newTestDistributor(b, l, nopSender{})
			d.now = time.Now
			req := pushOne(cpuLabels(), raw)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				if err := d.Push(context.Background(), "t1", req); err != nil {
					b.Fatal(err)
				}
			}
			cputime.Report(b, cpu0, size)
		})
	}
}

// BenchmarkPushUnchanged: a profile the rules leave as it is (here: the CPU
// profile after one pass through the pipeline) is forwarded as inflated,
// without encoding.
func BenchmarkPushUnchanged(b *testing.B) {
	l := defaultLimits()
	l.RejectOlderThan, l.RejectNewerThan = 0, 0
	l.IngestionRateMB, l.IngestionBurstSizeMB = 1<<20, 1<<20
	rec := &recorder{}
	once := newTestDistributor(b, l, rec)
	if err := once.Push(context.Background(), "t1", pushOne(cpuLabels(), readProfile(b, "cpu"))); err != nil {
		b.Fatal(err)
	}
	normalized := rec.got[0].Pprof
	check := &aliasSender{want: normalized}
	d := newTestDistributor(b, l, check)
	if err := d.Push(context.Background(), "t1", pushOne(cpuLabels(), normalized)); err != nil {
		b.Fatal(err)
	}
	if !check.aliased {
		b.Fatal("the normalized profile was not forwarded unchanged")
	}
	d.sender = nopSender{}
	req := pushOne(cpuLabels(), normalized)
	b.SetBytes(int64(len(normalized)))
	b.ReportAllocs()
	cpu0 := cputime.Process()
	for b.Loop() {
		if err := d.Push(context.Background(), "t1", req); err != nil {
			b.Fatal(err)
		}
	}
	cputime.Report(b, cpu0, len(normalized))
}

// aliasSender notes whether the profile it got is the request's own bytes.
type aliasSender struct {
	want    []byte
	aliased bool
}

func (s *aliasSender) Send(_ context.Context, p *Profile) error {
	s.aliased = len(p.Pprof) == len(s.want) && &p.Pprof[0] == &s.want[0]
	return nil
}
