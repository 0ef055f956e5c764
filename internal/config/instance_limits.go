package config

import "flag"

// InstanceLimits bound what one distributor process holds, whatever the
// tenants send.
type InstanceLimits struct {
	// MaxInflightBytes is charged as profiles are inflated (plus an estimate
	// of their decoded form) and released when their request ends; past it
	// requests get 429 instead of growing memory.
	MaxInflightBytes int64 `yaml:"max_inflight_bytes"`
	// MaxMetricTenants and MaxMetricProfileNames bound the tenant and type
	// label values of the per-tenant metrics: every value is a series kept
	// for the life of the process, and clients choose them.
	MaxMetricTenants      int `yaml:"max_metric_tenants"`
	MaxMetricProfileNames int `yaml:"max_metric_profile_names"`
	// OTLPExportConcurrency and OTLPMaxConcurrency bound the profiles of
	// OTLP exports converted and pushed at once: per export, and over all
	// exports of the process (an eBPF profiler's export carries hundreds).
	OTLPExportConcurrency int `yaml:"otlp_export_concurrency"`
	OTLPMaxConcurrency    int `yaml:"otlp_max_concurrency"`
}

func (c *InstanceLimits) RegisterFlags(f *flag.FlagSet) {
	f.Int64Var(&c.MaxInflightBytes, "distributor.max-inflight-bytes", 0, "Memory for profiles this process may hold at once: their decompressed bytes plus an estimate of their decoded form; past it requests get 429. 0: a quarter of the Go memory limit (or of the cgroup limit).")
	f.IntVar(&c.MaxMetricTenants, "distributor.max-metric-tenants", 1000, "Most tenants with series of their own in the per-tenant metrics; the others, and invalid tenant IDs, are recorded as tenant=\"__other__\". Tenants seen only in refused requests take at most half. 0: the default.")
	f.IntVar(&c.MaxMetricProfileNames, "distributor.max-metric-profile-names", 64, "Most profile names (__name__) with series of their own in the metrics' type label, besides the common ones (process_cpu, memory, wall, ...); the others, and invalid names, are recorded as type=\"__other__\". 0: the default.")
	f.IntVar(&c.OTLPExportConcurrency, "distributor.otlp.export-concurrency", 128, "Profiles of one OTLP export converted and pushed at once. 0: all of them.")
	f.IntVar(&c.OTLPMaxConcurrency, "distributor.otlp.max-concurrency", 1024, "Profiles of all OTLP exports this process converts and pushes at once; the others wait. 0: unbounded.")
}
