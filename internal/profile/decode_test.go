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
	})
}
