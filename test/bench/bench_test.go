// Package bench compares the distributor's hot path with the floor
// (test/floor) on the same corpus in the same test binary, so every
// ratio in the performance report comes from one run on one machine.
//
// Every benchmark reports MB/cpu-s: uncompressed pprof bytes divided by the
// CPU time of the whole process (GC on other cores included), the unit the
// load run measures on the distributor process.
package bench

import (
	"context"
	"testing"
	"time"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/distributor"
	"github.com/pyrodist/pyrodist/internal/profile"
	"github.com/pyrodist/pyrodist/test/corpus"
	"github.com/pyrodist/pyrodist/test/floor"
	"github.com/pyrodist/pyrodist/test/testutil/cputime"
)

// input is one corpus profile stamped now, with the series labels an agent sends.
type input struct {
	name   string
	gz     []byte
	raw    int
	labels []*typesv1.LabelPair
}

// cases returns each corpus profile, "mix" (each once per iteration, the
// load generator's default equal-count mix) and "small" (cpu and heap once
// each: the agent-sized profiles of the load generator's -profiles cpu,heap).
func cases(tb testing.TB) map[string][]input {
	now := time.Now()
	out := map[string][]input{}
	for _, p := range corpus.All() {
		q, err := p.At(now)
		if err != nil {
			tb.Fatal(err)
		}
		in := input{name: p.Name, gz: q.Gzipped, raw: len(q.Raw()), labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: p.Metric},
			{Name: "env", Value: "bench"},
			{Name: "service_name", Value: "checkout"},
		}}
		out[p.Name] = []input{in}
		out["mix"] = append(out["mix"], in)
		if p.Name == "cpu" || p.Name == "heap" {
			out["small"] = append(out["small"], in)
		}
	}
	return out
}

var order = []string{"cpu", "heap", "cpu-16k", "mix", "small"}

func limits() *config.Limits {
	c := config.Defaults()
	l := c.Limits
	// The rate limit is not what is measured.
	l.IngestionRateMB, l.IngestionBurstSizeMB = 1<<20, 1<<20
	return &l
}

func measure(b *testing.B, ins []input, f func(input) error) {
	var raw int64
	for _, in := range ins {
		raw += int64(in.raw)
	}
	b.SetBytes(raw)
	b.ReportAllocs()
	start := cputime.Process()
	for i := 0; i < b.N; i++ {
		for _, in := range ins {
			if err := f(in); err != nil {
				b.Fatal(err)
			}
		}
	}
	if cpu := (cputime.Process() - start).Seconds(); cpu > 0 {
		b.ReportMetric(float64(raw)*float64(b.N)/1e6/cpu, "MB/cpu-s")
	}
}

type nopSender struct{}

func (nopSender) Send(context.Context, *distributor.Profile) error { return nil }

// BenchmarkCompare runs the floor and the whole pipeline (distributor.Push:
// rate limit, inflate, decode, validate, Go fixes, normalize, split, encode,
// fingerprint, id; a sender that acks at once) on the same inputs.
func BenchmarkCompare(b *testing.B) {
	all := cases(b)
	for _, name := range order {
		ins := all[name]
		b.Run("floor/"+name, func(b *testing.B) {
			var p floor.Pass
			measure(b, ins, func(in input) error { _, err := p.Run(in.gz); return err })
		})
		b.Run("pipeline/"+name, func(b *testing.B) {
			l := limits()
			d, err := distributor.New(distributor.Config{MaxInflightBytes: 1 << 30}, staticLimits{l}, nopSender{}, func() int { return 1 }, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			measure(b, ins, func(in input) error {
				return d.Push(context.Background(), "tenant-1", &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
					Labels:  in.labels,
					Samples: []*pushv1.RawSample{{RawProfile: in.gz}},
				}}})
			})
		})
	}
}

// BenchmarkStages runs growing prefixes of the per-profile work on the mix;
// a stage's cost is the difference between its line and the one before.
func BenchmarkStages(b *testing.B) {
	ins := cases(b)["mix"]
	l := limits()
	for i, stage := range []string{"1-inflate", "2-decode", "3-validate", "4-normalize", "5-split", "6-encode"} {
		b.Run(stage, func(b *testing.B) {
			measure(b, ins, func(in input) error { return upTo(i+1, l, in) })
		})
	}
}

func upTo(n int, l *config.Limits, in input) error {
	buf := profile.GetBuffer()
	defer profile.PutBuffer(buf)
	data, err := profile.Inflate(in.gz, l.MaxProfileSizeBytes, buf, nil)
	if err != nil || n == 1 {
		return err
	}
	p, err := profile.Decode(data)
	if err != nil || n == 2 {
		return err
	}
	if _, err := profile.Validate(l, p, len(data), in.labels, time.Now()); err != nil || n == 3 {
		return err
	}
	if profile.IsGo(p, in.labels) {
		profile.FixGo(p)
	}
	profile.Normalize(p)
	if n == 4 {
		return nil
	}
	outs, _, err := profile.Split(l, p, in.labels)
	if err != nil || n == 5 {
		return err
	}
	out := profile.GetBuffer()
	defer profile.PutBuffer(out)
	for _, o := range outs {
		if _, err := profile.Encode(o.Profile, out); err != nil {
			return err
		}
	}
	return nil
}

type staticLimits struct{ l *config.Limits }

func (s staticLimits) ForTenant(string) *config.Limits { return s.l }

// TestPipelineAcceptsCorpus guards the benchmarks: every corpus profile goes
// through the pipeline and out as valid pprof.
func TestPipelineAcceptsCorpus(t *testing.T) {
	rec := &recorder{}
	d, err := distributor.New(distributor.Config{MaxInflightBytes: 1 << 30}, staticLimits{limits()}, rec, func() int { return 1 }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range cases(t)["mix"] {
		rec.n = 0
		err := d.Push(context.Background(), "tenant-1", &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
			Labels: in.labels, Samples: []*pushv1.RawSample{{RawProfile: in.gz}},
		}}})
		if err != nil {
			t.Fatalf("%s: %v", in.name, err)
		}
		if rec.n == 0 {
			t.Errorf("%s: nothing sent", in.name)
		}
		for i := 1; i <= 6; i++ {
			if err := upTo(i, limits(), in); err != nil {
				t.Errorf("%s: stage %d: %v", in.name, i, err)
			}
		}
	}
}

type recorder struct{ n int }

func (r *recorder) Send(_ context.Context, p *distributor.Profile) error {
	if _, err := gpprofParse(p.Pprof); err != nil {
		return err
	}
	r.n++
	return nil
}
