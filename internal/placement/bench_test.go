package placement

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/pyrodist/pyrodist/internal/testutil/cputime"
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
// is computed once upstream), shard and up to 6 candidates.
func BenchmarkPlace(b *testing.B) {
	r := benchRing()
	for _, bc := range []struct {
		name string
		zone string
		p    Policy
	}{
		{"default", "", Policy{}},
		{"default-same-zone", "zone-b", Policy{}},
		{"sized-same-zone", "zone-c", Policy{TenantShards: 16, DatasetShards: 4}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var buf [6]int32
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0, ok := cputime.Thread()
			i := uint64(0)
			for b.Loop() {
				i++
				k := NewKey("tenant-123", "checkout-service", i*0x9e3779b97f4a7c15)
				shard, c := r.Place(k, bc.p, bc.zone, buf[:])
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
