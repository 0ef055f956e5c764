package distributor

import (
	"context"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/test/corpus"
	"github.com/pyrodist/pyrodist/test/testutil/hostile"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

// FuzzPush runs arbitrary series labels and profile bytes through the whole
// pipeline: no panic, every error is a client code or the sender's, and
// every profile that reaches the sender parses with google/pprof.
func FuzzPush(f *testing.F) {
	now := time.Now()
	for _, name := range []string{"cpu", "heap"} {
		p, _ := corpus.Get(name)
		p, err := p.At(now)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("process_cpu", "svc", "pod", "a", p.Gzipped)
	}
	f.Add("cpu\xff", "svc", "k", "v", []byte("not a profile"))
	f.Add("", "", "", "", []byte{0x1f, 0x8b})
	f.Add("process_cpu", "svc", "k", "v", hostile.Gzip(hostile.EmptySamples(20_000)))
	l := defaultLimits()
	l.RejectOlderThan, l.RejectNewerThan = 0, 0
	l.MaxProfileSizeBytes = 1 << 20
	f.Fuzz(func(t *testing.T, name, service, key, value string, raw []byte) {
		rec := &recorder{}
		d := newTestDistributor(t, l, rec)
		labels := []*typesv1.LabelPair{{Name: "__name__", Value: name}, {Name: "service_name", Value: service}, {Name: key, Value: value}}
		err := d.Push(context.Background(), "t1", &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
			Labels: labels, Samples: []*pushv1.RawSample{{RawProfile: raw}, {RawProfile: raw}},
		}}})
		var ce *connect.Error
		if err != nil && (!errors.As(err, &ce) || (ce.Code() != connect.CodeInvalidArgument && ce.Code() != connect.CodeResourceExhausted)) {
			t.Fatalf("err %v, want invalid_argument or resource_exhausted", err)
		}
		for _, p := range rec.got {
			pprofcheck.Parse(t, p.Pprof)
		}
	})
}
