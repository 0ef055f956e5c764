package distributor

import (
	"context"
	"errors"

	"github.com/go-kit/log"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
)

// TenantLimits gives the current limits of a tenant (defaults merged with
// overrides.yaml). Implementations must be safe for concurrent use; the
// returned value must not be modified by the caller.
type TenantLimits interface {
	ForTenant(tenant string) *config.Limits
}

// Config is the process-wide part of the pipeline's settings.
type Config struct {
	// MaxInflightBytes bounds the decompressed bytes all requests hold at
	// once; 0 derives it from the memory limit.
	MaxInflightBytes int64
}

// ConfigFrom picks the pipeline's settings out of the config file.
func ConfigFrom(c *config.Config) Config {
	return Config{MaxInflightBytes: c.Distributor.InstanceLimits.MaxInflightBytes}
}

// Distributor validates, normalizes and splits pushed profiles and hands each
// outgoing profile to a Sender.
type Distributor struct {
	cfg     Config
	limits  TenantLimits
	sender  Sender
	healthy func() int
	logger  log.Logger
}

// New builds a Distributor. healthyDistributors gives the number of healthy
// distributors sharing the global rate limit (nil or a result <= 0 means 1).
func New(cfg Config, limits TenantLimits, sender Sender, healthyDistributors func() int, reg prometheus.Registerer, logger log.Logger) (*Distributor, error) {
	if limits == nil || sender == nil {
		return nil, errors.New("distributor: limits and sender are required")
	}
	if logger == nil {
		logger = log.NewNopLogger()
	}
	return &Distributor{cfg: cfg, limits: limits, sender: sender, healthy: healthyDistributors, logger: logger}, nil
}

// Push validates, normalizes, splits and sends every series of req for tenant.
// It returns nil only when every outgoing profile was acked by Sender.Send.
// Client-caused errors are *connect.Error with CodeInvalidArgument or
// CodeResourceExhausted; Sender errors are returned unchanged.
func (d *Distributor) Push(ctx context.Context, tenant string, req *pushv1.PushRequest) error {
	return errors.New("distributor: pipeline not wired yet")
}
