package legacy

import (
	"fmt"
	"slices"
	"strings"
)

// pprofType is how a text-format profile is typed and scaled.
type pprofType struct {
	sampleType, unit string
	// period is the profile's period (cpu/nanoseconds); 0: none.
	period int64
	// scale multiplies every value; 0 drops them all, as Pyroscope's
	// scaling by a period that rounded to 0 does.
	scale uint64
	from  int64 // time_nanos
}

// typeOf is how Pyroscope's /ingest types and scales a profile that is not
// pprof (Put in pkg/ingester/pyroscope/ingest_adapter.go at 3fe6a45): the
// metric and sample type from the app name's suffix; for cpu and wall with a
// sample rate, the sample type becomes cpu (or wall) in nanoseconds with a
// period of 1e9/sampleRate, which also scales every value. A rate above 1e9
// gives a period of 0, and then every value is 0.
func typeOf(appName string, sampleRate uint32, md Metadata) (app, metric string, t pprofType, err error) {
	app, typ, err := TextProfileType(appName)
	if err != nil {
		return "", "", t, fmt.Errorf("%w: %v", ErrProfileType, err)
	}
	t = pprofType{sampleType: typ.sampleType, unit: typ.unit, scale: 1, from: md.From.UnixNano()}
	if sampleRate != 0 && (typ.metric == "process_cpu" || typ.metric == "wall") {
		t.period = 1e9 / int64(sampleRate)
		t.scale = uint64(t.period)
		t.sampleType = "cpu"
		if typ.metric == "wall" {
			t.sampleType = "wall"
		}
		t.unit = "nanoseconds"
	}
	return app, typ.metric, t, nil
}

// hasProfileID is Pyroscope's test for dropping a profile silently: a
// profile_id label with a value.
func hasProfileID(n Name) bool {
	v, ok := n.Get("profile_id")
	return ok && v != ""
}

// withLabel is n with label k set to v, or removed when v is empty, as
// Pyroscope's LabelSet.Add does.
func withLabel(n Name, k, v string) Name {
	ls := slices.DeleteFunc(slices.Clone(n.Labels), func(l Label) bool { return l.Name == k })
	if v != "" {
		i, _ := slices.BinarySearchFunc(ls, k, func(l Label, k string) int { return strings.Compare(l.Name, k) })
		ls = slices.Insert(ls, i, Label{Name: k, Value: v})
	}
	return Name{App: n.App, Labels: ls}
}
