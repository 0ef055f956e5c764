// Package rulesobject writes placement rules objects as Pyroscope's
// metastore does (adaptive_placement.PlacementRules, vtproto binary), so
// that tests can put rules in a bucket.
package rulesobject

import (
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Dataset is one rule: the policy of a tenant's dataset.
type Dataset struct {
	Tenant, Name                string
	TenantShards, DatasetShards uint64
	// LoadBalancing is the proto enum: 0 unspecified, 1 fingerprint, 2 round-robin.
	LoadBalancing uint64
}

// Encode is the rules object of datasets, created at createdAt; tenants are
// listed in order of first appearance and referred to by index.
func Encode(createdAt time.Time, datasets ...Dataset) []byte {
	var b, tenants []byte
	var names []string
	for _, d := range datasets {
		i := slices.Index(names, d.Tenant)
		if i < 0 {
			i = len(names)
			names = append(names, d.Tenant)
			tenants = protowire.AppendTag(tenants, 1, protowire.BytesType)
			tenants = protowire.AppendBytes(tenants, protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), d.Tenant))
		}
		var m []byte
		m = protowire.AppendTag(m, 1, protowire.VarintType)
		m = protowire.AppendVarint(m, uint64(i))
		m = protowire.AppendTag(m, 2, protowire.BytesType)
		m = protowire.AppendString(m, d.Name)
		for _, f := range []struct {
			num protowire.Number
			v   uint64
		}{{3, d.TenantShards}, {4, d.DatasetShards}, {5, d.LoadBalancing}} {
			m = protowire.AppendTag(m, f.num, protowire.VarintType)
			m = protowire.AppendVarint(m, f.v)
		}
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
	}
	b = append(tenants, b...)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(createdAt.UnixNano()))
}
