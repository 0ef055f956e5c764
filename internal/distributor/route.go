package distributor

import (
	"context"
	"errors"
	"sync/atomic"

	segmentwriterv1 "github.com/grafana/pyroscope/api/gen/proto/go/segmentwriter/v1"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/internal/placement/rules"
	"github.com/pyrodist/pyrodist/internal/segmentwriter"
)

// RingSource gives the latest segment-writer ring snapshot (the membership
// view); nil or empty means no writer is known.
type RingSource interface {
	Ring() *placement.Ring
}

// Pusher pushes one request with failover over candidates in order, with
// errors classified as Pyroscope's client classifies them (segmentwriter.Client).
type Pusher interface {
	Push(ctx context.Context, req *segmentwriterv1.PushRequest, candidates []*placement.Instance) error
}

// RulesSource gives the placement rules in use (the rules poller); nil
// rules mean none, so every dataset gets its tenant's limits.
type RulesSource interface {
	Rules() *rules.Rules
}

// RouterConfig is where this distributor stands and what places its
// profiles.
type RouterConfig struct {
	// Zone and PreferSameZone: with both set, writers of Zone are tried
	// first; the shard id stays Pyroscope's either way.
	Zone           string
	PreferSameZone bool
	// Rules, when set, are the placement rules from the bucket; without
	// them every dataset gets its tenant's limits.
	Rules RulesSource
}

// RouterConfigFrom picks the router's settings out of the config file.
func RouterConfigFrom(c *config.Config) RouterConfig {
	return RouterConfig{Zone: c.Distributor.Zone, PreferSameZone: c.Distributor.PreferSameZone}
}

// Router is the Sender that places each profile on the segment-writer
// ring as Pyroscope's distributor does and pushes it with failover.
type Router struct {
	ring  RingSource
	push  Pusher
	rules RulesSource // nil: no rules
	zone  string      // empty when same-zone preference is off
	// placed is the zone resolved on the latest ring, so that a placement
	// does not compare zone names; renewed when the ring changes.
	placed atomic.Pointer[ringZone]
}

type ringZone struct {
	ring *placement.Ring
	zone placement.Zone
}

// zoneIn resolves the Router's zone on ring, once per ring.
func (r *Router) zoneIn(ring *placement.Ring) placement.Zone {
	if c := r.placed.Load(); c != nil && c.ring == ring {
		return c.zone
	}
	c := &ringZone{ring: ring, zone: ring.Zone(r.zone)}
	r.placed.Store(c)
	return c.zone
}

var _ Sender = (*Router)(nil)

// NewRouter builds a Router.
func NewRouter(ring RingSource, push Pusher, cfg RouterConfig) (*Router, error) {
	if ring == nil || push == nil {
		return nil, errors.New("router: ring and pusher are required")
	}
	r := &Router{ring: ring, push: push, rules: cfg.Rules}
	if cfg.PreferSameZone {
		r.zone = cfg.Zone
	}
	return r, nil
}

// Send places p and pushes it; it returns when a writer acked it or every
// candidate failed. An empty ring is Unavailable "service is unavailable".
func (r *Router) Send(ctx context.Context, p *Profile) error {
	ring := r.ring.Ring()
	if ring.Len() == 0 {
		return segmentwriter.ErrUnavailable
	}
	key := placement.NewKey(p.Tenant, p.Service, p.Fingerprint)
	var idx [segmentwriter.MaxAttempts]int32
	shard, cands := ring.PlaceIn(key, r.policy(p), r.zoneIn(ring), idx[:])
	var inst [segmentwriter.MaxAttempts]*placement.Instance
	for i, c := range cands {
		inst[i] = ring.Instance(c)
	}
	req := &segmentwriterv1.PushRequest{
		TenantId:    p.Tenant,
		Labels:      p.Labels,
		Profile:     p.Pprof,
		ProfileId:   p.ID[:],
		Shard:       shard,
		Annotations: p.Annotations,
	}
	return r.push.Push(ctx, req, inst[:len(cands)])
}

// policy is the placement policy of p's dataset: its rule when the rules
// in use have one, else its tenant's limits (AdaptivePlacement.Policy at
// 3fe6a45). The rules are read with one atomic load, no lock.
func (r *Router) policy(p *Profile) placement.Policy {
	var set *rules.Rules
	if r.rules != nil {
		set = r.rules.Rules()
	}
	return set.Policy(p.Tenant, p.Service, p.Limits)
}

// PlacementPolicy is a tenant's policy for a dataset without a placement
// rule (docs/compatibility.md#placement).
func PlacementPolicy(l *config.Limits) placement.Policy { return rules.Static(l) }
