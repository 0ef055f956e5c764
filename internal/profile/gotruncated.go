package profile

import (
	"bytes"
	"slices"

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

// repairTruncatedGo appends the guessed root frames to truncated stacks.
// It reorders p.Sample. Normalize must run afterwards (stacks may now repeat).
func repairTruncatedGo(p *profilev1.Profile) {
	suffix := func(s *profilev1.Sample) []uint64 { return s.LocationId[len(s.LocationId)-truncSuffix:] }
	// Deep enough stacks, grouped by equal suffix.
	var deep []*profilev1.Sample
	for _, s := range p.Sample {
		if len(s.LocationId) >= truncSuffix {
			deep = append(deep, s)
		}
	}
	if len(deep) == 0 {
		return
	}
	// Byte order of the ids in memory, as Pyroscope sorts: it decides which
	// group wins a tie below.
	slices.SortFunc(deep, func(a, b *profilev1.Sample) int {
		return bytes.Compare(unsafeBytes(suffix(a)), unsafeBytes(suffix(b)))
	})
	var starts []int
	for i, s := range deep {
		if i == 0 || !slices.Equal(suffix(s), suffix(deep[i-1])) {
			starts = append(starts, i)
		}
	}
	end := func(g int) int {
		if g+1 < len(starts) {
			return starts[g+1]
		}
		return len(deep)
	}
	key := func(ids []uint64) string { return string(unsafeBytes(ids)) }

	// Every window of each group's suffix, shifted 1..8 from the root end,
	// points at the group where it sits furthest from the root.
	windows := make(map[string]truncLink, len(starts)*truncShifts)
	for g, st := range starts {
		s := suffix(deep[st])
		for k := 1; k <= truncShifts; k++ {
			w := key(s[truncShifts-k : truncSuffix-k])
			if c, ok := windows[w]; !ok || k > c.shift {
				windows[w] = truncLink{group: g + 1, shift: k}
			}
		}
	}
	// Each group's root-most window, looked up among the others.
	links := make([]truncLink, len(starts))
	for g, st := range starts {
		ids := deep[st].LocationId
		if c, ok := windows[key(ids[len(ids)-truncWindow:])]; ok && c.group-1 != g {
			links[g] = c
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
