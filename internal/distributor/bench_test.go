package distributor

import (
	"context"
	"testing"
	"time"

	"github.com/pyrodist/pyrodist/internal/profile"
)

type nopSender struct{}

func (nopSender) Send(context.Context, *Profile) error { return nil }

// BenchmarkPush: the full Push path (rate limit, inflate, decode, validate,
// normalize, split, encode, fingerprint, id) with a no-op sender. MB/s is
// of uncompressed pprof.
func BenchmarkPush(b *testing.B) {
	for _, name := range realProfiles {
		raw := readProfile(b, name)
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
			cpu0 := processCPU()
			for b.Loop() {
				if err := d.Push(context.Background(), "t1", req); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0, size)
		})
	}
}

// reportCPU adds process CPU time per op and MB of uncompressed pprof per
// CPU-second, the figures that hold on a shared machine.
func reportCPU(b *testing.B, cpu0 time.Duration, size int) {
	cpu := processCPU() - cpu0
	if cpu <= 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(size)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
}
