package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-kit/log"
	jfrpprof "github.com/grafana/jfr-parser/pprof"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/distributor"
	"github.com/pyrodist/pyrodist/test/testutil/cputime"
	"github.com/pyrodist/pyrodist/test/testutil/observed"
)

type ackSender struct{}

func (ackSender) Send(context.Context, *distributor.Profile) error { return nil }

// benchRecording is the observed CPU, lock and allocation recording (228 KB
// of JFR, two profile types out), as the Java SDK records it.
func benchRecording(b *testing.B) []byte {
	for _, rq := range observed.JFRRequests() {
		if rq.Case != "jfr-multipart-lock-alloc" {
			continue
		}
		_, params, err := mime.ParseMediaType(rq.ContentType)
		if err != nil {
			b.Fatal(err)
		}
		mr := multipart.NewReader(bytes.NewReader(rq.Body), params["boundary"])
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if part.FormName() == "jfr" {
				data, err := io.ReadAll(part)
				if err != nil {
					b.Fatal(err)
				}
				return data
			}
		}
	}
	b.Fatal("no recording")
	return nil
}

// BenchmarkJFR measures CPU per MB of JFR through /ingest?format=jfr next to
// its floor, in the same run (docs/performance.md#jfr):
//
//   - ours: the HTTP handler (no network) with the whole pipeline behind it
//     and a sender that acks at once: read the body, scan, convert, label,
//     then for each profile decode, validate, normalize, split, encode;
//   - floor: jfr-parser's own conversion of the same recording to pprof
//     (ParseJFR) and the encoding of each profile, which any distributor
//     that forwards JFR as pprof must do.
//
// Both report MB/cpu-s of JFR input; the ratio floor/ours is the cost ratio.
func BenchmarkJFR(b *testing.B) {
	data := benchRecording(b)
	b.Run("ours", func(b *testing.B) {
		lim := config.Defaults().Limits
		lim.IngestionRateMB, lim.IngestionBurstSizeMB = 1<<20, 1<<20 // cost, not limits
		d, err := distributor.New(distributor.Config{}, defaultsOnly{lim}, ackSender{},
			func() int { return 1 }, prometheus.NewRegistry(), log.NewNopLogger())
		if err != nil {
			b.Fatal(err)
		}
		s, err := New(Options{Pusher: d, Limits: defaultsOnly{lim}, Budget: d.Budget(), Registerer: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		h := s.Handler()
		target := "/ingest?" + javaSDKQuery("bench{env=prod}")
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		cpu0 := cputime.Process()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(data))
			req.Header.Set("Content-Type", "application/octet-stream")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
		cputime.Report(b, cpu0, len(data))
	})
	b.Run("floor", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		cpu0 := cputime.Process()
		for b.Loop() {
			now := time.Now()
			res, err := jfrpprof.ParseJFR(data, &jfrpprof.ParseInput{StartTime: now.Add(-10 * time.Second), EndTime: now, SampleRate: 100}, new(jfrpprof.LabelsSnapshot))
			if err != nil {
				b.Fatal(err)
			}
			for _, p := range res.Profiles {
				if _, err := p.Profile.MarshalVT(); err != nil {
					b.Fatal(err)
				}
			}
		}
		cputime.Report(b, cpu0, len(data))
	})
}
