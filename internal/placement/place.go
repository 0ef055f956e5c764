package placement

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// Key is what placement hashes (docs/compatibility.md#placement).
type Key struct {
	Tenant      uint64 // XXH64 of the tenant id
	Dataset     uint64 // XXH64 of the service_name value
	Fingerprint uint64 // the series-label hash, see Fingerprint
}

// NewKey hashes the tenant and dataset names; the fingerprint is computed
// once by the pipeline (see Fingerprint).
func NewKey(tenant, dataset string, fingerprint uint64) Key {
	return Key{Tenant: xxhash.Sum64String(tenant), Dataset: xxhash.Sum64String(dataset), Fingerprint: fingerprint}
}

// Pick chooses the offset inside the dataset's shards.
type Pick uint8

const (
	// PickFingerprint sends a series to the same shard every time.
	PickFingerprint Pick = iota
	// PickRoundRobin spreads a dataset's profiles uniformly at random.
	PickRoundRobin
)

// Policy is a tenant's placement policy for one dataset
// (docs/compatibility.md#placement).
type Policy struct {
	// TenantShards is the tenant sub-ring size; 0 (or more than N) means all shards.
	TenantShards int
	// DatasetShards is the dataset sub-ring size inside the tenant's; at least 1.
	DatasetShards int
	Pick          Pick
}

// Jump is Lamping and Veach's jump consistent hash (jump in
// pkg/segmentwriter/client/distributor/distributor.go at 3fe6a45): the bucket
// in [0, buckets) for key. Floating point exactly as the reference, so the
// buckets match Pyroscope's bit for bit.
func Jump(key uint64, buckets int) int {
	b, j := int64(-1), int64(0)
	for j < int64(buckets) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

// Place computes the shard id Pyroscope would send (1..N) and writes into
// dst, in failover order, the indices (see Instance) of at most len(dst)
// distinct ACTIVE instances: Pyroscope's candidate walk with its
// ActiveInstances filter (docs/compatibility.md#placement).
//
// When zone is not empty, the candidates of that zone come first, each
// group keeping Pyroscope's order; the shard id never depends on zone.
// An empty ring gives shard 0 and no candidates. Place does not allocate.
func (r *Ring) Place(k Key, p Policy, zone string, dst []int32) (shard uint32, candidates []int32) {
	return r.PlaceIn(k, p, r.Zone(zone), dst)
}

// Zone is a zone of one Ring, resolved once per ring so that placements
// skip comparing names. It is an index into that ring's zones: valid only
// for the ring that resolved it. NoZone asks for no preference.
type Zone int32

// NoZone is Pyroscope's order, without a zone preference.
const NoZone Zone = -1

// Zone resolves a zone name for PlaceIn; "" and zones without writers in
// the ring give NoZone.
func (r *Ring) Zone(name string) Zone {
	if name == "" {
		return NoZone
	}
	return Zone(r.zoneIndex(name))
}

// PlaceIn is Place with the zone already resolved by r.Zone (not by
// another ring's Zone: the index would mean another zone, or none).
func (r *Ring) PlaceIn(k Key, p Policy, zone Zone, dst []int32) (shard uint32, candidates []int32) {
	n := r.Len()
	if n == 0 {
		return 0, dst[:0]
	}
	tenantSize := p.TenantShards
	if tenantSize <= 0 || tenantSize > n {
		tenantSize = n
	}
	datasetSize := min(tenantSize, max(1, p.DatasetShards))
	tStart := r.jumps.jump(k.Tenant, n)
	dOff := r.jumps.jump(k.Dataset, tenantSize)
	var offset int
	if p.Pick == PickRoundRobin {
		offset = rand.IntN(datasetSize)
	} else {
		offset = int(k.Fingerprint % uint64(datasetSize))
	}
	shard = uint32((tStart+(dOff+offset)%tenantSize)%n) + 1

	if len(dst) == 0 {
		return shard, dst[:0]
	}
	if tenantSize == n && offset == 0 && r.starts != nil && len(dst) <= startCandidates {
		// The walk is one run around the ring from the dataset's first
		// shard: its candidates were worked out when the ring was built.
		z := int(zone) + 1
		pos := addWrap(tStart, dOff, n)
		c := r.starts[z][pos*startCandidates:]
		return shard, dst[:copy(dst, c[:min(len(dst), int(r.startLen[z][pos]))])]
	}
	return shard, r.walk(tStart, tenantSize, dOff, datasetSize, offset, zone, dst)
}

// jumpMemo remembers Jump results for one ring, whose size is fixed: a
// tenant's or a dataset's bucket is the same for every profile until the
// ring changes. It is a direct-mapped table; each entry is a seqlock, so
// readers never block, and a writer that finds an entry busy just skips
// caching. A hit is exact: the whole key and the bucket count are checked.
type jumpMemo [1024]struct {
	seq, key, val atomic.Uint64 // val: buckets<<32 | bucket
}

func (m *jumpMemo) jump(key uint64, buckets int) int {
	e := &m[key>>54] // the top bits of a well-mixed hash
	s := e.seq.Load()
	if s&1 == 0 && e.key.Load() == key {
		v := e.val.Load()
		if e.seq.Load() == s && int(v>>32) == buckets {
			return int(uint32(v))
		}
	}
	b := Jump(key, buckets)
	if s&1 == 0 && e.seq.CompareAndSwap(s, s+1) {
		e.key.Store(key)
		e.val.Store(uint64(buckets)<<32 | uint64(b))
		e.seq.Store(s + 2)
	}
	return b
}

// walk is Pyroscope's candidate walk for a tenant range of tenantSize
// positions from tStart and a dataset range of datasetSize positions from
// dOff inside it, entered at offset; len(dst) > 0.
//
// It collects distinct ACTIVE candidates. Without a zone they go in walk
// order. With one, own-zone instances grow from the front of dst and the
// others from the back (reversed); when dst is full an own-zone instance
// takes the slot of the latest other, so the result is always the own-zone
// ones followed by the first others, in walk order. The state lives in
// locals, not a struct, so that it stays in registers.
func (r *Ring) walk(tStart, tenantSize, dOff, datasetSize, offset int, zone Zone, dst []int32) []int32 {
	n := len(r.slots)
	// The walk as runs of consecutive positions:
	// 1. the dataset's shards from the picked offset, wrapping in the dataset range;
	// 2. the rest of the tenant's shards, right after the dataset range;
	// 3. the rest of the ring.
	var runs spans
	runs.relative(tStart, tenantSize, n, (dOff+offset)%tenantSize, datasetSize-offset)
	runs.relative(tStart, tenantSize, n, dOff, offset)
	runs.relative(tStart, tenantSize, n, (dOff+datasetSize)%tenantSize, tenantSize-datasetSize)
	runs.add(addWrap(tStart, tenantSize%n, n), n-tenantSize)

	own, ownActive := int32(zone), 0
	var skip []int32 // set: jump from one own-zone position to the next
	if zone != NoZone {
		ownActive = r.activeInZone[zone]
		if !r.uniform {
			// The count need not be what this walk meets: never stop on it.
			ownActive = math.MaxInt
		}
		// When the zone alone can fill dst, only its positions matter.
		if ownActive >= len(dst) && r.skip != nil {
			skip = r.skip[zone]
		}
	}
	// Pyroscope dedupes every entry before it drops non-ACTIVE ones, so an
	// identity is decided by the first entry of it that the walk meets.
	// Rings of up to 512 identities use a bitset on the stack; larger ones
	// borrow one from the ring, so steady state allocates nothing.
	var small [8]uint64
	seen := small[:]
	if r.idents > len(small)*64 {
		big := r.seenPool.Get().(*[]uint64)
		defer r.putSeen(big)
		seen = *big
	}

	slots, limit := r.slots, len(dst)
	front := 0 // own-zone (or all, without a zone) candidates in dst[:front]
	back := 0  // others in dst[limit-back:], latest first
	found := 0 // distinct ACTIVE identities met, kept or not
walk:
	for _, run := range runs.s[:runs.k] {
		pos, l := run.pos, run.len
		for l > 0 {
			if skip != nil {
				d := int(skip[pos])
				if d >= l {
					break
				}
				l -= d
				if pos += d; pos >= n {
					pos -= n
				}
			}
			s := &slots[pos]
			word, bit := &seen[s.ident>>6], uint64(1)<<(s.ident&63)
			if *word&bit == 0 && s.active {
				found++
				if own < 0 || s.zone == own {
					if front+back == limit {
						back-- // full: an own-zone candidate displaces the latest other
					}
					dst[front] = s.inst
					front++
				} else if front+back < limit {
					back++
					dst[limit-back] = s.inst
				}
				if front == limit || found == r.active ||
					// All own-zone writers are in and no room is left for others.
					own >= 0 && front >= ownActive && front+back == limit {
					break walk
				}
			}
			*word |= bit
			l--
			if pos++; pos == n {
				pos = 0
			}
		}
	}
	tail := dst[limit-back:]
	slices.Reverse(tail)
	copy(dst[front:], tail)
	return dst[:front+back]
}

// spans are the runs of a walk: at most two per tenant-relative run and one more.
type spans struct {
	s [7]struct{ pos, len int }
	k int
}

func (s *spans) add(pos, l int) {
	if l > 0 {
		s.s[s.k].pos, s.s[s.k].len = pos, l
		s.k++
	}
}

// relative adds l tenant-relative positions from rel, wrapping inside the
// tenant range of size t that starts at absolute position tStart.
func (s *spans) relative(tStart, t, n, rel, l int) {
	first := min(l, t-rel)
	s.add(addWrap(tStart, rel, n), first)
	s.add(tStart, l-first)
}

// addWrap is (a+b) mod n for a, b in [0, n).
func addWrap(a, b, n int) int {
	if a += b; a >= n {
		a -= n
	}
	return a
}
