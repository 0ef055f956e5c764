package placement

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/pyrodist/pyrodist/test/testutil/cputime"
)

func benchRing() *Ring {
	var in []Instance
	zones := []string{"zone-a", "zone-b", "zone-c"}
	for i := range 30 {
		in = append(in, Instance{ID: fmt.Sprintf("segment-writer-%02d", i), Addr: fmt.Sprintf("10.0.0.%d:9095", i), Zone: zones[i%3], Tokens: 4})
	}
	return NewRing(in)
}

// One placement decision: key hashing (tenant and dataset; the fingerprint
// is computed once upstream), shard and up to 6 candidates. The tenant and
// dataset repeat, as they do in traffic, so their jump hashes come from
// the ring's memo; the -cold cases use a new tenant and dataset every
// time, the worst case: two memo misses and two memo writes.
func BenchmarkPlace(b *testing.B) {
	r := benchRing()
	for _, bc := range []struct {
		name string
		zone string
		p    Policy
		cold bool
	}{
		{"default", "", Policy{}, false},
		{"default-same-zone", "zone-b", Policy{}, false},
		{"sized-same-zone", "zone-c", Policy{TenantShards: 16, DatasetShards: 4}, false},
		{"default-cold", "", Policy{}, true},
		{"sized-same-zone-cold", "zone-c", Policy{TenantShards: 16, DatasetShards: 4}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var buf [6]int32
			zone := r.Zone(bc.zone) // resolved once per ring, as the distributor does
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0, ok := cputime.Thread()
			i := uint64(0)
			for b.Loop() {
				i++
				k := NewKey("tenant-123", "checkout-service", i*0x9e3779b97f4a7c15)
				if bc.cold {
					k.Tenant, k.Dataset = k.Fingerprint^0x5851f42d4c957f2d, k.Fingerprint*0xc2b2ae3d27d4eb4f
				}
				shard, c := r.PlaceIn(k, bc.p, zone, buf[:])
				if shard == 0 || len(c) == 0 {
					b.Fatal("no placement")
				}
			}
			if cpu1, _ := cputime.Thread(); ok {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

func TestPlaceDoesNotAllocate(t *testing.T) {
	r := benchRing()
	var buf [6]int32
	allocs := testing.AllocsPerRun(100, func() {
		k := NewKey("tenant", "svc", 42)
		r.Place(k, Policy{TenantShards: 16, DatasetShards: 4, Pick: PickRoundRobin}, "zone-a", buf[:])
	})
	if allocs != 0 {
		t.Fatalf("Place allocates %.1f times", allocs)
	}
	// A ring past the walker's own bitset (600 writers) borrows one.
	var in []Instance
	for i := range 600 {
		in = append(in, Instance{ID: fmt.Sprintf("w-%04d", i), Tokens: 4})
	}
	big := NewRing(in)
	allocs = testing.AllocsPerRun(100, func() {
		big.Place(NewKey("tenant", "svc", 42), Policy{}, "", buf[:])
	})
	if allocs != 0 {
		t.Fatalf("Place on a large ring allocates %.1f times", allocs)
	}
}
