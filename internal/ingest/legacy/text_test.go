package legacy

import (
	"net/url"
	"testing"
	"time"

	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

// A sample rate over 1e9 makes Pyroscope's period 1e9/rate round to 0: it
// has no period and scales every value to 0, leaving no sample. (Folded
// used to divide by that 0 and panic.)
func TestFoldedRateOverBillion(t *testing.T) {
	md, err := ParseQuery(url.Values{"name": {"app.cpu"}, "sampleRate": {"2000000000"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := Folded([]byte("main;a 10\n"), md)
	if err != nil {
		t.Fatal(err)
	}
	p := pprofcheck.Parse(t, s.Pprof)
	if len(p.Sample) != 0 || p.Period != 0 || p.PeriodType.Type != "" || p.SampleType[0].Type != "cpu" {
		t.Fatalf("samples %d, period type %v, sample type %v", len(p.Sample), p.PeriodType, p.SampleType[0])
	}
}

// Pyroscope drops a profile whose name has profile_id with a value; an
// empty profile_id is a label like any other.
func TestFoldedEmptyProfileID(t *testing.T) {
	for name, dropped := range map[string]bool{"app{profile_id=1}": true, "app{profile_id=}": false} {
		md, err := ParseQuery(url.Values{"name": {name}}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		s, err := Folded([]byte("main;a 10\n"), md)
		if err != nil || (s == nil) != dropped {
			t.Errorf("%s: series %v, err %v; want dropped %v", name, s != nil, err, dropped)
		}
	}
}

// sampleRate as Pyroscope reads it (strconv.Atoi): 0 is kept and scales
// nothing, a negative or invalid one is 100, a large one wraps to 32 bits.
func TestSampleRateAsPyroscopeReadsIt(t *testing.T) {
	for in, want := range map[string]uint32{"": 100, "x": 100, "-3": 100, "0": 0, "+7": 7, "250": 250, "4294967297": 1} {
		md, err := ParseQuery(url.Values{"name": {"app"}, "sampleRate": {in}}, time.Now())
		if err != nil || md.SampleRate != want {
			t.Errorf("sampleRate=%q: %d (%v), want %d", in, md.SampleRate, err, want)
		}
	}
	md, _ := ParseQuery(url.Values{"name": {"app.cpu"}, "sampleRate": {"0"}}, time.Now())
	s, err := Folded([]byte("main;a 10\n"), md)
	if err != nil {
		t.Fatal(err)
	}
	p := pprofcheck.Parse(t, s.Pprof)
	if st := p.SampleType[0]; st.Type != "samples" || st.Unit != "count" || p.Sample[0].Value[0] != 10 {
		t.Errorf("sample type %s/%s, value %d; want samples/count 10", st.Type, st.Unit, p.Sample[0].Value[0])
	}
}
