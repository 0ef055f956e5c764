package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/distributor"
	"github.com/pyrodist/pyrodist/internal/membership"
	"github.com/pyrodist/pyrodist/internal/segmentwriter"
)

// backend is everything behind the pipeline: segment-writer discovery
// (memberlist), placement and sending with failover.
type backend struct {
	Sender distributor.Sender
	// Ready returns nil once at least one healthy segment-writer is known.
	Ready func(ctx context.Context) error
	// HealthyDistributors counts the distributors sharing global rate limits (>= 1).
	HealthyDistributors func() int
	// Start joins the cluster; Stop leaves it and closes writer connections.
	Start func(ctx context.Context) error
	Stop  func(ctx context.Context) error
	// UseLimits points placement (tenant_shards, dataset_shards, load
	// balancing) at the live per-tenant limits; until it is called every
	// tenant gets the defaults of the config file.
	UseLimits func(distributor.TenantLimits)
	// Membership is exposed for admin pages.
	Membership *membership.Membership
}

func newBackend(cfg *config.Config, logger log.Logger, reg prometheus.Registerer) (*backend, error) {
	writers, err := segmentwriter.New(segmentwriter.Config{
		SegmentWriter:  cfg.SegmentWriter,
		Zone:           cfg.Distributor.Zone,
		PreferSameZone: cfg.Distributor.PreferSameZone,
	}, reg, logger)
	if err != nil {
		return nil, fmt.Errorf("segment-writer client: %w", err)
	}
	mem, err := membership.New(membership.Options{
		Memberlist:             cfg.Memberlist,
		WriterHeartbeatTimeout: cfg.SegmentWriter.HeartbeatTimeout,
		Zone:                   cfg.Distributor.Zone,
		HTTPPort:               cfg.Server.HTTPListenPort,
		WriterAddrs:            writers.SetAddresses,
		Logger:                 logger,
		Registerer:             reg,
	})
	if err != nil {
		return nil, err
	}
	limits := &liveLimits{}
	limits.Store(defaultLimits{&cfg.Limits})
	router, err := distributor.NewRouter(mem, limits, writers, distributor.RouterConfigFrom(cfg))
	if err != nil {
		return nil, err
	}
	return &backend{
		Sender:              router,
		Ready:               mem.Ready,
		HealthyDistributors: mem.HealthyDistributors,
		Start:               mem.Start,
		// Leave the rings first so nobody counts or routes to us, then
		// close the writer connections.
		Stop: func(ctx context.Context) error {
			return errors.Join(mem.Stop(ctx), writers.Close())
		},
		UseLimits: func(l distributor.TenantLimits) {
			if l != nil {
				limits.Store(l)
			}
		},
		Membership: mem,
	}, nil
}

// liveLimits lets the limits source be swapped after construction without
// a lock on the request path.
type liveLimits struct {
	p atomic.Pointer[distributor.TenantLimits]
}

func (l *liveLimits) Store(t distributor.TenantLimits) { l.p.Store(&t) }

func (l *liveLimits) ForTenant(tenant string) *config.Limits { return (*l.p.Load()).ForTenant(tenant) }

// defaultLimits gives every tenant the config file's defaults.
type defaultLimits struct{ l *config.Limits }

func (d defaultLimits) ForTenant(string) *config.Limits { return d.l }
