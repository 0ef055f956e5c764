package distributor

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/klauspost/compress/gzip"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/inflight"
	"github.com/pyrodist/pyrodist/test/corpus"
	"github.com/pyrodist/pyrodist/test/testutil/observed"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

// readProfile returns a corpus profile (cpu, heap, cpu-16k) gzipped, as
// recorded.
func readProfile(t testing.TB, name string) []byte {
	t.Helper()
	p, ok := corpus.Get(name)
	if !ok {
		t.Fatalf("no corpus profile %q (have %s)", name, corpus.Names())
	}
	return p.Gzipped
}

// recentProfile returns a corpus profile gzipped and recorded at now, so the
// ingestion window accepts it; only time_nanos differs from what
// runtime/pprof wrote.
func recentProfile(t testing.TB, name string, now time.Time) []byte {
	t.Helper()
	p, ok := corpus.Get(name)
	if !ok {
		t.Fatalf("no corpus profile %q (have %s)", name, corpus.Names())
	}
	p, err := p.At(now)
	if err != nil {
		t.Fatal(err)
	}
	return p.Gzipped
}

func pushOne(labels []*typesv1.LabelPair, raw []byte) *pushv1.PushRequest {
	return &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{Labels: labels, Samples: []*pushv1.RawSample{{RawProfile: raw}}}}}
}

func cpuLabels() []*typesv1.LabelPair {
	return []*typesv1.LabelPair{{Name: "service_name", Value: "svc"}, {Name: "__name__", Value: "process_cpu"}}
}

// totals sums each sample type over the samples keep accepts.
func totals(p *profile.Profile, keep func(*profile.Sample) bool) []int64 {
	t := make([]int64, len(p.SampleType))
	for _, s := range p.Sample {
		if keep != nil && !keep(s) {
			continue
		}
		for i, v := range s.Value {
			t[i] += v
		}
	}
	return t
}

// TestRealProfilesKeepTotals: every outgoing profile parses and passes
// CheckValid, and per sample type its total equals the input's total minus
// the samples the rules remove (negative or all-zero ones).
func TestRealProfilesKeepTotals(t *testing.T) {
	now := time.Now()
	for _, cp := range corpus.All() {
		name := cp.Name
		t.Run(name, func(t *testing.T) {
			raw := recentProfile(t, name, now)
			in, _ := profile.ParseData(raw)
			// Make the rules bite: a zero sample, a negative one and a duplicate.
			in.Sample = append(in.Sample,
				&profile.Sample{Location: in.Sample[0].Location, Value: make([]int64, len(in.SampleType))},
				&profile.Sample{Location: in.Sample[1].Location, Value: neg(len(in.SampleType))},
				&profile.Sample{Location: in.Sample[2].Location, Value: in.Sample[2].Value, Label: in.Sample[2].Label, NumLabel: in.Sample[2].NumLabel, NumUnit: in.Sample[2].NumUnit},
			)
			var b bytes.Buffer
			if err := in.Write(&b); err != nil {
				t.Fatal(err)
			}
			want := totals(in, func(s *profile.Sample) bool {
				pos := false
				for _, v := range s.Value {
					if v < 0 {
						return false
					}
					pos = pos || v > 0
				}
				return pos
			})
			rec := &recorder{}
			l := defaultLimits()
			l.MaxProfileStacktraceSamples = 17000
			d := newTestDistributor(t, l, rec)
			if err := d.Push(context.Background(), "t1", pushOne(cpuLabels(), b.Bytes())); err != nil {
				t.Fatal(err)
			}
			if len(rec.got) != 1 {
				t.Fatalf("sent %d", len(rec.got))
			}
			out := pprofcheck.Parse(t, rec.got[0].Pprof)
			got := totals(out, nil)
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("%s total %d, want %d", out.SampleType[i].Type, got[i], want[i])
				}
			}
			if len(out.Sample) >= len(in.Sample) {
				t.Errorf("%d samples out of %d in: zero/negative/duplicate not removed", len(out.Sample), len(in.Sample))
			}
		})
	}
}

// neg is a sample value with one negative entry and positive others: the
// whole sample must go.
func neg(n int) []int64 {
	v := make([]int64, n)
	for i := range v {
		v[i] = 7
	}
	v[0] = -1
	return v
}

// TestUnchangedProfileIsForwarded: a profile the rules leave alone (one
// service, clean, addresses already clear) goes out as the inflated bytes.
func TestUnchangedProfileIsForwarded(t *testing.T) {
	now := time.Now()
	p := &profilev1.Profile{
		SampleType:  []*profilev1.ValueType{{Type: 1, Unit: 2}},
		Sample:      []*profilev1.Sample{{LocationId: []uint64{1}, Value: []int64{5}}},
		Mapping:     []*profilev1.Mapping{{Id: 1, HasFunctions: true}},
		Location:    []*profilev1.Location{{Id: 1, MappingId: 1, Line: []*profilev1.Line{{FunctionId: 1}}}},
		Function:    []*profilev1.Function{{Id: 1, Name: 3}},
		StringTable: []string{"", "cpu", "nanoseconds", "main"},
		TimeNanos:   now.UnixNano(),
	}
	raw, _ := p.MarshalVT()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()

	rec := &recorder{}
	d := newTestDistributor(t, defaultLimits(), rec)
	if err := d.Push(context.Background(), "t1", pushOne(cpuLabels(), gz.Bytes())); err != nil {
		t.Fatal(err)
	}
	if len(rec.got) != 1 || !bytes.Equal(rec.got[0].Pprof, raw) {
		t.Fatalf("the unchanged profile was not forwarded byte for byte")
	}
	// Not gzipped: the sender gets the request's own bytes, not a re-encoding.
	alias := &aliasSender{want: raw}
	d.sender = alias
	if err := d.Push(context.Background(), "t1", pushOne(cpuLabels(), raw)); err != nil {
		t.Fatal(err)
	}
	if !alias.aliased {
		t.Fatal("the unchanged profile was re-encoded")
	}
	d.sender = rec
	// A duplicate sample makes it change: then it is re-encoded.
	p.Sample = append(p.Sample, &profilev1.Sample{LocationId: []uint64{1}, Value: []int64{7}})
	raw2, _ := p.MarshalVT()
	rec.got = nil
	if err := d.Push(context.Background(), "t1", pushOne(cpuLabels(), raw2)); err != nil {
		t.Fatal(err)
	}
	out := pprofcheck.Parse(t, rec.got[0].Pprof)
	if len(out.Sample) != 1 || out.Sample[0].Value[0] != 12 {
		t.Fatalf("duplicates not summed: %v", observed.Samples(out))
	}
}

// TestStatusCodes covers the rows of docs/compatibility.md#status-codes this
// layer decides.
func TestStatusCodes(t *testing.T) {
	now := time.Now()
	good := recentProfile(t, "cpu", now)
	limits := func(f func(*config.Limits)) *config.Limits {
		l := defaultLimits()
		f(l)
		return l
	}
	bomb := func() []byte { // 16 MiB of zeros, ~16 KiB gzipped
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(make([]byte, 16<<20))
		zw.Close()
		return b.Bytes()
	}()
	tests := []struct {
		name   string
		limits *config.Limits
		req    *pushv1.PushRequest
		sender Sender
		code   connect.Code
		grpc   codes.Code // when the Sender's error must come back unchanged
		msg    string
	}{
		{name: "no samples", limits: defaultLimits(), req: &pushv1.PushRequest{}, code: connect.CodeInvalidArgument, msg: "no profiles received"},
		{name: "unparsable pprof", limits: defaultLimits(), req: pushOne(cpuLabels(), []byte("not a profile")), code: connect.CodeInvalidArgument},
		{name: "rate limited", limits: limits(func(l *config.Limits) { l.IngestionBurstSizeMB = 0.001 }), req: pushOne(cpuLabels(), good), code: connect.CodeResourceExhausted, msg: "push rate limit (4.0 MiB) exceeded while adding"},
		{name: "profile too large", limits: limits(func(l *config.Limits) { l.MaxProfileSizeBytes = 1000 }), req: pushOne(cpuLabels(), good), code: connect.CodeInvalidArgument, msg: "uncompressed profile payload size exceeds limit of 1.0 kB"},
		{name: "decompression bomb", limits: defaultLimits(), req: pushOne(cpuLabels(), bomb), code: connect.CodeInvalidArgument, msg: "uncompressed profile payload size exceeds limit of 4.2 MB"},
		{name: "request too large", limits: limits(func(l *config.Limits) { l.IngestionBodyLimitMB = 0.001 }), req: pushOne(cpuLabels(), good), code: connect.CodeInvalidArgument, msg: "uncompressed batched profile payload size exceeds limit of 1.0 kB"},
		{name: "too many samples", limits: limits(func(l *config.Limits) { l.MaxProfileStacktraceSamples = 2 }), req: pushOne(cpuLabels(), good), code: connect.CodeInvalidArgument, msg: "exceeds the samples count limit (max_profile_stacktrace_samples"},
		{name: "writer unavailable", limits: defaultLimits(), req: pushOne(cpuLabels(), good), sender: &recorder{fail: status.Error(codes.Unavailable, "service is unavailable")}, grpc: codes.Unavailable},
		{name: "ok", limits: defaultLimits(), req: pushOne(cpuLabels(), good)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.sender
			if s == nil {
				s = &recorder{}
			}
			d := newTestDistributor(t, tt.limits, s)
			err := d.Push(context.Background(), "t1", tt.req)
			switch {
			case tt.grpc != codes.OK:
				if status.Code(err) != tt.grpc {
					t.Fatalf("err %v, want gRPC %s unchanged", err, tt.grpc)
				}
			case tt.code == 0:
				if err != nil {
					t.Fatalf("err %v", err)
				}
			default:
				var ce *connect.Error
				if !errors.As(err, &ce) || ce.Code() != tt.code {
					t.Fatalf("err %v, want %s", err, tt.code)
				}
				if !bytes.Contains([]byte(ce.Message()), []byte(tt.msg)) {
					t.Errorf("message %q lacks %q", ce.Message(), tt.msg)
				}
			}
		})
	}
}

// TestInflightBudget: past the process budget Push refuses with
// ResourceExhausted, and the budget is back to zero when requests end.
func TestInflightBudget(t *testing.T) {
	now := time.Now()
	good := recentProfile(t, "cpu-16k", now)
	l := defaultLimits()
	l.IngestionBurstSizeMB = 100
	small, err := New(Config{MaxInflightBytes: 64 << 10}, staticLimits{l}, &recorder{}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = small.Push(context.Background(), "t1", pushOne(cpuLabels(), good))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted ||
		!strings.Contains(ce.Message(), "holding its limit of 64 KiB of profiles in flight") {
		t.Fatalf("err %v, want resource_exhausted with the limit", err)
	}
	if c := small.Budget().InUse(); c != 0 {
		t.Fatalf("in-flight bytes %d after the request ended", c)
	}
	large, err := New(Config{Budget: inflight.New(64 << 20)}, staticLimits{l}, &recorder{}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := large.Push(context.Background(), "t1", pushOne(cpuLabels(), good)); err != nil {
		t.Fatal(err)
	}
	if c := large.Budget().InUse(); c != 0 {
		t.Fatalf("in-flight bytes %d after the request ended", c)
	}
}

// A profile over max_profile_size_bytes fails the request, but the other
// profiles of the request are still processed and sent (Pyroscope does the same).
func TestOversizedProfileDoesNotStopTheOthers(t *testing.T) {
	now := time.Now()
	big := recentProfile(t, "cpu-16k", now) // ~980 KB inflated
	small := recentProfile(t, "cpu", now)   // ~42 KB inflated
	l := defaultLimits()
	l.MaxProfileSizeBytes = 100000
	rec := &recorder{}
	d := newTestDistributor(t, l, rec)
	err := d.Push(context.Background(), "t1", &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels:  cpuLabels(),
		Samples: []*pushv1.RawSample{{RawProfile: big}, {RawProfile: small}},
	}}})
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || ce.Message() != "uncompressed profile payload size exceeds limit of 100 kB" {
		t.Fatalf("err %v", err)
	}
	if len(rec.got) != 1 {
		t.Fatalf("sent %d profiles, want the small one", len(rec.got))
	}
}

// A __name__ that is not UTF-8 is refused as invalid (400) like any bad
// label; the metrics recorded before validation must not panic on it.
func TestInvalidUTF8NameIsRefused(t *testing.T) {
	d := newTestDistributor(t, defaultLimits(), &recorder{})
	labels := []*typesv1.LabelPair{{Name: "__name__", Value: "cpu\xff"}, {Name: "service_name", Value: "a"}}
	err := d.Push(context.Background(), "t1", pushOne(labels, recentProfile(t, "cpu", time.Now())))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument {
		t.Fatalf("err %v, want invalid_argument", err)
	}
}

// budgetProbe is a Sender that notes what the budget holds while it sends.
type budgetProbe struct {
	d        *Distributor
	held     atomic.Int64
	sentSize atomic.Int64
}

func (b *budgetProbe) Send(_ context.Context, p *Profile) error {
	b.held.Store(b.d.Budget().InUse())
	b.sentSize.Store(int64(len(p.Pprof)))
	return nil
}

// While a re-encoded profile is being sent, the budget holds the encoded
// bytes and gRPC's copy of the request on top of the inflated and decoded
// profile; a budget short of that refuses without sending, and every charge
// is released when Push returns.
func TestInflightBudgetChargesEncodedProfile(t *testing.T) {
	now := time.Now()
	good := recentProfile(t, "cpu-16k", now)
	inflated := len(corpusRaw(t, "cpu-16k"))
	l := defaultLimits()
	l.IngestionBurstSizeMB = 100
	probe := &budgetProbe{}
	d, err := New(Config{MaxInflightBytes: 1 << 30}, staticLimits{l}, probe, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	probe.d = d
	if err := d.Push(context.Background(), "t1", pushOne(cpuLabels(), good)); err != nil {
		t.Fatal(err)
	}
	held, sent := probe.held.Load(), probe.sentSize.Load()
	if sent == 0 {
		t.Fatal("nothing sent")
	}
	least := int64((decodedFactor+1)*inflated) + 2*sent
	if held < least {
		t.Fatalf("budget held %d bytes while sending, want at least %d (inflated %d, sent %d)", held, least, inflated, sent)
	}
	if c := d.Budget().InUse(); c != 0 {
		t.Fatalf("in-flight bytes %d after the request ended", c)
	}
	// Short of that (how much the inflate buffers take depends on the pool,
	// so the refusal may come before or at the send): refused, nothing sent.
	d, err = New(Config{Budget: inflight.New(least - 1)}, staticLimits{l}, probe, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	probe.d = d
	probe.sentSize.Store(0)
	err = d.Push(context.Background(), "t1", pushOne(cpuLabels(), good))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted {
		t.Fatalf("err %v, want resource_exhausted", err)
	}
	if probe.sentSize.Load() != 0 {
		t.Fatal("sent although the budget was short")
	}
	if c := d.Budget().InUse(); c != 0 {
		t.Fatalf("in-flight bytes %d after the refused request", c)
	}
}

func corpusRaw(t *testing.T, name string) []byte {
	t.Helper()
	p, ok := corpus.Get(name)
	if !ok {
		t.Fatalf("no corpus profile %q", name)
	}
	return p.Raw()
}
