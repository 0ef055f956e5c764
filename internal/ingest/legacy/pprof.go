package legacy

import (
	"errors"
	"fmt"
	"math"
	"strings"

	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"

	"github.com/pyrodist/pyrodist/internal/profile"
)

// SampleType is one entry of the multipart `sample_type_config` field.
type SampleType struct {
	Units       string `json:"units,omitempty"`
	Aggregation string `json:"aggregation,omitempty"`
	DisplayName string `json:"display-name,omitempty"`
	Sampled     bool   `json:"sampled,omitempty"`
	Cumulative  bool   `json:"cumulative,omitempty"`
}

// defaultSampleTypes is used when a request has no sample_type_config; only
// the display names matter here (they pick the metric name).
var defaultSampleTypes = map[string]*SampleType{
	"samples":     {DisplayName: "cpu"},
	"goroutine":   {DisplayName: "goroutines"},
	"contentions": {DisplayName: "mutex_count"},
	"delay":       {DisplayName: "mutex_duration"},
}

// ErrTooLarge is a profile that inflates past max_profile_size_bytes.
var ErrTooLarge = errors.New("uncompressed profile payload size exceeds limit")

// decodedFactor bounds the memory UnmarshalVT takes per byte of pprof
// (measured on the shared corpus: 5.2-7.0x live, 6.8-7.8x allocated), the
// same bound the pipeline charges for its own decode.
const decodedFactor = 8

// Pprof turns a pprof /ingest body (raw or gzip) into a series. maxSize caps
// the inflated size (0: no cap). reserve (nil: none) is charged, before the
// memory is taken, for the inflated bytes as they grow and for the decoded
// form; its error is returned unchanged so the caller can tell a full budget
// from a bad body. The profile's time is set to `from` when it
// is zero or in 1970, scripting spies' function names get their file name
// prefix, and dotnet profiles get Pyroscope's fixes. Profiles that need none
// of that (the usual case) are only read up to their header and passed on
// byte for byte; the others are decoded whole and re-encoded.
func Pprof(data []byte, md Metadata, types map[string]*SampleType, maxSize int64, reserve func(n int) error) (*Series, error) {
	var budgetErr error
	charge := func(n int) error {
		if reserve == nil {
			return nil
		}
		if err := reserve(n); err != nil {
			budgetErr = err
			return err
		}
		return nil
	}
	var buf []byte
	raw, err := profile.Inflate(data, int(min(maxSize, math.MaxInt32)), &buf, charge)
	var tooLarge *profile.ErrTooLarge
	switch {
	case budgetErr != nil:
		return nil, budgetErr
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("%w of %d bytes", ErrTooLarge, maxSize)
	case err != nil:
		return nil, &ParseError{"gzip", err}
	}
	if types == nil {
		types = defaultSampleTypes
	}
	fixTime := func(p *googlev1.Profile) bool {
		if t := p.TimeNanos; t <= 0 || t < 365*24*3600*1e9 {
			p.TimeNanos = md.From.UnixNano()
			return true
		}
		return false
	}
	// The common case (a Go or Java agent, its own timestamp) only needs the
	// sample types to name the profile: read the header and hand the bytes
	// on untouched, so the pipeline's decode is the only full one.
	scripting := md.SpyName == "pyspy" || md.SpyName == "rbspy" || md.SpyName == "scripting"
	dotnet := md.SpyName == "dotnetspy" || md.SpyName == "unknown" && types["inuse-space"] != nil
	if !scripting && !dotnet {
		if err := charge(len(raw)); err != nil { // the header's strings and functions
			return nil, err
		}
		h, err := profile.DecodeHeader(raw)
		if err != nil {
			return nil, &ParseError{"pprof", err}
		}
		if err := checkStrings(h); err != nil {
			return nil, &ParseError{"pprof", err}
		}
		if !fixTime(h) {
			return &Series{Labels: PprofLabels(metricName(h, types), md), Pprof: raw}, nil
		}
	}
	// A rewrite: decode it all, fix, encode.
	if err := charge(decodedFactor * len(raw)); err != nil {
		return nil, err
	}
	var p googlev1.Profile
	if err := p.UnmarshalVT(raw); err != nil {
		return nil, &ParseError{"pprof", err}
	}
	if err := checkStrings(&p); err != nil {
		return nil, &ParseError{"pprof", err}
	}
	fixTime(&p)
	if scripting {
		prefixFileNames(&p)
	}
	if dotnet {
		fixDotnet(&p)
	}
	if raw, err = p.MarshalVT(); err != nil {
		return nil, err
	}
	return &Series{Labels: PprofLabels(metricName(&p, types), md), Pprof: raw}, nil
}

// checkStrings guards the lookups this package makes; the pipeline checks
// the rest of the profile.
func checkStrings(p *googlev1.Profile) error {
	n := int64(len(p.StringTable))
	for _, st := range p.SampleType {
		if st == nil || st.Type < 0 || st.Type >= n || st.Unit < 0 || st.Unit >= n {
			return errors.New("sample type refers to a string out of range")
		}
	}
	for _, f := range p.Function {
		if f == nil || f.Name < 0 || f.Name >= n || f.Filename < 0 || f.Filename >= n {
			return errors.New("function refers to a string out of range")
		}
	}
	return nil
}

// metricName picks __name__ from the sample types as Pyroscope does: wall if
// any type is "wall", else the first type whose (display) name says cpu,
// memory, mutex, block or goroutines.
func metricName(p *googlev1.Profile, types map[string]*SampleType) string {
	for _, st := range p.SampleType {
		if p.StringTable[st.Type] == "wall" {
			return "wall"
		}
	}
	var name string
	for _, st := range p.SampleType {
		name = p.StringTable[st.Type]
		if c := types[name]; c != nil && c.DisplayName != "" {
			name = c.DisplayName
		}
		switch {
		case strings.Contains(name, "cpu"):
			return "process_cpu"
		case strings.Contains(name, "alloc_"), strings.Contains(name, "inuse_"), name == "space", name == "objects":
			return "memory"
		case strings.Contains(name, "mutex_"):
			return "mutex"
		case strings.Contains(name, "block_"):
			return "block"
		case strings.Contains(name, "goroutines"):
			return "goroutines"
		}
	}
	return name
}

// prefixFileNames renames functions "file:-1 - name" as Pyroscope does for
// py-spy and rbspy, whose frames are otherwise ambiguous.
func prefixFileNames(p *googlev1.Profile) {
	index := map[string]int64{}
	for _, fn := range p.Function {
		name := fmt.Sprintf("%s:%d - %s", p.StringTable[fn.Filename], -1, p.StringTable[fn.Name])
		i, ok := index[name]
		if !ok {
			i = int64(len(p.StringTable))
			p.StringTable = append(p.StringTable, name)
			index[name] = i
		}
		fn.Name = i
	}
}

// fixDotnet repairs old dotnet profilers: functions all with id 0 take their
// location's id, and '-' in sample type names becomes '_'.
func fixDotnet(p *googlev1.Profile) {
	allZero := len(p.Function) > 0
	for _, fn := range p.Function {
		if fn.Id != 0 {
			allZero = false
			break
		}
	}
	if allZero && len(p.Function) == len(p.Location) {
		for i, loc := range p.Location {
			p.Function[i].Id = loc.Id
		}
	}
	for _, st := range p.SampleType {
		p.StringTable[st.Type] = strings.ReplaceAll(p.StringTable[st.Type], "-", "_")
	}
}
