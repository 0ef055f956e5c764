package legacy

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
)

// The speedscope file format (https://www.speedscope.app/file-format-schema.json),
// the fields Pyroscope reads, typed as Pyroscope types them: a field of the
// wrong type fails the whole document there too.
type (
	speedscopeFile struct {
		Schema string `json:"$schema"`
		Shared struct {
			Frames []speedscopeFrame `json:"frames"`
		} `json:"shared"`
		Profiles           []speedscopeProfile `json:"profiles"`
		Name               string              `json:"name"`
		ActiveProfileIndex float64             `json:"activeProfileIndex"`
		Exporter           string              `json:"exporter"`
	}
	speedscopeFrame struct {
		Name string  `json:"name"`
		File string  `json:"file"`
		Line float64 `json:"line"`
		Col  float64 `json:"col"`
	}
	speedscopeProfile struct {
		Type       string            `json:"type"`
		Name       string            `json:"name"`
		Unit       string            `json:"unit"`
		StartValue float64           `json:"startValue"`
		EndValue   float64           `json:"endValue"`
		Events     []speedscopeEvent `json:"events"`
		Samples    [][]float64       `json:"samples"`
		Weights    []float64         `json:"weights"`
	}
	speedscopeEvent struct {
		Type  string  `json:"type"`
		At    float64 `json:"at"`
		Frame float64 `json:"frame"`
	}
)

const speedscopeSchema = "https://www.speedscope.app/file-format-schema.json"

// speedscopePrecision is Pyroscope's factor for keeping fractions of time
// units as integers (timePrecisionMultiplier in
// pkg/og/convert/speedscope/units.go at 3fe6a45).
const speedscopePrecision = 100

// speedscopeRate is the sample rate Pyroscope gives a profile of this unit
// when the request says 100 (the default): computed in uint32 as Pyroscope
// does, so nanoseconds wrap to 1215752192, whose period rounds to 0 ns.
func speedscopeRate(unit string) (uint32, error) {
	p := uint32(speedscopePrecision)
	switch unit {
	case "nanoseconds":
		return p * 1000 * 1000 * 1000, nil
	case "microseconds":
		return p * 1000 * 1000, nil
	case "milliseconds":
		return p * 1000, nil
	case "seconds":
		return p, nil
	case "none":
		return p * 100, nil
	case "bytes":
		return 0, nil
	}
	return 0, fmt.Errorf("unknown unit: %s", unit)
}

// speedscopeMultiplier scales every value: time units keep two decimals.
func speedscopeMultiplier(unit string) (uint64, error) {
	switch unit {
	case "nanoseconds", "microseconds", "milliseconds", "seconds", "none":
		return speedscopePrecision, nil
	case "bytes":
		return 1, nil
	}
	return 0, fmt.Errorf("unknown unit: %s", unit)
}

// Speedscope converts a speedscope JSON document as Pyroscope does
// (pkg/og/convert/speedscope at 3fe6a45) and hands push one series per
// profile, in order; push's error is returned unchanged and ends the
// conversion, like Pyroscope's Put errors. Profiles with the same name,
// type, unit and start value are merged into one (their events, samples and
// weights concatenated); when more than one profile remains, each is named
// app.<unit>, so its type comes from its unit. Every profile gets the label
// profile_name (removed when the profile has no name). A request sample
// rate of 100 (the default) is replaced by the unit's (speedscopeRate).
// The whole document is parsed before the first push: a profile that does
// not parse fails the request with nothing pushed; a profile whose name has
// no known type fails it after the profiles before it were pushed. With a
// profile_id label in the name the document is parsed and nothing pushed.
//
// Where Pyroscope indexes past the frame table (a sampled frame index equal
// to the number of frames) and panics, this returns a ParseError; values
// that overflow an int64 are errors too, not wrapped.
func Speedscope(body []byte, md Metadata, lim Limits, push func(*Series) error) error {
	if lim.Reserve != nil {
		if err := lim.Reserve(speedscopeCharge(body)); err != nil {
			return err
		}
	}
	perr := func(err error) error { return &ParseError{"speedscope", err} }
	var doc speedscopeFile
	if err := json.Unmarshal(body, &doc); err != nil {
		return perr(err)
	}
	if doc.Schema != speedscopeSchema {
		return perr(fmt.Errorf("unknown schema: %s", doc.Schema))
	}
	groups := mergeSpeedscope(doc.Profiles)
	multi := len(groups) > 1
	frames := doc.Shared.Frames
	// frameOf caches each used frame's id in the current profile's stackSet:
	// a frame's name is interned once per profile however often it appears.
	cacheGen := make([]uint32, len(frames))
	cacheID := make([]uint32, len(frames))

	type converted struct {
		s    *stackSet
		app  string
		rate uint32
		name Name
	}
	out := make([]converted, 0, len(groups))
	for g, group := range groups {
		first := &doc.Profiles[group[0]]
		c := converted{app: md.Name.App, rate: md.SampleRate, name: md.Name}
		if multi {
			c.app = md.Name.App + "." + first.Unit
		}
		c.name = withLabel(c.name, "profile_name", first.Name)
		if c.rate == 100 {
			rate, err := speedscopeRate(first.Unit)
			if err != nil {
				return perr(fmt.Errorf("invalid profile unit: %w", err))
			}
			c.rate = rate
		}
		c.s = newStackSet(lim, len(body))
		gen := uint32(g + 1)
		frameOf := func(fid int) uint32 {
			if cacheGen[fid] != gen {
				cacheGen[fid], cacheID[fid] = gen, c.s.frameString(frames[fid].Name)
			}
			return cacheID[fid]
		}
		var err error
		switch first.Type {
		case "evented":
			err = speedscopeEvented(c.s, doc.Profiles, group, len(frames), frameOf)
		case "sampled":
			err = speedscopeSampled(c.s, doc.Profiles, group, len(frames), frameOf)
		default:
			err = localf("profile type %s not supported", first.Type)
		}
		if err == nil {
			err = c.s.err
		}
		if isLocal(err) {
			return perr(err)
		}
		if err != nil { // the budget, the size limit
			return err
		}
		out = append(out, c)
	}
	if hasProfileID(md.Name) {
		return nil
	}
	for _, c := range out {
		pmd := md
		pmd.Name = c.name
		series, err := textSeries(c.s, c.app, c.rate, pmd)
		if err != nil {
			return err
		}
		c.s = nil
		if err := push(series); err != nil {
			return err
		}
	}
	return nil
}

// localError is an error of the document's content (wrapped as a
// ParseError by Speedscope).
type localError struct{ error }

func isLocal(err error) bool {
	var l localError
	return errors.As(err, &l)
}

func localf(format string, args ...any) error { return localError{fmt.Errorf(format, args...)} }

// mergeSpeedscope groups the profiles Pyroscope merges (same name, type,
// unit and start value), each group in document order, the groups ordered
// by start value (ties in document order: Pyroscope's order among them is
// its map's).
func mergeSpeedscope(profiles []speedscopeProfile) [][]int {
	type key struct {
		name, typ, unit string
		start           float64
	}
	index := map[key]int{}
	var groups [][]int
	for i := range profiles {
		p := &profiles[i]
		k := key{p.Name, p.Type, p.Unit, p.StartValue}
		if g, ok := index[k]; ok {
			groups[g] = append(groups[g], i)
			continue
		}
		index[k] = len(groups)
		groups = append(groups, []int{i})
	}
	slices.SortStableFunc(groups, func(a, b []int) int {
		return cmp.Compare(profiles[a[0]].StartValue, profiles[b[0]].StartValue)
	})
	return groups
}

// frameIndex is a JSON frame index as Pyroscope reads it (int(f), which
// truncates), or false when that is not an index of n frames.
func frameIndex(f float64, n int) (int, bool) {
	if t := math.Trunc(f); t >= 0 && t < float64(n) {
		return int(t), true
	}
	return 0, false
}

// weight is uint64(w)*mul as Pyroscope computes it, or an error where that
// is not exact.
func weight(w float64, mul uint64) (uint64, error) {
	if !(w < 1<<64) {
		return 0, localf("value %g overflows", w)
	}
	u := uint64(w)
	if u > math.MaxUint64/mul {
		return 0, localf("value %g overflows", w)
	}
	return u * mul, nil
}

// speedscopeEvented replays open and close events: the time up to each
// event goes to the stack open until then. As in Pyroscope, the time before
// a close is scaled by the unit's multiplier and the time before an open
// is not, and frames left open at the end add nothing more.
func speedscopeEvented(s *stackSet, profiles []speedscopeProfile, group []int, nFrames int, frameOf func(int) uint32) error {
	first := &profiles[group[0]]
	mul, err := speedscopeMultiplier(first.Unit)
	if err != nil {
		return localf("invalid profile unit: %w", err)
	}
	last := first.StartValue
	var open []int     // frame index of each open frame
	var nodes []uint32 // stack node with that frame on top
	cur := uint32(0)   // the open stack
	for _, pi := range group {
		for _, ev := range profiles[pi].Events {
			if s.err != nil {
				return s.err
			}
			if ev.At < last {
				return localf("events out of order, %f < %f", ev.At, last)
			}
			fid, ok := frameIndex(ev.Frame, nFrames)
			if !ok {
				return localf("invalid frame %v", ev.Frame)
			}
			switch ev.Type {
			case "C":
				if len(open) == 0 {
					return localf("no stack to close at %f", ev.At)
				}
				if open[len(open)-1] != fid {
					return localf("closing non-open frame %d", fid)
				}
				v, err := weight(ev.At-last, mul)
				if err != nil {
					return err
				}
				s.add(cur, v)
				open, nodes = open[:len(open)-1], nodes[:len(nodes)-1]
				cur = 0
				if len(nodes) > 0 {
					cur = nodes[len(nodes)-1]
				}
			case "O":
				if len(open) > 0 {
					v, err := weight(ev.At-last, 1)
					if err != nil {
						return err
					}
					s.add(cur, v)
				}
				cur = s.child(cur, frameOf(fid))
				open, nodes = append(open, fid), append(nodes, cur)
				s.charge(16)
			default:
				return localf("unknown event type %s", ev.Type)
			}
			last = ev.At
		}
	}
	return nil
}

// speedscopeSampled adds each sample's weight, scaled by the unit's
// multiplier after truncation to an integer as in Pyroscope, to its stack.
// Samples and weights pair up across the merged profiles.
func speedscopeSampled(s *stackSet, profiles []speedscopeProfile, group []int, nFrames int, frameOf func(int) uint32) error {
	var nSamples, nWeights int
	for _, pi := range group {
		nSamples += len(profiles[pi].Samples)
		nWeights += len(profiles[pi].Weights)
	}
	if nSamples != nWeights {
		return localf("unequal lengths of samples and weights: %d != %d", nSamples, nWeights)
	}
	mul, err := speedscopeMultiplier(profiles[group[0]].Unit)
	if err != nil {
		return localf("invalid profile unit: %w", err)
	}
	wp, wi := 0, 0 // the next weight: profiles[group[wp]].Weights[wi]
	for _, pi := range group {
		for _, sample := range profiles[pi].Samples {
			if s.err != nil {
				return s.err
			}
			for len(profiles[group[wp]].Weights) == wi {
				wp, wi = wp+1, 0
			}
			w := profiles[group[wp]].Weights[wi]
			wi++
			if w < 0 {
				return localf("negative weight %f", w)
			}
			node := uint32(0)
			for _, f := range sample {
				fid, ok := frameIndex(f, nFrames)
				if !ok {
					return localf("invalid frame %v", f)
				}
				node = s.child(node, frameOf(fid))
			}
			v, err := weight(w, mul)
			if err != nil {
				return err
			}
			s.add(node, v)
		}
	}
	return nil
}

// speedscopeCharge bounds the memory json.Unmarshal takes for a document:
// the strings twice (unescaping copies them), and for each element of the
// arrays it fills, by its place in the document, the element's size 2.5
// times (an array grown by append holds its old and new backing arrays
// while it copies): a profile (depth 3), a frame (depth 4), an event or a
// sample (depth 5); a number in an array 32 bytes. Other values are skipped
// by the decoder. Measured: over the live decoded size for every shape, and
// 3-13 times the body for real documents.
func speedscopeCharge(body []byte) int {
	n := 2 * len(body)
	depth := 0
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '"':
			i = stringEnd(body, i+1)
		case '{':
			depth++
			switch depth {
			case 3:
				n += 340
			case 4:
				n += 120
			case 5:
				n += 80
			}
		case '[':
			depth++
			if depth >= 4 {
				n += 96
			}
		case '}', ']':
			depth--
		case ',':
			if depth >= 4 {
				n += 32
			}
		}
	}
	return n
}

// stringEnd is the index of the quote that closes a JSON string whose
// contents start at i (len(b) when none does).
func stringEnd(b []byte, i int) int {
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b)
		}
		j += i
		k := j
		for k > i && b[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return j
		}
		i = j + 1
	}
}
