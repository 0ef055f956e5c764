package ingest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/distributor"
	"github.com/pyrodist/pyrodist/test/testutil/observed"
	x "github.com/pyrodist/pyrodist/test/testutil/otlpexport"
)

// checkingSender fails the fuzz run when a profile that reaches the
// writers does not parse with google/pprof or fails CheckValid.
type checkingSender struct{ t *testing.T }

func (c *checkingSender) Send(_ context.Context, p *distributor.Profile) error {
	pp, err := profile.ParseData(p.Pprof)
	if err == nil {
		err = pp.CheckValid()
	}
	if err != nil && c.t != nil {
		c.t.Fatalf("forwarded profile is not valid pprof: %v", err)
	}
	return nil
}

// FuzzOTLP sends arbitrary OTLP/HTTP bodies (protobuf or JSON, identity or
// gzip) through the server and the real pipeline: it never panics, answers
// only 200, 400 or 413, and every profile that reaches the writers parses
// with google/pprof and passes CheckValid.
func FuzzOTLP(f *testing.F) {
	now := time.Now()
	b, _ := smallExport(2)
	seeds := [][]byte{
		marshalExport(f, b.Req, false),
		marshalExport(f, x.EBPF(x.EBPFOptions{Processes: 3, Stacks: 5, Seed: 1, Time: now}), false),
	}
	for _, rq := range observed.OTLPRequests() {
		seeds = append(seeds, rq.Body)
	}
	for _, s := range seeds {
		for mode := uint8(0); mode < 4; mode++ {
			f.Add(mode, s)
		}
	}
	f.Add(uint8(1), marshalExport(f, b.Req, true))

	sender := &checkingSender{}
	lim := config.Defaults().Limits
	lim.IngestionRateMB, lim.IngestionBurstSizeMB = 1<<20, 1<<20
	lim.IngestionBodyLimitMB = 1
	d, err := distributor.New(distributor.Config{MaxInflightBytes: 1 << 30}, defaultsOnly{lim}, sender,
		func() int { return 1 }, prometheus.NewRegistry(), log.NewNopLogger())
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(Options{Pusher: d, Limits: defaultsOnly{lim}, Budget: d.Budget(), Registerer: prometheus.NewRegistry(), OTLPExportConcurrency: 2})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, mode uint8, body []byte) {
		sender.t = t
		ct := "application/x-protobuf"
		if mode%2 == 1 {
			ct = "application/json"
		}
		req := httptest.NewRequest(http.MethodPost, otlpHTTPPath, bytes.NewReader(body))
		if mode%4 >= 2 {
			req = httptest.NewRequest(http.MethodPost, otlpHTTPPath, bytes.NewReader(gzipped(body)))
			req.Header.Set("Content-Encoding", "gzip")
		}
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 413:
		default:
			t.Fatalf("status %d: %q", rec.Code, rec.Body)
		}
		if n := d.Budget().InUse(); n != 0 {
			t.Fatalf("%d bytes still charged after the request", n)
		}
	})
}
