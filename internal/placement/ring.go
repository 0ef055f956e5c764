// Package placement decides where a profile goes: the shard id Pyroscope's v2
// distributor would pick and the ordered segment-writer candidates
// (docs/compatibility.md#placement).
//
// A Ring is an immutable snapshot built off the request path whenever the
// segment-writer ring changes; placing one profile on it reads only.
package placement

import (
	"cmp"
	"math/rand"
	"slices"
	"sync"
)

// State mirrors the dskit ring instance states (same numeric values as
// ring.InstanceState), so callers can convert with State(desc.State).
type State int

const (
	Active  State = 0
	Leaving State = 1
	Pending State = 2
	Joining State = 3
	Left    State = 4
)

func (s State) String() string {
	switch s {
	case Active:
		return "ACTIVE"
	case Leaving:
		return "LEAVING"
	case Pending:
		return "PENDING"
	case Joining:
		return "JOINING"
	case Left:
		return "LEFT"
	}
	return "UNKNOWN"
}

// Instance is one segment-writer as the ring shows it. Only the number of
// tokens matters for placement; their values are ignored
// (docs/compatibility.md#placement).
type Instance struct {
	ID, Addr, Zone string
	State          State
	Tokens         int
}

// Ring is a placement snapshot: instances sorted by ID, the shard->instance
// table and per-zone facts. It is never modified after NewRing returns,
// except for its memo of jump hashes, which only ever holds exact results.
type Ring struct {
	instances []Instance
	// slots[k] describes the owner of shard position k, packed so that one
	// placement reads one small record per position visited.
	slots  []slot
	ident  []int32 // identity of each instance
	idents int     // distinct identities (ID, or Addr when the ID is empty)
	zones  []string
	// byZone[z] lists the instances of zone z, in ID order.
	byZone [][]int32
	// activeInZone[z] counts distinct ACTIVE identities with shards in zone z.
	activeInZone []int
	active       int // distinct ACTIVE identities owning shards
	// uniform: every identity's entries agree on zone and on being ACTIVE
	// (see uniformIdentities). The walk's early stop on its own zone, the
	// skip tables and the memo of starts rely on it.
	uniform bool
	// skip[z][k] is the distance from position k to the next position
	// (cyclically, k itself included) owned in zone z; nil for rings with
	// many zones, where the tables would cost more than they save, and for
	// rings that are not uniform.
	skip [][]int32
	// starts memoizes the walk most placements make. When the tenant spans
	// the whole ring and the profile lands on its dataset's first shard,
	// the walk is one run around the ring from that shard, so its
	// candidates depend only on the position and the zone preference.
	// starts[z][k*startCandidates:] holds the first candidates of the run
	// from position k, startLen[z][k] of them; z is the zone index plus 1,
	// and 0 is no preference. Nil for rings too large to be worth it.
	starts   [][]int32
	startLen [][]uint8
	jumps    jumpMemo
	// seenPool lends identity bitsets to placements on rings too large for
	// the walker's own (more than 512 identities).
	seenPool sync.Pool
}

const (
	maxSkipZones = 16
	// startCandidates bounds the candidates memoized per position: more
	// than the distributor's failover attempts.
	startCandidates = 8
	// maxStartEntries caps the memo at 1 MiB of candidates (a 4096-shard
	// ring with three zones).
	maxStartEntries = 1 << 18
)

type slot struct {
	inst   int32 // index in instances
	ident  int32 // dense identity number: Pyroscope dedupes by ID, or Addr when the ID is empty
	zone   int32 // index in zones
	active bool
}

// NewRing builds a snapshot from the healthy instances (the caller has
// already filtered them by heartbeat and state). The input is not modified.
func NewRing(instances []Instance) *Ring {
	sorted := slices.Clone(instances)
	// Byte-wise ID order, as Pyroscope sorts; stable so equal IDs keep input order.
	slices.SortStableFunc(sorted, func(a, b Instance) int { return cmp.Compare(a.ID, b.ID) })

	n := 0
	for _, in := range sorted {
		n += max(in.Tokens, 0)
	}
	list := make([]int32, 0, n)
	for i, in := range sorted {
		for range max(in.Tokens, 0) {
			list = append(list, int32(i))
		}
	}
	perm := Permutation(n)
	table := make([]int32, n)
	for k := range table {
		table[k] = list[perm[k]]
	}
	return newRing(sorted, table)
}

// newRing derives the per-position records from a shard->instance table.
func newRing(instances []Instance, table []int32) *Ring {
	r := &Ring{instances: instances, slots: make([]slot, len(table))}
	ident := make([]int32, len(instances))
	r.ident = ident
	zone := make([]int32, len(instances))
	first := make(map[string]int32, len(instances))
	for i, in := range instances {
		key := in.ID
		if key == "" {
			key = "\x00addr:" + in.Addr
		}
		id, ok := first[key]
		if !ok {
			id = int32(r.idents)
			first[key] = id
			r.idents++
		}
		ident[i] = id
		z := slices.Index(r.zones, in.Zone)
		if z < 0 {
			z = len(r.zones)
			r.zones = append(r.zones, in.Zone)
			r.activeInZone = append(r.activeInZone, 0)
			r.byZone = append(r.byZone, nil)
		}
		zone[i] = int32(z)
		r.byZone[z] = append(r.byZone[z], int32(i))
	}
	words := (r.idents + 63) / 64
	r.seenPool.New = func() any {
		b := make([]uint64, words)
		return &b
	}
	seen := make([]bool, r.idents)
	for k, i := range table {
		in := &instances[i]
		r.slots[k] = slot{inst: i, ident: ident[i], zone: zone[i], active: in.State == Active}
		// An identity counts once, when an entry of it that owns shards is ACTIVE.
		if in.State == Active && !seen[ident[i]] {
			seen[ident[i]] = true
			r.active++
			r.activeInZone[zone[i]]++
		}
	}
	r.uniform = uniformIdentities(r.slots, r.idents)
	if r.uniform && len(r.zones) <= maxSkipZones && len(table) > 0 {
		r.skip = make([][]int32, len(r.zones))
		for z := range r.zones {
			r.skip[z] = skipTable(r.slots, int32(z))
		}
	}
	// A walk ends once it has its candidates; with few ACTIVE writers (a
	// rollout that left most LEAVING) walks cross most of the ring, and the
	// memo would cost more to build than it saves.
	if r.uniform && 2*r.active >= r.idents {
		r.memoizeStarts()
	}
	return r
}

// uniformIdentities reports whether all the entries of each identity agree
// on zone and on being ACTIVE. A walk decides an identity by the first
// entry of it that it meets; only when they agree is that decision the same
// from every start, and so are the per-zone counts every walk relies on. Entries
// repeating an ID, or lacking one and sharing an address, can disagree.
func uniformIdentities(slots []slot, idents int) bool {
	first := make([]int32, idents) // a slot index + 1 per identity; 0: none yet
	for k, s := range slots {
		f := first[s.ident]
		if f == 0 {
			first[s.ident] = int32(k + 1)
			continue
		}
		if o := slots[f-1]; o.zone != s.zone || o.active != s.active {
			return false
		}
	}
	return true
}

// memoizeStarts fills starts and startLen with the general walk. Without
// duplicates, a list of k candidates is the first k of the list of
// startCandidates, so one entry serves every shorter dst.
func (r *Ring) memoizeStarts() {
	n := len(r.slots)
	variants := len(r.zones) + 1
	if n == 0 || n*variants*startCandidates > maxStartEntries {
		return
	}
	r.starts = make([][]int32, variants)
	r.startLen = make([][]uint8, variants)
	var buf [startCandidates]int32
	for z := range variants {
		r.starts[z] = make([]int32, n*startCandidates)
		r.startLen[z] = make([]uint8, n)
		for k := range n {
			c := r.walk(k, n, 0, 1, 0, Zone(z-1), buf[:])
			copy(r.starts[z][k*startCandidates:], c)
			r.startLen[z][k] = uint8(len(c))
		}
	}
}

func (r *Ring) putSeen(b *[]uint64) {
	clear(*b)
	r.seenPool.Put(b)
}

func skipTable(slots []slot, zone int32) []int32 {
	n := len(slots)
	t := make([]int32, n)
	next := -1 // the nearest own-zone position at or after k, found walking backwards twice
	for i := 2*n - 1; i >= 0; i-- {
		k := i % n
		if slots[k].zone == zone {
			next = i
		}
		if i < n {
			if next < 0 {
				t[k] = int32(n) // never: larger than any run
			} else {
				t[k] = int32(next - i)
			}
		}
	}
	return t
}

// Len is the number of shards N: the sum of the instances' token counts.
func (r *Ring) Len() int {
	if r == nil {
		return 0
	}
	return len(r.slots)
}

// Instances returns the instances sorted by ID. The slice is shared: do not modify it.
func (r *Ring) Instances() []Instance {
	if r == nil {
		return nil
	}
	return r.instances
}

// Instance returns instance i of Instances(); candidates are such indices.
func (r *Ring) Instance(i int32) *Instance { return &r.instances[i] }

// ShardOwner returns the index of the instance owning shard id (1..N).
func (r *Ring) ShardOwner(shard uint32) int32 { return r.slots[shard-1].inst }

// Active is the number of distinct ACTIVE instances that own shards.
func (r *Ring) Active() int {
	if r == nil {
		return 0
	}
	return r.active
}

// ActiveInZone is the number of distinct ACTIVE instances owning shards in zone.
func (r *Ring) ActiveInZone(zone string) int {
	z := r.zoneIndex(zone)
	if z < 0 {
		return 0
	}
	return r.activeInZone[z]
}

// ZoneInstances lists the indices (see Instance) of the instances of zone,
// in ID order, whatever their state. The slice is shared: do not modify it.
func (r *Ring) ZoneInstances(zone string) []int32 {
	z := r.zoneIndex(zone)
	if z < 0 {
		return nil
	}
	return r.byZone[z]
}

// Zones lists the zones present in the ring, in first-seen ID order.
func (r *Ring) Zones() []string {
	if r == nil {
		return nil
	}
	return r.zones
}

func (r *Ring) zoneIndex(zone string) int {
	if r == nil {
		return -1
	}
	// A linear scan beats a map for the handful of zones a ring has.
	for i, z := range r.zones {
		if z == zone {
			return i
		}
	}
	return -1
}

// The step table of the shard shuffle: steps[i] = rand.Intn(i+1) from Go's
// math/rand (v1) seeded with Pyroscope's constant. It is precomputed for
// 4096 shards and regrown from the same seed for larger rings.
const (
	permutationSeed  = -3035313949336265834
	precomputedSteps = 4096
)

var (
	stepsOnce sync.Once
	steps     []int
)

func stepTable(n int) []int {
	stepsOnce.Do(func() { steps = genSteps(precomputedSteps) })
	if n <= len(steps) {
		return steps[:n]
	}
	return genSteps(n)
}

func genSteps(n int) []int {
	rnd := rand.New(rand.NewSource(permutationSeed))
	s := make([]int, n)
	for i := range s {
		s[i] = rnd.Intn(i + 1)
	}
	return s
}

// Permutation returns the deterministic shard shuffle of size n (perm and
// loadSteps in pkg/segmentwriter/client/distributor/distributor.go at
// 3fe6a45): an inside-out Fisher-Yates driven by the seeded step table.
func Permutation(n int) []int {
	st := stepTable(n)
	v := make([]int, n)
	for i := range n {
		j := st[i]
		v[i] = v[j]
		v[j] = i
	}
	return v
}
