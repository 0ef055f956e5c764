package placement

import (
	"math/rand/v2"

	"github.com/cespare/xxhash/v2"
)

// Key is what placement hashes (spec §2.1).
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

// Policy is a tenant's placement policy for one dataset (spec §2.5).
type Policy struct {
	// TenantShards is the tenant sub-ring size; 0 (or more than N) means all shards.
	TenantShards int
	// DatasetShards is the dataset sub-ring size inside the tenant's; at least 1.
	DatasetShards int
	Pick          Pick
}

// Jump is Lamping and Veach's jump consistent hash (spec §2.3): the bucket
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
// distinct ACTIVE instances: the candidate walk of spec §2.7 with
// Pyroscope's ActiveInstances filter.
//
// When zone is not empty, the candidates of that zone come first, each
// group keeping Pyroscope's order; the shard id never depends on zone.
// An empty ring gives shard 0 and no candidates. Place does not allocate.
func (r *Ring) Place(k Key, p Policy, zone string, dst []int32) (shard uint32, candidates []int32) {
	n := r.Len()
	if n == 0 {
		return 0, dst[:0]
	}
	tenantSize := p.TenantShards
	if tenantSize <= 0 || tenantSize > n {
		tenantSize = n
	}
	datasetSize := min(tenantSize, max(1, p.DatasetShards))
	tStart := Jump(k.Tenant, n)
	dOff := Jump(k.Dataset, tenantSize)
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
	w := walker{r: r, dst: dst, own: -1}
	if r.idents > len(w.small)*64 {
		// Large rings borrow a bitset; steady state allocates nothing.
		big := r.seenPool.Get().(*[]uint64)
		defer r.putSeen(big)
		w.big = *big
	}
	if zone != "" {
		if z := r.zoneIndex(zone); z >= 0 {
			w.own = int32(z)
			w.ownActive = r.activeInZone[z]
			// When the zone alone can fill dst, only its positions matter.
			if w.ownActive >= len(dst) && r.skip != nil {
				w.skip = r.skip[z]
			}
		}
	}

	// The walk of spec §2.7 as runs of consecutive positions:
	// 1. the dataset's shards from the picked offset, wrapping in the dataset range;
	// 2. the rest of the tenant's shards, right after the dataset range;
	// 3. the rest of the ring.
	if w.relRun(tStart, tenantSize, (dOff+offset)%tenantSize, datasetSize-offset) ||
		w.relRun(tStart, tenantSize, dOff, offset) ||
		w.relRun(tStart, tenantSize, (dOff+datasetSize)%tenantSize, tenantSize-datasetSize) ||
		w.run(addWrap(tStart, tenantSize%n, n), n-tenantSize) {
		return shard, w.result()
	}
	return shard, w.result()
}

// relRun visits l tenant-relative positions from rel, wrapping inside the
// tenant range of size t that starts at absolute position tStart.
func (w *walker) relRun(tStart, t, rel, l int) bool {
	n := len(w.r.slots)
	first := min(l, t-rel)
	return w.run(addWrap(tStart, rel, n), first) || w.run(tStart, l-first)
}

// run visits l consecutive positions from pos, wrapping at N; it reports
// whether the walk is done.
func (w *walker) run(pos, l int) bool {
	n := len(w.r.slots)
	for l > 0 {
		if w.skip != nil {
			d := int(w.skip[pos])
			if d >= l {
				return false
			}
			l -= d
			if pos += d; pos >= n {
				pos -= n
			}
		}
		if w.visit(pos) {
			return true
		}
		l--
		if pos++; pos == n {
			pos = 0
		}
	}
	return false
}

// addWrap is (a+b) mod n for a, b in [0, n).
func addWrap(a, b, n int) int {
	if a += b; a >= n {
		a -= n
	}
	return a
}

// walker collects distinct ACTIVE candidates. Without a zone it appends in
// walk order. With one, own-zone instances grow from the front of dst and
// the others from the back (reversed); when dst is full an own-zone
// instance takes the slot of the latest other, so the result is always the
// own-zone ones followed by the first others, in walk order.
type walker struct {
	r         *Ring
	dst       []int32
	front     int // own-zone (or all, without a zone) candidates in dst[:front]
	back      int // others in dst[len(dst)-back:], latest first
	found     int // distinct ACTIVE identities met, kept or not
	own       int32
	ownActive int
	// skip, when set, is the own zone's distance table (Ring.skip): the
	// walk jumps from one own-zone position to the next.
	skip []int32
	// Pyroscope dedupes every entry before it drops non-ACTIVE ones, so an
	// identity is decided by the first entry of it that the walk meets.
	// The identities met: small for rings of up to 512 identities, big
	// (borrowed from the ring) for larger ones.
	small [8]uint64
	big   []uint64
}

func (w *walker) visit(pos int) (done bool) {
	r := w.r
	s := &r.slots[pos]
	var word *uint64
	if w.big == nil {
		word = &w.small[s.ident>>6]
	} else {
		word = &w.big[s.ident>>6]
	}
	bit := uint64(1) << (s.ident & 63)
	if *word&bit != 0 {
		return false
	}
	*word |= bit
	if !s.active {
		return false
	}
	w.found++
	limit := len(w.dst)
	if w.own < 0 || s.zone == w.own {
		if w.front+w.back == limit {
			// Full: an own-zone candidate displaces the latest other.
			w.back--
		}
		w.dst[w.front] = s.inst
		w.front++
	} else if w.front+w.back < limit {
		w.back++
		w.dst[limit-w.back] = s.inst
	}
	switch {
	case w.front == limit, w.found == r.active:
		return true
	}
	// All own-zone writers are in and no room is left for others.
	return w.own >= 0 && w.front >= w.ownActive && w.front+w.back == limit
}

func (w *walker) result() []int32 {
	limit := len(w.dst)
	tail := w.dst[limit-w.back:]
	for i, j := 0, len(tail)-1; i < j; i, j = i+1, j-1 {
		tail[i], tail[j] = tail[j], tail[i]
	}
	copy(w.dst[w.front:], tail)
	return w.dst[:w.front+w.back]
}
