// Package otlp converts OTLP profiles (the v1development protocol of
// go.opentelemetry.io/proto/otlp/profiles/v1development v0.3.0: one
// ProfilesDictionary per export, a stack table) to pprof and series labels
// exactly as Pyroscope's distributor does (pkg/ingester/otlp at 3fe6a45;
// docs/compatibility.md#otlp-profiles): one pprof per OTLP profile and
// sample-level service.name, with __delta__=false, __otel__=true, __name__
// from the sample type, the resource and scope attributes, and service_name.
//
// The pprof is written straight to the wire format from the OTLP tables, so
// no intermediate profile is built.
package otlp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	collectorv1 "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	profilesv1 "go.opentelemetry.io/proto/otlp/profiles/v1development"
)

// Label and attribute names Pyroscope gives a meaning to.
const (
	labelName        = "__name__"
	labelDelta       = "__delta__"
	labelOTel        = "__otel__"
	labelServiceName = "service_name"

	attrServiceName = "service.name"
	attrExecutable  = "process.executable.name"
	attrBuildID     = "process.executable.build_id.gnu"
	unknownService  = "unknown_service"
	labelSpanID     = "span_id"
	labelTraceID    = "trace_id"
)

// Errors of a whole export, before any profile is looked at; Pyroscope
// answers both with InvalidArgument (400).
var (
	ErrNoDictionary = errors.New("missing profile metadata dictionary")
	ErrNoResources  = errors.New("missing resource profiles")
)

// CheckExport applies the export-level checks.
func CheckExport(req *collectorv1.ExportProfilesServiceRequest) error {
	if req.GetDictionary() == nil {
		return ErrNoDictionary
	}
	// Decoding leaves an empty repeated field nil, so an export without
	// resource profiles is refused, as Pyroscope refuses it.
	if req.ResourceProfiles == nil {
		return ErrNoResources
	}
	return nil
}

// Ref locates one profile in an export.
type Ref struct {
	Resource *profilesv1.ResourceProfiles
	Scope    *profilesv1.ScopeProfiles
	Profile  *profilesv1.Profile
}

// Profiles lists every profile of an export in order.
func Profiles(req *collectorv1.ExportProfilesServiceRequest) []Ref {
	n := 0
	for _, rp := range req.GetResourceProfiles() {
		for _, sp := range rp.GetScopeProfiles() {
			n += len(sp.GetProfiles())
		}
	}
	refs := make([]Ref, 0, n)
	for _, rp := range req.GetResourceProfiles() {
		for _, sp := range rp.GetScopeProfiles() {
			for _, p := range sp.GetProfiles() {
				refs = append(refs, Ref{Resource: rp, Scope: sp, Profile: p})
			}
		}
	}
	return refs
}

// ConvertError is why a profile could not be converted; Pyroscope fails the
// whole export with InvalidArgument "failed to convert otel profile: ...".
type ConvertError struct{ Err error }

func (e *ConvertError) Error() string { return "failed to convert otel profile: " + e.Err.Error() }
func (e *ConvertError) Unwrap() error { return e.Err }

// Series is one converted profile: its series labels, in Pyroscope's order
// (the pipeline sorts them), and its uncompressed pprof.
type Series struct {
	Labels []*typesv1.LabelPair
	Pprof  []byte
	buf    *[]byte
}

// Release gives the Series' bytes back for the next conversion; Pprof must
// not be used afterwards.
func (s *Series) Release() {
	if s.buf == nil {
		return
	}
	if cap(*s.buf) <= maxPooledOut {
		outPool.Put(s.buf)
	}
	s.buf, s.Pprof = nil, nil
}

// ServiceName is the service of a resource: its service.name, else
// unknown_service with ":<process.executable.name>" appended for each such
// attribute met before a service.name (Pyroscope's rule, repeats included).
func ServiceName(attrs []*commonv1.KeyValue) string {
	fallback := unknownService
	for _, a := range attrs {
		switch a.GetKey() {
		case attrServiceName:
			if v := anyString(a.GetValue()); v != "" {
				return v
			}
		case attrExecutable:
			if v := anyString(a.GetValue()); v != "" {
				fallback += ":" + v
			}
		}
	}
	return fallback
}

// anyString is an attribute value as a label value: a string, an integer in
// decimal, or the one element of a one-element array; "" for anything else.
func anyString(v *commonv1.AnyValue) string {
	if s := anySingle(v); s != "" {
		return s
	}
	if vs := v.GetArrayValue().GetValues(); len(vs) == 1 {
		return anySingle(vs[0])
	}
	return ""
}

func anySingle(v *commonv1.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonv1.AnyValue_StringValue:
		return x.StringValue
	case *commonv1.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	}
	return ""
}

// seriesLabels are the labels of one converted profile: __delta__, __otel__,
// __name__, then the resource's and the scope's attributes (the first
// occurrence of a key wins; empty values and __name__ are left out), then
// service_name.
func seriesLabels(name string, ref Ref, service string) []*typesv1.LabelPair {
	res := ref.Resource.GetResource().GetAttributes()
	scope := ref.Scope.GetScope().GetAttributes()
	ls := make([]*typesv1.LabelPair, 0, 4+len(res)+len(scope))
	ls = append(ls,
		&typesv1.LabelPair{Name: labelDelta, Value: "false"},
		&typesv1.LabelPair{Name: labelOTel, Value: "true"},
		&typesv1.LabelPair{Name: labelName, Value: name},
	)
	seen := func(k string) bool {
		if k == labelName {
			return true
		}
		for _, l := range ls[3:] {
			if l.Name == k {
				return true
			}
		}
		return false
	}
	for _, attrs := range [2][]*commonv1.KeyValue{res, scope} {
		for _, a := range attrs {
			if seen(a.GetKey()) {
				continue
			}
			if v := anyString(a.GetValue()); v != "" {
				ls = append(ls, &typesv1.LabelPair{Name: a.GetKey(), Value: v})
			}
		}
	}
	return append(ls, &typesv1.LabelPair{Name: labelServiceName, Value: service})
}

func at[T any](table []T, i int32) (T, error) {
	if i >= 0 && int(i) < len(table) {
		return table[i], nil
	}
	var zero T
	return zero, fmt.Errorf("index %d out of bounds", i)
}

// valueMode is what a sample's values go through.
type valueMode uint8

const (
	valuesAsIs valueMode = iota
	// samplesToNanos: a count of CPU samples becomes CPU time (x period).
	samplesToNanos
	// sumEvents: off-CPU values are summed into one.
	sumEvents
)

// header is what every pprof of one OTLP profile shares.
type header struct {
	typ, unit       string // the pprof sample type
	defaultType     string
	hasPeriodType   bool
	periodTypeStr   string
	periodUnitStr   string
	mode            valueMode
	name            string // __name__
	period          int64
	time, duration  int64
	checkValueCount bool
}

func newHeader(p *profilesv1.Profile, strs []string, now time.Time) (*header, error) {
	st := p.GetSampleType()
	if st == nil {
		return nil, errors.New("sample type is missing")
	}
	h := &header{period: p.GetPeriod(), time: int64(p.GetTimeUnixNano()), duration: int64(p.GetDurationNano())}
	var err error
	if h.typ, err = at(strs, st.GetTypeStrindex()); err != nil {
		return nil, fmt.Errorf("could not process sample type: could not access type string: %w", err)
	}
	if h.unit, err = at(strs, st.GetUnitStrindex()); err != nil {
		return nil, fmt.Errorf("could not process sample type: could not access unit string: %w", err)
	}
	if pt := p.GetPeriodType(); pt != nil {
		if h.periodTypeStr, err = at(strs, pt.GetTypeStrindex()); err != nil {
			return nil, fmt.Errorf("could not access type string: %w", err)
		}
		if h.periodUnitStr, err = at(strs, pt.GetUnitStrindex()); err != nil {
			return nil, fmt.Errorf("could not access unit string: %w", err)
		}
		h.hasPeriodType = true
	}
	h.defaultType = h.typ
	// The profile type is sample type:unit:period type:unit, the period part
	// empty without a period; it names the profile.
	var pType, pUnit string
	if h.hasPeriodType && h.period != 0 {
		pType, pUnit = h.periodTypeStr, h.periodUnitStr
	}
	profileType := h.typ + ":" + h.unit + ":" + pType + ":" + pUnit
	switch profileType {
	case "samples:count:cpu:nanoseconds":
		h.typ, h.unit = "cpu", "nanoseconds"
		h.name = "process_cpu"
		h.mode = samplesToNanos
	case "off_cpu:nanoseconds::":
		h.name = "off_cpu"
		h.mode = sumEvents
	default:
		// "wall:time:cpu:milliseconds" is named "cpu": the third part.
		h.name = strings.Split(profileType, ":")[2]
	}
	h.checkValueCount = h.period != 0 && h.hasPeriodType
	if h.time == 0 {
		h.time = now.UnixNano()
	}
	if h.duration == 0 {
		h.duration = int64(10 * time.Second)
	}
	return h, nil
}

// Converter converts profiles, keeping its working memory between calls.
// It is not safe for concurrent use: use one per goroutine.
type Converter struct {
	builders []*builder
	free     []*builder
	groups   []string // sample service.name of builders[i]
	vals     []int64
}

// Convert converts one profile of an export whose dictionary is dict: one
// Series per distinct sample-level service.name (samples without one take
// the resource's service), appended to dst. A profile without samples gives
// nothing. The caller owns the Series and releases each when done.
// Conversion errors are *ConvertError.
func (c *Converter) Convert(dict *profilesv1.ProfilesDictionary, ref Ref, now time.Time, dst []Series) ([]Series, error) {
	defer c.reset()
	p := ref.Profile
	strs := dict.GetStringTable()
	var h *header
	for _, s := range p.GetSamples() {
		svc, err := attrValue(s.GetAttributeIndices(), dict, attrServiceName)
		if err != nil {
			// Pyroscope drops the whole profile here without a word; it is
			// reported as rejected instead (docs/compatibility.md).
			return dst, &ConvertError{err}
		}
		b := c.builderFor(svc)
		if b == nil {
			if h == nil {
				if h, err = newHeader(p, strs, now); err != nil {
					return dst, &ConvertError{err}
				}
			}
			b = c.newBuilder(svc, h, dict)
		}
		if err := b.sample(s, c); err != nil {
			return dst, &ConvertError{err}
		}
	}
	if len(c.builders) == 0 {
		return dst, nil
	}
	resourceService := ""
	for i, b := range c.builders {
		svc := c.groups[i]
		if svc == "" {
			if resourceService == "" {
				resourceService = ServiceName(ref.Resource.GetResource().GetAttributes())
			}
			svc = resourceService
		}
		buf := b.encode()
		dst = append(dst, Series{Labels: seriesLabels(h.name, ref, svc), Pprof: *buf, buf: buf})
	}
	return dst, nil
}

func (c *Converter) builderFor(svc string) *builder {
	for i, g := range c.groups {
		if g == svc {
			return c.builders[i]
		}
	}
	return nil
}

func (c *Converter) newBuilder(svc string, h *header, dict *profilesv1.ProfilesDictionary) *builder {
	var b *builder
	if n := len(c.free); n > 0 {
		b, c.free = c.free[n-1], c.free[:n-1]
	} else {
		b = &builder{}
	}
	b.start(h, dict)
	c.builders = append(c.builders, b)
	c.groups = append(c.groups, svc)
	return b
}

func (c *Converter) reset() {
	for _, b := range c.builders {
		b.finish()
		c.free = append(c.free, b)
	}
	clear(c.builders)
	c.builders = c.builders[:0]
	clear(c.groups)
	c.groups = c.groups[:0]
}

// attrValue is the value of the first attribute named key among indices,
// "" when there is none; an index out of range before it is an error.
func attrValue(indices []int32, dict *profilesv1.ProfilesDictionary, key string) (string, error) {
	for i, ai := range indices {
		a, err := at(dict.GetAttributeTable(), ai)
		if err != nil {
			return "", fmt.Errorf("attribute not found: %d: %w", i, err)
		}
		k, err := at(dict.GetStringTable(), a.GetKeyStrindex())
		if err != nil {
			return "", fmt.Errorf("attribute key string not found %d: %w", i, err)
		}
		if k == key {
			return anyString(a.GetValue()), nil
		}
	}
	return "", nil
}
