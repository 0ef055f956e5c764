package ingest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/prometheus/client_golang/prometheus"
)

// FuzzIngest drives /ingest with arbitrary bodies in each format: it never
// panics, answers only the statuses of docs/compatibility.md#status-codes, and
// whatever it pushes parses as pprof.
func FuzzIngest(f *testing.F) {
	mp, _ := multipartBody(&testing.T{}, map[string][]byte{"profile": smallProfileFuzz(f)})
	for mode := uint8(0); mode < 4; mode++ {
		f.Add(mode, []byte("main;a 10\nmain;b 3\n"))
		f.Add(mode, smallProfileFuzz(f))
		f.Add(mode, mp)
	}
	const boundary = "fuzzboundary"
	var pushed []byte
	s, err := New(Options{
		Pusher: pusherFunc(func(_ context.Context, _ string, req *pushv1.PushRequest) error {
			pushed = req.Series[0].Samples[0].RawProfile
			return nil
		}),
		Limits:     fixedLimits{body: 1 << 20, profile: 1 << 20},
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, mode uint8, body []byte) {
		target, ct := "/ingest?name=app.cpu", "text/plain"
		switch mode % 4 {
		case 1:
			target += "&format=lines"
		case 2:
			target, ct = "/ingest?name=app&format=pprof", "application/octet-stream"
		case 3:
			target, ct = "/ingest?name=app", "multipart/form-data; boundary="+boundary
			body = bytes.ReplaceAll(body, []byte(mpBoundary(mp)), []byte(boundary))
		}
		pushed = nil
		req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 413, 422:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if rec.Code == 200 && pushed != nil {
			if _, err := profile.ParseData(pushed); err != nil && mode%4 < 2 {
				t.Fatalf("text conversion produced unparsable pprof: %v", err)
			}
		}
	})
}

// mpBoundary is the boundary multipartBody chose.
func mpBoundary(body []byte) string {
	line, _, _ := bytes.Cut(body, []byte("\r\n"))
	return string(bytes.TrimPrefix(line, []byte("--")))
}

func smallProfileFuzz(f *testing.F) []byte {
	return smallProfile(&testing.T{})
}
