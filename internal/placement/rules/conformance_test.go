package rules

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/placement"
)

// A line of testdata/placement-rules-vectors.jsonl (see testdata/README.md).
type vector struct {
	Ring   string `json:"ring"`
	Rules  string `json:"rules"`
	Limits struct {
		TenantShards             int    `json:"adaptive_placement_tenant_shards"`
		DefaultDatasetShards     int    `json:"adaptive_placement_default_dataset_shards"`
		LoadBalancing            string `json:"adaptive_placement_load_balancing"`
		IngestionTenantShardSize int    `json:"ingestion_tenant_shard_size"`
	} `json:"limits"`
	Tenant      string     `json:"tenant"`
	Labels      [][]string `json:"labels"`
	Fingerprint string     `json:"fingerprint"`
	Policy      struct {
		TenantShards  int    `json:"tenant_shards"`
		DatasetShards int    `json:"dataset_shards"`
		Pick          string `json:"pick"`
	} `json:"policy"`
	placed
	RoundRobin []placed `json:"round_robin"`
}

type placed struct {
	Shard      uint32   `json:"shard"`
	Candidates []string `json:"active_candidates"`
}

// The rings the vectors were made on: the three rings of
// internal/placement/testdata/placement-vectors.jsonl.
func vectorRings() map[string]*placement.Ring {
	zones := []string{"zone-a", "zone-b", "zone-c"}
	six := make([]placement.Instance, 6)
	for i := range six {
		six[i] = placement.Instance{ID: fmt.Sprintf("segment-writer-%d", i), Addr: fmt.Sprintf("10.0.0.%d:9095", i), Zone: zones[i%3], Tokens: 4}
	}
	leaving := slices.Clone(six)
	leaving[2].State = placement.Leaving
	var five []placement.Instance
	for i, id := range []string{"sw-a", "sw-b", "sw-c", "sw-d", "sw-e"} {
		five = append(five, placement.Instance{ID: id, Addr: id + ":9095", Tokens: 3 + i})
	}
	return map[string]*placement.Ring{
		"six-writers-4-tokens":       placement.NewRing(six),
		"six-writers-one-leaving":    placement.NewRing(leaving),
		"five-writers-uneven-tokens": placement.NewRing(five),
	}
}

func readVectors(t *testing.T) []vector {
	t.Helper()
	f, err := os.Open("testdata/placement-rules-vectors.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v vector
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %d: %v", len(vs)+1, err)
		}
		vs = append(vs, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1080 {
		t.Fatalf("read %d vectors, want 1080", len(vs))
	}
	return vs
}

func readRules(t *testing.T) map[string]*Rules {
	t.Helper()
	files, err := filepath.Glob("testdata/rules/*.binpb")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rules objects: %v", err)
	}
	out := map[string]*Rules{}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[filepath.Base(name[:len(name)-len(".binpb")])] = r
	}
	return out
}

func (v *vector) limits(t *testing.T) *config.Limits {
	l := config.Defaults().Limits
	l.Placement.TenantShards = v.Limits.TenantShards
	l.Placement.DefaultDatasetShards = v.Limits.DefaultDatasetShards
	if err := l.Placement.LoadBalancing.Set(v.Limits.LoadBalancing); err != nil {
		t.Fatal(err)
	}
	l.IngestionTenantShardSize = v.Limits.IngestionTenantShardSize
	return &l
}

func (v *vector) key() (placement.Key, string) {
	var labels []*typesv1.LabelPair
	dataset := ""
	for _, l := range v.Labels {
		labels = append(labels, &typesv1.LabelPair{Name: l[0], Value: l[1]})
		if l[0] == "service_name" && dataset == "" {
			dataset = l[1]
		}
	}
	return placement.NewKey(v.Tenant, dataset, placement.Fingerprint(labels)), dataset
}

func pickName(p placement.Pick) string {
	if p == placement.PickRoundRobin {
		return "round-robin"
	}
	return "fingerprint"
}

func ids(r *placement.Ring, c []int32) []string {
	out := make([]string, len(c))
	for i, x := range c {
		out[i] = r.Instance(x).ID
	}
	return out
}

// Every vector recorded from Pyroscope's AdaptivePlacement and Distributor
// at 3fe6a45: the policy the rules object and the limits give, then the
// shard and the candidate order on the ring. Round-robin vectors list every
// placement Pyroscope made in 2000 draws; ours must stay among them and,
// over 500 draws, reach each.
func TestRulesVectors(t *testing.T) {
	rings, rules := vectorRings(), readRules(t)
	for i, v := range readVectors(t) {
		line := i + 1
		r, set := rings[v.Ring], rules[v.Rules]
		if r == nil || set == nil {
			t.Fatalf("line %d: unknown ring %q or rules %q", line, v.Ring, v.Rules)
		}
		k, dataset := v.key()
		if got := fmt.Sprint(k.Fingerprint); got != v.Fingerprint {
			t.Fatalf("line %d: fingerprint %s, want %s", line, got, v.Fingerprint)
		}
		p := set.Policy(v.Tenant, dataset, v.limits(t))
		if p.TenantShards != v.Policy.TenantShards || p.DatasetShards != v.Policy.DatasetShards || pickName(p.Pick) != v.Policy.Pick {
			t.Errorf("line %d (%s/%s, rules %s): policy %+v, want %+v", line, v.Tenant, dataset, v.Rules, p, v.Policy)
			continue
		}
		buf := make([]int32, len(r.Instances()))
		if p.Pick == placement.PickFingerprint {
			shard, c := r.Place(k, p, "", buf)
			if shard != v.Shard || !slices.Equal(ids(r, c), v.Candidates) {
				t.Errorf("line %d: shard %d candidates %v, want %d %v", line, shard, ids(r, c), v.Shard, v.Candidates)
			}
			continue
		}
		if len(v.RoundRobin) == 0 {
			t.Fatalf("line %d: round-robin vector without placements", line)
		}
		hit := map[uint32]bool{}
		for range 500 {
			shard, c := r.Place(k, p, "", buf)
			j := slices.IndexFunc(v.RoundRobin, func(x placed) bool { return x.Shard == shard })
			if j < 0 || !slices.Equal(ids(r, c), v.RoundRobin[j].Candidates) {
				t.Fatalf("line %d: round-robin placed shard %d with %v, not among Pyroscope's %v", line, shard, ids(r, c), v.RoundRobin)
			}
			hit[shard] = true
		}
		if len(hit) != len(v.RoundRobin) {
			t.Errorf("line %d: round-robin reached %d of Pyroscope's %d shards", line, len(hit), len(v.RoundRobin))
		}
	}
}

// The same-zone preference on top of the rules: the shard stays the
// vector's, and the candidates are the vector's with the zone's writers
// first, each group in Pyroscope's order.
func TestRulesVectorsPreferSameZone(t *testing.T) {
	rings, rules := vectorRings(), readRules(t)
	n := 0
	for i, v := range readVectors(t) {
		if v.Ring == "five-writers-uneven-tokens" || v.Policy.Pick != "fingerprint" {
			continue // that ring has no zones; round-robin is covered above
		}
		r := rings[v.Ring]
		zoneOf := map[string]string{}
		for _, in := range r.Instances() {
			zoneOf[in.ID] = in.Zone
		}
		k, dataset := v.key()
		p := rules[v.Rules].Policy(v.Tenant, dataset, v.limits(t))
		for _, zone := range []string{"zone-a", "zone-b", "zone-c"} {
			var want, others []string
			for _, id := range v.Candidates {
				if zoneOf[id] == zone {
					want = append(want, id)
				} else {
					others = append(others, id)
				}
			}
			want = append(want, others...)
			buf := make([]int32, len(r.Instances()))
			shard, c := r.Place(k, p, zone, buf)
			if shard != v.Shard || !slices.Equal(ids(r, c), want) {
				t.Errorf("line %d, %s: shard %d candidates %v, want %d %v", i+1, zone, shard, ids(r, c), v.Shard, want)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no vector checked")
	}
}
