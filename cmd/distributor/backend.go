package main

import (
	"context"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/distributor"
)

// backend is everything behind the pipeline: segment-writer discovery,
// placement and sending. The placement work (issue 9) owns this file and
// replaces this placeholder with memberlist + placement + segment-writer client.
type backend struct {
	Sender distributor.Sender
	// Ready returns nil once at least one healthy segment-writer is known.
	Ready func(ctx context.Context) error
	// HealthyDistributors counts the distributors sharing global rate limits (>= 1).
	HealthyDistributors func() int
	// Start joins the cluster; Stop leaves it and closes writer connections.
	Start func(ctx context.Context) error
	Stop  func(ctx context.Context) error
}

func newBackend(cfg *config.Config, logger log.Logger, reg prometheus.Registerer) (*backend, error) {
	noWriters := status.Error(codes.Unavailable, "no segment-writer is known")
	return &backend{
		Sender:              senderFunc(func(context.Context, *distributor.Profile) error { return noWriters }),
		Ready:               func(context.Context) error { return noWriters },
		HealthyDistributors: func() int { return 1 },
		Start:               func(context.Context) error { return nil },
		Stop:                func(context.Context) error { return nil },
	}, nil
}

type senderFunc func(context.Context, *distributor.Profile) error

func (f senderFunc) Send(ctx context.Context, p *distributor.Profile) error { return f(ctx, p) }
