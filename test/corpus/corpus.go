// Package corpus holds realistic pprof profiles shared by benchmarks, the
// load generator and tests: runtime/pprof output of a mixed Go workload (CPU
// and heap) and a 15,000-sample CPU profile built from a real Go symbol
// table. `go run ./hack/gencorpus` regenerates the files.
package corpus

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

//go:embed testdata/*.pb.gz
var files embed.FS

// Profile is one corpus entry. Gzipped and Raw are shared: do not modify them.
type Profile struct {
	// Name is the file name without .pb.gz: cpu, heap, cpu-16k.
	Name string
	// Metric is the __name__ label Pyroscope derives for this profile type.
	Metric string
	// Gzipped is the profile as agents send it (gzip, best speed, as runtime/pprof writes it).
	Gzipped []byte
	raw     func() []byte
}

// Raw returns the uncompressed pprof, inflated once.
func (p Profile) Raw() []byte { return p.raw() }

// entries lists the files in a fixed order: smallest first.
var entries = []struct{ name, metric string }{
	{"cpu", "process_cpu"},
	{"heap", "memory"},
	{"cpu-16k", "process_cpu"},
}

var load = sync.OnceValue(func() []Profile {
	out := make([]Profile, 0, len(entries))
	for _, e := range entries {
		gz, err := files.ReadFile("testdata/" + e.name + ".pb.gz")
		if err != nil {
			panic(fmt.Sprintf("corpus: embedded file missing: %v", err)) // a build defect, not input
		}
		out = append(out, Profile{Name: e.name, Metric: e.metric, Gzipped: gz, raw: sync.OnceValue(func() []byte {
			raw, err := inflate(gz)
			if err != nil {
				panic(fmt.Sprintf("corpus: %s: %v", e.name, err))
			}
			return raw
		})})
	}
	return out
})

// All returns every profile of the corpus, smallest first.
func All() []Profile { return load() }

// Get returns the profile called name.
func Get(name string) (Profile, bool) {
	for _, p := range load() {
		if p.Name == name {
			return p, true
		}
	}
	return Profile{}, false
}

// Names lists the profile names, for flag help and errors.
func Names() string {
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.name)
	}
	return strings.Join(names, ",")
}

// At returns a copy of p recorded at t: the committed files carry the time
// they were generated, which a distributor rejects as outside its ingestion
// window (one hour by default). Only time_nanos changes: the rest keeps the
// byte layout runtime/pprof wrote, so decoders see what agents send.
func (p Profile) At(t time.Time) (Profile, error) {
	raw, err := setTimeNanos(p.Raw(), t.UnixNano())
	if err != nil {
		return Profile{}, fmt.Errorf("corpus: %s: %w", p.Name, err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(raw); err != nil {
		return Profile{}, err
	}
	if err := zw.Close(); err != nil {
		return Profile{}, err
	}
	p.Gzipped = gz.Bytes()
	p.raw = func() []byte { return raw }
	return p, nil
}

// timeNanosField is Profile.time_nanos in profile.proto.
const timeNanosField = 9

// setTimeNanos copies the top-level fields of an encoded Profile except
// time_nanos and appends time_nanos = ns.
func setTimeNanos(raw []byte, ns int64) ([]byte, error) {
	out := make([]byte, 0, len(raw)+11)
	for b := raw; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		if num != timeNanosField {
			out = append(out, b[:n+m]...)
		}
		b = b[n+m:]
	}
	out = protowire.AppendTag(out, timeNanosField, protowire.VarintType)
	return protowire.AppendVarint(out, uint64(ns)), nil
}

func inflate(gz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
