package profile

import (
	"slices"
	"testing"
	"time"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

func ids(from, to int) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, uint64(i))
	}
	return out
}

// A heap stack cut at 32 frames gets its root frames back from a stack that
// shares its 16 root-most frames and goes 8 frames further.
func TestRepairTruncatedGoStacks(t *testing.T) {
	p := &profilev1.Profile{
		SampleType: []*profilev1.ValueType{{Type: 1, Unit: 2}, {Type: 3, Unit: 4}},
		Sample: []*profilev1.Sample{
			{LocationId: ids(1, 32), Value: []int64{1, 100}},  // truncated: root 33..40 missing
			{LocationId: ids(9, 40), Value: []int64{2, 200}},  // reaches the root
			{LocationId: ids(100, 110), Value: []int64{3, 1}}, // shallow: untouched
		},
		StringTable: []string{"", "alloc_objects", "count", "alloc_space", "bytes"},
		TimeNanos:   time.Now().UnixNano(),
	}
	if !mayBeTruncatedGo(p) {
		t.Fatal("not considered")
	}
	if !FixGo(p) {
		t.Fatal("FixGo reported no change")
	}
	var repaired, other []uint64
	for _, s := range p.Sample {
		switch s.Value[0] {
		case 1:
			repaired = s.LocationId
		case 3:
			other = s.LocationId
		}
	}
	if !slices.Equal(repaired, ids(1, 40)) {
		t.Errorf("repaired stack %v", repaired)
	}
	if !slices.Equal(other, ids(100, 110)) {
		t.Errorf("shallow stack changed: %v", other)
	}
	// Go 1.23+ heap profiles (stacks deeper than 32) are left alone.
	p.Sample[0].LocationId = ids(1, 33)
	if mayBeTruncatedGo(p) {
		t.Error("deep heap profile considered truncated")
	}
}

func TestIsGo(t *testing.T) {
	spy := func(v string) []*typesv1.LabelPair { return []*typesv1.LabelPair{{Name: "pyroscope_spy", Value: v}} }
	tests := []struct {
		name    string
		strings []string
		labels  []*typesv1.LabelPair
		want    bool
	}{
		{"gospy", []string{"", "main.py"}, spy("gospy"), true},
		{"pyspy wins over strings", []string{"", "/src/main.go"}, spy("pyspy"), false},
		{"unknown spy falls back to strings", []string{"", "x", "/src/main.go"}, spy("ebpfspy"), true},
		{"go file", []string{"", "main.main", "/app/main.go"}, nil, true},
		{"first hint decides", []string{"", "app.py", "/app/main.go"}, nil, false},
		{"nothing known", []string{"", "a", "b"}, nil, false},
	}
	for _, tt := range tests {
		if got := IsGo(&profilev1.Profile{StringTable: tt.strings}, tt.labels); got != tt.want {
			t.Errorf("%s: IsGo = %v", tt.name, got)
		}
	}
}

func TestInjectMappingVersions(t *testing.T) {
	p := &profilev1.Profile{
		Mapping:     []*profilev1.Mapping{{Id: 1, BuildId: 1}, {Id: 2}},
		StringTable: []string{"", "abc"},
	}
	if InjectMappingVersions(p, []*typesv1.LabelPair{{Name: "service_name", Value: "s"}}) {
		t.Fatal("changed without version labels")
	}
	ls := []*typesv1.LabelPair{{Name: "service_git_ref", Value: "v1"}, {Name: "service_repository", Value: "https://github.com/x/y"}}
	if !InjectMappingVersions(p, ls) {
		t.Fatal("no change")
	}
	if got := p.StringTable[p.Mapping[0].BuildId]; got != `{"repository":"https://github.com/x/y","git_ref":"v1","build_id":"abc"}` {
		t.Errorf("mapping 1: %s", got)
	}
	if got := p.StringTable[p.Mapping[1].BuildId]; got != `{"repository":"https://github.com/x/y","git_ref":"v1"}` {
		t.Errorf("mapping 2: %s", got)
	}
}
