package profile

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/test/corpus"
	"github.com/pyrodist/pyrodist/test/testutil/cputime"
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

func cloneStacks(p *profilev1.Profile) *profilev1.Profile {
	q := &profilev1.Profile{SampleType: p.SampleType, StringTable: p.StringTable}
	for _, s := range p.Sample {
		q.Sample = append(q.Sample, &profilev1.Sample{LocationId: slices.Clip(slices.Clone(s.LocationId)), Value: s.Value})
	}
	return q
}

// truncatedStacks builds stacks as Go's CPU profiler cuts them: random walks
// down a small call graph (recursion included, so chains and cycles occur),
// leaf first, keeping the leaf-most depth frames.
func truncatedStacks(rng *rand.Rand, n, depth, alphabet int) *profilev1.Profile {
	p := &profilev1.Profile{
		SampleType:  []*profilev1.ValueType{{Type: 1, Unit: 2}},
		StringTable: []string{"", "cpu", "nanoseconds"},
	}
	for range n {
		var stack []uint64
		id := uint64(1)
		for range 20 + rng.IntN(90) {
			stack = append(stack, id)
			id = 1 + (id*7+uint64(rng.IntN(8)/7))%uint64(alphabet) // mostly one callee
		}
		slices.Reverse(stack)
		if len(stack) > depth {
			stack = stack[:depth]
		}
		p.Sample = append(p.Sample, &profilev1.Sample{LocationId: stack, Value: []int64{1}})
	}
	return p
}

// The pooled, hash-keyed repair changes exactly the stacks the first
// implementation changed, in the same way, on the corpus and on many
// generated truncated profiles.
func TestRepairTruncatedGoMatchesReference(t *testing.T) {
	var cases []*profilev1.Profile
	for _, cp := range corpus.All() {
		p, err := Decode(cp.Raw())
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, p)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		cases = append(cases, truncatedStacks(rng, 1+rng.IntN(200), 64, 5+i%60))
	}
	changed := 0
	for i, p := range cases {
		want, got := cloneStacks(p), cloneStacks(p)
		repairTruncatedGoRef(want)
		repairTruncatedGo(got)
		for j := range want.Sample {
			if !slices.Equal(want.Sample[j].LocationId, got.Sample[j].LocationId) {
				t.Fatalf("case %d sample %d: got %v, want %v", i, j, got.Sample[j].LocationId, want.Sample[j].LocationId)
			}
		}
		if stackLen(want) != stackLen(p) {
			changed++
		}
	}
	if changed < 50 {
		t.Fatalf("only %d of %d cases were repaired: the comparison proves little", changed, len(cases))
	}
}

// BenchmarkRepairTruncatedGo compares the first implementation ("ref") with
// the current one on the corpus and on a truncated profile, in one run.
func BenchmarkRepairTruncatedGo(b *testing.B) {
	type input struct {
		name string
		p    *profilev1.Profile
	}
	var ins []input
	for _, cp := range corpus.All() {
		p, err := Decode(cp.Raw())
		if err != nil {
			b.Fatal(err)
		}
		ins = append(ins, input{cp.Name, p})
	}
	ins = append(ins, input{"truncated-2k", truncatedStacks(rand.New(rand.NewPCG(3, 4)), 2000, 64, 200)})
	impls := []struct {
		name string
		fn   func(*profilev1.Profile)
	}{{"ref", repairTruncatedGoRef}, {"new", repairTruncatedGo}}
	for _, in := range ins {
		lens := make([]int, len(in.p.Sample))
		for i, s := range in.p.Sample {
			lens[i] = len(s.LocationId)
			s.LocationId = slices.Clip(s.LocationId)
		}
		for _, impl := range impls {
			b.Run(in.name+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				cpu0 := cputime.Process()
				for b.Loop() {
					impl.fn(in.p)
					for i, s := range in.p.Sample {
						s.LocationId = s.LocationId[:lens[i]:lens[i]]
					}
				}
				cputime.Report(b, cpu0, 8*stackLen(in.p)) // MB of location ids
			})
		}
	}
}

func TestCompareIDBytesIsMemoryOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 10000 {
		a, b := make([]uint64, 3), make([]uint64, 3)
		for i := range a {
			a[i], b[i] = rng.Uint64()>>(rng.IntN(4)*16), rng.Uint64()>>(rng.IntN(4)*16)
			if rng.IntN(2) == 0 {
				b[i] = a[i] ^ 1<<rng.IntN(64)
			}
			if rng.IntN(3) == 0 {
				b[i] = a[i]
			}
		}
		if got, want := compareIDBytes(a, b), bytes.Compare(unsafeBytes(a), unsafeBytes(b)); got != want {
			t.Fatalf("compareIDBytes(%x, %x) = %d, bytes.Compare = %d", a, b, got, want)
		}
	}
}
