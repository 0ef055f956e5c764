package config

import (
	"reflect"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// KeyClass says what the distributor does with a per-tenant limits key of a
// Pyroscope config or overrides file (docs/compatibility.md lists them all).
type KeyClass int

const (
	// KeyUnknown is a key Pyroscope does not have either: most likely a typo.
	KeyUnknown KeyClass = iota
	// KeyActedOn is a key of Limits: the distributor applies it.
	KeyActedOn
	// KeyNotOurs is a Pyroscope key that other Pyroscope components act on
	// (or a distributor feature pyrodist does not have): accepted, ignored.
	KeyNotOurs
)

func (c KeyClass) String() string {
	switch c {
	case KeyActedOn:
		return "acted on"
	case KeyNotOurs:
		return "accepted, not ours"
	}
	return "warned"
}

// notOursKeys are the per-tenant keys of Pyroscope's Limits
// (pkg/validation/limits.go at 3fe6a45, inline blocks included) that
// pyrodist does not act on, each with who acts on them. A key that becomes a
// field of Limits is acted on from then on, whatever this list says.
var notOursKeys = map[string]string{
	// Distributor features pyrodist does not have.
	"distributor_aggregation_window": "distributor aggregation",
	"distributor_aggregation_period": "distributor aggregation",
	"ingestion_artificial_delay":     "distributor response delay",
	// The write path: pyrodist always sends to segment-writers,
	// uncompressed, and answers after they acked (docs/compatibility.md).
	"write_path":                        "distributor write path",
	"write_path_ingester_weight":        "distributor write path",
	"write_path_segment_writer_weight":  "distributor write path",
	"write_path_segment_writer_timeout": "distributor write path",
	"write_path_compression":            "distributor write path",
	"async_ingest":                      "distributor write path",
	// Ingester (v1 path).
	"enforce_labels_order":         "ingester",
	"max_local_series_per_tenant":  "ingester",
	"max_global_series_per_tenant": "ingester",
	// Querier and query frontend.
	"max_query_lookback":                           "querier",
	"max_query_length":                             "querier",
	"max_query_parallelism":                        "querier",
	"query_analysis_enabled":                       "querier",
	"query_analysis_series_enabled":                "querier",
	"include_stripped_profiles":                    "querier",
	"max_flamegraph_nodes_default":                 "querier",
	"max_flamegraph_nodes_max":                     "querier",
	"max_flamegraph_nodes_on_select_merge_profile": "querier",
	"split_queries_by_interval":                    "query-frontend",
	"query_sanitize_on_merge":                      "query-frontend",
	"max_async_query_concurrency":                  "query-frontend",
	"enable_query_backend":                         "query-frontend read path",
	"enable_query_backend_from":                    "query-frontend read path",
	"query_tree_enabled":                           "query-frontend read path",
	"symbolizer":                                   "query symbolizer",
	// Store-gateway and compactor (v1 storage).
	"store_gateway_tenant_shard_size":        "store-gateway",
	"compactor_blocks_retention_period":      "compactor",
	"compactor_split_and_merge_shards":       "compactor",
	"compactor_split_and_merge_stage_size":   "compactor",
	"compactor_split_groups":                 "compactor",
	"compactor_tenant_shard_size":            "compactor",
	"compactor_partial_block_deletion_delay": "compactor",
	"compactor_downsampler_enabled":          "compactor",
	// Object storage.
	"s3_sse_type":                   "object storage",
	"s3_sse_kms_key_id":             "object storage",
	"s3_sse_kms_encryption_context": "object storage",
	// Metastore: retention and the placement manager's own limits.
	"retention_period":                   "metastore index cleaner",
	"adaptive_placement_unit_size_bytes": "metastore placement manager",
	"adaptive_placement_burst_window":    "metastore placement manager",
	"adaptive_placement_decay_window":    "metastore placement manager",
	// The allocator's bounds when the metastore computes the rules; a
	// distributor applies the rules' numbers as they are, as Pyroscope's does.
	"adaptive_placement_min_dataset_shards": "metastore placement manager",
	"adaptive_placement_max_dataset_shards": "metastore placement manager",
	"recording_rules":                       "recording rules",
	"max_recording_rules":                   "recording rules",
}

// actedOnKeys are the YAML keys of Limits, inline blocks included, so a
// block added to Limits is acted on without being listed anywhere.
var actedOnKeys = sync.OnceValue(func() map[string]bool {
	keys := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			switch {
			case name == "-":
			case strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct:
				walk(f.Type)
			case strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
				walk(f.Type.Elem())
			case name != "":
				keys[name] = true
			}
		}
	}
	walk(reflect.TypeFor[Limits]())
	return keys
})

// ClassifyLimitKey says whether the distributor acts on a per-tenant key,
// accepts it as another component's, or does not know it.
func ClassifyLimitKey(key string) KeyClass {
	switch {
	case actedOnKeys()[key]:
		return KeyActedOn
	case notOursKeys[key] != "":
		return KeyNotOurs
	}
	return KeyUnknown
}

// ActedOnLimitKeys lists the keys the distributor acts on, sorted.
func ActedOnLimitKeys() []string {
	var out []string
	for k := range actedOnKeys() {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// NotOursLimitKeys lists the keys accepted for other components, sorted.
func NotOursLimitKeys() []string {
	var out []string
	for k := range notOursKeys {
		if ClassifyLimitKey(k) == KeyNotOurs {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// FilterLimitKeys takes out of a limits mapping every key the distributor
// does not act on and returns those keys by class, in file order. What is
// left decodes strictly into Limits. A node that is not a mapping is left
// as it is (decoding reports it).
func FilterLimitKeys(n *yaml.Node) (notOurs, unknown []string) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch ClassifyLimitKey(k.Value) {
		case KeyActedOn:
			kept = append(kept, k, v)
		case KeyNotOurs:
			notOurs = append(notOurs, k.Value)
		default:
			unknown = append(unknown, k.Value)
		}
	}
	n.Content = kept
	return notOurs, unknown
}
