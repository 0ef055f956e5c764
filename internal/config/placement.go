package config

import "flag"

// PlacementLimits are a tenant's shard policy, with Pyroscope's keys (spec §2.5).
// Owned by the placement work (issue 9); extend here.
type PlacementLimits struct {
	TenantShards         int `yaml:"adaptive_placement_tenant_shards"`
	DefaultDatasetShards int `yaml:"adaptive_placement_default_dataset_shards"`
}

func (l *PlacementLimits) RegisterFlags(f *flag.FlagSet) {
	f.IntVar(&l.TenantShards, "adaptive-placement.tenant-shards", 0, "Shards a tenant's data may spread over; 0 means all shards.")
	f.IntVar(&l.DefaultDatasetShards, "adaptive-placement.default-dataset-shards", 1, "Shards one dataset (service_name) of a tenant is spread over.")
}
