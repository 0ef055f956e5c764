package distributor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/klauspost/compress/gzip"

	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/test/testutil/observed"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

// The corpus was exported at this time; profiles are shifted by now-export.
var corpusExport = time.Date(2026, 11, 25, 15, 46, 1, 772767555, time.UTC)

// shiftTime moves a (possibly gzipped) pprof's time_nanos by d, keeping 0.
func shiftTime(t *testing.T, body []byte, d time.Duration) []byte {
	t.Helper()
	raw := body
	if len(body) > 2 && body[0] == 0x1f && body[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	var p profilev1.Profile
	if err := p.UnmarshalVT(raw); err != nil {
		return body // not pprof (the garbage case): replay as is
	}
	if p.TimeNanos != 0 {
		p.TimeNanos += int64(d)
	}
	out, err := p.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(out)
	zw.Close()
	return buf.Bytes()
}

// ingestSeries turns the /ingest cases that carry pprof into the series the
// ingest layer hands to Push (labels from `name`, spyName, __delta__).
func ingestSeries(t *testing.T, r observed.Request) ([]*typesv1.LabelPair, []byte, bool) {
	q, err := url.ParseQuery(r.Query)
	if err != nil {
		t.Fatal(err)
	}
	body := r.Body
	if q.Get("format") != "pprof" {
		mt, params, err := mime.ParseMediaType(r.ContentType)
		if err != nil || mt != "multipart/form-data" {
			return nil, nil, false // folded text: the ingest helper's parser
		}
		mr := multipart.NewReader(bytes.NewReader(r.Body), params["boundary"])
		body = nil
		for {
			part, err := mr.NextPart()
			if err != nil {
				break
			}
			if part.FormName() == "profile" {
				body, _ = io.ReadAll(part)
			}
		}
		if body == nil {
			t.Fatalf("%s: no profile part", r.Case)
		}
	}
	name := q.Get("name")
	app, rest, _ := strings.Cut(name, "{")
	ls := []*typesv1.LabelPair{
		{Name: "__name__", Value: "process_cpu"},
		{Name: "service_name", Value: app},
		{Name: "__delta__", Value: "false"},
	}
	if spy := q.Get("spyName"); spy != "" {
		ls = append(ls, &typesv1.LabelPair{Name: "pyroscope_spy", Value: spy})
	}
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			ls = append(ls, &typesv1.LabelPair{Name: k, Value: v})
		}
	}
	return ls, body, true
}

func TestObservedCorpus(t *testing.T) {
	reqs, want := observed.Requests(), observed.Outcomes()
	now := time.Now()
	shift := now.Sub(corpusExport)
	replayed := 0
	for _, r := range reqs {
		var labels []*typesv1.LabelPair
		body := r.Body
		switch r.Kind {
		case "push":
			for _, l := range r.Labels {
				labels = append(labels, &typesv1.LabelPair{Name: l[0], Value: l[1]})
			}
		case "ingest":
			var ok bool
			if labels, body, ok = ingestSeries(t, r); !ok {
				continue
			}
		}
		replayed++
		t.Run(r.Case, func(t *testing.T) {
			exp, ok := want[r.Case]
			if !ok {
				t.Fatalf("no outcome for %s", r.Case)
			}
			rec := &recorder{}
			d := newTestDistributor(t, defaultLimits(), rec)
			d.now = func() time.Time { return now }
			err := d.Push(context.Background(), "anonymous", &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
				Labels:  labels,
				Samples: []*pushv1.RawSample{{RawProfile: shiftTime(t, body, shift)}},
			}}})

			status := exp.Status
			if exp.PyrodistStatus != "" {
				status = exp.PyrodistStatus
			}
			if status == "200" {
				status = "ok"
			}
			if status == "ok" {
				if err != nil {
					t.Fatalf("Push: %v, want ok", err)
				}
			} else {
				var ce *connect.Error
				if !errors.As(err, &ce) {
					t.Fatalf("Push: %v, want connect error %s", err, status)
				}
				if ce.Code().String() != status {
					t.Errorf("code %s, want %s", ce.Code(), status)
				}
				if r.Case == "old" {
					// Times in the message depend on the replay time; the shape must match.
					if !strings.HasPrefix(ce.Message(), "profile with labels '{__name__=\"process_cpu\", service_name=\"diff-old\"}' is outside of ingestion window (profile timestamp: ") ||
						!strings.Contains(ce.Message(), ", the ingestion window starts at ") || !strings.Contains(ce.Message(), " and ends at ") {
						t.Errorf("message %q", ce.Message())
					}
				} else if ce.Message() != exp.Message {
					t.Errorf("message\n got %q\nwant %q", ce.Message(), exp.Message)
				}
			}
			if len(rec.got) != len(exp.Outs) {
				t.Fatalf("sent %d profiles, want %d", len(rec.got), len(exp.Outs))
			}
			for i, o := range exp.Outs {
				g := rec.got[i]
				var ls []string
				for _, l := range g.Labels {
					ls = append(ls, l.Name+"="+l.Value)
				}
				if !slices.Equal(ls, o.Labels) {
					t.Errorf("labels %v, want %v", ls, o.Labels)
				}
				if g.Fingerprint != placement.Fingerprint(g.Labels) || g.Tenant != "anonymous" {
					t.Errorf("fingerprint/tenant mismatch")
				}
				p := pprofcheck.Parse(t, g.Pprof)
				if got := sampleTypes(p); !slices.Equal(got, o.SampleTypes) {
					t.Errorf("sample types %v, want %v", got, o.SampleTypes)
				}
				if got := periodString(p); got != o.Period {
					t.Errorf("period %q, want %q", got, o.Period)
				}
				if p.DurationNanos != o.DurationNanos {
					t.Errorf("duration %d, want %d", p.DurationNanos, o.DurationNanos)
				}
				if got := timeClass(p.TimeNanos, now); got != o.Time {
					t.Errorf("time %s, want %s", got, o.Time)
				}
				if got := observed.Samples(p); !slices.Equal(got, o.Samples) {
					t.Errorf("samples\n got %q\nwant %q", got, o.Samples)
				}
			}
		})
	}
	if replayed < 19 {
		t.Errorf("replayed %d cases, want at least 19", replayed)
	}
}
