// Package rules is Pyroscope's adaptive placement rules object
// (adaptive_placement.PlacementRules) and the placement policy it gives a
// tenant's dataset, applied as Pyroscope's distributor applies it
// (docs/compatibility.md#placement-rules).
package rules

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/placement"
)

// Rules is one rules object, indexed by tenant and dataset once when it is
// parsed, so that a placement looks its policy up without allocating. It
// is never modified after Parse returns. A nil *Rules has no entries.
type Rules struct {
	createdAt int64 // unix nanoseconds, as the metastore wrote it
	policies  map[datasetKey]placement.Policy
}

type datasetKey struct{ tenant, dataset string }

// Empty is a rules object without entries created at t: what Pyroscope's
// agent holds when the bucket has no rules object (LoadRules in
// placement_agent.go at 3fe6a45).
func Empty(t time.Time) *Rules { return &Rules{createdAt: t.UnixNano()} }

// CreatedAt is the object's created_at.
func (r *Rules) CreatedAt() time.Time {
	if r == nil {
		return time.Time{}
	}
	return time.Unix(0, r.createdAt)
}

// Len is the number of (tenant, dataset) entries.
func (r *Rules) Len() int {
	if r == nil {
		return 0
	}
	return len(r.policies)
}

// Lookup is the rule of a tenant's dataset, if the object has one.
func (r *Rules) Lookup(tenant, dataset string) (placement.Policy, bool) {
	if r == nil {
		return placement.Policy{}, false
	}
	p, ok := r.policies[datasetKey{tenant, dataset}]
	return p, ok
}

// Policy is AdaptivePlacement.Policy
// (pkg/segmentwriter/client/distributor/placement/adaptiveplacement/adaptive_placement.go
// at 3fe6a45): the dataset's rule when there is one, else the tenant's
// limits (Static).
func (r *Rules) Policy(tenant, dataset string, l *config.Limits) placement.Policy {
	if p, ok := r.Lookup(tenant, dataset); ok {
		return p
	}
	return Static(l)
}

// Static is a dataset's policy without a rule: the tenant's shards (raised
// to ingestion_tenant_shard_size when that is larger, as
// Overrides.PlacementLimits in pkg/validation/limits.go at 3fe6a45 does),
// the default dataset shards, and fingerprint-mod unless round-robin is
// configured (dynamic is fingerprint without a rule). Nil limits give
// Pyroscope's defaults.
func Static(l *config.Limits) placement.Policy {
	if l == nil {
		return placement.Policy{DatasetShards: 1}
	}
	p := placement.Policy{
		TenantShards:  max(l.Placement.TenantShards, l.IngestionTenantShardSize),
		DatasetShards: l.Placement.DefaultDatasetShards,
	}
	if l.Placement.LoadBalancing == config.LoadBalancingRoundRobin {
		p.Pick = placement.PickRoundRobin
	}
	return p
}

// Field numbers of adaptive_placementpb/adaptive_placement.proto at 3fe6a45.
const (
	fieldRulesTenants   = 1 // PlacementRules.tenants: repeated TenantPlacement
	fieldRulesDatasets  = 2 // PlacementRules.datasets: repeated DatasetPlacement
	fieldRulesCreatedAt = 3 // PlacementRules.created_at: int64

	fieldTenantID = 1 // TenantPlacement.tenant_id: string

	fieldDatasetTenant        = 1 // DatasetPlacement.tenant: uint32, index into tenants
	fieldDatasetName          = 2 // DatasetPlacement.name: string
	fieldDatasetTenantShards  = 3 // DatasetPlacement.tenant_shard_limit: uint64
	fieldDatasetDatasetShards = 4 // DatasetPlacement.dataset_shard_limit: uint64
	fieldDatasetLoadBalancing = 5 // DatasetPlacement.load_balancing: LoadBalancing

	loadBalancingRoundRobin = 2 // LOAD_BALANCING_ROUND_ROBIN
)

// Parse decodes a placement_rules.binpb object. Like Pyroscope's
// AdaptivePlacement.Update, a later entry for the same tenant and dataset
// replaces an earlier one, and a dataset whose tenant index is out of
// range spoils the whole object (Pyroscope's agent then keeps its old
// rules, as callers of Parse do with the error).
func Parse(b []byte) (*Rules, error) {
	var (
		tenants  []string
		datasets [][]byte // decoded once the tenants are all known
		r        = &Rules{}
	)
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		switch num {
		case fieldRulesTenants:
			if typ != protowire.BytesType {
				return wireTypeError("PlacementRules.tenants", typ)
			}
			var id string
			err := fields(data, func(num protowire.Number, typ protowire.Type, _ uint64, data []byte) error {
				if num != fieldTenantID {
					return nil
				}
				if typ != protowire.BytesType {
					return wireTypeError("TenantPlacement.tenant_id", typ)
				}
				id = string(data)
				return nil
			})
			tenants = append(tenants, id)
			return err
		case fieldRulesDatasets:
			if typ != protowire.BytesType {
				return wireTypeError("PlacementRules.datasets", typ)
			}
			datasets = append(datasets, data)
		case fieldRulesCreatedAt:
			if typ != protowire.VarintType {
				return wireTypeError("PlacementRules.created_at", typ)
			}
			r.createdAt = int64(v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.policies = make(map[datasetKey]placement.Policy, len(datasets))
	for i, d := range datasets {
		var (
			tenant uint32
			name   string
			p      placement.Policy
		)
		err := fields(d, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
			if num == fieldDatasetName {
				if typ != protowire.BytesType {
					return wireTypeError("DatasetPlacement.name", typ)
				}
				name = string(data)
				return nil
			}
			if num < fieldDatasetTenant || num > fieldDatasetLoadBalancing {
				return nil
			}
			if typ != protowire.VarintType {
				return wireTypeError(fmt.Sprintf("DatasetPlacement field %d", num), typ)
			}
			// Pyroscope's vtproto decoder truncates varints to the field's
			// width, and the policy converts the uint64 limits to int.
			switch num {
			case fieldDatasetTenant:
				tenant = uint32(v)
			case fieldDatasetTenantShards:
				p.TenantShards = int(v)
			case fieldDatasetDatasetShards:
				p.DatasetShards = int(v)
			case fieldDatasetLoadBalancing:
				// Only round-robin picks at random; unspecified, fingerprint
				// and unknown values are fingerprint-mod (loadBalancingFromProto).
				p.Pick = placement.PickFingerprint
				if int32(v) == loadBalancingRoundRobin {
					p.Pick = placement.PickRoundRobin
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("dataset %d: %w", i, err)
		}
		if int(tenant) >= len(tenants) {
			return nil, fmt.Errorf("dataset %d (%q): tenant index %d out of range (%d tenants)", i, name, tenant, len(tenants))
		}
		r.policies[datasetKey{tenants[tenant], name}] = p
	}
	return r, nil
}

// fields calls f for each field of one message: the varint value for
// varint fields, the payload for length-delimited ones; fixed-width fields
// (which the rules never use) are skipped.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var (
			v    uint64
			data []byte
		)
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			data, n = protowire.ConsumeBytes(b)
		case protowire.EndGroupType:
			return errors.New("end group without a group")
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, data); err != nil {
			return err
		}
	}
	return nil
}

func wireTypeError(field string, typ protowire.Type) error {
	return fmt.Errorf("%s: wrong wire type %d", field, typ)
}
