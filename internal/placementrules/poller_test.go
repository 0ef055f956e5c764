package placementrules

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/test/testutil/poll"
	"github.com/pyrodist/pyrodist/test/testutil/rulesobject"
)

// flakyBucket fails reads while err is set.
type flakyBucket struct {
	objstore.Bucket
	err atomic.Pointer[error]
}

func (b *flakyBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if e := b.err.Load(); e != nil {
		return nil, *e
	}
	return b.Bucket.Get(ctx, name)
}

func (b *flakyBucket) fail(err error) {
	if err == nil {
		b.err.Store(nil)
		return
	}
	b.err.Store(&err)
}

func upload(t *testing.T, b objstore.Bucket, data []byte) {
	t.Helper()
	if err := b.Upload(context.Background(), ObjectPath, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

func hot(shards uint64) rulesobject.Dataset {
	return rulesobject.Dataset{Tenant: "t", Name: "hot", DatasetShards: shards}
}

// shards is the hot dataset's rule; 0 when the rules in use have none.
func shards(p *Poller) int {
	pol, ok := p.Rules().Lookup("t", "hot")
	if !ok {
		return 0
	}
	return pol.DatasetShards
}

// One poll at a time, as the timer service makes them, with the poller's
// answer to each: what the rules in use become and what the metrics say.
func TestPollerKeepsLastGoodRules(t *testing.T) {
	bucket := &flakyBucket{Bucket: objstore.NewInMemBucket()}
	reg := prometheus.NewPedanticRegistry()
	p, err := New(bucket, time.Minute, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1800000000, 0)
	p.now = func() time.Time { return now }
	ctx := context.Background()
	created := func() float64 { return promtest.ToFloat64(p.createdAt) }

	// No object: no rules, created "now", as Pyroscope's agent does.
	if err := p.load(ctx); err != nil || p.Rules() == nil || p.Rules().Len() != 0 || created() != 1800000000 {
		t.Fatalf("missing object: err %v, rules %v, created %v", err, p.Rules(), created())
	}

	upload(t, bucket, rulesobject.Encode(now.Add(time.Second), hot(4)))
	now = now.Add(3 * time.Second)
	if err := p.load(ctx); err != nil || shards(p) != 4 {
		t.Fatalf("new object: err %v, hot dataset on %d shards", err, shards(p))
	}
	if lag, ds := promtest.ToFloat64(p.lag), promtest.ToFloat64(p.datasets); lag != 2 || ds != 1 || created() != 1800000001 {
		t.Fatalf("metrics: lag %v, datasets %v, created %v", lag, ds, created())
	}

	// A failed read and an object that does not decode keep the rules.
	bucket.fail(errors.New("bucket down"))
	if err := p.load(ctx); err == nil || shards(p) != 4 {
		t.Fatalf("failed read: err %v, hot dataset on %d shards", err, shards(p))
	}
	bucket.fail(nil)
	upload(t, bucket, []byte{0x0a, 0x05, 0x0a})
	if err := p.load(ctx); err == nil || shards(p) != 4 {
		t.Fatalf("corrupt object: err %v, hot dataset on %d shards", err, shards(p))
	}
	if n := promtest.ToFloat64(p.readErrors); n != 2 {
		t.Fatalf("read errors %v, want 2", n)
	}

	// An object older than the rules in use is ignored; a newer one is taken.
	upload(t, bucket, rulesobject.Encode(now.Add(-time.Hour), hot(9)))
	if err := p.load(ctx); err != nil || shards(p) != 4 || created() != 1800000001 {
		t.Fatalf("older object: err %v, hot dataset on %d shards, created %v", err, shards(p), created())
	}
	upload(t, bucket, rulesobject.Encode(now, hot(16)))
	if err := p.load(ctx); err != nil || shards(p) != 16 {
		t.Fatalf("newer object: err %v, hot dataset on %d shards", err, shards(p))
	}

	// The object removed: no rules again.
	if err := bucket.Delete(ctx, ObjectPath); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if err := p.load(ctx); err != nil || shards(p) != 0 {
		t.Fatalf("removed object: err %v, hot dataset on %d shards", err, shards(p))
	}
	if n := promtest.ToFloat64(p.readErrors); n != 2 {
		t.Fatalf("read errors %v, want still 2", n)
	}
}

func TestPollerRefusesOversizedObject(t *testing.T) {
	bucket := objstore.NewInMemBucket()
	p, err := New(bucket, time.Minute, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.maxBytes = 1024
	upload(t, bucket, rulesobject.Encode(time.Now(), hot(2)))
	if err := p.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A valid object (unknown field 15 carries the padding) past the cap.
	big := append(rulesobject.Encode(time.Now(), hot(3)), 0x7a, 0x80, 0x08) // 1024 bytes follow
	big = append(big, make([]byte, 1024)...)
	upload(t, bucket, big)
	if err := p.load(context.Background()); err == nil || !strings.Contains(err.Error(), "larger than") || shards(p) != 2 {
		t.Fatalf("oversized object: err %v, hot dataset on %d shards", err, shards(p))
	}
}

// Unlike Pyroscope's agent, a failed first read does not stop the start:
// the distributor starts without rules and takes them once the bucket
// answers.
func TestPollerStartsWhileBucketFails(t *testing.T) {
	bucket := &flakyBucket{Bucket: objstore.NewInMemBucket()}
	bucket.fail(errors.New("access denied"))
	upload(t, bucket, rulesobject.Encode(time.Now(), hot(4)))
	const interval = 20 * time.Millisecond
	p, err := New(bucket, interval, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := services.StartAndAwaitRunning(context.Background(), p); err != nil {
		t.Fatalf("start with a failing bucket: %v", err)
	}
	defer services.StopAndAwaitTerminated(context.Background(), p) //nolint:errcheck
	if p.Rules() != nil || promtest.ToFloat64(p.readErrors) < 1 {
		t.Fatalf("rules %v after a failed first read, %v read errors", p.Rules(), promtest.ToFloat64(p.readErrors))
	}
	bucket.fail(nil)
	err = poll.Until(context.Background(), 10*time.Second, time.Second, interval, func(context.Context) error {
		if shards(p) != 4 {
			return errors.New("rules not read yet")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPollerWithoutBucket(t *testing.T) {
	// Without a bucket there are never rules.
	idle, err := New(nil, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := services.StartAndAwaitRunning(context.Background(), idle); err != nil {
		t.Fatal(err)
	}
	defer services.StopAndAwaitTerminated(context.Background(), idle) //nolint:errcheck
	if idle.Rules() != nil {
		t.Fatal("rules without a bucket")
	}
	if _, err := New(objstore.NewInMemBucket(), 0, nil, nil); err == nil {
		t.Fatal("a zero interval was accepted")
	}
}

// A rules object written to a filesystem bucket reaches the poller within
// one poll interval of the running service, and the placement it gives
// moves the hot dataset to more shards.
func TestPollerPicksUpNewObject(t *testing.T) {
	bucket, err := filesystem.NewBucket(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const interval = 50 * time.Millisecond
	p, err := New(bucket, interval, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := services.StartAndAwaitRunning(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	defer services.StopAndAwaitTerminated(context.Background(), p) //nolint:errcheck
	if shards(p) != 0 {
		t.Fatal("rules before any object was written")
	}
	upload(t, bucket, rulesobject.Encode(time.Now(), hot(8)))
	err = poll.Until(context.Background(), 10*time.Second, time.Second, interval/5, func(context.Context) error {
		if shards(p) != 8 {
			return errors.New("rules not picked up yet")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Rules().Policy("t", "hot", nil); got != (placement.Policy{DatasetShards: 8}) {
		t.Fatalf("policy %+v", got)
	}
}
