// Package overrides serves each tenant's limits: the config file's defaults
// with the tenant's entry of overrides.yaml applied on top, reloaded while
// the distributor runs (as Pyroscope's runtime config is), so a tenant's
// limit changes without a restart.
package overrides

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.yaml.in/yaml/v3"

	"github.com/pyrodist/pyrodist/internal/config"
)

// Overrides is a service: starting loads the file (a file that is missing or
// bad at start fails the start: better not to serve than to serve with limits
// nobody meant); running re-reads it every period and applies it when its
// content changed; a file that does not parse keeps the previous overrides.
//
// The file is Pyroscope's runtime config as it is: keys of other Pyroscope
// components are accepted and named once in an info line, and a key nobody
// knows is a warning (and pyrodist_overrides_unknown_keys_total), never a
// refused file: a typo must not stop a reload of every other tenant's
// limits. A known key with a value of the wrong type, or a relabel rule that
// does not compile, refuses the file.
type Overrides struct {
	*services.BasicService

	defaults config.Limits
	rc       config.RuntimeConfig
	logger   log.Logger
	unknown  prometheus.Counter

	tenants     atomic.Pointer[map[string]*config.Limits]
	mu          sync.Mutex // serializes reloads
	lastSum     [32]byte
	lastNotOurs string // the accepted-not-ours keys last logged
}

// New builds the service; until it has started every tenant gets defaults.
// reg may be nil.
func New(defaults config.Limits, rc config.RuntimeConfig, logger log.Logger, reg prometheus.Registerer) *Overrides {
	if logger == nil {
		logger = log.NewNopLogger()
	}
	o := &Overrides{defaults: defaults, rc: rc, logger: logger}
	o.unknown = promauto.With(reg).NewCounter(prometheus.CounterOpts{
		Name: "pyrodist_overrides_unknown_keys_total",
		Help: "Keys of the overrides file that neither pyrodist nor Pyroscope knows (typos), counted each time a changed file is loaded; they are ignored.",
	})
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
	next, keys, err := Parse(data, o.defaults)
	if err != nil {
		return false, fmt.Errorf("overrides file %s: %w", o.rc.File, err)
	}
	o.tenants.Store(&next)
	o.lastSum = sum
	o.report(keys)
	return true, nil
}

// report logs the keys of a newly applied file that are not acted on: the
// unknown ones every time, the accepted ones when their set changed.
func (o *Overrides) report(keys Keys) {
	for _, u := range keys.Unknown {
		if u.Tenant == "" {
			level.Warn(o.logger).Log("msg", "ignoring unknown top-level key of the overrides file", "file", o.rc.File, "key", u.Key)
		} else {
			level.Warn(o.logger).Log("msg", "ignoring unknown overrides key (neither pyrodist nor Pyroscope has it)", "file", o.rc.File, "tenant", u.Tenant, "key", u.Key)
		}
	}
	o.unknown.Add(float64(len(keys.Unknown)))
	if set := strings.Join(keys.NotOurs, ","); set != o.lastNotOurs {
		o.lastNotOurs = set
		if set != "" {
			level.Info(o.logger).Log("msg", "overrides keys accepted for other Pyroscope components; the distributor does not act on them", "file", o.rc.File, "keys", set)
		}
	}
}

// Keys are the keys of an overrides file the distributor does not act on.
type Keys struct {
	// NotOurs are other Pyroscope components' keys, sorted and distinct.
	NotOurs []string
	// Unknown are the keys nobody knows, in file order; Tenant is "" for a
	// top-level key.
	Unknown []TenantKey
}

// TenantKey names a key of one tenant's entry.
type TenantKey struct{ Tenant, Key string }

// Parse decodes Pyroscope's runtime config file (pkg/validation/runtime_config.go
// at 3fe6a45): "overrides" maps each tenant to its limits, which start from
// the defaults, so an entry names only the keys it changes. Keys the
// distributor does not act on are left out and returned.
func Parse(data []byte, defaults config.Limits) (map[string]*config.Limits, Keys, error) {
	var keys Keys
	var file map[string]yaml.Node
	if err := config.DecodeStrict(data, &file); err != nil {
		return nil, keys, err
	}
	var top []string
	for k := range file {
		if k != "overrides" {
			top = append(top, k)
		}
	}
	slices.Sort(top)
	for _, k := range top {
		keys.Unknown = append(keys.Unknown, TenantKey{Key: k})
	}
	var tenants map[string]yaml.Node
	if n, ok := file["overrides"]; ok {
		if err := n.Decode(&tenants); err != nil {
			return nil, keys, fmt.Errorf("overrides: %w", err)
		}
	}
	names := slices.Sorted(maps.Keys(tenants))
	notOurs := map[string]bool{}
	out := make(map[string]*config.Limits, len(tenants))
	for _, tenant := range names {
		node := tenants[tenant]
		l := defaults
		out[tenant] = &l
		if node.Kind == 0 || node.Tag == "!!null" {
			continue // an empty entry: the defaults, as in Pyroscope
		}
		accepted, unknown := config.FilterLimitKeys(&node)
		for _, k := range accepted {
			notOurs[k] = true
		}
		for _, k := range unknown {
			keys.Unknown = append(keys.Unknown, TenantKey{Tenant: tenant, Key: k})
		}
		raw, err := yaml.Marshal(&node)
		if err != nil {
			return nil, keys, fmt.Errorf("tenant %q: %w", tenant, err)
		}
		if err := config.DecodeStrict(raw, &l); err != nil {
			return nil, keys, fmt.Errorf("tenant %q: %w", tenant, err)
		}
		if err := l.Validate(); err != nil {
			return nil, keys, fmt.Errorf("tenant %q: %w", tenant, err)
		}
	}
	keys.NotOurs = slices.Sorted(maps.Keys(notOurs))
	return out, keys, nil
}
