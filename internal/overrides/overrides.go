// Package overrides serves each tenant's limits: the config file's defaults
// with the tenant's entry of overrides.yaml applied on top, reloaded while
// the distributor runs (as Pyroscope's runtime config is), so a tenant's
// limit changes without a restart.
package overrides

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/services"
	"go.yaml.in/yaml/v3"

	"github.com/pyrodist/pyrodist/internal/config"
)

// Overrides is a service: starting loads the file (a file that is missing or
// bad at start fails the start: better not to serve than to serve with limits
// nobody meant); running re-reads it every period and applies it when its
// content changed; a file that does not parse keeps the previous overrides.
type Overrides struct {
	*services.BasicService

	defaults config.Limits
	rc       config.RuntimeConfig
	logger   log.Logger

	tenants atomic.Pointer[map[string]*config.Limits]
	mu      sync.Mutex // serializes reloads
	lastSum [32]byte
}

// New builds the service; until it has started every tenant gets defaults.
func New(defaults config.Limits, rc config.RuntimeConfig, logger log.Logger) *Overrides {
	if logger == nil {
		logger = log.NewNopLogger()
	}
	o := &Overrides{defaults: defaults, rc: rc, logger: logger}
	empty := map[string]*config.Limits{}
	o.tenants.Store(&empty)
	o.BasicService = services.NewBasicService(o.starting, o.running, nil).WithName("overrides")
	return o
}

func (o *Overrides) starting(context.Context) error {
	if o.rc.File == "" {
		return nil
	}
	_, err := o.Reload()
	return err
}

func (o *Overrides) running(ctx context.Context) error {
	if o.rc.File == "" || o.rc.Period <= 0 {
		<-ctx.Done()
		return nil
	}
	tick := time.NewTicker(o.rc.Period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			changed, err := o.Reload()
			switch {
			case err != nil:
				level.Error(o.logger).Log("msg", "keeping the previous tenant overrides", "err", err)
			case changed:
				level.Info(o.logger).Log("msg", "tenant overrides reloaded", "file", o.rc.File)
			}
		}
	}
}

// ForTenant returns the tenant's limits. The result is shared and never
// changes: callers resolve it once per request and carry it.
func (o *Overrides) ForTenant(tenant string) *config.Limits {
	if l, ok := (*o.tenants.Load())[tenant]; ok {
		return l
	}
	return &o.defaults
}

// Reload re-reads the overrides file and applies it when its content
// changed. It reports whether anything was applied.
func (o *Overrides) Reload() (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	data, err := os.ReadFile(o.rc.File)
	if err != nil {
		return false, fmt.Errorf("reading overrides file: %w", err)
	}
	sum := sha256.Sum256(data)
	if sum == o.lastSum {
		return false, nil
	}
	next, err := Parse(data, o.defaults)
	if err != nil {
		return false, fmt.Errorf("overrides file %s: %w", o.rc.File, err)
	}
	o.tenants.Store(&next)
	o.lastSum = sum
	return true, nil
}

// Parse decodes overrides.yaml; each tenant's entry starts from the
// defaults, so it names only the keys it changes.
func Parse(data []byte, defaults config.Limits) (map[string]*config.Limits, error) {
	var file struct {
		Overrides map[string]yaml.Node `yaml:"overrides"`
	}
	if err := config.DecodeStrict(data, &file); err != nil {
		return nil, err
	}
	out := make(map[string]*config.Limits, len(file.Overrides))
	for tenant, node := range file.Overrides {
		raw, err := yaml.Marshal(&node)
		if err != nil {
			return nil, fmt.Errorf("tenant %q: %w", tenant, err)
		}
		l := defaults
		if err := config.DecodeStrict(raw, &l); err != nil {
			return nil, fmt.Errorf("tenant %q: %w", tenant, err)
		}
		out[tenant] = &l
	}
	return out, nil
}
