package pprofcheck

import (
	"bytes"
	"testing"

	"github.com/google/pprof/profile"
)

// fakeTB records a failure instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true; panic(f) }

func check(b []byte) (failed bool) {
	tb := &fakeTB{}
	defer func() {
		if r := recover(); r != nil && r != any(tb) {
			panic(r)
		}
		failed = tb.failed
	}()
	Parse(tb, b)
	return false
}

func TestParse(t *testing.T) {
	fn := &profile.Function{ID: 1, Name: "main"}
	good := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}},
		Function:   []*profile.Function{fn},
		Location:   []*profile.Location{{ID: 1, Line: []profile.Line{{Function: fn}}}},
	}
	good.Sample = []*profile.Sample{{Location: good.Location, Value: []int64{1}}}
	var b bytes.Buffer
	if err := good.WriteUncompressed(&b); err != nil {
		t.Fatal(err)
	}
	if check(b.Bytes()) {
		t.Fatal("a valid profile failed")
	}
	if !check([]byte("not pprof")) {
		t.Fatal("garbage passed")
	}
	bad := good.Copy()
	bad.Sample[0].Value = []int64{1, 2} // two values, one sample type
	b.Reset()
	if err := bad.WriteUncompressed(&b); err != nil {
		t.Fatal(err)
	}
	if !check(b.Bytes()) {
		t.Fatal("a profile failing CheckValid passed")
	}
}
