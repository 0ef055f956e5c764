package profile

import "testing"

// What recycle reports as held is all the blocks keep: spare blocks too
// small for a later profile are dropped, not left behind the slice's end.
func TestBlocksHoldWhatTheyCount(t *testing.T) {
	var b blocks[int64]
	for range 3 {
		b.next(1 << 10)
	}
	if held := b.recycle(false); held != 3*(1<<10)*8 {
		t.Fatalf("held %d, want three blocks of 8 KiB", held)
	}
	b.next(1 << 12) // larger than every spare: all three are dropped
	held := b.recycle(false)
	if held != (1<<12)*8 {
		t.Fatalf("held %d, want one block of 32 KiB", held)
	}
	for i, s := range b.spare[len(b.spare):cap(b.spare)] {
		if s != nil {
			t.Fatalf("a dropped block of %d elements is still referenced (slot %d past the end)", cap(s), i)
		}
	}
}
