package membership

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/kv"
	"github.com/grafana/dskit/netutil"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
)

const (
	distributorRingName = "distributor"
	// Pyroscope forgets a distributor after 10 missed heartbeat timeouts.
	autoForgetPeriods = 10
)

// DistributorRingOptions configure a DistributorRing.
type DistributorRingOptions struct {
	Ring config.DistributorRing
	// Zone is this distributor's zone, written to its ring entry.
	Zone string
	// HTTPPort is the port advertised unless Ring.InstancePort is set.
	HTTPPort   int
	Logger     log.Logger
	Registerer prometheus.Registerer
}

// DistributorRing is the service that registers this distributor in the
// distributor ring (one token, ACTIVE, as Pyroscope's distributors do) and
// counts the healthy distributors that share global rate limits. Stopping
// leaves the ring.
type DistributorRing struct {
	*services.BasicService

	lifecycler *ring.BasicLifecycler
	client     kv.Client
	timeout    time.Duration
	desc       atomic.Pointer[ring.Desc]
	changed    chan struct{}
	healthy    atomic.Int64
	gauge      prometheus.Gauge
}

// NewDistributorRing builds the ring member over ml's KV.
func NewDistributorRing(ml *Memberlist, opts DistributorRingOptions) (*DistributorRing, error) {
	dr := opts.Ring
	if dr.HeartbeatPeriod <= 0 || dr.HeartbeatTimeout <= 0 {
		return nil, errors.New("membership: distributor ring heartbeat period and timeout must be > 0")
	}
	opts.Logger = orNop(opts.Logger)
	client, err := ml.Client("distributor")
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
	lc, err := ring.NewBasicLifecycler(ring.BasicLifecyclerConfig{
		ID:               id,
		Addr:             net.JoinHostPort(addr, strconv.Itoa(port)),
		Zone:             opts.Zone,
		HeartbeatPeriod:  dr.HeartbeatPeriod,
		HeartbeatTimeout: dr.HeartbeatTimeout,
		NumTokens:        1,
	}, distributorRingName, DistributorRingKey, client, delegate, opts.Logger, opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("membership: distributor lifecycler: %w", err)
	}
	d := &DistributorRing{
		lifecycler: lc,
		client:     client,
		timeout:    dr.HeartbeatTimeout,
		changed:    make(chan struct{}, 1),
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pyrodist_healthy_distributors",
			Help: "ACTIVE distributors with a fresh heartbeat in the distributor ring; global rate limits are divided by it.",
		}),
	}
	d.healthy.Store(1)
	if err := register(opts.Registerer, d.gauge); err != nil {
		return nil, err
	}
	d.BasicService = services.NewBasicService(d.starting, d.running, d.stopping).WithName("distributor-ring")
	return d, nil
}

func (d *DistributorRing) starting(ctx context.Context) error {
	// The lifecycler's lifetime is ours: stopping ends it, leaving the ring.
	if err := d.lifecycler.StartAsync(context.Background()); err != nil {
		return err
	}
	if err := d.lifecycler.AwaitRunning(ctx); err != nil {
		d.lifecycler.StopAsync()
		return fmt.Errorf("register in the distributor ring: %w", err)
	}
	return nil
}

func (d *DistributorRing) running(ctx context.Context) error {
	lcEnded := make(chan error, 1)
	go func() { lcEnded <- d.lifecycler.AwaitTerminated(context.Background()) }()
	go watchKey(ctx, d.client, DistributorRingKey, func(r *ring.Desc) {
		if r != nil {
			d.desc.Store(r)
		}
		select {
		case d.changed <- struct{}{}:
		default:
		}
	})
	t := time.NewTicker(refreshEvery(d.timeout))
	defer t.Stop()
	for {
		n := CountHealthyDistributors(d.desc.Load(), d.timeout, time.Now())
		d.gauge.Set(float64(n))
		d.healthy.Store(int64(max(n, 1)))
		select {
		case <-ctx.Done():
			return nil
		case err := <-lcEnded:
			if err == nil {
				err = errors.New("stopped")
			}
			return fmt.Errorf("distributor ring lifecycler: %w", err)
		case <-d.changed:
		case <-t.C:
		}
	}
}

func (d *DistributorRing) stopping(error) error {
	if err := services.StopAndAwaitTerminated(context.Background(), d.lifecycler); err != nil {
		return fmt.Errorf("leave the distributor ring: %w", err)
	}
	return nil
}

// HealthyDistributors is the number of healthy distributors sharing global
// rate limits, at least 1 (this one).
func (d *DistributorRing) HealthyDistributors() int { return int(d.healthy.Load()) }

// CountHealthyDistributors is the number of ACTIVE distributors with a
// fresh heartbeat, as Pyroscope's global rate strategy counts them.
func CountHealthyDistributors(r *ring.Desc, timeout time.Duration, now time.Time) int {
	if r == nil {
		return 0
	}
	n := 0
	for _, in := range r.Ingesters {
		if in.State == ring.ACTIVE && in.IsHeartbeatHealthy(timeout, now) {
			n++
		}
	}
	return n
}
