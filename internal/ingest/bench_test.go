package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"testing"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/prometheus/client_golang/prometheus"
)

func benchServer(b *testing.B) *Server {
	b.Helper()
	s, err := New(Options{
		Pusher:     pusherFunc(func(context.Context, string, *pushv1.PushRequest) error { return nil }),
		Limits:     defaultTestLimits,
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchRequests(b *testing.B, h http.Handler, target, contentType string, body []byte) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// heapProfile is this process's heap profile as runtime/pprof writes it
// (a CPU profile cannot be taken while `go test -cpuprofile` runs).
func heapProfile(b *testing.B) []byte {
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkIngestMultipart: the Go SDK's multipart upload of a real heap
// profile, up to the pipeline (inflate, decode, label).
func BenchmarkIngestMultipart(b *testing.B) {
	body, ct := multipartBody(&testing.T{}, map[string][]byte{"profile": heapProfile(b)})
	benchRequests(b, benchServer(b).Handler(), "/ingest?name=bench{env=prod}&spyName=gospy&sampleRate=100", ct, body)
}

// BenchmarkIngestFolded: 5000 distinct folded stacks, 12 frames deep.
func BenchmarkIngestFolded(b *testing.B) {
	var body bytes.Buffer
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&body, "main;server.Serve;handler.ServeHTTP;svc.Do;db.Query;pool.Get;conn.Read;net.read;syscall.Read;runtime.entersyscall;f%d;g%d %d\n", i%97, i, i%13+1)
	}
	benchRequests(b, benchServer(b).Handler(), "/ingest?name=bench.cpu&sampleRate=100", "text/plain", body.Bytes())
}

// BenchmarkPushConnect: push.v1 over the Connect protocol with a real heap
// profile (the handler path only; the pipeline is a no-op).
func BenchmarkPushConnect(b *testing.B) {
	msg, err := pushRequest(heapProfile(b)).MarshalVT()
	if err != nil {
		b.Fatal(err)
	}
	benchRequests(b, benchServer(b).Handler(), "/push.v1.PusherService/Push", "application/proto", msg)
}
