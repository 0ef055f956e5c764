package config

import "flag"

// Limits are per-tenant limits, with Pyroscope's YAML keys and defaults
// (spec §5.6). Owned by the ingest work (issue 3); extend here.
type Limits struct {
	IngestionRateMB      float64 `yaml:"ingestion_rate_mb"`
	IngestionBurstSizeMB float64 `yaml:"ingestion_burst_size_mb"`
	// Placement is the tenant's shard policy (Pyroscope's adaptive_placement_* keys).
	Placement PlacementLimits `yaml:",inline"`
}

func (l *Limits) RegisterFlags(f *flag.FlagSet) {
	f.Float64Var(&l.IngestionRateMB, "distributor.ingestion-rate-limit-mb", 4, "Per-tenant ingestion rate limit in MiB/s of uncompressed profile data, shared by all distributors.")
	f.Float64Var(&l.IngestionBurstSizeMB, "distributor.ingestion-burst-size-mb", 2, "Per-tenant ingestion burst size in MiB; set it at least to the largest expected profile.")
	l.Placement.RegisterFlags(f)
}
