package profile

import (
	"bytes"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pyrodist/pyrodist/test/corpus"
	"github.com/pyrodist/pyrodist/test/testutil/hostile"
)

func discardUnknown(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				discardUnknown(l.Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			discardUnknown(v.Message())
		}
		return true
	})
	if m.GetUnknown() != nil {
		m.SetUnknown(nil)
	}
}

// FuzzDecode: the slab decoder accepts exactly what UnmarshalVT accepts and
// yields the same profile (unknown fields aside, which it drops).
func FuzzDecode(f *testing.F) {
	for _, cp := range corpus.All()[:2] { // cpu, heap: the 16k one slows every run
		f.Add(bytes.Clone(cp.Raw()))
	}
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 0)
	if raw, err := Inflate(b.Bytes(), 0, GetBuffer(), nil); err == nil {
		f.Add(bytes.Clone(raw))
	}
	f.Add([]byte("not a profile"))
	f.Add(hostile.EmptySamples(6))
	f.Add(hostile.Locations(256))
	arena := GetArena() // reused across inputs: recycled memory must not show
	f.Fuzz(func(t *testing.T, data []byte) {
		want := &profilev1.Profile{}
		wantErr := want.UnmarshalVT(data)
		checkWithin(t, data, wantErr)
		got, err := Decode(data)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("Decode err %v, UnmarshalVT err %v", err, wantErr)
		}
		if err != nil {
			if err.Error() != wantErr.Error() {
				t.Fatalf("error %q, want %q", err, wantErr)
			}
			return
		}
		discardUnknown(want.ProtoReflect())
		discardUnknown(got.ProtoReflect()) // the UnmarshalVT fallback keeps them
		a, err1 := got.MarshalVT()
		w, err2 := want.MarshalVT()
		if err1 != nil || err2 != nil {
			t.Fatalf("marshal: %v %v", err1, err2)
		}
		if !bytes.Equal(a, w) {
			t.Fatalf("decoded profiles differ")
		}
		ap, err := arena.Decode(data)
		if err != nil {
			t.Fatalf("Arena.Decode: %v", err)
		}
		discardUnknown(ap.ProtoReflect())
		ab, err := ap.MarshalVT()
		arena.Release()
		arena = GetArena()
		if err != nil || !bytes.Equal(ab, w) {
			t.Fatalf("Arena.Decode differs from UnmarshalVT (marshal err %v)", err)
		}

		// DecodeHeader: everything but samples, mappings and locations.
		h, err := DecodeHeader(data)
		if err != nil {
			t.Fatalf("DecodeHeader refused what UnmarshalVT accepts: %v", err)
		}
		if len(h.Sample)+len(h.Mapping)+len(h.Location) != 0 {
			t.Fatalf("DecodeHeader kept %d samples, %d mappings, %d locations", len(h.Sample), len(h.Mapping), len(h.Location))
		}
		discardUnknown(h.ProtoReflect())
		want.Sample, want.Mapping, want.Location = nil, nil, nil
		hb, err1 := h.MarshalVT()
		w, err2 = want.MarshalVT()
		if err1 != nil || err2 != nil {
			t.Fatalf("marshal: %v %v", err1, err2)
		}
		if !bytes.Equal(hb, w) {
			t.Fatalf("header differs from the full decode")
		}
	})
}

// checkWithin: DecodeWithin, with count limits small enough for fuzzed
// inputs to pass them, refuses what UnmarshalVT refuses (with its error or
// a limit's), and otherwise gives the profile, or the error, that Decode
// and Validate give.
func checkWithin(t *testing.T, data []byte, unmarshalErr error) {
	t.Helper()
	l := limits()
	l.MaxProfileStacktraceSamples, l.MaxProfileStacktraceSampleLabels = 3, 2
	now := time.Unix(1_700_000_000, 0)
	p, _, err := new(Arena).DecodeWithin(data, Bounds{Limits: l, Series: series, Now: now})
	if unmarshalErr != nil {
		if err == nil {
			t.Fatalf("DecodeWithin accepted what UnmarshalVT refuses (%v)", unmarshalErr)
		}
		return
	}
	full, ferr := Decode(data)
	if ferr != nil {
		t.Fatalf("Decode: %v", ferr)
	}
	_, want := Validate(l, full, len(data), series, now)
	if err == nil {
		_, err = Validate(l, p, len(data), series, now)
	}
	if (err == nil) != (want == nil) || err != nil && (err.Error() != want.Error() || reasonOf(err) != reasonOf(want)) {
		t.Fatalf("DecodeWithin then Validate: %v; Decode then Validate: %v", err, want)
	}
}

// DecodeHeader skips the bulk of a profile but not its framing.
func TestDecodeHeaderFraming(t *testing.T) {
	raw := bytes.Clone(corpus.All()[0].Raw())
	h, err := DecodeHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.SampleType) == 0 || len(h.StringTable) == 0 || h.TimeNanos == 0 || len(h.Function) == 0 {
		t.Fatalf("header incomplete: %d types, %d strings, time %d, %d functions",
			len(h.SampleType), len(h.StringTable), h.TimeNanos, len(h.Function))
	}
	if _, err := DecodeHeader(raw[:len(raw)-3]); err == nil {
		t.Fatal("a truncated profile passed")
	}
}

// An Arena reused across profiles of different sizes, each changed in
// place by the pipeline's fixes before it is released, decodes every one
// as a fresh decoder does, and allocates a fraction of what one does.
func TestArenaReuse(t *testing.T) {
	all := corpus.All()
	order := []int{2, 0, 1, 2, 1, 0, 0, 2}
	for _, i := range order {
		if i >= len(all) {
			t.Fatalf("corpus has %d profiles", len(all))
		}
	}
	a := GetArena()
	for n, i := range order {
		raw := all[i].Raw()
		want, err := Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := want.MarshalVT()
		got, err := a.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := got.MarshalVT()
		if !bytes.Equal(g, w) {
			t.Fatalf("decode %d (%s): arena profile differs", n, all[i].Name)
		}
		// Scribble over it as the pipeline does, then hand it back.
		FixGo(got)
		Normalize(got)
		a.Release()
		a = GetArena()
	}
	a.Release()

	raw := all[0].Raw()
	allocated := func(f func()) uint64 {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		for range 20 {
			f()
		}
		runtime.ReadMemStats(&m1)
		return (m1.TotalAlloc - m0.TotalAlloc) / 20
	}
	plain := allocated(func() { _, _ = Decode(raw) })
	pooled := allocated(func() {
		a := GetArena()
		_, _ = a.Decode(raw)
		a.Release()
	})
	if pooled*2 > plain {
		t.Fatalf("arena decode allocates %d bytes per profile, a fresh decoder %d", pooled, plain)
	}
	t.Logf("bytes allocated per decode of %s: %d with an arena, %d without", all[0].Name, pooled, plain)
}
