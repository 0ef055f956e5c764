package profile

import (
	"bytes"
	"slices"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
)

// repairTruncatedGoRef is the first, string-keyed implementation of
// repairTruncatedGo, kept to check that the faster one changes the same
// stacks in the same way and to compare their cost in one run.
func repairTruncatedGoRef(p *profilev1.Profile) {
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
