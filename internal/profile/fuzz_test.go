package profile

import (
	"bytes"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/pyrodist/pyrodist/test/corpus"
	"github.com/pyrodist/pyrodist/test/testutil/hostile"
)

// FuzzPipeline runs arbitrary bytes through inflate, decode (within the
// count limits, as the pipeline does), validate, normalize, split and
// encode: no panic, and whatever comes out parses with google/pprof and
// passes CheckValid.
func FuzzPipeline(f *testing.F) {
	for _, cp := range corpus.All()[:2] { // cpu, heap: the 16k one slows every run
		f.Add(cp.Gzipped)
	}
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 0)
	f.Add(b.Bytes())
	b.Reset()
	pprof.Lookup("allocs").WriteTo(&b, 0)
	f.Add(b.Bytes())
	f.Add([]byte("not a profile"))
	f.Add(hostile.Gzip(hostile.EmptySamples(20_000)))
	f.Add(hostile.Gzip(hostile.Locations(64 << 10)))
	now := time.Now()
	l := limits()
	l.RejectOlderThan, l.RejectNewerThan = 0, 0
	l.MaxProfileSizeBytes = 1 << 20
	f.Fuzz(func(t *testing.T, raw []byte) {
		buf := GetBuffer()
		defer PutBuffer(buf)
		data, err := Inflate(raw, l.MaxProfileSizeBytes, buf, nil)
		if err != nil {
			return
		}
		p, _, err := new(Arena).DecodeWithin(data, Bounds{Limits: l, Series: series, Now: now})
		if err != nil {
			return
		}
		if _, err := Validate(l, p, len(data), series, now); err != nil {
			return
		}
		if IsGo(p, series) {
			FixGo(p)
		}
		Normalize(p)
		if len(p.Sample) == 0 {
			return
		}
		outs, _, err := Split(l, p, series)
		if err != nil {
			return
		}
		for _, o := range outs {
			var ob []byte
			enc, err := Encode(o.Profile, &ob)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			q, err := profile.ParseData(enc)
			if err != nil {
				t.Fatalf("output does not parse: %v", err)
			}
			if err := q.CheckValid(); err != nil {
				t.Fatalf("output fails CheckValid: %v", err)
			}
		}
	})
}
