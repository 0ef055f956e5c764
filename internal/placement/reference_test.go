package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// referencePlace is Pyroscope's shard choice and candidate walk
// (docs/compatibility.md#placement) written as plainly as possible:
// every position in walk order, each mapped to its instance, then
// Pyroscope's dedupe (first entry of an identity wins) and ACTIVE filter.
func referencePlace(r *Ring, k Key, p Policy) (uint32, []int32) {
	n := r.Len()
	T := p.TenantShards
	if T <= 0 || T > n {
		T = n
	}
	D := min(T, max(1, p.DatasetShards))
	tStart := Jump(k.Tenant, n)
	dOff := Jump(k.Dataset, T)
	off := int(k.Fingerprint % uint64(D))
	abs := func(rel int) int { return (tStart + rel%T) % n }
	shard := uint32(abs(dOff+off)) + 1
	var order []int
	for i := range D {
		order = append(order, abs(dOff+(off+i)%D))
	}
	for i := range T - D {
		order = append(order, abs(dOff+D+i))
	}
	for i := range n - T {
		order = append(order, (tStart+T+i)%n)
	}
	seen := map[string]bool{}
	var out []int32
	for _, pos := range order {
		idx := r.ShardOwner(uint32(pos + 1))
		in := r.Instance(idx)
		key := in.ID
		if key == "" {
			key = "addr:" + in.Addr
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		if in.State == Active {
			out = append(out, idx)
		}
	}
	return shard, out
}

func randomRing(rnd *rand.Rand, writers int) *Ring {
	zones := []string{"zone-a", "zone-b", "zone-c", ""}
	var in []Instance
	for i := range writers {
		st := Active
		if rnd.IntN(5) == 0 {
			st = State(1 + rnd.IntN(3))
		}
		id := fmt.Sprintf("w-%05d", i)
		addr := fmt.Sprintf("10.1.%d.%d:9095", i/250, i%250)
		if rnd.IntN(20) == 0 {
			// No ID: Pyroscope then dedupes by address; make some share one.
			id = ""
			addr = fmt.Sprintf("10.9.0.%d:9095", rnd.IntN(3))
		}
		in = append(in, Instance{ID: id, Addr: addr, Zone: zones[rnd.IntN(len(zones))], State: st, Tokens: rnd.IntN(6)})
	}
	return NewRing(in)
}

// Place agrees with the plain transcription on random rings, small and
// large (more than 512 identities and more than 4096 shards), with
// entries lacking an ID, mixed states and every buffer size. A third of the
// policies span the whole ring, the case the ring memoizes.
func TestPlaceMatchesReference(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, writers := range []int{1, 2, 5, 17, 60, 700, 1500} {
		r := randomRing(rnd, writers)
		if r.Len() == 0 {
			continue
		}
		for i := range 60 {
			k := Key{Tenant: rnd.Uint64(), Dataset: rnd.Uint64(), Fingerprint: rnd.Uint64()}
			p := Policy{TenantShards: rnd.IntN(r.Len() + 3), DatasetShards: rnd.IntN(12)}
			if i%3 == 0 {
				p = Policy{DatasetShards: rnd.IntN(3)}
			}
			wantShard, want := referencePlace(r, k, p)
			for _, size := range []int{1, 3, 6, startCandidates, startCandidates + 1, len(r.Instances())} {
				buf := make([]int32, size)
				shard, got := r.Place(k, p, "", buf)
				if shard != wantShard || !slices.Equal(got, want[:min(size, len(want))]) {
					t.Fatalf("writers=%d key %d size %d: shard %d %v, want %d %v", writers, i, size, shard, got, wantShard, want[:min(size, len(want))])
				}
				for _, zone := range []string{"zone-b", "", "nowhere"} {
					shard, got := r.Place(k, p, zone, buf)
					ref := want
					if zone != "" {
						ref = partition(r, want, zone)
					}
					if shard != wantShard || !slices.Equal(got, ref[:min(size, len(ref))]) {
						t.Fatalf("writers=%d key %d size %d zone %q: %v, want %v", writers, i, size, zone, got, ref[:min(size, len(ref))])
					}
				}
			}
		}
	}
}

// Small rings where one writer often has several entries that disagree:
// entries without an ID sharing an address, in different zones and states.
// A walk decides such a writer by the entry it meets first, so no per-zone
// count is right from every start; Place must still agree with the plain
// transcription, memo or not, for every zone and buffer size.
func TestPlaceMatchesReferenceOnRepeatedWriters(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 9))
	zones := []string{"zone-a", "zone-b", ""}
	checked := 0
	for range 3000 {
		var in []Instance
		for i := range 1 + rnd.IntN(10) {
			st := Active
			if rnd.IntN(4) == 0 {
				st = State(1 + rnd.IntN(3))
			}
			id, addr := fmt.Sprintf("w-%02d", i), fmt.Sprintf("10.1.0.%d:9095", i)
			if rnd.IntN(3) == 0 {
				id, addr = "", fmt.Sprintf("10.9.0.%d:9095", rnd.IntN(3))
			}
			in = append(in, Instance{ID: id, Addr: addr, Zone: zones[rnd.IntN(len(zones))], State: st, Tokens: rnd.IntN(4)})
		}
		r := NewRing(in)
		if r.Len() == 0 {
			continue
		}
		for range 8 {
			k := Key{Tenant: rnd.Uint64(), Dataset: rnd.Uint64(), Fingerprint: rnd.Uint64()}
			p := Policy{DatasetShards: 1}
			if rnd.IntN(2) == 0 {
				p = Policy{TenantShards: rnd.IntN(r.Len() + 1), DatasetShards: rnd.IntN(4)}
			}
			wantShard, want := referencePlace(r, k, p)
			for _, zone := range []string{"", "zone-a", "zone-b", "nowhere"} {
				ref := want
				if zone != "" {
					ref = partition(r, want, zone)
				}
				for size := 1; size <= startCandidates+1; size++ {
					shard, got := r.Place(k, p, zone, make([]int32, size))
					if shard != wantShard || !slices.Equal(got, ref[:min(size, len(ref))]) {
						t.Fatalf("instances %+v\nkey %+v policy %+v zone %q size %d: %d %v, want %d %v",
							in, k, p, zone, size, shard, got, wantShard, ref[:min(size, len(ref))])
					}
					checked++
				}
			}
		}
	}
	if checked < 100000 {
		t.Fatalf("only %d placements checked", checked)
	}
}
