package bench

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	collectorv1 "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	"google.golang.org/protobuf/proto"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/distributor"
	"github.com/pyrodist/pyrodist/internal/ingest"
	"github.com/pyrodist/pyrodist/internal/ingest/otlp"
	"github.com/pyrodist/pyrodist/test/testutil/cputime"
	"github.com/pyrodist/pyrodist/test/testutil/otlpexport"
)

// otlpInput is an eBPF-profiler-shaped export of a busy node, 200
// processes with 100 stacks each (about 5.5 MB of protobuf), stamped now.
func otlpInput(tb testing.TB) (body []byte, pprofs []*googlev1.Profile) {
	req := otlpexport.EBPF(otlpexport.EBPFOptions{Processes: 200, Stacks: 100, Seed: 3, Time: time.Now()})
	body, err := proto.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	// The same export as pprof, for the floor to encode.
	var c otlp.Converter
	for _, ref := range otlp.Profiles(req) {
		series, err := c.Convert(req.Dictionary, ref, time.Now(), nil)
		if err != nil {
			tb.Fatal(err)
		}
		for _, s := range series {
			var p googlev1.Profile
			if err := p.UnmarshalVT(s.Pprof); err != nil {
				tb.Fatal(err)
			}
			pprofs = append(pprofs, &p)
		}
	}
	return body, pprofs
}

func measureOTLP(b *testing.B, size int, f func() error) {
	b.SetBytes(int64(size))
	b.ReportAllocs()
	start := cputime.Process()
	for b.Loop() {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	if cpu := (cputime.Process() - start).Seconds(); cpu > 0 {
		b.ReportMetric(float64(size)*float64(b.N)/1e6/cpu, "MB/cpu-s")
	}
}

// BenchmarkOTLP puts an OTLP export through the distributor (ours: the
// OTLP/HTTP handler's read, protobuf decode, conversion and the whole
// pipeline up to a sender that acks at once, with the default concurrency)
// next to its floor (decode the export, encode the same profiles as pprof)
// on the same input; MB are MB of uncompressed OTLP.
func BenchmarkOTLP(b *testing.B) {
	body, pprofs := otlpInput(b)
	b.Run("floor", func(b *testing.B) {
		var out []byte
		measureOTLP(b, len(body), func() error {
			var req collectorv1.ExportProfilesServiceRequest
			if err := proto.Unmarshal(body, &req); err != nil {
				return err
			}
			for _, p := range pprofs {
				n := p.SizeVT()
				if cap(out) < n {
					out = make([]byte, n)
				}
				if _, err := p.MarshalToSizedBufferVT(out[:n]); err != nil {
					return err
				}
			}
			return nil
		})
	})
	b.Run("ours", func(b *testing.B) {
		h := otlpServer(b)
		measureOTLP(b, len(body), func() error { return postOTLP(h, body) })
	})
}

func otlpServer(tb testing.TB) http.Handler {
	l := limits()
	d, err := distributor.New(distributor.Config{MaxInflightBytes: 1 << 32}, staticLimits{l}, nopSender{}, func() int { return 1 }, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := config.Defaults()
	s, err := ingest.New(ingest.Options{
		Pusher: d, Limits: staticLimits{l}, Budget: d.Budget(),
		OTLPExportConcurrency: cfg.Distributor.InstanceLimits.OTLPExportConcurrency,
		OTLPMaxConcurrency:    cfg.Distributor.InstanceLimits.OTLPMaxConcurrency,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s.Handler()
}

type otlpError struct {
	code int
	body string
}

func (e otlpError) Error() string { return http.StatusText(e.code) + ": " + e.body }

func postOTLP(h http.Handler, body []byte) error {
	req := httptest.NewRequest(http.MethodPost, "/v1development/profiles", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return otlpError{rec.Code, rec.Body.String()}
	}
	var resp collectorv1.ExportProfilesServiceResponse
	if err := proto.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		return err
	}
	if ps := resp.GetPartialSuccess(); ps != nil {
		return otlpError{http.StatusOK, ps.GetErrorMessage()}
	}
	return nil
}

// TestOTLPBenchInput guards the benchmark: the export goes through whole.
func TestOTLPBenchInput(t *testing.T) {
	body, pprofs := otlpInput(t)
	if len(pprofs) != 200 {
		t.Fatalf("%d profiles", len(pprofs))
	}
	if err := postOTLP(otlpServer(t), body); err != nil {
		t.Fatal(err)
	}
}
