// Package loadresult is the JSON that test/cmd/loadgen writes for a run and
// hack/benchreport reads back. Both use these types, so a field renamed on one
// side cannot quietly read as zero on the other.
package loadresult

// Result is one load run.
type Result struct {
	Protocol     string           `json:"protocol"`
	Mode         string           `json:"mode"`
	Workers      int              `json:"workers,omitempty"`
	TargetRate   float64          `json:"target_rate,omitempty"`
	Batch        int              `json:"batch"`
	Profiles     string           `json:"profiles"`
	Tenants      int              `json:"tenants"`
	Services     int              `json:"services"`
	DurationS    float64          `json:"duration_s"`
	Requests     int64            `json:"requests"`
	OK           int64            `json:"ok_profiles"`
	Skipped      int64            `json:"skipped,omitempty"`
	Errors       map[string]int64 `json:"errors"`
	ReqPerS      float64          `json:"requests_per_s"`
	ProfilesPerS float64          `json:"profiles_per_s"`
	RawMB        float64          `json:"raw_mb"`
	RawMBPerS    float64          `json:"raw_mb_per_s"`
	WireMBPerS   float64          `json:"wire_mb_per_s"`
	LatencyMs    Latency          `json:"latency_ms"`
	// ByProfile splits the latencies by corpus profile (requests carrying one profile).
	ByProfile map[string]Latency `json:"latency_ms_by_profile,omitempty"`
	Server    *ServerCost        `json:"server,omitempty"`
	Watched   map[string]Watched `json:"watched,omitempty"`
}

// Latency summarises a run's request latencies, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// ServerCost is the distributor's CPU during a run, when it was measured.
type ServerCost struct {
	CPUSeconds  float64 `json:"cpu_seconds"`
	MBPerCPUSec float64 `json:"mb_per_cpu_second"`
	CPUSecPerGB float64 `json:"cpu_seconds_per_gb"`
	Cores       float64 `json:"cores_used"`
}

// Watched is the highest and the last value a metric had during a run.
type Watched struct {
	Max  float64 `json:"max"`
	Last float64 `json:"last"`
}
