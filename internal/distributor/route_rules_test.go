package distributor

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/internal/placement/rules"
	"github.com/pyrodist/pyrodist/internal/segmentwriter"
	"github.com/pyrodist/pyrodist/test/testutil/rulesobject"
)

// routeRules is a rules source whose rules a test swaps.
type routeRules struct{ p atomic.Pointer[rules.Rules] }

func (s *routeRules) Rules() *rules.Rules { return s.p.Load() }

func mustRules(t testing.TB, b []byte) *rules.Rules {
	t.Helper()
	r, err := rules.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Through the Router, the rules vectors recorded from Pyroscope (the
// fingerprint ones on the six-writer rings) give Pyroscope's shard and
// candidates, with the zone preference off and on.
func TestRouterMatchesPyroscopeRulesVectors(t *testing.T) {
	f, err := os.Open("../placement/rules/testdata/placement-rules-vectors.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rings := map[string]*placement.Ring{
		"six-writers-4-tokens":    placement.NewRing(routeSixWriters(-1)),
		"six-writers-one-leaving": placement.NewRing(routeSixWriters(2)),
	}
	sets := map[string]*routeRules{}
	checked := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v struct {
			Ring   string `json:"ring"`
			Rules  string `json:"rules"`
			Limits struct {
				TenantShards         int                  `json:"adaptive_placement_tenant_shards"`
				DefaultDatasetShards int                  `json:"adaptive_placement_default_dataset_shards"`
				LoadBalancing        config.LoadBalancing `json:"adaptive_placement_load_balancing"`
				ShardSize            int                  `json:"ingestion_tenant_shard_size"`
			} `json:"limits"`
			Tenant     string     `json:"tenant"`
			Labels     [][]string `json:"labels"`
			Shard      uint32     `json:"shard"`
			Candidates []string   `json:"active_candidates"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		ring := rings[v.Ring]
		if ring == nil || v.Shard == 0 {
			continue // another ring, or a round-robin vector
		}
		src := sets[v.Rules]
		if src == nil {
			b, err := os.ReadFile("../placement/rules/testdata/rules/" + v.Rules + ".binpb")
			if err != nil {
				t.Fatal(err)
			}
			src = &routeRules{}
			src.p.Store(mustRules(t, b))
			sets[v.Rules] = src
		}
		l := routePlacementLimits(v.Limits.TenantShards, v.Limits.DefaultDatasetShards, v.Limits.LoadBalancing)
		l.IngestionTenantShardSize = v.Limits.ShardSize
		var labels [][2]string
		for _, x := range v.Labels {
			labels = append(labels, [2]string{x[0], x[1]})
		}
		for _, zone := range []string{"", "zone-b"} {
			pusher := &routePusher{}
			r, err := newTestRouter(routeRing{ring}, l, pusher, RouterConfig{Zone: zone, PreferSameZone: zone != "", Rules: src})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Send(context.Background(), routeProfile(v.Tenant, labels)); err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(v.Candidates)
			if zone != "" {
				// The zone's writers first, each group in Pyroscope's order.
				slices.SortStableFunc(want, func(a, b string) int {
					return routeZoneRank(ring, a, zone) - routeZoneRank(ring, b, zone)
				})
			}
			want = want[:min(len(want), segmentwriter.MaxAttempts)]
			if got := pusher.reqs[0].Shard; got != v.Shard || !slices.Equal(pusher.cands[0], want) {
				t.Errorf("%s %s/%v rules %s zone %q: shard %d candidates %v, want %d %v",
					v.Ring, v.Tenant, v.Labels, v.Rules, zone, got, pusher.cands[0], v.Shard, want)
			}
		}
		checked++
	}
	if checked < 500 {
		t.Fatalf("checked %d vectors", checked)
	}
}

func routeZoneRank(r *placement.Ring, id, zone string) int {
	for _, in := range r.Instances() {
		if in.ID == id && in.Zone == zone {
			return 0
		}
	}
	return 1
}

// Rules swapped while the Router runs take effect on the next profile: a
// hot dataset given more shards spreads over them, and without rules it
// goes back to its tenant's single shard.
func TestRouterFollowsRulesSwap(t *testing.T) {
	ring := placement.NewRing(routeSixWriters(-1))
	src := &routeRules{}
	pusher := &routePusher{}
	r, err := newTestRouter(routeRing{ring}, routePlacementLimits(0, 1, config.LoadBalancingDynamic), pusher, RouterConfig{Rules: src})
	if err != nil {
		t.Fatal(err)
	}
	shards := func() map[uint32]bool {
		pusher.reqs = nil
		for _, pod := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"} {
			p := routeProfile("tenant-a", [][2]string{{"pod", pod}, {"service_name", "hot"}})
			if err := r.Send(context.Background(), p); err != nil {
				t.Fatal(err)
			}
		}
		out := map[uint32]bool{}
		for _, req := range pusher.reqs {
			out[req.Shard] = true
		}
		return out
	}
	if got := shards(); len(got) != 1 {
		t.Fatalf("without rules the dataset is on %d shards, want 1", len(got))
	}
	src.p.Store(mustRules(t, rulesobject.Encode(time.Now(), rulesobject.Dataset{Tenant: "tenant-a", Name: "hot", DatasetShards: 8, LoadBalancing: 2})))
	if got := shards(); len(got) < 2 || len(got) > 8 {
		t.Fatalf("with 8 round-robin shards the dataset is on %d shards", len(got))
	}
	src.p.Store(mustRules(t, rulesobject.Encode(time.Now(), rulesobject.Dataset{Tenant: "tenant-b", Name: "hot", DatasetShards: 8})))
	if got := shards(); len(got) != 1 {
		t.Fatalf("with another tenant's rule the dataset is on %d shards, want 1", len(got))
	}
}
