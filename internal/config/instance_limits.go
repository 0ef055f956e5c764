package config

import "flag"

// InstanceLimits bound what one distributor process holds, whatever the
// tenants send.
type InstanceLimits struct {
	// MaxInflightBytes is charged as profiles are inflated (plus an estimate
	// of their decoded form) and released when their request ends; past it
	// requests get 429 instead of growing memory.
	MaxInflightBytes int64 `yaml:"max_inflight_bytes"`
}

func (c *InstanceLimits) RegisterFlags(f *flag.FlagSet) {
	f.Int64Var(&c.MaxInflightBytes, "distributor.max-inflight-bytes", 0, "Memory for profiles this process may hold at once: their decompressed bytes plus an estimate of their decoded form; past it requests get 429. 0: a quarter of the Go memory limit (or of the cgroup limit).")
}
