package jfr

// set64 is a set of uint64 keys, open-addressed: the scan adds a key for
// every stack frame and every sampled event, and a Go map's growth took
// most of its time. Keys are mixed with a random seed first, so a
// recording cannot choose keys that collide.
type set64 struct {
	seed  uint64
	slots []uint64 // 0: empty; the key 0 is kept apart
	n     int
	zero  bool
}

func newSet64(seed uint64) *set64 { return &set64{seed: seed} }

// add adds k and reports whether it was new.
func (s *set64) add(k uint64) bool {
	if k == 0 {
		added := !s.zero
		s.zero = true
		return added
	}
	if 2*(s.n+1) > len(s.slots) {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := s.mix(k) & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case k:
			return false
		case 0:
			s.slots[i] = k
			s.n++
			return true
		}
	}
}

// len is the number of keys.
func (s *set64) len() int {
	if s.zero {
		return s.n + 1
	}
	return s.n
}

func (s *set64) grow() {
	old := s.slots
	s.slots = make([]uint64, max(64, 2*len(old)))
	mask := uint64(len(s.slots) - 1)
	for _, k := range old {
		if k == 0 {
			continue
		}
		i := s.mix(k) & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = k
	}
}

// mix is MurmurHash3's 64-bit finalizer of the seeded key.
func (s *set64) mix(k uint64) uint64 {
	k ^= s.seed
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// bitset marks the bytes of a chunk that were read.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) has(i int) bool { return b[i/64]&(1<<(i%64)) != 0 }

// mark marks [from, to) and reports whether none of it was marked before;
// it stops at the first byte that was.
func (b bitset) mark(from, to int) bool {
	for i := from; i < to; i++ {
		if b.has(i) {
			return false
		}
		b[i/64] |= 1 << (i % 64)
	}
	return true
}
