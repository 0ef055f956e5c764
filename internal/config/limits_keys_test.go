package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pyroscopeLimitKeys are the YAML keys of Pyroscope's per-tenant Limits
// (pkg/validation/limits.go at 3fe6a45, inline blocks expanded).
var pyroscopeLimitKeys = strings.Fields(`
ingestion_rate_mb ingestion_burst_size_mb ingestion_limit ingestion_body_limit_mb
distributor_sampling keep_stripped_profiles max_label_name_length max_label_value_length
max_label_names_per_series max_sessions_per_series enforce_labels_order
disable_label_sanitization push_max_concurrency max_profile_size_bytes
max_profile_stacktrace_samples max_profile_stacktrace_sample_labels
max_profile_stacktrace_depth max_profile_symbol_value_length distributor_usage_groups
distributor_aggregation_window distributor_aggregation_period ingestion_relabeling_rules
ingestion_relabeling_default_rules_position sample_type_relabeling_rules
ingestion_tenant_shard_size ingestion_artificial_delay max_local_series_per_tenant
max_global_series_per_tenant max_query_lookback max_query_length max_query_parallelism
query_analysis_enabled query_analysis_series_enabled include_stripped_profiles
max_flamegraph_nodes_default max_flamegraph_nodes_max
max_flamegraph_nodes_on_select_merge_profile store_gateway_tenant_shard_size
split_queries_by_interval query_sanitize_on_merge max_async_query_concurrency
compactor_blocks_retention_period compactor_split_and_merge_shards
compactor_split_and_merge_stage_size compactor_split_groups compactor_tenant_shard_size
compactor_partial_block_deletion_delay compactor_downsampler_enabled s3_sse_type
s3_sse_kms_key_id s3_sse_kms_encryption_context reject_older_than reject_newer_than
write_path write_path_ingester_weight write_path_segment_writer_weight
write_path_segment_writer_timeout write_path_compression async_ingest
enable_query_backend enable_query_backend_from query_tree_enabled retention_period
adaptive_placement_tenant_shards adaptive_placement_default_dataset_shards
adaptive_placement_load_balancing adaptive_placement_min_dataset_shards
adaptive_placement_max_dataset_shards adaptive_placement_unit_size_bytes
adaptive_placement_burst_window adaptive_placement_decay_window recording_rules
max_recording_rules symbolizer`)

// The usage-group keys are acted on once their block is in Limits; until
// then they are the only Pyroscope keys this test lets be unknown.
var usageKeys = map[string]bool{"distributor_usage_groups": true, "distributor_sampling": true, "ingestion_limit": true}

func TestEveryPyroscopeKeyIsClassified(t *testing.T) {
	for _, k := range pyroscopeLimitKeys {
		if c := ClassifyLimitKey(k); c == KeyUnknown && !usageKeys[k] {
			t.Errorf("%s: %v", k, c)
		}
	}
	for _, k := range []string{"ingestion_rate_mbb", "overrides", ""} {
		if c := ClassifyLimitKey(k); c != KeyUnknown {
			t.Errorf("%q: %v, want warned", k, c)
		}
	}
}

func TestActedOnKeys(t *testing.T) {
	for k, want := range map[string]KeyClass{
		"ingestion_rate_mb":                  KeyActedOn,
		"ingestion_relabeling_rules":         KeyActedOn,
		"sample_type_relabeling_rules":       KeyActedOn,
		"adaptive_placement_tenant_shards":   KeyActedOn, // an inline block
		"ingestion_tenant_shard_size":        KeyActedOn,
		"enforce_labels_order":               KeyNotOurs,
		"adaptive_placement_unit_size_bytes": KeyNotOurs,
		"compactor_blocks_retention_period":  KeyNotOurs,
	} {
		if got := ClassifyLimitKey(k); got != want {
			t.Errorf("%s: %v, want %v", k, got, want)
		}
	}
	for _, k := range ActedOnLimitKeys() {
		if notOursKeys[k] != "" && k != "keep_stripped_profiles" {
			t.Errorf("%s is a field of Limits and listed as not ours", k)
		}
	}
	if n := len(NotOursLimitKeys()); n < 40 {
		t.Errorf("only %d keys accepted as not ours", n)
	}
}

func TestLoadAcceptsPyroscopeLimits(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", `
limits:
  ingestion_rate_mb: 8
  max_query_lookback: 7d
  compactor_blocks_retention_period: 30d
  ingestion_relabeling_rules:
    - {action: drop, source_labels: [environment], regex: secret}
`)
	c, err := load(t, "-config.file", good)
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.IngestionRateMB != 8 || len(c.Limits.IngestionRelabelingRules) != 1 {
		t.Errorf("limits: %+v", c.Limits)
	}
	for name, body := range map[string]string{
		"typo":          "limits:\n  ingestion_rate_mbb: 8\n",
		"bad rule":      "limits:\n  ingestion_relabeling_rules: [{action: explode}]\n",
		"bad position":  "limits:\n  ingestion_relabeling_default_rules_position: end\n",
		"other section": "server:\n  max_query_lookback: 7d\n",
	} {
		if _, err := load(t, "-config.file", writeFile(t, dir, "bad.yaml", body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c, err = load(t, "-distributor.sample-type-relabeling-rules", `[{"action": "drop", "source_labels": ["__type__"], "regex": "alloc_.*"}]`)
	if err != nil || len(c.Limits.SampleTypeRelabelingRules) != 1 {
		t.Fatalf("rules flag: %v", err)
	}
	if _, err := load(t, "-distributor.sample-type-relabeling-rules", `[{"action": "replace", "target_label": "a"}]`); err == nil {
		t.Error("a replace rule for sample types was accepted")
	}
}

// Durations load in Pyroscope's form (model.Duration) as well as Go's.
func TestDurationForms(t *testing.T) {
	for in, want := range map[string]string{"1d": "1d", "7d": "1w", "0": "0s", "90m": "1h30m", "1.5h": "1h30m", "1h0m0s": "1h"} {
		var d Duration
		if err := d.Set(in); err != nil || d.String() != want {
			t.Errorf("%s: %v %v, want %s", in, d, err, want)
		}
	}
	var d Duration
	if err := d.Set("soon"); err == nil {
		t.Error("'soon' parsed")
	}
	dir := t.TempDir()
	c, err := load(t, "-config.file", writeFile(t, dir, "c.yaml", "limits:\n  reject_older_than: 1d\n  reject_newer_than: 0\n"), "-validation.reject-newer-than=2w")
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.RejectOlderThan.String() != "1d" || c.Limits.RejectNewerThan.String() != "2w" {
		t.Errorf("windows %v %v", c.Limits.RejectOlderThan, c.Limits.RejectNewerThan)
	}
}

// docs/compatibility.md#overrides-file lists every key with what pyrodist
// does with it; the table must say what the code does.
func TestOverridesTableMatchesTheCode(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "compatibility.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "### Overrides file")
	if start < 0 {
		t.Fatal("docs/compatibility.md has no Overrides file section")
	}
	doc = doc[start:]
	if end := strings.Index(doc[1:], "\n## "); end > 0 {
		doc = doc[:end]
	}
	table := map[string]string{}
	for _, line := range strings.Split(doc, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		table[strings.Trim(strings.TrimSpace(cells[1]), "`")] = strings.TrimSpace(cells[2])
	}
	for _, k := range pyroscopeLimitKeys {
		got, ok := table[k]
		switch {
		case !ok:
			t.Errorf("%s is not in the table", k)
		case usageKeys[k] && ClassifyLimitKey(k) == KeyUnknown:
			// The usage-group block is not merged yet; the table already says acted on.
		case got != ClassifyLimitKey(k).String():
			t.Errorf("%s: the table says %q, the code %q", k, got, ClassifyLimitKey(k))
		}
	}
	for _, k := range append(ActedOnLimitKeys(), NotOursLimitKeys()...) {
		if _, ok := table[k]; !ok {
			t.Errorf("%s is not in the table", k)
		}
	}
}
