package distributor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/dskit/services"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/internal/placement/rules"
	"github.com/pyrodist/pyrodist/internal/placementrules"
	"github.com/pyrodist/pyrodist/internal/segmentwriter"
	"github.com/pyrodist/pyrodist/test/testutil/poll"
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
	rings := routeVectorRings()
	sets := map[string]*routeRules{}
	checked := 0
	for _, line := range routeVectorLines(t, "../placement/rules/testdata/placement-rules-vectors.jsonl") {
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
		if err := json.Unmarshal(line, &v); err != nil {
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

// Issue 18's done-when: with a filesystem bucket, writing a new rules
// object moves a hot dataset to more shards within one poll interval.
// Profiles of one dataset go through the whole pipeline (validate, split,
// place, send) to a Router that reads the rules from the running poller.
func TestNewRulesObjectSpreadsHotDataset(t *testing.T) {
	bucket, err := filesystem.NewBucket(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const interval = 100 * time.Millisecond
	poller, err := placementrules.New(bucket, interval, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := services.StartAndAwaitRunning(context.Background(), poller); err != nil {
		t.Fatal(err)
	}
	defer services.StopAndAwaitTerminated(context.Background(), poller) //nolint:errcheck

	ring := placement.NewRing(routeSixWriters(-1))
	pusher := &routePusher{}
	router, err := NewRouter(routeRing{ring}, pusher, RouterConfig{Rules: poller})
	if err != nil {
		t.Fatal(err)
	}
	// The test pushes as fast as it polls, which is no tenant's real rate:
	// a rate limit would turn a slow poll (a busy machine) into a failure.
	limits := defaultLimits()
	limits.IngestionRateMB, limits.IngestionBurstSizeMB = 1<<20, 1<<20
	d := newTestDistributor(t, limits, router)
	raw := recentProfile(t, "cpu", time.Now())
	// push sends one profile from each of 16 pods of the hot dataset and
	// gives the shards they were sent with.
	push := func(ctx context.Context) (map[uint32]bool, error) {
		pusher.mu.Lock()
		pusher.reqs = nil
		pusher.mu.Unlock()
		for i := range 16 {
			labels := []*typesv1.LabelPair{{Name: "service_name", Value: "hot"}, {Name: "__name__", Value: "process_cpu"}, {Name: "pod", Value: fmt.Sprint("pod-", i)}}
			if err := d.Push(ctx, "tenant-a", pushOne(labels, raw)); err != nil {
				return nil, err
			}
		}
		pusher.mu.Lock()
		defer pusher.mu.Unlock()
		shards := map[uint32]bool{}
		for _, req := range pusher.reqs {
			shards[req.Shard] = true
		}
		return shards, nil
	}
	before, err := push(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 1 {
		t.Fatalf("without rules the dataset is on %d shards, want 1", len(before))
	}

	obj := rulesobject.Encode(time.Now(), rulesobject.Dataset{Tenant: "tenant-a", Name: "hot", DatasetShards: 8, LoadBalancing: 1})
	if err := bucket.Upload(context.Background(), placementrules.ObjectPath, bytes.NewReader(obj)); err != nil {
		t.Fatal(err)
	}
	// The rule's dataset range: the 8 shards Pyroscope's placement gives the
	// dataset at fingerprint offsets 0..7.
	want := map[uint32]bool{}
	for off := range uint64(8) {
		shard, _ := ring.Place(placement.NewKey("tenant-a", "hot", off), placement.Policy{DatasetShards: 8}, "", nil)
		want[shard] = true
	}
	var after map[uint32]bool
	err = poll.Until(context.Background(), 10*time.Second, 5*time.Second, interval/4, func(ctx context.Context) error {
		var err error
		if after, err = push(ctx); err != nil {
			return poll.Stop(err)
		}
		if len(after) < 2 {
			return fmt.Errorf("the dataset is still on %d shard(s)", len(after))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for s := range after {
		if !want[s] {
			t.Errorf("shard %d is outside the rule's dataset shards %v", s, want)
		}
	}
	t.Logf("hot dataset: shards %v before the rules object, %v after", before, after)
}

// BenchmarkRouterSend with rules in use, the profile's dataset ruled or
// not: the lookup adds no allocation.
func BenchmarkRouterSendWithRules(b *testing.B) {
	var in []placement.Instance
	for i := range 30 {
		in = append(in, placement.Instance{ID: fmt.Sprintf("sw-%02d", i), Addr: fmt.Sprint(i), Zone: fmt.Sprint("zone-", i%3), Tokens: 4})
	}
	src := &routeRules{}
	var ds []rulesobject.Dataset
	for i := range 1000 {
		ds = append(ds, rulesobject.Dataset{Tenant: "tenant-a", Name: fmt.Sprint("svc-", i), DatasetShards: 4})
	}
	ds = append(ds, rulesobject.Dataset{Tenant: "tenant-a", Name: "checkout", DatasetShards: 8})
	src.p.Store(mustRules(b, rulesobject.Encode(time.Now(), ds...)))
	r, _ := newTestRouter(routeRing{placement.NewRing(in)}, routePlacementLimits(0, 1, config.LoadBalancingDynamic), routeNop{}, RouterConfig{Zone: "zone-1", PreferSameZone: true, Rules: src})
	for _, service := range []string{"checkout", "unruled"} {
		b.Run(service, func(b *testing.B) {
			p := routeProfile("tenant-a", [][2]string{{"__name__", "process_cpu"}, {"service_name", service}})
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Send(context.Background(), p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
