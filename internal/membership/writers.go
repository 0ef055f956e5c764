package membership

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/kv"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/placement"
)

// ErrNoWriters is Ready's answer while no healthy segment-writer is known.
var ErrNoWriters = errors.New("no healthy segment-writer in the ring")

// WriterRingOptions configure a WriterRing.
type WriterRingOptions struct {
	// HeartbeatTimeout is -segment-writer.ring.heartbeat-timeout: a writer
	// with an older heartbeat is not used.
	HeartbeatTimeout time.Duration
	// OnAddrs, if set, is called (from one goroutine) whenever the set of
	// segment-writer addresses still in the ring changes: every state, fresh
	// heartbeat. The connection pool drops connections to the others.
	OnAddrs    func(addrs []string)
	Logger     log.Logger
	Registerer prometheus.Registerer
}

// WriterRing is the service that keeps the placement view of the
// segment-writer ring. The view is rebuilt whenever the ring key changes or
// a heartbeat goes stale; the request path only loads an atomic pointer.
type WriterRing struct {
	*services.BasicService

	opts    WriterRingOptions
	client  kv.Client
	desc    atomic.Pointer[ring.Desc]
	ring    atomic.Pointer[placement.Ring]
	changed chan struct{}
	// Owned by the running goroutine.
	lastInstances []placement.Instance
	lastAddrs     []string

	instances *prometheus.GaugeVec
	zones     *prometheus.GaugeVec
	rebuilds  prometheus.Counter
	updates   prometheus.Counter
}

// NewWriterRing builds the view over ml's KV; it reads the ring once
// started (after ml).
func NewWriterRing(ml *Memberlist, opts WriterRingOptions) (*WriterRing, error) {
	if opts.HeartbeatTimeout <= 0 {
		return nil, errors.New("membership: segment-writer heartbeat timeout must be > 0")
	}
	opts.Logger = orNop(opts.Logger)
	client, err := ml.Client("segment-writer")
	if err != nil {
		return nil, err
	}
	w := &WriterRing{
		opts:    opts,
		client:  client,
		changed: make(chan struct{}, 1),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pyrodist_segment_writer_ring_instances",
			Help: "Segment-writers in the placement view (healthy: fresh heartbeat and state ACTIVE, LEAVING, PENDING or JOINING), by state.",
		}, []string{"state"}),
		zones: newZoneGauge(),
		rebuilds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pyrodist_segment_writer_ring_rebuilds_total",
			Help: "Placement snapshots built because the set of healthy segment-writers changed.",
		}),
		updates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pyrodist_segment_writer_ring_updates_total",
			Help: "Updates of the segment-writer ring key received over memberlist.",
		}),
	}
	if err := register(opts.Registerer, w.instances, w.zones, w.rebuilds, w.updates); err != nil {
		return nil, err
	}
	w.BasicService = services.NewBasicService(nil, w.running, nil).WithName("segment-writer-ring")
	return w, nil
}

func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("membership: metrics: %w", err)
		}
	}
	return nil
}

func (w *WriterRing) running(ctx context.Context) error {
	watchEnded := make(chan struct{})
	go func() {
		defer close(watchEnded)
		watchKey(ctx, w.client, SegmentWriterRingKey, func(d *ring.Desc) {
			if d != nil {
				w.desc.Store(d)
			}
			w.updates.Inc()
			select {
			case w.changed <- struct{}{}:
			default:
			}
		})
	}()
	t := time.NewTicker(refreshEvery(w.opts.HeartbeatTimeout))
	defer t.Stop()
	for {
		w.refresh(time.Now())
		select {
		case <-ctx.Done():
			<-watchEnded
			return nil
		case <-watchEnded:
			// Only a stopping KV ends the watch early; the Memberlist
			// service reports that. Keep the last view meanwhile.
			watchEnded = nil
		case <-w.changed:
		case <-t.C:
		}
	}
}

func (w *WriterRing) refresh(now time.Time) {
	instances, addrs, byState := Healthy(w.desc.Load(), w.opts.HeartbeatTimeout, now)
	if w.ring.Load() == nil || !slices.Equal(instances, w.lastInstances) {
		w.ring.Store(placement.NewRing(instances))
		w.lastInstances = instances
		w.rebuilds.Inc()
		for _, s := range []placement.State{placement.Active, placement.Leaving, placement.Pending, placement.Joining} {
			w.instances.WithLabelValues(s.String()).Set(float64(byState[s]))
		}
		setZones(w.zones, instances)
		level.Debug(w.opts.Logger).Log("msg", "segment-writer placement view rebuilt", "instances", len(instances))
	}
	if !slices.Equal(addrs, w.lastAddrs) {
		w.lastAddrs = addrs
		if w.opts.OnAddrs != nil {
			w.opts.OnAddrs(slices.Clone(addrs))
		}
	}
}

// Ring is the current placement snapshot (never nil; empty when no writer
// is healthy). Safe for concurrent use without locks.
func (w *WriterRing) Ring() *placement.Ring {
	if r := w.ring.Load(); r != nil {
		return r
	}
	return emptyRing
}

var emptyRing = placement.NewRing(nil)

// Ready is nil once at least one healthy segment-writer is in the ring.
func (w *WriterRing) Ready(context.Context) error {
	if w.Ring().Len() == 0 {
		return ErrNoWriters
	}
	return nil
}

// Healthy converts a segment-writer ring to placement instances as
// Pyroscope's distributor reads it: states ACTIVE, LEAVING, PENDING and
// JOINING with a heartbeat no older than timeout, sorted by ID.
// addrs are the sorted addresses of every instance with a fresh heartbeat,
// whatever its state (the connection pool keeps those).
func Healthy(d *ring.Desc, timeout time.Duration, now time.Time) (instances []placement.Instance, addrs []string, byState map[placement.State]int) {
	byState = map[placement.State]int{}
	if d == nil {
		return nil, nil, byState
	}
	for id, in := range d.Ingesters {
		if !in.IsHeartbeatHealthy(timeout, now) {
			continue
		}
		addrs = append(addrs, in.Addr)
		switch in.State {
		case ring.ACTIVE, ring.LEAVING, ring.PENDING, ring.JOINING:
		default:
			continue
		}
		if in.Id != "" {
			id = in.Id
		}
		st := placement.State(in.State)
		byState[st]++
		instances = append(instances, placement.Instance{
			ID: id, Addr: in.Addr, Zone: in.Zone, State: st, Tokens: len(in.Tokens),
		})
	}
	slices.SortFunc(instances, func(a, b placement.Instance) int {
		if a.ID < b.ID {
			return -1
		} else if a.ID > b.ID {
			return 1
		}
		return 0
	})
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	return instances, addrs, byState
}
