package ingest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/distributor"
	"github.com/pyrodist/pyrodist/test/testutil/observed"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

// jfrNow moves an observed JFR query's from and until (10 s apart, "now"
// when it was sent) to end now.
func jfrNow(t *testing.T, query string) string {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	q.Set("from", strconv.FormatInt(now.Add(-10*time.Second).Unix(), 10))
	q.Set("until", strconv.FormatInt(now.Unix(), 10))
	return q.Encode()
}

func readGzipFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// javaSDKBody is a request body as the Java SDK's PyroscopeExporter sends
// it (OkHttp's multipart form): a gzipped jfr file, and when there are
// dynamic labels a gzipped labels file of type application/x-protobuf.
func javaSDKBody(t *testing.T, jfr, labels []byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	part := func(name, contentType string, data []byte) {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, name, name))
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		gz := gzipped(data)
		h.Set("Content-Length", strconv.Itoa(len(gz)))
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(gz)
	}
	part("jfr", "", jfr)
	if len(labels) > 0 {
		part("labels", "application/x-protobuf", labels)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// javaSDKQuery is the query of the Java SDK for a CPU snapshot.
func javaSDKQuery(name string) string {
	now := time.Now()
	q := url.Values{}
	q.Set("name", name)
	q.Set("units", "samples")
	q.Set("aggregationType", "sum")
	q.Set("from", strconv.FormatInt(now.Add(-10*time.Second).Unix(), 10))
	q.Set("until", strconv.FormatInt(now.Unix(), 10))
	q.Set("spyName", "javaspy")
	q.Set("sampleRate", "100")
	q.Set("format", "jfr")
	return q.Encode()
}

func pipelineServer(t *testing.T, budget int64) (*recordingSender, *distributor.Distributor, *testServer) {
	t.Helper()
	sender := &recordingSender{}
	d, err := distributor.New(distributor.Config{MaxInflightBytes: budget}, defaultsOnly{config.Defaults().Limits}, sender,
		func() int { return 1 }, prometheus.NewRegistry(), log.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	return sender, d, startServer(t, func(o *Options) { o.Pusher, o.Budget = d, d.Budget() })
}

// TestIngestJFRObservedCases replays the observed /ingest?format=jfr
// requests through the server and the real pipeline: Pyroscope's status
// (and for the 422s its code), and what reaches the writers: one profile
// per type, with Pyroscope's labels and samples, each passing CheckValid.
// (TestObservedJFRCorpus in internal/distributor checks every field.)
func TestIngestJFRObservedCases(t *testing.T) {
	sender, _, ts := pipelineServer(t, 0)
	reqs, want := observed.JFRRequests(), observed.JFROutcomes()
	for _, rq := range reqs {
		t.Run(rq.Case, func(t *testing.T) {
			exp := want[rq.Case]
			before := len(sender.out)
			resp := post(t, ts.url+"/ingest?"+jfrNow(t, rq.Query), rq.ContentType, rq.Body, nil)
			if strconv.Itoa(resp.StatusCode) != exp.Status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d (%s), Pyroscope answered %s", resp.StatusCode, b, exp.Status)
			}
			if resp.StatusCode != http.StatusOK {
				b := decodeErrorBody(t, resp.Body)
				if b.Code != "unknown" {
					t.Errorf("code %q, want unknown", b.Code)
				}
				if rq.Case == "jfr-gzip" && !strings.Contains(b.Message, "invalid chunk magic") {
					t.Errorf("message %q", b.Message)
				}
			}
			got := sender.out[before:]
			if len(got) != len(exp.Outs) {
				t.Fatalf("%d profiles sent, Pyroscope sent %d", len(got), len(exp.Outs))
			}
			for _, o := range exp.Outs {
				i := slices.IndexFunc(got, func(p *distributor.Profile) bool { return slices.Equal(labelStrings(p.Labels), o.Labels) })
				if i < 0 {
					t.Errorf("no profile labelled %v", o.Labels)
					continue
				}
				p := pprofcheck.Parse(t, got[i].Pprof)
				var types []string
				for _, st := range p.SampleType {
					types = append(types, st.Type+"/"+st.Unit)
				}
				if !slices.Equal(types, o.SampleTypes) || len(p.Sample) != len(o.Samples) {
					t.Errorf("%v: sample types %v and %d samples, want %v and %d", o.Labels, types, len(p.Sample), o.SampleTypes, len(o.Samples))
				}
			}
		})
	}
}

// sampleLabels renders the samples of a profile with labels as
// "leaf | k=v,... => values", sorted.
func sampleLabels(p *profile.Profile) []string {
	var out []string
	for _, s := range p.Sample {
		if len(s.Label) == 0 {
			continue
		}
		var ls []string
		for k, vs := range s.Label {
			for _, v := range vs {
				ls = append(ls, k+"="+v)
			}
		}
		sort.Strings(ls)
		out = append(out, fmt.Sprintf("%s | %s => %v", s.Location[0].Line[0].Function.Name, strings.Join(ls, ","), s.Value))
	}
	sort.Strings(out)
	return out
}

// TestIngestJFRJavaSDK sends what the Java SDK sends (a gzipped jfr file and
// a gzipped labels snapshot in a multipart form) through the pipeline: the
// dynamic labels of the snapshot become sample labels of the outgoing
// profiles, as Pyroscope makes them.
func TestIngestJFRJavaSDK(t *testing.T) {
	sender, _, ts := pipelineServer(t, 0)
	jfr := readGzipFile(t, "jfr/testdata/dump1.jfr.gz")
	labels := readGzipFile(t, "jfr/testdata/dump1.labels.pb.gz")
	send := func(labels []byte) []*distributor.Profile {
		before := len(sender.out)
		body, ct := javaSDKBody(t, jfr, labels)
		resp := post(t, ts.url+"/ingest?"+javaSDKQuery("rideshare.java{region=eu-north}"), ct, body, nil)
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		return sender.out[before:]
	}
	plain, labelled := send(nil), send(labels)
	if len(plain) != 1 || len(labelled) != 1 {
		t.Fatalf("%d and %d profiles sent, want one CPU profile each", len(plain), len(labelled))
	}
	wantLabels := []string{"__delta__=false", "__name__=process_cpu", "jfr_event=itimer", "pyroscope_spy=javaspy", "region=eu-north", "service_name=rideshare.java"}
	if got := labelStrings(labelled[0].Labels); !slices.Equal(got, wantLabels) {
		t.Errorf("series labels %v, want %v", got, wantLabels)
	}
	if n := sampleLabels(pprofcheck.Parse(t, plain[0].Pprof)); len(n) != 0 {
		t.Errorf("labelled samples without a snapshot: %v", n[:min(3, len(n))])
	}
	got := sampleLabels(pprofcheck.Parse(t, labelled[0].Pprof))
	if len(got) == 0 {
		t.Fatal("no sample carries the snapshot's labels")
	}
	for _, s := range got {
		if !strings.Contains(s, "thread_name=") {
			t.Errorf("sample %q lacks the SDK's thread_name label", s)
		}
	}
}

// TestIngestJFRStatusCodes: JFR requests that fail, as Pyroscope answers
// them (docs/compatibility.md#jfr).
func TestIngestJFRStatusCodes(t *testing.T) {
	jfr := readGzipFile(t, "jfr/testdata/wall_tick_sample.jfr.gz")
	form := func(parts map[string][]byte, fileNames bool) ([]byte, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range parts {
				yield(k)
			}
		}) {
			var w io.Writer
			if fileNames {
				w, _ = mw.CreateFormFile(name, name)
			} else {
				w, _ = mw.CreateFormField(name)
			}
			_, _ = w.Write(parts[name])
		}
		_ = mw.Close()
		return buf.Bytes(), mw.FormDataContentType()
	}
	rawGz := gzipped(jfr)
	noJFR, noJFRType := form(map[string][]byte{"labels": {}}, true)
	valueJFR, valueJFRType := form(map[string][]byte{"jfr": jfr}, false)
	emptyJFR, emptyJFRType := form(map[string][]byte{"jfr": {}}, true)
	oneByte, oneByteType := form(map[string][]byte{"jfr": {'F'}}, true)
	badLabels, badLabelsType := form(map[string][]byte{"jfr": jfr, "labels": []byte("not a protobuf \xff\xff\xff")}, true)
	bomb, bombType := form(map[string][]byte{"jfr": gzipped(make([]byte, 8<<20))}, true)
	okForm, okFormType := form(map[string][]byte{"jfr": gzipped(jfr)}, true)
	panics, err := os.ReadFile("jfr/testdata/unbound-frames.jfr") // the parser panics on it
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, contentType string
		body              []byte
		bodyLimit         int64
		wantStatus        int
		wantCode, wantMsg string
	}{
		{"raw", "application/octet-stream", jfr, 0, 200, "", ""},
		{"form with a gzipped jfr file", okFormType, okForm, 0, 200, "", ""},
		{"gzipped raw body", "application/octet-stream", rawGz, 0, 422, "unknown", "invalid chunk magic: 1f8b08"},
		{"not jfr", "application/octet-stream", []byte("not a jfr recording"), 0, 422, "unknown", "error reading chunk header"},
		{"form without jfr", noJFRType, noJFR, 0, 422, "unknown", "jfr field is required"},
		{"jfr as a value, not a file", valueJFRType, valueJFR, 0, 422, "unknown", "jfr field is required"},
		{"empty jfr file", emptyJFRType, emptyJFR, 0, 422, "unknown", "jfr field is required"},
		{"one-byte jfr file", oneByteType, oneByte, 0, 422, "unknown", "failed to read magic"},
		{"labels not a snapshot", badLabelsType, badLabels, 0, 422, "unknown", "failed to parse labels form field"},
		{"gzipped jfr over max_profile_size_bytes", bombType, bomb, 0, 422, "unknown", "decompressed size exceeds maximum allowed size of 4194304 bytes"},
		{"multipart without boundary", "multipart/form-data", okForm, 0, 422, "unknown", "malformed multipart"},
		{"a recording the parser panics on", "application/octet-stream", panics, 0, 422, "unknown", "jfr parser ParseEvent error"},
		{"body over the limit", "application/octet-stream", jfr, 16 << 10, 413, "resource_exhausted", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, func(o *Options) {
				if tc.bodyLimit > 0 {
					o.Limits = fixedLimits{body: tc.bodyLimit, profile: 4 << 20}
				}
			})
			resp := post(t, ts.url+"/ingest?"+javaSDKQuery("app"), tc.contentType, tc.body, nil)
			if resp.StatusCode != tc.wantStatus {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, b, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusOK {
				if _, req := ts.pusher.last(t); len(req.Series) != 2 {
					t.Errorf("%d series pushed, want 2 (cpu and wall)", len(req.Series))
				}
				return
			}
			b := decodeErrorBody(t, resp.Body)
			if b.Code != tc.wantCode || !strings.Contains(b.Message, tc.wantMsg) {
				t.Errorf("code %q message %q, want %q containing %q", b.Code, b.Message, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

// TestIngestJFRChargesTheBudget: the conversion is charged before it runs,
// so a recording that does not fit the in-flight budget gets 429 and never
// reaches the pipeline; the budget is back to zero after each request.
func TestIngestJFRChargesTheBudget(t *testing.T) {
	jfr := readGzipFile(t, "jfr/testdata/dump1.jfr.gz") // 330 KB: about 7 MB charged
	small := readGzipFile(t, "jfr/testdata/nativemem.jfr.gz")
	for _, tc := range []struct {
		name       string
		data       []byte
		gzip       bool
		wantStatus int
	}{
		{"raw, over budget", jfr, false, http.StatusTooManyRequests},
		{"gzipped form, over budget", jfr, true, http.StatusTooManyRequests},
		{"raw, within budget", small, false, http.StatusOK},
		{"gzipped form, within budget", small, true, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sender, d, ts := pipelineServer(t, 2<<20)
			body, ct := tc.data, "application/octet-stream"
			if tc.gzip {
				body, ct = javaSDKBody(t, tc.data, nil)
			}
			resp := post(t, ts.url+"/ingest?"+javaSDKQuery("app"), ct, body, nil)
			if resp.StatusCode != tc.wantStatus {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, b, tc.wantStatus)
			}
			if tc.wantStatus != http.StatusOK {
				b := decodeErrorBody(t, resp.Body)
				if b.Code != "resource_exhausted" || !strings.Contains(b.Message, "in flight") {
					t.Errorf("code %q message %q", b.Code, b.Message)
				}
				if len(sender.out) != 0 {
					t.Errorf("%d profiles sent", len(sender.out))
				}
			} else if len(sender.out) == 0 {
				t.Error("nothing sent")
			}
			if n := d.Budget().InUse(); n != 0 {
				t.Errorf("%d bytes still charged", n)
			}
		})
	}
}
