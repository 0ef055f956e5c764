package profile

import (
	"cmp"
	"math/bits"
	"slices"
	"sync"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
)

// Go's profilers cut stacks at a fixed depth (heap: 32 frames before Go
// 1.23, CPU: 64), dropping the root side. Pyroscope guesses the missing root
// frames from other stacks of the same profile; we do the same, with the
// same parameters, so the writers get the same stacks:
//   - stacks are grouped by their 24 root-most locations ("suffix");
//   - a group whose 16 root-most locations also occur in another group's
//     suffix, shifted by k locations away from the root, is missing k root
//     frames, which that other group has;
//   - such links are followed transitively (at most 56 steps), and the
//     missing frames are copied from the last group of the chain.
const (
	truncWindow   = 16 // locations that must match
	truncShifts   = 8  // how far a match may be shifted
	truncSuffix   = truncWindow + truncShifts
	truncMaxChain = 56
)

// mayBeTruncatedGo reports whether p looks like a Go heap or CPU profile
// whose stacks may have been cut.
func mayBeTruncatedGo(p *profilev1.Profile) bool {
	minDepth, maxDepth := 0, 0
	switch {
	case hasSampleType(p, "alloc_objects", "alloc_space", "inuse_objects", "inuse_space"):
		// Heap stacks were cut at 32 (a few frames less happen too); Go
		// 1.23+ goes to 128, and then nothing is repaired.
		minDepth, maxDepth = 32-4, 33
	case hasSampleType(p, "cpu"):
		minDepth = 64 - 4
	default:
		return false
	}
	deep := false
	for _, s := range p.Sample {
		n := len(s.LocationId)
		if maxDepth > 0 && n >= maxDepth {
			return false
		}
		deep = deep || n >= minDepth
	}
	return deep
}

func hasSampleType(p *profilev1.Profile, names ...string) bool {
	for _, st := range p.SampleType {
		if slices.Contains(names, p.StringTable[st.Type]) {
			return true
		}
	}
	return false
}

type truncLink struct {
	group int // 1-based index of the group; 0: none
	shift int
}

// truncSlot is one window in truncScratch.table: the window is found again
// from the group's suffix and the shift, so equal hashes are confirmed by
// content and a collision cannot change the result.
type truncSlot struct {
	hash  uint64
	group int32 // 1-based; 0: empty slot
	shift int32
}

// truncScratch is the working memory of one repair, reused across calls:
// this runs on every deep Go profile, and fresh maps keyed by strings built
// from the ids were most of its cost.
type truncScratch struct {
	deep   []*profilev1.Sample
	starts []int
	links  []truncLink
	roots  []uint64
	table  []truncSlot
	// rootOf is a one-hash Bloom filter of the deep stacks' root-most ids:
	// a false positive only stores a window that is never looked up.
	rootOf [truncRootBits / 64]uint64
}

// truncRootBits sizes truncScratch.rootOf (8 KiB, stays in L1/L2).
const truncRootBits = 1 << 16

func rootBit(id uint64) (word int, mask uint64) {
	h := mixID(id) & (truncRootBits - 1)
	return int(h / 64), 1 << (h % 64)
}

// Scratch larger than this is left to the GC rather than kept in the pool.
const truncScratchMaxKeep = 1 << 16

var truncPool = sync.Pool{New: func() any { return new(truncScratch) }}

func truncSuffixOf(s *profilev1.Sample) []uint64 { return s.LocationId[len(s.LocationId)-truncSuffix:] }

// Windows are hashed as polynomials of their mixed ids, so the 8 windows of
// a suffix are hashed with one multiplication each by rolling. Only speed and
// spread matter: matches are confirmed by content.
const truncHashBase = 0x100000001b3

func mixID(id uint64) uint64 {
	id = (id ^ id>>31) * 0x9e3779b97f4a7c15
	return id ^ id>>29
}

// truncHashTop is truncHashBase to the power truncWindow-1: the weight of a
// window's first id.
var truncHashTop = func() uint64 {
	x := uint64(1)
	for range truncWindow - 1 {
		x *= truncHashBase
	}
	return x
}()

func hashWindow(w []uint64) uint64 {
	var h uint64
	for _, id := range w {
		h = h*truncHashBase + mixID(id)
	}
	return h
}

// noTruncLink reports, cheaply and exactly, that no stack can be linked: a
// link needs some stack's root-most id to sit 1..8 places from the root of
// another deep stack. Untruncated stacks all end in the same few root frames
// (runtime.goexit, runtime.main), which occur nowhere else, so this settles
// most profiles without hashing anything. With many distinct roots it gives
// up (false) and the full search decides.
func (sc *truncScratch) noTruncLink() bool {
	const maxRoots = 16
	sc.roots = sc.roots[:0]
	for _, s := range sc.deep {
		r := s.LocationId[len(s.LocationId)-1]
		if !slices.Contains(sc.roots, r) {
			if len(sc.roots) == maxRoots {
				return false
			}
			sc.roots = append(sc.roots, r)
		}
	}
	for _, s := range sc.deep {
		ids := s.LocationId
		for _, id := range ids[len(ids)-1-truncShifts : len(ids)-1] {
			if slices.Contains(sc.roots, id) {
				return false
			}
		}
	}
	return true
}

// window returns the window a slot stands for.
func (sc *truncScratch) window(t truncSlot) []uint64 {
	s := truncSuffixOf(sc.deep[sc.starts[t.group-1]])
	return s[truncShifts-int(t.shift) : truncSuffix-int(t.shift)]
}

// find returns the slot holding window w (hash h), or the empty slot where it
// belongs. The table is never full (twice the windows), so probing ends.
func (sc *truncScratch) find(w []uint64, h uint64) *truncSlot {
	mask := uint64(len(sc.table) - 1)
	for i := (h * 0x9e3779b97f4a7c15) >> 32 & mask; ; i = (i + 1) & mask {
		t := &sc.table[i]
		if t.group == 0 || (t.hash == h && slices.Equal(sc.window(*t), w)) {
			return t
		}
	}
}

func (sc *truncScratch) release() {
	if cap(sc.deep) > truncScratchMaxKeep || cap(sc.table) > 4*truncScratchMaxKeep {
		return
	}
	clear(sc.deep[:cap(sc.deep)]) // do not keep samples alive
	sc.deep = sc.deep[:0]
	truncPool.Put(sc)
}

// compareIDBytes orders equal-length id slices as bytes.Compare orders their
// bytes in memory (little-endian on every platform we build for), a word at
// a time.
func compareIDBytes(a, b []uint64) int {
	for i := range a {
		if a[i] != b[i] {
			return cmp.Compare(bits.ReverseBytes64(a[i]), bits.ReverseBytes64(b[i]))
		}
	}
	return 0
}

// repairTruncatedGo appends the guessed root frames to truncated stacks.
// Normalize must run afterwards (stacks may now repeat).
func repairTruncatedGo(p *profilev1.Profile) {
	sc := truncPool.Get().(*truncScratch)
	defer sc.release()
	// Deep enough stacks, grouped by equal suffix.
	deep := sc.deep[:0]
	for _, s := range p.Sample {
		if len(s.LocationId) >= truncSuffix {
			deep = append(deep, s)
		}
	}
	sc.deep = deep
	if len(deep) == 0 || sc.noTruncLink() {
		return
	}
	// Byte order of the ids in memory, as Pyroscope sorts: it decides which
	// group wins a tie below.
	slices.SortFunc(deep, func(a, b *profilev1.Sample) int {
		return compareIDBytes(truncSuffixOf(a), truncSuffixOf(b))
	})
	starts := sc.starts[:0]
	for i, s := range deep {
		if i == 0 || !slices.Equal(truncSuffixOf(s), truncSuffixOf(deep[i-1])) {
			starts = append(starts, i)
		}
	}
	sc.starts = starts
	end := func(g int) int {
		if g+1 < len(starts) {
			return starts[g+1]
		}
		return len(deep)
	}

	// Every window of each group's suffix, shifted 1..8 from the root end,
	// points at the group where it sits furthest from the root. Only windows
	// ending in some stack's root-most id can be looked up below, so only
	// those are stored.
	clear(sc.rootOf[:])
	for _, st := range starts {
		ids := deep[st].LocationId
		w, m := rootBit(ids[len(ids)-1])
		sc.rootOf[w] |= m
	}
	size := 16
	for size < 2*len(starts)*truncShifts {
		size <<= 1
	}
	if cap(sc.table) < size {
		sc.table = make([]truncSlot, size)
	} else {
		sc.table = sc.table[:size]
		clear(sc.table)
	}
	for g, st := range starts {
		s := truncSuffixOf(deep[st])
		// Windows from the leaf end (shift 8) rootwards; the result does not
		// depend on the order within a group.
		h := hashWindow(s[:truncWindow])
		for a := 0; a < truncShifts; a++ {
			if a > 0 {
				h = (h-mixID(s[a-1])*truncHashTop)*truncHashBase + mixID(s[a+truncWindow-1])
			}
			k := truncShifts - a
			w := s[a : a+truncWindow]
			if i, m := rootBit(w[truncWindow-1]); sc.rootOf[i]&m == 0 {
				continue
			}
			if t := sc.find(w, h); t.group == 0 || int32(k) > t.shift {
				*t = truncSlot{hash: h, group: int32(g + 1), shift: int32(k)}
			}
		}
	}
	// Each group's root-most window, looked up among the others.
	links := slices.Grow(sc.links[:0], len(starts))[:len(starts)]
	clear(links)
	sc.links = links
	for g, st := range starts {
		ids := deep[st].LocationId
		w := ids[len(ids)-truncWindow:]
		if t := sc.find(w, hashWindow(w)); t.group != 0 && int(t.group)-1 != g {
			links[g] = truncLink{group: int(t.group), shift: int(t.shift)}
		}
	}
	for g, st := range starts {
		c := links[g]
		shift := 0
		for steps := 0; c.group > 0 && c.shift > 0; {
			shift += c.shift
			next := links[c.group-1]
			if next.group == 0 {
				break
			}
			c = next
			if steps++; steps == truncMaxChain {
				return // a cycle or a pathological chain: stop as Pyroscope does
			}
		}
		if shift == 0 {
			continue
		}
		ref := deep[starts[c.group-1]].LocationId
		if shift >= len(ref) {
			continue
		}
		missing := ref[len(ref)-shift:]
		for _, s := range deep[st:end(g)] {
			s.LocationId = append(s.LocationId, missing...)
		}
	}
}
