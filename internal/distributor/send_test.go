package distributor

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/metriclabel"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

// blockingSender fails the profile of one service and blocks the others
// until their context is cancelled.
type blockingSender struct {
	failService string
	cancelled   atomic.Int32
}

func (s *blockingSender) Send(ctx context.Context, p *Profile) error {
	if p.Service == s.failService {
		return errors.New("writer down")
	}
	<-ctx.Done()
	s.cancelled.Add(1)
	return ctx.Err()
}

func TestSendFirstErrorCancelsTheRest(t *testing.T) {
	s := &blockingSender{failService: "b"}
	d := newTestDistributor(t, defaultLimits(), s)
	err := d.send(context.Background(), []*Profile{{Service: "a"}, {Service: "b"}, {Service: "c"}})
	if err == nil || err.Error() != "writer down" {
		t.Fatalf("err %v, want the first error", err)
	}
	if s.cancelled.Load() != 2 {
		t.Fatalf("%d sends cancelled, want 2", s.cancelled.Load())
	}
}

func TestPushManySeries(t *testing.T) {
	now := time.Now()
	raw := recentProfile(t, "heap", now)
	var series []*pushv1.RawProfileSeries
	for _, svc := range []string{"a", "b", "c", "d"} {
		series = append(series, &pushv1.RawProfileSeries{
			Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "memory"}, {Name: "service_name", Value: svc}},
			Samples: []*pushv1.RawSample{{RawProfile: raw}, {RawProfile: raw}},
		})
	}
	rec := &recorder{}
	l := defaultLimits()
	l.PushMaxConcurrency = 2
	d := newTestDistributor(t, l, rec)
	if err := d.Push(context.Background(), "t1", &pushv1.PushRequest{Series: series}); err != nil {
		t.Fatal(err)
	}
	if len(rec.got) != 8 {
		t.Fatalf("sent %d profiles, want 8", len(rec.got))
	}
	ids := map[[16]byte]bool{}
	for _, p := range rec.got {
		pprofcheck.Parse(t, p.Pprof)
		if ids[p.ID] || p.ID[6]>>4 != 4 {
			t.Fatalf("profile id %x not a fresh UUID v4", p.ID)
		}
		ids[p.ID] = true
	}
	if c := d.Budget().InUse(); c != 0 {
		t.Fatalf("in-flight bytes %d after the request", c)
	}
}

func TestDiscardMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	d, err := New(Config{MaxInflightBytes: 1 << 30}, staticLimits{defaultLimits()}, &recorder{}, nil, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	dup := []*typesv1.LabelPair{{Name: "__name__", Value: "cpu"}, {Name: "service_name", Value: "s"}, {Name: "pod", Value: "a"}, {Name: "pod", Value: "b"}}
	raw := recentProfile(t, "cpu", time.Now())
	if err := d.Push(context.Background(), "t1", pushOne(dup, raw)); err == nil {
		t.Fatal("duplicate labels accepted")
	}
	if err := d.Push(context.Background(), "t1", pushOne(cpuLabels(), []byte("junk"))); err == nil {
		t.Fatal("junk accepted")
	}
	if err := d.Push(context.Background(), "t1", pushOne(cpuLabels(), raw)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetName() == "pyrodist_distributor_processing_duration_seconds" {
			// Only the profile that reached a writer was timed.
			if h := mf.GetMetric()[0].GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() <= 0 {
				t.Errorf("processing histogram: %d observations, sum %v; want 1, > 0", h.GetSampleCount(), h.GetSampleSum())
			}
		}
		if mf.GetName() != "pyroscope_discarded_samples_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := ""
			for _, lp := range m.GetLabel() {
				key += lp.GetName() + "=" + lp.GetValue() + ","
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	if got["reason=duplicate_label_names,tenant=t1,"] != 1 || got["reason=malformed_profile,tenant=t1,"] != 1 || len(got) != 2 {
		t.Errorf("discarded profiles %v", got)
	}
	for _, name := range []string{"pyroscope_distributor_received_compressed_bytes", "pyroscope_distributor_received_decompressed_bytes_total",
		"pyroscope_distributor_received_samples", "pyroscope_discarded_bytes_total", "pyrodist_distributor_inflight_bytes",
		"pyrodist_distributor_processing_duration_seconds"} {
		if !names[name] {
			t.Errorf("metric %s missing", name)
		}
	}
}

// The tenant and type labels, which clients choose, are capped: tenants
// and names seen only before validation take half of the room, validated
// ones the rest, and the others are recorded as metriclabel.Other.
func TestMetricLabelsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	d, err := New(Config{MaxInflightBytes: 1 << 30, MaxMetricTenants: 4, MaxMetricProfileNames: 2},
		staticLimits{defaultLimits()}, &recorder{}, nil, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := recentProfile(t, "cpu", time.Now())
	// Twice each: a value admitted once its profile passed validation is
	// used from then on.
	for i := range 20 {
		labels := []*typesv1.LabelPair{{Name: "__name__", Value: fmt.Sprintf("name%d", i/2)}, {Name: "service_name", Value: "svc"}}
		if err := d.Push(context.Background(), fmt.Sprintf("t%d", i/2), pushOne(labels, raw)); err != nil {
			t.Fatal(err)
		}
	}
	// Invalid values are folded whatever the room.
	if err := d.Push(context.Background(), "t0", pushOne([]*typesv1.LabelPair{{Name: "__name__", Value: "no spaces"}, {Name: "service_name", Value: "svc"}}, raw)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]map[string]bool{"tenant": {}, "type": {}}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if values[l.GetName()] != nil {
					values[l.GetName()][l.GetValue()] = true
				}
			}
		}
	}
	// t0 and t1 are admitted before validation, t2 and t3 after it.
	want := map[string][]string{"tenant": {"t0", "t1", "t2", "t3", metriclabel.Other}, "type": {"name0", "name1", metriclabel.Other}}
	for label, vs := range want {
		for _, v := range vs {
			if !values[label][v] {
				t.Errorf("no %s=%q series", label, v)
			}
		}
		if len(values[label]) != len(vs) {
			t.Errorf("%s values %v, want %v", label, values[label], vs)
		}
	}
}

type panickingSender struct{}

func (panickingSender) Send(context.Context, *Profile) error { panic("sender bug") }

// A panic in a goroutine Push starts (one per service, one per raw profile)
// is an Internal error for that request, not the end of the process.
func TestPanicInSendIsAnError(t *testing.T) {
	now := time.Now()
	cpu := recentProfile(t, "cpu", now)
	for _, tc := range []struct {
		name string
		req  *pushv1.PushRequest
	}{
		{"one profile", pushOne(cpuLabels(), cpu)},
		{"two profiles", &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
			Labels: cpuLabels(), Samples: []*pushv1.RawSample{{RawProfile: cpu}, {RawProfile: cpu}},
		}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDistributor(t, defaultLimits(), panickingSender{})
			var ce *connect.Error
			err := func() (err error) {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("panic reached the caller: %v", r)
					}
				}()
				return d.Push(context.Background(), "t1", tc.req)
			}()
			if !errors.As(err, &ce) || ce.Code() != connect.CodeInternal {
				t.Fatalf("err %v, want internal", err)
			}
		})
	}
}
