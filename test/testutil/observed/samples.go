package observed

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
)

// Samples renders a profile's samples as the outcome files do:
// "root;...;leaf | k=v,... => [v1 v2]", sorted, a stack over 8 frames cut
// to its first 3, its length and its last 3 frames.
func Samples(p *profile.Profile) []string { return samples(p, strconv.Itoa) }

// JFRSamples renders samples as the JFR outcome file does: the same, with
// a cut stack's length written "...(n frames)...".
func JFRSamples(p *profile.Profile) []string {
	return samples(p, func(n int) string { return fmt.Sprintf("...(%d frames)...", n) })
}

func samples(p *profile.Profile, cut func(frames int) string) []string {
	var out []string
	for _, s := range p.Sample {
		var frames []string
		for i := len(s.Location) - 1; i >= 0; i-- {
			for j := len(s.Location[i].Line) - 1; j >= 0; j-- {
				frames = append(frames, s.Location[i].Line[j].Function.Name)
			}
		}
		if n := len(frames); n > 8 {
			frames = slices.Concat(frames[:3], []string{cut(n)}, frames[n-3:])
		}
		var labels []string
		for k, vs := range s.Label {
			for _, v := range vs {
				labels = append(labels, k+"="+v)
			}
		}
		sort.Strings(labels)
		vals := make([]string, len(s.Value))
		for i, v := range s.Value {
			vals[i] = strconv.FormatInt(v, 10)
		}
		out = append(out, fmt.Sprintf("%s | %s => [%s]", strings.Join(frames, ";"), strings.Join(labels, ","), strings.Join(vals, " ")))
	}
	sort.Strings(out)
	return out
}
