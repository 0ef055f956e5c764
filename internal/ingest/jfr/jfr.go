// Package jfr turns a Java Flight Recorder recording sent to
// /ingest?format=jfr into one pprof series per profile type it holds, as
// Pyroscope does (docs/compatibility.md#jfr): github.com/grafana/jfr-parser,
// the parser Pyroscope uses, converts it; this package bounds what that
// costs first (scan.go) and labels the series.
package jfr

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	jfrpprof "github.com/grafana/jfr-parser/pprof"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/ingest/legacy"
)

// Memory charged per byte of recording: scanFactor before the scan runs,
// parseFactor (and the scan's estimate of what grows faster than the input:
// samples, functions, the metadata's tables, a fixed cost per chunk) before
// the conversion runs; the scan charges its own metadata tables as it
// builds them. Measured with TestConvertChargeCoversAllocation on
// jfr-parser's 27 test recordings (JFR_PARSER_TESTDATA): the scan
// allocates up to 7.6 bytes per byte of recording, the conversion (encoding
// included) up to 13.1; scan and conversion together 0.3-15.3, charged
// 20-32. TestConvertChargesMetadata covers hostile metadata and chunks.
const (
	scanFactor  = 8
	parseFactor = 12
)

// labelsFactor is what decoding the labels snapshot (protobuf maps) may
// take per byte of it: 9.7-11 on the three snapshots of jfr-parser's test
// data, and about 18 for a snapshot of empty contexts (a 4-byte map entry
// becomes a Context and its map slot).
const labelsFactor = 20

// ErrInvalid marks a body that is not a recording the parser can read, or
// whose labels snapshot does not decode: the client's fault, answered 422.
var ErrInvalid = errors.New("invalid jfr body")

// Reserver charges bytes to the request's in-flight budget; its error is
// returned unchanged.
type Reserver func(n int) error

// parseJFR is the conversion, replaced in tests.
var parseJFR = jfrpprof.ParseJFR

// Convert converts a recording into series, sorted by metric name and
// sample type: one per profile type the recording holds, none when it
// holds no samples. labels is the SDK's LabelsSnapshot protobuf (empty when
// the request had none): its contexts become sample labels. reserve is
// charged before the memory is taken. Errors wrap ErrInvalid, or are
// reserve's.
//
// A panic of the parser is an ErrInvalid error: a recording must never
// take the process down.
func Convert(data, labels []byte, md legacy.Metadata, reserve Reserver) (series []*legacy.Series, err error) {
	defer func() {
		if r := recover(); r != nil {
			series, err = nil, fmt.Errorf("%w: jfr parser panic: %v", ErrInvalid, r)
		}
	}()
	charge := func(n int64) error {
		if reserve == nil || n <= 0 {
			return nil
		}
		return reserve(int(min(n, 1<<62)))
	}
	// Pyroscope always hands the conversion a snapshot, empty for a raw
	// body: with one, span and trace ids become sample labels too.
	snapshot := new(jfrpprof.LabelsSnapshot)
	if len(labels) > 0 {
		if err := charge(labelsFactor * int64(len(labels))); err != nil {
			return nil, err
		}
		if err := snapshot.UnmarshalVT(labels); err != nil {
			return nil, fmt.Errorf("%w: failed to parse labels form field: %w", ErrInvalid, err)
		}
	}
	if err := charge(scanFactor * int64(len(data))); err != nil {
		return nil, err
	}
	var budgetErr error
	sr, err := scan(data, snapshot, func(n int64) error {
		budgetErr = charge(n)
		return budgetErr
	})
	if budgetErr != nil {
		return nil, budgetErr
	}
	if err != nil {
		return nil, fmt.Errorf("%w: jfr parser ParseEvent error: %w", ErrInvalid, err)
	}
	if err := charge(parseFactor*int64(len(data)) + sr.cost); err != nil {
		return nil, err
	}
	profiles, err := parseJFR(data, &jfrpprof.ParseInput{
		StartTime:  md.From,
		EndTime:    md.Until,
		SampleRate: int64(md.SampleRate),
	}, snapshot, jfrpprof.WithDisablePanicRecovery(true))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	// The event name may point into data, which the caller may reuse.
	event := strings.Clone(profiles.JFREvent)
	// The conversion keeps its profiles in a map: give them an order.
	slices.SortStableFunc(profiles.Profiles, func(a, b jfrpprof.Profile) int {
		return cmp.Or(cmp.Compare(a.Metric, b.Metric), cmp.Compare(firstType(a), firstType(b)))
	})
	series = make([]*legacy.Series, 0, len(profiles.Profiles))
	for _, p := range profiles.Profiles {
		raw, err := p.Profile.MarshalVT()
		if err != nil {
			return nil, fmt.Errorf("encode profile: %w", err)
		}
		series = append(series, &legacy.Series{Labels: Labels(md, event, p.Metric), Pprof: raw})
	}
	return series, nil
}

func firstType(p jfrpprof.Profile) string {
	if st := p.Profile.GetSampleType(); len(st) > 0 && st[0].Type >= 0 && st[0].Type < int64(len(p.Profile.StringTable)) {
		return p.Profile.StringTable[st[0].Type]
	}
	return ""
}

// Labels are the series labels of one profile of a recording, as Pyroscope
// gives them (Labels in jfr-parser's pprof/pyroscope, called from
// pkg/og/convert/jfr/profile.go at 3fe6a45): the name's labels but those
// starting with "__" (__session_id__ passes), pyroscope_spy, __delta__=false,
// jfr_event (the recording's sampling event), __name__ from the profile
// type, and the app as service_name, or as app_name when the name already
// has a service_name (and no app_name). Sorted by name.
func Labels(md legacy.Metadata, event, metric string) []*typesv1.LabelPair {
	ls := make([]*typesv1.LabelPair, 0, len(md.Name.Labels)+5)
	for _, l := range md.Name.Labels {
		if !strings.HasPrefix(l.Name, "__") || l.Name == "__session_id__" {
			ls = append(ls, &typesv1.LabelPair{Name: l.Name, Value: l.Value})
		}
	}
	appLabel := "service_name"
	if _, ok := md.Name.Get("service_name"); ok {
		appLabel = "app_name"
	}
	_, hasApp := md.Name.Get(appLabel)
	ls = append(ls,
		&typesv1.LabelPair{Name: "pyroscope_spy", Value: md.SpyName},
		&typesv1.LabelPair{Name: "__delta__", Value: "false"},
		&typesv1.LabelPair{Name: "jfr_event", Value: event},
		&typesv1.LabelPair{Name: "__name__", Value: metric},
	)
	if md.Name.App != "" && !hasApp {
		ls = append(ls, &typesv1.LabelPair{Name: appLabel, Value: md.Name.App})
	}
	slices.SortStableFunc(ls, func(a, b *typesv1.LabelPair) int { return cmp.Compare(a.Name, b.Name) })
	return ls
}
