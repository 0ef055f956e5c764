package profile

import (
	"bytes"
	"runtime/pprof"
	"testing"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pyrodist/pyrodist/internal/corpus"
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
	f.Fuzz(func(t *testing.T, data []byte) {
		want := &profilev1.Profile{}
		wantErr := want.UnmarshalVT(data)
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
