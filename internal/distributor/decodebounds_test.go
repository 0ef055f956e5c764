package distributor

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"connectrpc.com/connect"
	dto "github.com/prometheus/client_model/go"

	"github.com/pyrodist/pyrodist/internal/validation"
	"github.com/pyrodist/pyrodist/test/testutil/hostile"
)

// pushAllocated pushes raw for tenant t1 and returns the error and the bytes
// the push allocated.
func pushAllocated(d *Distributor, raw []byte) (error, uint64) {
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	err := d.Push(context.Background(), "t1", pushOne(cpuLabels(), raw))
	runtime.ReadMemStats(&m1)
	return err, m1.TotalAlloc - m0.TotalAlloc
}

// A 4 KB push of two million empty samples decoded to 300 MB before the
// sample limit refused it: it is refused while decoding, with the same
// answer.
func TestPushRefusesSampleBombWhileDecoding(t *testing.T) {
	raw := hostile.Gzip(hostile.EmptySamples(2_000_000))
	l := defaultLimits()
	l.IngestionRateMB, l.IngestionBurstSizeMB = 100, 100 // 4 MB inflated
	d := newTestDistributor(t, l, &recorder{})
	err, n := pushAllocated(d, raw)
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument ||
		!strings.Contains(err.Error(), "exceeds the samples count limit (max_profile_stacktrace_samples, actual: 2000000, limit: 16000)") {
		t.Fatalf("err %v, want invalid_argument samples_limit", err)
	}
	var m dto.Metric
	if err := d.metrics.discardedProfiles.WithLabelValues(string(validation.SamplesLimit), "t1").Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
		t.Fatalf("discarded profiles (samples_limit) %v (%v), want 1", m.GetCounter().GetValue(), err)
	}
	if n > 32<<20 {
		t.Fatalf("a %d-byte push allocated %d MB", len(raw), n>>20)
	}
	t.Logf("a %d-byte push of 2,000,000 empty samples allocated %d MB", len(raw), n>>20)
}

// A profile within every limit that decodes to twenty times its size is
// charged for what it decodes to: a budget that holds its bytes eight times
// over, as the pipeline charged up front, refuses it instead of letting
// the decode take more.
func TestPushChargesDecodedMemory(t *testing.T) {
	raw := hostile.Gzip(hostile.Locations(4<<20 - 1<<10))
	l := defaultLimits()
	l.IngestionRateMB, l.IngestionBurstSizeMB = 100, 100
	rec := &recorder{}
	const budget = 48 << 20
	d, err := New(Config{MaxInflightBytes: budget}, staticLimits{l}, rec, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err, n := pushAllocated(d, raw)
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted {
		t.Fatalf("err %v, want resource_exhausted", err)
	}
	if len(rec.got) != 0 {
		t.Fatal("a refused profile was sent")
	}
	if n > budget+8<<20 {
		t.Fatalf("a push refused by a %d MB budget allocated %d MB", budget>>20, n>>20)
	}
	if c := d.Budget().InUse(); c != 0 {
		t.Fatalf("in-flight bytes %d after the request", c)
	}
	t.Logf("refused after allocating %d MB", n>>20)

	// With room it passes: nothing in it is invalid.
	d = newTestDistributor(t, l, rec)
	if err, n = pushAllocated(d, raw); err != nil {
		t.Fatal(err)
	}
	t.Logf("with room: %d MB allocated", n>>20)
}
