package profile

import (
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"testing"
	"time"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"

	"github.com/pyrodist/pyrodist/test/corpus"
	"github.com/pyrodist/pyrodist/test/testutil/cputime"
)

// BenchmarkDecodeNormalize: inflate + decode + validate + normalize + split +
// encode of one profile, the per-profile work without sending. MB/s is of
// uncompressed pprof.
func BenchmarkDecodeNormalize(b *testing.B) {
	for _, cp := range corpus.All() {
		name, raw := cp.Name, cp.Gzipped
		l := limits()
		l.RejectOlderThan, l.RejectNewerThan = 0, 0
		size := func() int {
			buf := GetBuffer()
			defer PutBuffer(buf)
			d, _ := Inflate(raw, 0, buf, nil)
			return len(d)
		}()
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			now := time.Now()
			cpu0 := cputime.Process()
			for b.Loop() {
				buf := GetBuffer()
				data, err := Inflate(raw, l.MaxProfileSizeBytes, buf, nil)
				if err != nil {
					b.Fatal(err)
				}
				p, err := Decode(data)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Validate(l, p, len(data), series, now); err != nil {
					b.Fatal(err)
				}
				if IsGo(p, series) {
					FixGo(p)
				}
				Normalize(p)
				outs, _, err := Split(l, p, series)
				if err != nil {
					b.Fatal(err)
				}
				out := GetBuffer()
				if _, err := Encode(outs[0].Profile, out); err != nil {
					b.Fatal(err)
				}
				PutBuffer(out)
				PutBuffer(buf)
			}
			cputime.Report(b, cpu0, size)
		})
	}
}

// BenchmarkNaiveFloor is the reference the hot path is measured against in
// the same run: stdlib gzip inflate, UnmarshalVT and MarshalVT, nothing else.
func BenchmarkNaiveFloor(b *testing.B) {
	for _, cp := range corpus.All() {
		raw := cp.Gzipped
		b.Run(cp.Name, func(b *testing.B) {
			var size int
			cpu0 := cputime.Process()
			for b.Loop() {
				zr, err := stdgzip.NewReader(bytes.NewReader(raw))
				if err != nil {
					b.Fatal(err)
				}
				data, err := io.ReadAll(zr)
				if err != nil {
					b.Fatal(err)
				}
				size = len(data)
				var p profilev1.Profile
				if err := p.UnmarshalVT(data); err != nil {
					b.Fatal(err)
				}
				if _, err := p.MarshalVT(); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cputime.Report(b, cpu0, size)
		})
	}
}

// BenchmarkDecode: the slab decoder alone on uncompressed pprof.
func BenchmarkDecode(b *testing.B) {
	for _, cp := range corpus.All() {
		raw := cp.Raw()
		b.Run(cp.Name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				if _, err := Decode(raw); err != nil {
					b.Fatal(err)
				}
			}
			cputime.Report(b, cpu0, len(raw))
		})
	}
}
