package jfr

import (
	"errors"
	"runtime"
	"testing"

	"github.com/google/pprof/profile"
	jfrpprof "github.com/grafana/jfr-parser/pprof"
)

// FuzzJFR converts arbitrary recordings and labels snapshots, seeded with
// small real recordings and built ones. Convert never panics (a panic
// would end the fuzzer); whatever the scan accepts the parser reads without
// error (the scan must read as the parser does); every profile parses with
// google/pprof and passes CheckValid; and the conversion allocates no more
// than it charged.
func FuzzJFR(f *testing.F) {
	f.Add(recording(3, 4, false), []byte(nil))
	f.Add(recording(2, 3, true), []byte(nil))
	for _, name := range []string{"nativemem", "wall_tick_sample"} {
		f.Add(gunzipFile(f, "testdata/"+name+".jfr.gz"), []byte(nil))
	}
	f.Add(gunzipFile(f, "testdata/new_spancontext.jfr.gz"), gunzipFile(f, "testdata/new_spancontext.labels.gz"))
	full := errors.New("budget full")
	md := testMetadata(f, "app{env=fuzz}")
	f.Fuzz(func(t *testing.T, data, labels []byte) {
		snapshot := new(jfrpprof.LabelsSnapshot)
		if snapshot.UnmarshalVT(labels) != nil {
			labels = nil
			snapshot = new(jfrpprof.LabelsSnapshot)
		}
		_, scanErr := scan(data, snapshot, nil)
		var charged int64
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		series, err := Convert(data, labels, md, func(n int) error {
			if charged+int64(n) > 256<<20 {
				return full
			}
			charged += int64(n)
			return nil
		})
		runtime.ReadMemStats(&after)
		if scanErr == nil && err != nil && !errors.Is(err, full) {
			t.Fatalf("the scan accepted a recording the parser refused: %v", err)
		}
		// Fixed costs (the scan's tables, the encoder) are not per byte.
		if alloc := int64(after.TotalAlloc - before.TotalAlloc); alloc > charged+1<<20 {
			t.Fatalf("allocated %d bytes, charged %d", alloc, charged)
		}
		for _, s := range series {
			p, err := profile.ParseData(s.Pprof)
			if err != nil {
				t.Fatalf("a converted profile does not parse: %v", err)
			}
			if err := p.CheckValid(); err != nil {
				t.Fatalf("a converted profile fails CheckValid: %v", err)
			}
		}
	})
}
