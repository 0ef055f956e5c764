//go:build ignore

// Command rulesvectors records placement conformance vectors with adaptive
// placement rules by running Pyroscope's own code (3fe6a45): the rules
// object is marshalled and unmarshalled with its vtproto types, applied by
// AdaptivePlacement with limits from validation.Overrides, and placed by
// its Distributor on a mock ring. Run it from the root of a Pyroscope
// checkout: go run ./cmd/rulesvectors <outdir>.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/grafana/dskit/ring"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/grafana/pyroscope/v2/pkg/segmentwriter/client/distributor"
	"github.com/grafana/pyroscope/v2/pkg/segmentwriter/client/distributor/placement"
	"github.com/grafana/pyroscope/v2/pkg/segmentwriter/client/distributor/placement/adaptiveplacement"
	pb "github.com/grafana/pyroscope/v2/pkg/segmentwriter/client/distributor/placement/adaptiveplacement/adaptive_placementpb"
	"github.com/grafana/pyroscope/v2/pkg/testhelper"
	"github.com/grafana/pyroscope/v2/pkg/validation"
)

func rings() map[string][]ring.InstanceDesc {
	zones := []string{"zone-a", "zone-b", "zone-c"}
	var six []ring.InstanceDesc
	for i := 0; i < 6; i++ {
		six = append(six, ring.InstanceDesc{Id: fmt.Sprintf("segment-writer-%d", i), Addr: fmt.Sprintf("10.0.0.%d:9095", i), Zone: zones[i%3], State: ring.ACTIVE, Tokens: make([]uint32, 4)})
	}
	leaving := slices.Clone(six)
	leaving[2].State = ring.LEAVING
	var five []ring.InstanceDesc
	for i, id := range []string{"sw-a", "sw-b", "sw-c", "sw-d", "sw-e"} {
		five = append(five, ring.InstanceDesc{Id: id, Addr: id + ":9095", State: ring.ACTIVE, Tokens: make([]uint32, 3+i)})
	}
	return map[string][]ring.InstanceDesc{
		"six-writers-4-tokens":       six,
		"six-writers-one-leaving":    leaving,
		"five-writers-uneven-tokens": five,
	}
}

var ringNames = []string{"six-writers-4-tokens", "six-writers-one-leaving", "five-writers-uneven-tokens"}

const (
	fp = pb.LoadBalancing_LOAD_BALANCING_FINGERPRINT
	rr = pb.LoadBalancing_LOAD_BALANCING_ROUND_ROBIN
	un = pb.LoadBalancing_LOAD_BALANCING_UNSPECIFIED
)

func ds(tenant uint32, name string, ts, dss uint64, lb pb.LoadBalancing) *pb.DatasetPlacement {
	return &pb.DatasetPlacement{Tenant: tenant, Name: name, TenantShardLimit: ts, DatasetShardLimit: dss, LoadBalancing: lb}
}

// The rules objects: each is written as <name>.binpb next to the vectors.
func ruleSets() map[string]*pb.PlacementRules {
	return map[string]*pb.PlacementRules{
		"none": {CreatedAt: 1767225600000000000},
		"basic": {
			Tenants: []*pb.TenantPlacement{{TenantId: "anonymous"}, {TenantId: "tenant-a"}},
			Datasets: []*pb.DatasetPlacement{
				ds(0, "checkout", 0, 4, fp),
				ds(0, "cart", 8, 3, rr),
				ds(0, "search", 0, 0, un),
				ds(1, "checkout", 5, 5, un),
				ds(1, "hot-service", 0, 24, fp),
				ds(1, "search", 30, 64, fp),
			},
			CreatedAt: 1767225600000000000,
		},
		// The same (tenant, dataset) twice: the later entry wins; two
		// tenant entries name the same tenant; a tenant without datasets.
		"duplicates": {
			Tenants: []*pb.TenantPlacement{{TenantId: "tenant-a"}, {TenantId: "anonymous"}, {TenantId: "tenant-a"}, {TenantId: "team-b"}},
			Datasets: []*pb.DatasetPlacement{
				ds(0, "checkout", 0, 2, fp),
				ds(1, "hot-service", 12, 6, rr),
				ds(2, "checkout", 3, 7, fp),
				ds(1, "cart", 2, 2, un),
				ds(1, "hot-service", 16, 9, fp),
			},
			CreatedAt: 1767225660000000000,
		},
	}
}

var ruleNames = []string{"none", "basic", "duplicates"}

type limits struct {
	TenantShards             uint64 `json:"adaptive_placement_tenant_shards"`
	DefaultDatasetShards     uint64 `json:"adaptive_placement_default_dataset_shards"`
	LoadBalancing            string `json:"adaptive_placement_load_balancing"`
	IngestionTenantShardSize int    `json:"ingestion_tenant_shard_size"`
}

var limitSets = []limits{
	{0, 1, "dynamic", 0},
	{4, 2, "fingerprint", 8},
	{10, 3, "round-robin", 6},
	{0, 2, "dynamic", 5},
}

type placed struct {
	Shard      uint32   `json:"shard"`
	Candidates []string `json:"active_candidates"`
}

type policy struct {
	TenantShards  int    `json:"tenant_shards"`
	DatasetShards int    `json:"dataset_shards"`
	Pick          string `json:"pick"`
}

type vector struct {
	Ring        string     `json:"ring"`
	Rules       string     `json:"rules"`
	Limits      limits     `json:"limits"`
	Tenant      string     `json:"tenant"`
	Labels      [][]string `json:"labels"`
	Fingerprint string     `json:"fingerprint"`
	Policy      policy     `json:"policy"`
	// Fingerprint picks: one placement.
	Shard      uint32   `json:"shard,omitempty"`
	Candidates []string `json:"active_candidates,omitempty"`
	// Round-robin picks: every placement seen, by shard.
	RoundRobin []placed `json:"round_robin,omitempty"`
}

func main() {
	out := os.Args[1]
	if err := os.MkdirAll(filepath.Join(out, "rules"), 0o755); err != nil {
		panic(err)
	}
	rs := ruleSets()
	decoded := map[string]*pb.PlacementRules{}
	for _, name := range ruleNames {
		b, err := rs[name].MarshalVT()
		if err != nil {
			panic(err)
		}
		if err := os.WriteFile(filepath.Join(out, "rules", name+".binpb"), b, 0o644); err != nil {
			panic(err)
		}
		var r pb.PlacementRules
		if err := r.UnmarshalVT(b); err != nil {
			panic(err)
		}
		decoded[name] = &r
	}
	f, err := os.Create(filepath.Join(out, "placement-rules-vectors.jsonl"))
	if err != nil {
		panic(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	tenants := []string{"anonymous", "tenant-a", "team-b"}
	datasets := []string{"checkout", "cart", "search", "hot-service", "absent"}
	n := 0
	for _, ringName := range ringNames {
		r := testhelper.NewMockRing(rings()[ringName], 1)
		for _, ruleName := range ruleNames {
			for _, lim := range limitSets {
				defaults := validation.MockDefaultLimits()
				defaults.AdaptivePlacementLimits.TenantShards = lim.TenantShards
				defaults.AdaptivePlacementLimits.DefaultDatasetShards = lim.DefaultDatasetShards
				if err := defaults.AdaptivePlacementLimits.LoadBalancing.Set(lim.LoadBalancing); err != nil {
					panic(err)
				}
				defaults.IngestionTenantShardSize = lim.IngestionTenantShardSize
				ov, err := validation.NewOverrides(*defaults, nil)
				if err != nil {
					panic(err)
				}
				ap := adaptiveplacement.NewAdaptivePlacement(ov)
				ap.Update(decoded[ruleName])
				d := distributor.NewDistributor(ap, r)
				for _, tenant := range tenants {
					for _, dataset := range datasets {
						for pod := 0; pod < 2; pod++ {
							labels := []*typesv1.LabelPair{
								{Name: "__name__", Value: "process_cpu"},
								{Name: "pod", Value: fmt.Sprintf("pod-%d", pod)},
								{Name: "service_name", Value: dataset},
							}
							k := distributor.NewTenantServiceDatasetKey(tenant, labels...)
							p := ap.Policy(k)
							v := vector{Ring: ringName, Rules: ruleName, Limits: lim, Tenant: tenant, Fingerprint: fmt.Sprint(k.Fingerprint)}
							for _, l := range labels {
								v.Labels = append(v.Labels, []string{l.Name, l.Value})
							}
							v.Policy = policy{TenantShards: p.TenantShards, DatasetShards: p.DatasetShards, Pick: pickKind(p, k)}
							if v.Policy.Pick == "fingerprint" {
								pl := place(d, k)
								v.Shard, v.Candidates = pl.Shard, pl.Candidates
							} else {
								seen := map[uint32]placed{}
								for i := 0; i < 2000; i++ {
									pl := place(d, k)
									if prev, ok := seen[pl.Shard]; ok && !slices.Equal(prev.Candidates, pl.Candidates) {
										panic("one shard, two candidate orders")
									}
									seen[pl.Shard] = pl
								}
								for _, pl := range seen {
									v.RoundRobin = append(v.RoundRobin, pl)
								}
								slices.SortFunc(v.RoundRobin, func(a, b placed) int { return int(a.Shard) - int(b.Shard) })
							}
							if err := enc.Encode(v); err != nil {
								panic(err)
							}
							n++
						}
					}
				}
			}
		}
	}
	fmt.Fprintln(os.Stderr, "vectors:", n)
}

// pickKind tells the two pick functions apart: fingerprint-mod is the
// fingerprint modulo n every time, round-robin a random draw.
func pickKind(p placement.Policy, k placement.Key) string {
	const n = 1 << 30
	for i := 0; i < 8; i++ {
		if p.PickShard(n) != int(k.Fingerprint%n) {
			return "round-robin"
		}
	}
	return "fingerprint"
}

func place(d *distributor.Distributor, k placement.Key) placed {
	m, err := d.Distribute(k)
	if err != nil {
		panic(err)
	}
	pl := placed{Shard: m.Shard}
	it := placement.ActiveInstances(m.Instances)
	for it.Next() {
		pl.Candidates = append(pl.Candidates, it.At().Id)
	}
	return pl
}
