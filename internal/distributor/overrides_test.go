package distributor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/overrides"
)

// parsedLimits serves an overrides file's tenants over the flag defaults.
type parsedLimits struct {
	tenants  map[string]*config.Limits
	defaults config.Limits
}

func (p parsedLimits) ForTenant(t string) *config.Limits {
	if l, ok := p.tenants[t]; ok {
		return l
	}
	return &p.defaults
}

// concurrencyProbe records the most Sends in flight at once; with wait > 0
// a Send holds until that many are in flight (or the test gives up).
type concurrencyProbe struct {
	mu        sync.Mutex
	cur, max  int
	wait      int
	reached   chan struct{}
	recording recorder
}

func (c *concurrencyProbe) Send(ctx context.Context, p *Profile) error {
	c.mu.Lock()
	c.cur++
	c.max = max(c.max, c.cur)
	if c.wait > 0 && c.cur == c.wait {
		close(c.reached)
	}
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.cur--; c.mu.Unlock() }()
	if c.wait > 0 {
		select {
		case <-c.reached:
		case <-time.After(10 * time.Second):
			return errors.New("the other profiles of the request were never sent alongside")
		}
	}
	return c.recording.Send(ctx, p)
}

// TestPerTenantOverrides: each key the distributor acts on, set for one
// tenant in an overrides file, changes that tenant's pipeline and no other.
func TestPerTenantOverrides(t *testing.T) {
	tenants, _, err := overrides.Parse([]byte(`
overrides:
  small-body:
    ingestion_body_limit_mb: 0.0001
  sanitized:
    disable_label_sanitization: false
  recent-only:
    reject_older_than: 1m
  no-future:
    reject_newer_than: 1m
  serial:
    push_max_concurrency: 1
`), config.Defaults().Limits)
	if err != nil {
		t.Fatal(err)
	}
	lims := parsedLimits{tenants: tenants, defaults: config.Defaults().Limits}
	now := time.Now()
	push := func(s Sender, tenant string, req *pushv1.PushRequest) error {
		d, err := New(Config{MaxInflightBytes: 1 << 30}, lims, s, func() int { return 1 }, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		d.now = func() time.Time { return now }
		return d.Push(context.Background(), tenant, req)
	}
	code := func(err error) connect.Code {
		var ce *connect.Error
		if errors.As(err, &ce) {
			return ce.Code()
		}
		return 0
	}

	t.Run("ingestion_body_limit_mb", func(t *testing.T) {
		req := pushOne(memLabels(), memProfile(now)) // ~200 bytes, over 0.0001 MiB (104 bytes)
		if err := push(&recorder{}, "small-body", req); code(err) != connect.CodeInvalidArgument {
			t.Errorf("small-body: %v", err)
		}
		if err := push(&recorder{}, "other", req); err != nil {
			t.Errorf("other tenant: %v", err)
		}
	})
	t.Run("disable_label_sanitization", func(t *testing.T) {
		for tenant, want := range map[string]string{"sanitized": "k8s_pod", "other": "k8s.pod"} {
			rec := &recorder{}
			if err := push(rec, tenant, pushOne(memLabels("k8s.pod", "p"), memProfile(now))); err != nil {
				t.Fatalf("%s: %v", tenant, err)
			}
			if got := labelMap(rec.got[0].Labels); got[want] != "p" {
				t.Errorf("%s: labels %v, want %s", tenant, got, want)
			}
		}
	})
	t.Run("reject_older_than", func(t *testing.T) {
		old := pushOne(memLabels(), memProfile(now.Add(-10*time.Minute)))
		if err := push(&recorder{}, "recent-only", old); code(err) != connect.CodeInvalidArgument {
			t.Errorf("recent-only: %v", err)
		}
		if err := push(&recorder{}, "other", old); err != nil {
			t.Errorf("other tenant (1h window): %v", err)
		}
	})
	t.Run("reject_newer_than", func(t *testing.T) {
		future := pushOne(memLabels(), memProfile(now.Add(5*time.Minute)))
		if err := push(&recorder{}, "no-future", future); code(err) != connect.CodeInvalidArgument {
			t.Errorf("no-future: %v", err)
		}
		if err := push(&recorder{}, "other", future); err != nil {
			t.Errorf("other tenant (10m window): %v", err)
		}
	})
	t.Run("push_max_concurrency", func(t *testing.T) {
		req := &pushv1.PushRequest{}
		for _, svc := range []string{"a", "b", "c"} {
			req.Series = append(req.Series, &pushv1.RawProfileSeries{
				Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "memory"}, {Name: "service_name", Value: svc}},
				Samples: []*pushv1.RawSample{{RawProfile: memProfile(now)}},
			})
		}
		serial := &concurrencyProbe{}
		if err := push(serial, "serial", req); err != nil || serial.max != 1 || len(serial.recording.got) != 3 {
			t.Errorf("serial: err %v, %d at once, %d sent", err, serial.max, len(serial.recording.got))
		}
		// The default (256) sends the three profiles at once: each Send
		// waits for the others.
		other := &concurrencyProbe{wait: 3, reached: make(chan struct{})}
		if err := push(other, "other", req); err != nil || other.max != 3 {
			t.Errorf("other tenant: err %v, %d at once", err, other.max)
		}
	})
}
