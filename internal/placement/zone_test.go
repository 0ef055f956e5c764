package placement

import (
	"fmt"
	"slices"
	"testing"
)

// partition is the reference for same-zone ordering: Pyroscope's order with
// the zone's instances moved first, each group keeping its order.
func partition(r *Ring, c []int32, zone string) []int32 {
	var own, other []int32
	for _, x := range c {
		if r.Instance(x).Zone == zone {
			own = append(own, x)
		} else {
			other = append(other, x)
		}
	}
	return append(own, other...)
}

func zonedRing(leavingZone string) *Ring {
	var in []Instance
	zones := []string{"zone-a", "zone-b", "zone-c"}
	for i := range 9 {
		z := zones[i%3]
		st := Active
		if z == leavingZone {
			st = Leaving
		}
		in = append(in, Instance{ID: fmt.Sprintf("segment-writer-%d", i), Addr: fmt.Sprintf("10.0.0.%d:9095", i), Zone: z, State: st, Tokens: 4})
	}
	return NewRing(in)
}

// bigZonedRing has 30 writers over 3 zones with uneven tokens and a few
// LEAVING: zones can fill the candidate list alone, so the walk skips
// between own-zone positions.
func bigZonedRing() *Ring {
	var in []Instance
	zones := []string{"zone-a", "zone-b", "zone-c"}
	for i := range 30 {
		st := Active
		if i%7 == 3 {
			st = Leaving
		}
		in = append(in, Instance{ID: fmt.Sprintf("sw-%02d", i), Addr: fmt.Sprint(i), Zone: zones[(i/2)%3], State: st, Tokens: 1 + i%5})
	}
	return NewRing(in)
}

func TestSameZoneOrdering(t *testing.T) {
	for name, r := range map[string]*Ring{"9 writers": zonedRing(""), "30 writers": bigZonedRing()} {
		t.Run(name, func(t *testing.T) { testSameZoneOrdering(t, r) })
	}
}

func testSameZoneOrdering(t *testing.T, r *Ring) {
	policies := []Policy{{}, {TenantShards: 8, DatasetShards: 3}, {TenantShards: 5, DatasetShards: 5}, {TenantShards: 40, DatasetShards: 7}}
	for _, zone := range []string{"zone-a", "zone-b", "zone-c"} {
		for i := range 300 {
			k := NewKey(fmt.Sprintf("tenant-%d", i%7), fmt.Sprintf("svc-%d", i), uint64(i)*0x9e3779b97f4a7c15)
			p := policies[i%len(policies)]
			full := make([]int32, len(r.Instances()))
			shard, ref := r.Place(k, p, "", full)
			want := partition(r, ref, zone)
			for _, n := range []int{1, 2, 3, 6, 9, 12} {
				buf := make([]int32, n)
				zShard, got := r.Place(k, p, zone, buf)
				if zShard != shard {
					t.Fatalf("zone %s key %d: shard %d, want Pyroscope's %d", zone, i, zShard, shard)
				}
				if !slices.Equal(got, want[:min(n, len(want))]) {
					t.Fatalf("zone %s key %d n=%d: candidates %v, want %v", zone, i, n, ids(r, got), ids(r, want[:min(n, len(want))]))
				}
				if r.ActiveInZone(zone) > 0 && r.Instance(got[0]).Zone != zone {
					t.Fatalf("zone %s key %d: first candidate in %s", zone, i, r.Instance(got[0]).Zone)
				}
			}
		}
	}
}

// A zone without ACTIVE writers (all LEAVING here, or unknown) falls back
// to Pyroscope's order unchanged.
func TestSameZoneFallback(t *testing.T) {
	r := zonedRing("zone-b")
	if n := r.ActiveInZone("zone-b"); n != 0 {
		t.Fatalf("ActiveInZone(zone-b) = %d, want 0", n)
	}
	if n := r.ActiveInZone("zone-a"); n != 3 {
		t.Fatalf("ActiveInZone(zone-a) = %d, want 3", n)
	}
	if got := ids(r, r.ZoneInstances("zone-b")); !slices.Equal(got, []string{"segment-writer-1", "segment-writer-4", "segment-writer-7"}) {
		t.Fatalf("ZoneInstances(zone-b) = %v", got)
	}
	if r.ZoneInstances("zone-x") != nil || r.ActiveInZone("zone-x") != 0 {
		t.Fatal("an unknown zone has instances")
	}
	for i := range 200 {
		k := NewKey("t", fmt.Sprintf("svc-%d", i), uint64(i))
		var a, b [6]int32
		s1, want := r.Place(k, Policy{}, "", a[:])
		for _, zone := range []string{"zone-b", "zone-x"} {
			s2, got := r.Place(k, Policy{}, zone, b[:])
			if s1 != s2 || !slices.Equal(got, want) {
				t.Fatalf("zone %s: shard %d %v, want %d %v", zone, s2, ids(r, got), s1, ids(r, want))
			}
			for _, c := range got {
				if st := r.Instance(c).State; st != Active {
					t.Fatalf("candidate %s is %s", r.Instance(c).ID, st)
				}
			}
		}
	}
}

// Adding a writer at the end of the ID order: of the old N shard positions
// exactly its token count change owner, all to the new writer (the shuffle
// moves only the delta); and with a sized tenant sub-ring few datasets move.
func TestStabilityAddWriterAtEnd(t *testing.T) {
	const writers, tokens = 20, 4
	var in []Instance
	for i := range writers {
		in = append(in, Instance{ID: fmt.Sprintf("sw-%03d", i), Addr: fmt.Sprint(i), Tokens: tokens})
	}
	before := NewRing(in)
	after := NewRing(append(slices.Clone(in), Instance{ID: fmt.Sprintf("sw-%03d", writers), Tokens: tokens}))
	changed := 0
	for k := range before.Len() {
		if before.ShardOwner(uint32(k+1)) != after.ShardOwner(uint32(k+1)) {
			changed++
			if after.Instance(after.ShardOwner(uint32(k+1))).ID != "sw-020" {
				t.Fatalf("position %d moved to %s, not to the new writer", k, after.Instance(after.ShardOwner(uint32(k+1))).ID)
			}
		}
	}
	if changed != tokens {
		t.Fatalf("%d of the old positions changed owner, want %d", changed, tokens)
	}

	share := func(p Policy) float64 {
		moved, total := 0, 0
		for tn := range 50 {
			for d := range 200 {
				k := NewKey(fmt.Sprintf("tenant-%d", tn), fmt.Sprintf("svc-%d", d), 0)
				var a, b [1]int32
				_, c1 := before.Place(k, p, "", a[:])
				_, c2 := after.Place(k, p, "", b[:])
				total++
				if before.Instance(c1[0]).ID != after.Instance(c2[0]).ID {
					moved++
				}
			}
		}
		return float64(moved) / float64(total)
	}
	expected := 1.0 / (writers + 1) // the new writer's share
	// A dataset moves when its position goes to the new writer, or when its
	// tenant's start or the ring wrap shifts it: about 2x the share here.
	if got := share(Policy{TenantShards: 8, DatasetShards: 1}); got > 3*expected || got < expected/2 {
		t.Errorf("tenant_shards=8: %.3f of datasets moved, want within [%.3f, %.3f]", got, expected/2, 3*expected)
	}
	// With the tenant spanning every shard (Pyroscope's default),
	// (tenant start + dataset offset) mod N shifts with N, so about half of
	// the datasets move: a property of Pyroscope's algorithm, kept for
	// shard-id compatibility. Logged, not asserted.
	t.Logf("tenant_shards=0: %.3f of datasets moved (new writer's share %.3f)", share(Policy{}), expected)
}
