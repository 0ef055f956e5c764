// Package placementrules keeps the distributor's copy of the placement
// rules the metastore writes to the storage bucket, read again every
// interval as Pyroscope's placement agent does
// (pkg/segmentwriter/client/distributor/placement/adaptiveplacement/placement_agent.go
// at 3fe6a45; docs/compatibility.md#placement-rules).
package placementrules

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"

	"github.com/pyrodist/pyrodist/internal/placement/rules"
)

// ObjectPath is where the metastore writes the rules (store.go at 3fe6a45).
const ObjectPath = "adaptive_placement/placement_rules.binpb"

// MaxObjectBytes bounds the memory one read may take. A rule is a few
// dozen bytes, so this holds rules for about a million datasets; a larger
// object is refused and the old rules kept.
const MaxObjectBytes = 64 << 20

// Poller is a service that reads the rules object every interval. Rules
// gives the rules in use to the request path without a lock.
//
// As Pyroscope's agent: a missing object means no rules (every dataset
// gets its tenant's limits); a failed read, or an object that does not
// decode, keeps the rules already held; an object older (by created_at)
// than the rules held is ignored. Unlike it, a failed first read does not
// fail the start: ingestion must not depend on the object storage (which
// may still be connecting, see internal/storage), so the distributor
// starts with its tenants' limits and the next reads try again
// (docs/compatibility.md#deliberate-differences).
type Poller struct {
	services.Service

	bucket   objstore.BucketReader
	interval time.Duration
	logger   log.Logger
	now      func() time.Time
	maxBytes int64 // MaxObjectBytes; smaller in tests

	current atomic.Pointer[rules.Rules]

	lag        prometheus.Gauge
	createdAt  prometheus.Gauge
	datasets   prometheus.Gauge
	readErrors prometheus.Counter
}

// New builds a Poller reading from bucket every interval. A nil bucket (no
// storage configured) gives a Poller that never has rules, as Pyroscope's
// empty store does.
func New(bucket objstore.BucketReader, interval time.Duration, reg prometheus.Registerer, logger log.Logger) (*Poller, error) {
	if bucket != nil && interval <= 0 {
		return nil, fmt.Errorf("placement rules update interval must be positive, got %s", interval)
	}
	if logger == nil {
		logger = log.NewNopLogger()
	}
	p := &Poller{
		bucket:   bucket,
		interval: interval,
		logger:   log.With(logger, "component", "placement-rules"),
		now:      time.Now,
		maxBytes: MaxObjectBytes,
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pyroscope_adaptive_sharding_rules_update_lag_seconds",
			Help: "Seconds between the creation of the placement rules object and its latest read.",
		}),
		createdAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pyrodist_placement_rules_created_timestamp_seconds",
			Help: "Creation time (created_at) of the placement rules in use, their version; 0 while there are none.",
		}),
		datasets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pyrodist_placement_rules_datasets",
			Help: "Datasets that the placement rules in use give a policy.",
		}),
		readErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pyrodist_placement_rules_read_errors_total",
			Help: "Reads of the placement rules object that failed or gave an object that does not decode; the rules in use were kept.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{p.lag, p.createdAt, p.datasets, p.readErrors} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	if bucket == nil {
		p.Service = services.NewIdleService(nil, nil)
	} else {
		p.Service = services.NewTimerService(interval, p.starting, p.iteration, nil)
	}
	return p, nil
}

// Rules is the rules in use; nil before the first read and without a
// bucket, which the rules' methods treat as no rules.
func (p *Poller) Rules() *rules.Rules { return p.current.Load() }

// starting makes the first read; its error is logged and counted by load.
func (p *Poller) starting(ctx context.Context) error {
	_ = p.load(ctx)
	return nil
}

// iteration never fails the service: outdated rules serve better than
// none (placement_agent.go at 3fe6a45).
func (p *Poller) iteration(ctx context.Context) error {
	_ = p.load(ctx)
	return nil
}

func (p *Poller) load(ctx context.Context) error {
	// A read never outlasts the interval (kept within 1-10 s), so a hung
	// bucket neither holds the distributor's start long nor stacks reads.
	ctx, cancel := context.WithTimeout(ctx, min(max(p.interval, time.Second), 10*time.Second))
	defer cancel()
	r, err := p.read(ctx)
	switch {
	case err == nil:
	case p.bucket.IsObjNotFoundErr(err):
		level.Debug(p.logger).Log("msg", "no placement rules object; datasets get their tenant's limits", "path", ObjectPath)
		r = rules.Empty(p.now())
	default:
		p.readErrors.Inc()
		level.Error(p.logger).Log("msg", "reading placement rules failed; keeping the rules in use", "path", ObjectPath, "err", err)
		return err
	}
	p.lag.Set(max(0, p.now().Sub(r.CreatedAt()).Seconds()))
	if cur := p.current.Load(); cur != nil && r.CreatedAt().Before(cur.CreatedAt()) {
		level.Warn(p.logger).Log("msg", "placement rules object is older than the rules in use; ignored",
			"read_created_at", r.CreatedAt(), "in_use_created_at", cur.CreatedAt())
		return nil
	}
	p.current.Store(r)
	p.createdAt.Set(float64(r.CreatedAt().UnixNano()) / 1e9)
	p.datasets.Set(float64(r.Len()))
	return nil
}

// read fetches and decodes the object; the bucket's own error when the
// object is missing.
func (p *Poller) read(ctx context.Context) (*rules.Rules, error) {
	rc, err := p.bucket.Get(ctx, ObjectPath)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, p.maxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > p.maxBytes {
		return nil, fmt.Errorf("placement rules object larger than %d bytes", p.maxBytes)
	}
	return rules.Parse(b)
}
