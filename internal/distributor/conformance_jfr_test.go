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
	"strconv"
	"strings"
	"testing"
	"time"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"

	"github.com/pyrodist/pyrodist/internal/ingest/jfr"
	"github.com/pyrodist/pyrodist/internal/ingest/legacy"
	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/test/testutil/observed"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

// observedRing is the ring the corpus was recorded with: one writer with
// 4 tokens (only the token count matters for the shard).
var observedRing = placement.NewRing([]placement.Instance{{ID: "segment-writer", Addr: "127.0.0.1:9095", State: placement.Active, Tokens: 4}})

// observedShard is the shard Pyroscope's default placement picks for an
// outgoing profile on observedRing.
func observedShard(p *Profile) uint32 {
	shard, _ := observedRing.Place(placement.NewKey(p.Tenant, p.Service, p.Fingerprint), placement.Policy{DatasetShards: 1}, "", nil)
	return shard
}

// jfrRequestParts is an observed JFR request as the ingest layer reads it:
// its query at the replay time (from and until were "now" when it was
// sent, 10 s apart), and the recording and labels snapshot.
func jfrRequestParts(t *testing.T, r observed.Request, now time.Time) (legacy.Metadata, []byte, []byte) {
	t.Helper()
	q, err := url.ParseQuery(r.Query)
	if err != nil {
		t.Fatal(err)
	}
	q.Set("from", strconv.FormatInt(now.Add(-10*time.Second).Unix(), 10))
	q.Set("until", strconv.FormatInt(now.Unix(), 10))
	md, err := legacy.ParseQuery(q, now)
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(r.ContentType)
	if err != nil || mt != "multipart/form-data" {
		return md, r.Body, nil
	}
	var data, labels []byte
	mr := multipart.NewReader(bytes.NewReader(r.Body), params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part)
		switch part.FormName() {
		case "jfr":
			data = b
		case "labels":
			labels = b
		}
	}
	return md, data, labels
}

// TestObservedJFRCorpus replays the JFR requests sent to a real Pyroscope
// (docs/compatibility.md#observed-jfr-cases): each recording converted as
// /ingest converts it, then pushed through the pipeline; the 422 cases
// fail the conversion. Every outgoing profile must match what Pyroscope sent
// to its writer: labels, shard, sample types, period, duration, time and
// samples, and pass google/pprof's CheckValid.
func TestObservedJFRCorpus(t *testing.T) {
	reqs, want := observed.JFRRequests(), observed.JFROutcomes()
	if len(reqs) != 4 {
		t.Fatalf("%d JFR requests, want 4", len(reqs))
	}
	for _, r := range reqs {
		t.Run(r.Case, func(t *testing.T) {
			exp, ok := want[r.Case]
			if !ok {
				t.Fatalf("no outcome for %s", r.Case)
			}
			now := time.Now()
			md, data, labels := jfrRequestParts(t, r, now)
			series, err := jfr.Convert(data, labels, md, nil)
			if exp.Status != "200" {
				// The answer is the ingest layer's: 422 for a body that does not convert.
				if exp.Status != "422" || !errors.Is(err, jfr.ErrInvalid) || len(exp.Outs) != 0 {
					t.Fatalf("Convert: %v; Pyroscope answered %s", err, exp.Status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			req := &pushv1.PushRequest{}
			for _, s := range series {
				req.Series = append(req.Series, &pushv1.RawProfileSeries{Labels: s.Labels, Samples: []*pushv1.RawSample{{RawProfile: s.Pprof}}})
			}
			rec := &recorder{}
			d := newTestDistributor(t, defaultLimits(), rec)
			d.now = func() time.Time { return now }
			if err := d.Push(context.Background(), "anonymous", req); err != nil {
				t.Fatalf("Push: %v", err)
			}
			if len(rec.got) != len(exp.Outs) {
				t.Fatalf("sent %d profiles, want %d", len(rec.got), len(exp.Outs))
			}
			// Profiles of one request are sent concurrently: match them by labels.
			got := map[string]*Profile{}
			for _, g := range rec.got {
				var ls []string
				for _, l := range g.Labels {
					ls = append(ls, l.Name+"="+l.Value)
				}
				got[strings.Join(ls, " ")] = g
			}
			for _, o := range exp.Outs {
				g := got[strings.Join(o.Labels, " ")]
				if g == nil {
					t.Errorf("no profile with labels %v; sent %v", o.Labels, slices.Collect(func(yield func(string) bool) {
						for k := range got {
							yield(k)
						}
					}))
					continue
				}
				if shard := observedShard(g); shard != o.Shard {
					t.Errorf("%v: shard %d, want %d", o.Labels, shard, o.Shard)
				}
				p := pprofcheck.Parse(t, g.Pprof)
				if s := sampleTypes(p); !slices.Equal(s, o.SampleTypes) {
					t.Errorf("sample types %v, want %v", s, o.SampleTypes)
				}
				if s := periodString(p); s != o.Period {
					t.Errorf("period %q, want %q", s, o.Period)
				}
				if p.DurationNanos != o.DurationNanos {
					t.Errorf("duration %d, want %d", p.DurationNanos, o.DurationNanos)
				}
				if s := timeClass(p.TimeNanos, now); s != o.Time {
					t.Errorf("time %s, want %s", s, o.Time)
				}
				if o.CheckValid != "ok" {
					t.Errorf("Pyroscope's profile failed CheckValid (%s); ours passes", o.CheckValid)
				}
				if s := observed.JFRSamples(p); !slices.Equal(s, o.Samples) {
					t.Errorf("%d samples, want %d", len(s), len(o.Samples))
					for i := range min(len(s), len(o.Samples)) {
						if s[i] != o.Samples[i] {
							t.Errorf("first difference at %d:\n got %q\nwant %q", i, s[i], o.Samples[i])
							break
						}
					}
				}
			}
		})
	}
}
