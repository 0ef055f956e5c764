package config

import (
	"flag"
	"time"
)

// RuntimeConfig points at overrides.yaml, the per-tenant limits file that is
// reloaded while the distributor runs (as Pyroscope's runtime config is).
type RuntimeConfig struct {
	File   string        `yaml:"file"`
	Period time.Duration `yaml:"period"`
}

func (c *RuntimeConfig) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.File, "runtime-config.file", "", "Path of the per-tenant overrides file (overrides.yaml), reloaded when it changes.")
	f.DurationVar(&c.Period, "runtime-config.reload-period", 10*time.Second, "How often the overrides file is checked for changes.")
}

// Overrides is the content of overrides.yaml: per-tenant limits. A tenant's
// entry starts from the defaults in Config.Limits; keys it names replace them.
type Overrides struct {
	Overrides map[string]Limits `yaml:"overrides"`
}
