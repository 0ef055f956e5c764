package config

import (
	"flag"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// AdaptivePlacement is Pyroscope's adaptive_placement block as far as a
// distributor uses it (Config in
// pkg/segmentwriter/client/distributor/placement/adaptiveplacement/config.go
// at 3fe6a45): how often the placement rules the metastore writes to the
// bucket are read again. The block's other keys configure the metastore.
type AdaptivePlacement struct {
	PlacementRulesUpdateInterval time.Duration `yaml:"placement_rules_update_interval"`
}

func (c *AdaptivePlacement) RegisterFlags(f *flag.FlagSet) {
	f.DurationVar(&c.PlacementRulesUpdateInterval, "adaptive-placement.placement-rules-update-interval", 15*time.Second,
		"How often the placement rules (adaptive_placement/placement_rules.binpb in the storage bucket) are read again.")
}

// Validate reports an interval the rules poller cannot run with.
func (c *AdaptivePlacement) Validate() error {
	if c.PlacementRulesUpdateInterval <= 0 {
		return fmt.Errorf("adaptive_placement.placement_rules_update_interval must be positive, got %s", c.PlacementRulesUpdateInterval)
	}
	return nil
}

// PlacementLimits are a tenant's shard policy, with Pyroscope's keys and
// defaults (docs/compatibility.md#default-limits). A dataset without a
// placement rule gets DefaultDatasetShards shards inside the tenant's
// TenantShards; a rule replaces all three settings.
type PlacementLimits struct {
	TenantShards         int           `yaml:"adaptive_placement_tenant_shards"`
	DefaultDatasetShards int           `yaml:"adaptive_placement_default_dataset_shards"`
	LoadBalancing        LoadBalancing `yaml:"adaptive_placement_load_balancing"`
}

func (l *PlacementLimits) RegisterFlags(f *flag.FlagSet) {
	f.IntVar(&l.TenantShards, "adaptive-placement.tenant-shards", 0, "Shards a tenant's data may spread over, for datasets without a placement rule; 0 means all shards. -distributor.ingestion-tenant-shard-size raises it.")
	f.IntVar(&l.DefaultDatasetShards, "adaptive-placement.default-dataset-shards", 1, "Shards one dataset (service_name) of a tenant is spread over when no placement rule names it.")
	l.LoadBalancing = LoadBalancingDynamic
	f.Var(&l.LoadBalancing, "adaptive-placement.load-balancing", "How a profile picks one of its dataset's shards when no placement rule names the dataset: fingerprint (series stay on one shard), round-robin, or dynamic (fingerprint; the metastore's rules choose per dataset).")
}

// Validate reports settings placement cannot use.
func (l *PlacementLimits) Validate() error {
	switch {
	case l.TenantShards < 0:
		return fmt.Errorf("adaptive_placement_tenant_shards must not be negative, got %d", l.TenantShards)
	case l.DefaultDatasetShards < 0:
		return fmt.Errorf("adaptive_placement_default_dataset_shards must not be negative, got %d", l.DefaultDatasetShards)
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
