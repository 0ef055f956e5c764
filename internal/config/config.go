// Package config is the distributor's configuration file type. The distributor
// parses it and the operator renders it, so the two can never drift apart.
//
// Every block registers its flags next to its fields (dskit style); the flag
// defaults are the only place defaults live.
package config

import "flag"

// Config is the static config file (config.yaml). Changing it restarts pods.
type Config struct {
	Server              Server        `yaml:"server"`
	Distributor         Distributor   `yaml:"distributor"`
	Memberlist          Memberlist    `yaml:"memberlist"`
	SegmentWriter       SegmentWriter `yaml:"segment_writer"`
	MultitenancyEnabled bool          `yaml:"multitenancy_enabled"`
	// Limits are the defaults for every tenant; overrides.yaml changes them per tenant.
	Limits        Limits        `yaml:"limits"`
	RuntimeConfig RuntimeConfig `yaml:"runtime_config"`
	// AdaptivePlacement is how often the placement rules are read.
	AdaptivePlacement AdaptivePlacement `yaml:"adaptive_placement"`
	// Storage is the object store (Pyroscope's storage block); none by default.
	Storage Storage `yaml:"storage"`
	// DebugInfo is the debuginfo upload service, which writes to Storage.
	DebugInfo DebugInfo `yaml:"debug_info"`
}

// RegisterFlags registers every flag of the distributor with its default.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.Server.RegisterFlags(f)
	c.Distributor.RegisterFlags(f)
	c.Memberlist.RegisterFlags(f)
	c.SegmentWriter.RegisterFlags(f)
	f.BoolVar(&c.MultitenancyEnabled, "auth.multitenancy-enabled", false,
		"Require an X-Scope-OrgID header on every request; when false every request belongs to tenant 'anonymous'.")
	c.Limits.RegisterFlags(f)
	c.RuntimeConfig.RegisterFlags(f)
	c.AdaptivePlacement.RegisterFlags(f)
	c.Storage.RegisterFlags(f)
	c.DebugInfo.RegisterFlags(f)
}

// Defaults returns a Config holding every flag default.
func Defaults() Config {
	var c Config
	fs := flag.NewFlagSet("defaults", flag.ContinueOnError)
	c.RegisterFlags(fs)
	return c
}
