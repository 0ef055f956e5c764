package profile

import (
	"sync"
	"unsafe"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
)

// blocks is the memory behind one of the decoder's slabs or arenas: cur is
// carved from, done are the blocks carved out before it in this profile,
// and spare are zeroed blocks from earlier profiles, used before new ones.
type blocks[T any] struct {
	cur   []T
	done  [][]T
	spare [][]T
}

// next retires cur and moves to an empty block of at least n elements.
// Spare blocks too small for n are dropped: an Arena's blocks follow the
// sizes of the profiles it decodes.
func (b *blocks[T]) next(n int) {
	if cap(b.cur) > 0 {
		b.done = append(b.done, b.cur)
	}
	for len(b.spare) > 0 {
		s := b.spare[len(b.spare)-1]
		// Clear the slot: a block dropped here must not stay reachable
		// beyond len(spare), uncounted by recycle.
		b.spare[len(b.spare)-1] = nil
		b.spare = b.spare[:len(b.spare)-1]
		if cap(s) >= n {
			b.cur = s
			return
		}
	}
	b.cur = make([]T, 0, n)
}

// recycle makes every block spare, zeroing what was handed out when zero
// is set (messages are decoded into zeroed structs; the number arenas are
// only ever appended to), and returns the bytes now held.
func (b *blocks[T]) recycle(zero bool) int {
	if cap(b.cur) > 0 {
		b.done = append(b.done, b.cur)
		b.cur = nil
	}
	held := 0
	for i, s := range b.done {
		if zero {
			clear(s)
		}
		b.spare = append(b.spare, s[:0])
		b.done[i] = nil
	}
	b.done = b.done[:0]
	var t T
	for _, s := range b.spare {
		held += cap(s) * int(unsafe.Sizeof(t))
	}
	return held
}

// An Arena decodes profiles into memory it keeps for the next one, which
// spares the garbage collector most of a decode's allocations: the
// messages, the location ids and the values. A profile decoded with an
// Arena is valid until Release; nothing may keep it, or anything reached
// from it, after that. Strings still alias the decoded bytes, as with
// Decode. An Arena decodes one profile at a time.
type Arena struct {
	d decoder
}

// maxArenaKeep bounds what a released Arena keeps for reuse; one that
// decoded a larger profile is left to the garbage collector instead.
const maxArenaKeep = 16 << 20

var arenaPool = sync.Pool{New: func() any { return new(Arena) }}

// GetArena returns an Arena from the process-wide pool.
func GetArena() *Arena { return arenaPool.Get().(*Arena) }

// Decode is Decode in the arena's memory. Call Release before decoding
// another profile with the same Arena.
func (a *Arena) Decode(b []byte) (*profilev1.Profile, error) {
	return a.d.decode(b, nil)
}

// Release zeroes the memory of the profile decoded last and returns the
// Arena to the pool; the profile must no longer be used.
func (a *Arena) Release() {
	d := &a.d
	held := d.samples.recycle(true) + d.labels.recycle(true) + d.locations.recycle(true) +
		d.lines.recycle(true) + d.functions.recycle(true) + d.mappings.recycle(true) +
		d.types.recycle(true) + d.u64.recycle(false) + d.i64.recycle(false)
	// The pointer runs are small and hold pointers into the blocks: drop them.
	d.linePtrs, d.labelPtrs, d.buf = nil, nil, nil
	if held <= maxArenaKeep {
		arenaPool.Put(a)
	}
}
