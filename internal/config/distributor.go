package config

import "flag"

// Distributor holds the distributor's own settings: its zone, same-zone
// preference and process-wide limits.
type Distributor struct {
	Zone           string `yaml:"zone"`
	PreferSameZone bool   `yaml:"prefer_same_zone"`
	// InstanceLimits protect this process (memory, concurrency) whatever the tenants do.
	InstanceLimits InstanceLimits `yaml:"instance_limits"`
}

func (c *Distributor) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.Zone, "distributor.zone", "", "Availability zone of this distributor; the same string the segment-writers register with -segment-writer.availability-zone.")
	f.BoolVar(&c.PreferSameZone, "distributor.prefer-same-zone", false, "Try the segment-writers of this distributor's zone first. The shard id stays Pyroscope's; only the writer order changes.")
	c.InstanceLimits.RegisterFlags(f)
}
