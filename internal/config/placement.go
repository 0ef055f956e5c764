package config

import (
	"flag"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// PlacementLimits are a tenant's shard policy, with Pyroscope's keys and
// defaults (docs/compatibility.md#default-limits). Without placement rules
// from the metastore, a dataset gets DefaultDatasetShards shards inside the
// tenant's TenantShards.
type PlacementLimits struct {
	TenantShards         int `yaml:"adaptive_placement_tenant_shards"`
	DefaultDatasetShards int `yaml:"adaptive_placement_default_dataset_shards"`
	// Min and max bound what the metastore's allocator may assign; kept so
	// that Pyroscope's overrides files load unchanged.
	MinDatasetShards int           `yaml:"adaptive_placement_min_dataset_shards"`
	MaxDatasetShards int           `yaml:"adaptive_placement_max_dataset_shards"`
	LoadBalancing    LoadBalancing `yaml:"adaptive_placement_load_balancing"`
}

func (l *PlacementLimits) RegisterFlags(f *flag.FlagSet) {
	f.IntVar(&l.TenantShards, "adaptive-placement.tenant-shards", 0, "Shards a tenant's data may spread over; 0 means all shards.")
	f.IntVar(&l.DefaultDatasetShards, "adaptive-placement.default-dataset-shards", 1, "Shards one dataset (service_name) of a tenant is spread over.")
	f.IntVar(&l.MinDatasetShards, "adaptive-placement.min-dataset-shards", 1, "Fewest shards the placement rules may give a dataset.")
	f.IntVar(&l.MaxDatasetShards, "adaptive-placement.max-dataset-shards", 1024, "Most shards the placement rules may give a dataset.")
	l.LoadBalancing = LoadBalancingDynamic
	f.Var(&l.LoadBalancing, "adaptive-placement.load-balancing", "How a profile picks one of its dataset's shards: fingerprint (series stay on one shard), round-robin, or dynamic (fingerprint unless placement rules say otherwise).")
}

// Validate reports settings placement cannot use.
func (l *PlacementLimits) Validate() error {
	switch {
	case l.TenantShards < 0:
		return fmt.Errorf("adaptive_placement_tenant_shards must not be negative, got %d", l.TenantShards)
	case l.DefaultDatasetShards < 0:
		return fmt.Errorf("adaptive_placement_default_dataset_shards must not be negative, got %d", l.DefaultDatasetShards)
	case l.MinDatasetShards < 0 || l.MaxDatasetShards < 0:
		return fmt.Errorf("adaptive_placement_min/max_dataset_shards must not be negative")
	case l.MaxDatasetShards > 0 && l.MinDatasetShards > l.MaxDatasetShards:
		return fmt.Errorf("adaptive_placement_min_dataset_shards (%d) exceeds adaptive_placement_max_dataset_shards (%d)", l.MinDatasetShards, l.MaxDatasetShards)
	}
	return l.LoadBalancing.Set(string(l.LoadBalancing))
}

// LoadBalancing is Pyroscope's adaptive_placement_load_balancing value.
type LoadBalancing string

const (
	LoadBalancingFingerprint LoadBalancing = "fingerprint"
	LoadBalancingRoundRobin  LoadBalancing = "round-robin"
	// LoadBalancingDynamic lets placement rules choose; without rules it is fingerprint.
	LoadBalancingDynamic LoadBalancing = "dynamic"
)

func (b *LoadBalancing) String() string { return string(*b) }

// Set accepts the three values; empty means dynamic, as an absent key does.
func (b *LoadBalancing) Set(s string) error {
	switch v := LoadBalancing(s); v {
	case "":
		*b = LoadBalancingDynamic
	case LoadBalancingFingerprint, LoadBalancingRoundRobin, LoadBalancingDynamic:
		*b = v
	default:
		return fmt.Errorf("invalid load balancing %q: want fingerprint, round-robin or dynamic", s)
	}
	return nil
}

// UnmarshalYAML rejects unknown values when the config or overrides file is read.
func (b *LoadBalancing) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	return b.Set(s)
}
