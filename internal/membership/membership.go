// Package membership joins the memberlist cluster of a Pyroscope v2
// deployment (dskit's memberlist KV over its TCP transport), keeps a
// placement view of the segment-writer ring, and registers this distributor
// in the distributor ring so global rate limits divide by the number of
// healthy distributors, as Pyroscope's own distributors do.
//
// The placement snapshot is rebuilt by a background goroutine whenever the
// ring key changes or a heartbeat goes stale; the request path only loads an
// atomic pointer.
package membership

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/dns"
	"github.com/grafana/dskit/kv"
	"github.com/grafana/dskit/kv/codec"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/netutil"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/placement"
)

// Keys and names as Pyroscope uses them (spec §3.1, §5.5).
const (
	KVPrefix             = "collectors/"
	SegmentWriterRingKey = "segment-writer-ring"
	DistributorRingKey   = "distributor"
	distributorRingName  = "distributor"
	// Pyroscope forgets a distributor after 10 missed heartbeat timeouts.
	autoForgetPeriods = 10
)

// ErrNoWriters is Ready's answer while no healthy segment-writer is known.
var ErrNoWriters = errors.New("no healthy segment-writer in the ring")

// Options configure a Membership.
type Options struct {
	Memberlist config.Memberlist
	// WriterHeartbeatTimeout is -segment-writer.ring.heartbeat-timeout: a
	// writer with an older heartbeat is not used.
	WriterHeartbeatTimeout time.Duration
	// Zone is this distributor's zone, written to its distributor-ring entry.
	Zone string
	// HTTPPort is the port advertised in the distributor ring unless
	// Memberlist.DistributorRing.InstancePort is set.
	HTTPPort int
	// WriterAddrs, if set, is called (from one goroutine) whenever the set of
	// segment-writer addresses still in the ring changes: every state, fresh
	// heartbeat. The connection pool drops connections to the others.
	WriterAddrs func(addrs []string)
	Logger      log.Logger
	Registerer  prometheus.Registerer
}

// Membership is the distributor's view of the cluster.
type Membership struct {
	opts   Options
	logger log.Logger

	kv         *memberlist.KV
	writers    kv.Client
	dists      kv.Client
	lifecycler *ring.BasicLifecycler

	ring          atomic.Pointer[placement.Ring]
	healthyDists  atomic.Int64
	writerDesc    atomic.Pointer[ring.Desc]
	distDesc      atomic.Pointer[ring.Desc]
	changed       chan struct{}
	lastInstances []placement.Instance // owned by the refresh goroutine
	lastAddrs     []string             // owned by the refresh goroutine

	metrics metrics

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex // serialises Start and Stop
	state  int        // 0 new, 1 started, 2 stopped
}

type metrics struct {
	writers       *prometheus.GaugeVec
	ringRebuilds  prometheus.Counter
	distributors  prometheus.Gauge
	writerUpdates prometheus.Counter
}

// New validates the options and builds the memberlist KV; nothing listens
// until Start.
func New(opts Options) (*Membership, error) {
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	if opts.WriterHeartbeatTimeout <= 0 {
		return nil, errors.New("membership: segment-writer heartbeat timeout must be > 0")
	}
	dr := opts.Memberlist.DistributorRing
	if dr.HeartbeatPeriod <= 0 || dr.HeartbeatTimeout <= 0 {
		return nil, errors.New("membership: distributor ring heartbeat period and timeout must be > 0")
	}
	m := &Membership{
		opts:    opts,
		logger:  opts.Logger,
		changed: make(chan struct{}, 1),
	}
	m.healthyDists.Store(1)
	var err error
	if m.metrics, err = newMetrics(opts.Registerer); err != nil {
		return nil, err
	}

	kvCfg, err := KVConfig(opts.Memberlist)
	if err != nil {
		return nil, err
	}
	kvCfg.Codecs = []codec.Codec{ring.GetCodec(), VersionsCodec()}
	m.kv = memberlist.NewKV(kvCfg, opts.Logger, NewDNSProvider(opts.Logger, opts.Registerer), opts.Registerer)

	m.writers, err = m.kvClient("segment-writer")
	if err != nil {
		return nil, err
	}
	m.dists, err = m.kvClient("distributor")
	if err != nil {
		return nil, err
	}

	id := dr.InstanceID
	if id == "" {
		if id, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("membership: distributor instance id: %w", err)
		}
	}
	addr, err := ring.GetInstanceAddr(dr.InstanceAddr, netutil.PrivateNetworkInterfacesWithFallback([]string{"eth0", "en0"}, opts.Logger), opts.Logger, false)
	if err != nil {
		return nil, fmt.Errorf("membership: distributor instance address: %w", err)
	}
	port := dr.InstancePort
	if port == 0 {
		port = opts.HTTPPort
	}
	var delegate ring.BasicLifecyclerDelegate = ring.NewInstanceRegisterDelegate(ring.ACTIVE, 1)
	delegate = ring.NewLeaveOnStoppingDelegate(delegate, opts.Logger)
	delegate = ring.NewAutoForgetDelegate(autoForgetPeriods*dr.HeartbeatTimeout, delegate, opts.Logger)
	m.lifecycler, err = ring.NewBasicLifecycler(ring.BasicLifecyclerConfig{
		ID:               id,
		Addr:             net.JoinHostPort(addr, strconv.Itoa(port)),
		Zone:             opts.Zone,
		HeartbeatPeriod:  dr.HeartbeatPeriod,
		HeartbeatTimeout: dr.HeartbeatTimeout,
		NumTokens:        1,
	}, distributorRingName, DistributorRingKey, m.dists, delegate, opts.Logger, opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("membership: distributor lifecycler: %w", err)
	}
	return m, nil
}

func (m *Membership) kvClient(name string) (kv.Client, error) {
	c, err := kv.NewClient(kv.Config{
		Store:       "memberlist",
		Prefix:      KVPrefix,
		StoreConfig: kv.StoreConfig{MemberlistKV: func() (*memberlist.KV, error) { return m.kv, nil }},
	}, ring.GetCodec(), kv.RegistererWithKVName(m.opts.Registerer, name), m.logger)
	if err != nil {
		return nil, fmt.Errorf("membership: kv client %s: %w", name, err)
	}
	return c, nil
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		writers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pyrodist_segment_writer_ring_instances",
			Help: "Segment-writers in the placement view (healthy: fresh heartbeat and state ACTIVE, LEAVING, PENDING or JOINING), by state.",
		}, []string{"state"}),
		ringRebuilds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pyrodist_segment_writer_ring_rebuilds_total",
			Help: "Placement snapshots built because the set of healthy segment-writers changed.",
		}),
		writerUpdates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pyrodist_segment_writer_ring_updates_total",
			Help: "Updates of the segment-writer ring key received over memberlist.",
		}),
		distributors: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pyrodist_healthy_distributors",
			Help: "ACTIVE distributors with a fresh heartbeat in the distributor ring; global rate limits are divided by it.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.writers, m.ringRebuilds, m.writerUpdates, m.distributors} {
			if err := reg.Register(c); err != nil {
				return m, fmt.Errorf("membership: metrics: %w", err)
			}
		}
	}
	return m, nil
}

// KVConfig maps our memberlist settings onto dskit's, starting from dskit's
// own flag defaults (which also set its unexported DNS backoff).
func KVConfig(c config.Memberlist) (memberlist.KVConfig, error) {
	var cfg memberlist.KVConfig
	fs := flag.NewFlagSet("memberlist-defaults", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	cfg.JoinMembers = slices.Clone(c.JoinMembers)
	cfg.TCPTransport.BindAddrs = slices.Clone(c.BindAddr)
	if len(cfg.TCPTransport.BindAddrs) == 0 {
		cfg.TCPTransport.BindAddrs = []string{"0.0.0.0"}
	}
	cfg.TCPTransport.BindPort = c.BindPort
	cfg.ClusterLabel = c.ClusterLabel
	cfg.ClusterLabelVerificationDisabled = c.ClusterLabelVerificationDisabled
	cfg.AdvertiseAddr = c.AdvertiseAddr
	if c.AdvertisePort != 0 {
		cfg.AdvertisePort = c.AdvertisePort
	}
	cfg.NodeName = c.NodeName
	cfg.RandomizeNodeName = c.RandomizeNodeName
	cfg.RejoinInterval = c.RejoinInterval
	if c.GossipInterval > 0 {
		cfg.GossipInterval = c.GossipInterval
	}
	if c.PushPullInterval > 0 {
		cfg.PushPullInterval = c.PushPullInterval
	}
	if c.LeaveTimeout > 0 {
		cfg.LeaveTimeout = c.LeaveTimeout
	}
	cfg.BroadcastTimeoutForLocalUpdatesOnShutdown = c.BroadcastTimeoutOnShutdown
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("memberlist: %w", err)
	}
	return cfg, nil
}

// NewDNSProvider resolves dns+ and dnssrv+ join targets.
func NewDNSProvider(logger log.Logger, reg prometheus.Registerer) *dns.Provider {
	if reg != nil {
		reg = prometheus.WrapRegistererWithPrefix("pyrodist_memberlist_", reg)
	}
	return dns.NewProvider(dns.GolangResolverType, 10, logger, reg)
}

// Start joins the cluster (a fast join with the join targets before
// returning), starts watching the rings and registers this distributor.
func (m *Membership) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != 0 {
		return errors.New("membership: already started")
	}
	m.state = 1
	if err := StartService(ctx, m.kv); err != nil {
		return fmt.Errorf("membership: memberlist: %w", err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.watch(wctx, m.writers, SegmentWriterRingKey, &m.writerDesc, m.metrics.writerUpdates)
	m.watch(wctx, m.dists, DistributorRingKey, &m.distDesc, nil)
	m.wg.Add(1)
	go m.refreshLoop(wctx)

	if err := StartService(ctx, m.lifecycler); err != nil {
		return fmt.Errorf("membership: register in the distributor ring: %w", err)
	}
	return nil
}

// watch keeps *dst current with the key and wakes the refresh loop.
func (m *Membership) watch(ctx context.Context, c kv.Client, key string, dst *atomic.Pointer[ring.Desc], updates prometheus.Counter) {
	store := func(v interface{}) {
		if d, ok := v.(*ring.Desc); ok && d != nil {
			dst.Store(d)
		}
		if updates != nil {
			updates.Inc()
		}
		select {
		case m.changed <- struct{}{}:
		default:
		}
	}
	if v, err := c.Get(ctx, key); err == nil && v != nil {
		store(v)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		c.WatchKey(ctx, key, func(v interface{}) bool {
			store(v)
			return true
		})
	}()
}

// refreshLoop rebuilds the views on every change and on a short tick, so
// a writer whose heartbeat stops drops out within about a tick of its
// timeout even when no key changes.
func (m *Membership) refreshLoop(ctx context.Context) {
	defer m.wg.Done()
	tick := min(time.Second, m.opts.WriterHeartbeatTimeout/10)
	tick = max(tick, 50*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		m.refresh(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-m.changed:
		case <-t.C:
		}
	}
}

func (m *Membership) refresh(now time.Time) {
	instances, addrs, byState := Healthy(m.writerDesc.Load(), m.opts.WriterHeartbeatTimeout, now)
	if m.ring.Load() == nil || !slices.Equal(instances, m.lastInstances) {
		m.ring.Store(placement.NewRing(instances))
		m.lastInstances = instances
		m.metrics.ringRebuilds.Inc()
		for _, s := range []placement.State{placement.Active, placement.Leaving, placement.Pending, placement.Joining} {
			m.metrics.writers.WithLabelValues(s.String()).Set(float64(byState[s]))
		}
		level.Debug(m.logger).Log("msg", "segment-writer placement view rebuilt", "instances", len(instances))
	}
	if !slices.Equal(addrs, m.lastAddrs) {
		m.lastAddrs = addrs
		if m.opts.WriterAddrs != nil {
			m.opts.WriterAddrs(slices.Clone(addrs))
		}
	}
	n := CountHealthyDistributors(m.distDesc.Load(), m.opts.Memberlist.DistributorRing.HeartbeatTimeout, now)
	m.metrics.distributors.Set(float64(n))
	m.healthyDists.Store(int64(max(n, 1)))
}

// Healthy converts a segment-writer ring to placement instances as
// Pyroscope's distributor reads it (spec §2.2): states ACTIVE, LEAVING,
// PENDING and JOINING with a heartbeat no older than timeout, sorted by ID.
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

// CountHealthyDistributors is the number of ACTIVE distributors with a
// fresh heartbeat, as Pyroscope's global rate strategy counts them.
func CountHealthyDistributors(d *ring.Desc, timeout time.Duration, now time.Time) int {
	if d == nil {
		return 0
	}
	n := 0
	for _, in := range d.Ingesters {
		if in.State == ring.ACTIVE && in.IsHeartbeatHealthy(timeout, now) {
			n++
		}
	}
	return n
}

// Ring is the current placement snapshot (never nil after Start; empty when
// no writer is healthy). Safe for concurrent use without locks.
func (m *Membership) Ring() *placement.Ring {
	if r := m.ring.Load(); r != nil {
		return r
	}
	return emptyRing
}

var emptyRing = placement.NewRing(nil)

// Ready is nil once at least one healthy segment-writer is in the ring.
func (m *Membership) Ready(context.Context) error {
	if m.Ring().Len() == 0 {
		return ErrNoWriters
	}
	return nil
}

// HealthyDistributors is the number of healthy distributors sharing global
// rate limits, at least 1 (this one).
func (m *Membership) HealthyDistributors() int { return int(m.healthyDists.Load()) }

// KV is the underlying memberlist KV (admin pages, tests).
func (m *Membership) KV() *memberlist.KV { return m.kv }

// Stop leaves the distributor ring (LEAVING, then unregistered), stops
// watching and leaves memberlist. It is safe to call more than once.
func (m *Membership) Stop(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != 1 {
		m.state = 2
		return nil
	}
	m.state = 2
	var errs []error
	if err := services.StopAndAwaitTerminated(ctx, m.lifecycler); err != nil {
		errs = append(errs, fmt.Errorf("leave distributor ring: %w", err))
	}
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()

	if err := services.StopAndAwaitTerminated(ctx, m.kv); err != nil {
		errs = append(errs, fmt.Errorf("leave memberlist: %w", err))
	}
	return errors.Join(errs...)
}

// StartService starts s detached from ctx (dskit ties a service's lifetime
// to the context it was started with) and waits for it to run until ctx
// ends; the segment-writer simulator starts its ring services the same way.
func StartService(ctx context.Context, s services.Service) error {
	if err := s.StartAsync(context.Background()); err != nil {
		return err
	}
	if err := s.AwaitRunning(ctx); err != nil {
		s.StopAsync()
		return err
	}
	return nil
}
