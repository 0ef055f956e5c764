package corpus

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

func TestProfiles(t *testing.T) {
	tests := []struct {
		name               string
		minSamples         int
		maxSamples         int
		sampleType0        string
		wantSampleLabels   bool
		wantPeriodTypeName string
	}{
		{name: "cpu", minSamples: 100, maxSamples: 2000, sampleType0: "samples", wantSampleLabels: true, wantPeriodTypeName: "cpu"},
		{name: "heap", minSamples: 100, maxSamples: 5000, sampleType0: "alloc_objects", wantPeriodTypeName: "space"},
		// The distributor's default max_profile_stacktrace_samples is 16000.
		{name: "cpu-16k", minSamples: 14000, maxSamples: 16000, sampleType0: "samples", wantSampleLabels: true, wantPeriodTypeName: "cpu"},
	}
	if got := len(All()); got != len(tests) {
		t.Fatalf("All() has %d profiles, want %d", got, len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := Get(tt.name)
			if !ok {
				t.Fatalf("Get(%q) found nothing", tt.name)
			}
			if len(p.Gzipped) >= 1<<20 {
				t.Errorf("gzipped file is %d bytes, keep it under 1 MiB", len(p.Gzipped))
			}
			if len(p.Gzipped) < 2 || p.Gzipped[0] != 0x1f || p.Gzipped[1] != 0x8b {
				t.Errorf("Gzipped does not start with the gzip magic")
			}
			parsed, err := profile.ParseData(p.Raw())
			if err != nil {
				t.Fatal(err)
			}
			if err := parsed.CheckValid(); err != nil {
				t.Fatal(err)
			}
			fromGz, err := profile.ParseData(p.Gzipped)
			if err != nil {
				t.Fatal(err)
			}
			if len(fromGz.Sample) != len(parsed.Sample) {
				t.Errorf("Gzipped has %d samples, Raw %d", len(fromGz.Sample), len(parsed.Sample))
			}
			if n := len(parsed.Sample); n < tt.minSamples || n > tt.maxSamples {
				t.Errorf("%d samples, want %d..%d", n, tt.minSamples, tt.maxSamples)
			}
			if got := parsed.SampleType[0].Type; got != tt.sampleType0 {
				t.Errorf("first sample type %q, want %q", got, tt.sampleType0)
			}
			if parsed.PeriodType == nil || parsed.PeriodType.Type != tt.wantPeriodTypeName {
				t.Errorf("period type %v, want %q", parsed.PeriodType, tt.wantPeriodTypeName)
			}
			labelled := false
			for _, s := range parsed.Sample {
				labelled = labelled || len(s.Label) > 0
			}
			if labelled != tt.wantSampleLabels {
				t.Errorf("samples carry labels: %v, want %v", labelled, tt.wantSampleLabels)
			}
			if len(parsed.Function) < 100 || len(parsed.Location) < 100 {
				t.Errorf("only %d functions and %d locations: not a realistic profile", len(parsed.Function), len(parsed.Location))
			}
			if p.Metric == "" {
				t.Error("no metric name")
			}
		})
	}
}

func TestAt(t *testing.T) {
	when := time.Now().Add(-time.Minute).Truncate(time.Second)
	for _, p := range All() {
		q, err := p.At(when)
		if err != nil {
			t.Fatal(err)
		}
		for _, data := range [][]byte{q.Raw(), q.Gzipped} {
			parsed, err := profile.ParseData(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := parsed.CheckValid(); err != nil {
				t.Fatal(err)
			}
			if got := time.Unix(0, parsed.TimeNanos); !got.Equal(when) {
				t.Errorf("%s: time %v, want %v", p.Name, got, when)
			}
			orig, _ := profile.ParseData(p.Raw())
			if len(parsed.Sample) != len(orig.Sample) {
				t.Errorf("%s: %d samples after At, want %d", p.Name, len(parsed.Sample), len(orig.Sample))
			}
		}
		if bytes.Equal(q.Raw(), p.Raw()) {
			t.Errorf("%s: At did not change the bytes", p.Name)
		}
		// Only time_nanos moves: the size changes by a few bytes at most.
		if d := len(q.Raw()) - len(p.Raw()); d < -11 || d > 11 {
			t.Errorf("%s: At changed the size by %d bytes", p.Name, d)
		}
	}
}

func TestAtRejectsGarbage(t *testing.T) {
	p := Profile{Name: "bad", raw: func() []byte { return []byte{0x0a, 0x05, 0x01} }}
	if _, err := p.At(time.Now()); err == nil {
		t.Fatal("truncated protobuf accepted")
	}
}

func TestGetUnknown(t *testing.T) {
	if _, ok := Get("nope"); ok {
		t.Fatal("Get found a profile that does not exist")
	}
}
