package legacy

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// Metadata is what the query parameters of an /ingest request say.
type Metadata struct {
	Name            Name
	From, Until     time.Time
	SampleRate      uint32
	SpyName         string
	Units           string
	AggregationType string
	Format          string
}

const defaultSampleRate = 100

// ParseQuery reads the /ingest query parameters with Pyroscope's defaults
// (sampleRate 100 when missing, invalid or negative, spyName "unknown", units
// "samples", aggregationType "sum").
// Only a bad `name` is an error.
func ParseQuery(q url.Values, now time.Time) (Metadata, error) {
	name, err := ParseName(q.Get("name"))
	if err != nil {
		return Metadata{}, fmt.Errorf("name: %w", err)
	}
	md := Metadata{
		Name:            name,
		From:            ParseTime(q.Get("from"), now),
		Until:           ParseTime(q.Get("until"), now),
		SampleRate:      defaultSampleRate,
		SpyName:         orDefault(q.Get("spyName"), "unknown"),
		Units:           orDefault(q.Get("units"), "samples"),
		AggregationType: orDefault(q.Get("aggregationType"), "sum"),
		Format:          q.Get("format"),
	}
	// As Pyroscope reads it: an int, kept when not negative (0 included:
	// no scaling), truncated to 32 bits.
	if v, err := strconv.Atoi(q.Get("sampleRate")); err == nil && v >= 0 {
		md.SampleRate = uint32(v)
	}
	return md, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// textType is how a text-format profile is typed: the metric (__name__) and
// the pprof sample type, chosen by the suffix after the app name's last '.'.
type textType struct {
	metric, sampleType, unit string
}

// textTypes is Pyroscope's table for text formats (convertMetadata). The
// sample type is the suffix itself unless given here.
var textTypes = map[string]textType{
	"cpu":                        {"process_cpu", "samples", "count"},
	"itimer":                     {"process_cpu", "samples", "count"},
	"wall":                       {"wall", "samples", "count"},
	"seconds":                    {"wall", "samples", "count"},
	"nanoseconds":                {"wall", "samples", "count"},
	"microseconds":               {"wall", "samples", "count"},
	"milliseconds":               {"wall", "samples", "count"},
	"inuse_objects":              {"memory", "", "count"},
	"inuse_space":                {"memory", "", "bytes"},
	"alloc_objects":              {"memory", "", "count"},
	"alloc_space":                {"memory", "", "bytes"},
	"alloc_in_new_tlab_objects":  {"memory", "", "count"},
	"alloc_in_new_tlab_bytes":    {"memory", "", "bytes"},
	"alloc_outside_tlab_objects": {"memory", "", "count"},
	"alloc_outside_tlab_bytes":   {"memory", "", "bytes"},
	"live":                       {"memory", "", "count"},
	"bytes":                      {"memory", "samples", "bytes"},
	"goroutines":                 {"goroutine", "", "count"},
	"mutex_count":                {"mutex", "contentions", "count"},
	"mutex_duration":             {"mutex", "delay", "nanoseconds"},
	"block_count":                {"block", "contentions", "count"},
	"block_duration":             {"block", "delay", "nanoseconds"},
	"lock_count":                 {"block", "contentions", "count"},
	"lock_duration":              {"block", "delay", "nanoseconds"},
	"exceptions":                 {"exceptions", "samples", "count"},
}

// TextProfileType splits app.suffix into the app and its type. A name
// without '.' is a CPU profile; an unknown suffix is an error.
func TextProfileType(app string) (appName string, t textType, err error) {
	suffix := "cpu"
	if i := strings.LastIndexByte(app, '.'); i >= 0 {
		app, suffix = app[:i], app[i+1:]
	}
	t, ok := textTypes[suffix]
	if !ok {
		return "", t, fmt.Errorf("unknown profile type: %s", suffix)
	}
	if t.sampleType == "" {
		t.sampleType = suffix
	}
	return app, t, nil
}

// allowedLabel says whether a `name` label reaches the series: names starting
// with "__" are internal, except the SDKs' __session_id__.
func allowedLabel(k string) bool {
	return !strings.HasPrefix(k, "__") || k == "__session_id__"
}

// PprofLabels are the series labels of a pprof /ingest request: __name__ from
// the sample types, __delta__=false, pyroscope_spy, service_name = app unless
// the name gives one, and the name's allowed labels.
func PprofLabels(metric string, md Metadata) []*typesv1.LabelPair {
	ls := make([]*typesv1.LabelPair, 0, len(md.Name.Labels)+4)
	ls = append(ls,
		&typesv1.LabelPair{Name: "__name__", Value: metric},
		&typesv1.LabelPair{Name: "__delta__", Value: "false"},
		&typesv1.LabelPair{Name: "pyroscope_spy", Value: md.SpyName},
	)
	if _, ok := md.Name.Get("service_name"); !ok {
		ls = append(ls, &typesv1.LabelPair{Name: "service_name", Value: md.Name.App})
	}
	return sortLabels(appendAllowed(ls, md.Name.Labels))
}

// TextLabels are the series labels of a text-format request: as for pprof,
// except that when the name gives service_name the app becomes app_name.
func TextLabels(metric, app string, md Metadata) []*typesv1.LabelPair {
	ls := make([]*typesv1.LabelPair, 0, len(md.Name.Labels)+4)
	ls = append(ls,
		&typesv1.LabelPair{Name: "__name__", Value: metric},
		&typesv1.LabelPair{Name: "__delta__", Value: "false"},
	)
	if md.SpyName != "" {
		ls = append(ls, &typesv1.LabelPair{Name: "pyroscope_spy", Value: md.SpyName})
	}
	ls = appendAllowed(ls, md.Name.Labels)
	if _, ok := md.Name.Get("service_name"); !ok {
		ls = append(ls, &typesv1.LabelPair{Name: "service_name", Value: app})
	} else if _, ok := md.Name.Get("app_name"); !ok {
		ls = append(ls, &typesv1.LabelPair{Name: "app_name", Value: app})
	}
	return sortLabels(ls)
}

func appendAllowed(ls []*typesv1.LabelPair, from []Label) []*typesv1.LabelPair {
	for _, l := range from {
		if allowedLabel(l.Name) {
			ls = append(ls, &typesv1.LabelPair{Name: l.Name, Value: l.Value})
		}
	}
	return ls
}

func sortLabels(ls []*typesv1.LabelPair) []*typesv1.LabelPair {
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	return ls
}
