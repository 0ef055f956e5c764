package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	"github.com/grafana/pyroscope-go/upstream"
	"github.com/grafana/pyroscope-go/upstream/remote"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pyrodist/pyrodist/test/testutil/observed"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

func labelStrings(ls []*typesv1.LabelPair) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Name + "=" + l.Value
	}
	return out
}

// stacks renders samples as "root;...;leaf => [v...]", sorted.
func stacks(p *profile.Profile) []string {
	var out []string
	for _, s := range p.Sample {
		var frames []string
		for i := len(s.Location) - 1; i >= 0; i-- {
			for _, l := range s.Location[i].Line {
				frames = append(frames, l.Function.Name)
			}
		}
		out = append(out, fmt.Sprintf("%s => %v", strings.Join(frames, ";"), s.Value))
	}
	slices.Sort(out)
	return out
}

func post(t *testing.T, url, contentType string, body []byte, header http.Header) *http.Response {
	t.Helper()
	return send(t, http.MethodPost, url, contentType, body, header)
}

// send makes one request; its body is closed when the test ends.
func send(t *testing.T, method, url, contentType string, body []byte, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// TestIngestObservedCases replays the /ingest requests sent to a real
// Pyroscope v2 and checks that the series we hand the pipeline carry the
// labels Pyroscope sent to its writer (the pipeline leaves these unchanged).
func TestIngestObservedCases(t *testing.T) {
	reqs, want := observed.Requests(), observed.Outcomes()
	ts := startServer(t, nil)
	n := 0
	for _, rq := range reqs {
		if rq.Kind != "ingest" {
			continue
		}
		n++
		t.Run(rq.Case, func(t *testing.T) {
			exp := want[rq.Case]
			before := ts.pusher.count()
			resp := post(t, ts.url+"/ingest?"+rq.Query, rq.ContentType, rq.Body, nil)
			if fmt.Sprint(resp.StatusCode) != exp.Status {
				body, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d (%s), Pyroscope answered %s", resp.StatusCode, body, exp.Status)
			}
			if ts.pusher.count() != before+len(exp.Outs) {
				t.Fatalf("pushed %d series, Pyroscope sent %d", ts.pusher.count()-before, len(exp.Outs))
			}
			_, req := ts.pusher.last(t)
			series := req.Series[0]
			if got := labelStrings(series.Labels); !slices.Equal(got, exp.Outs[0].Labels) {
				t.Errorf("labels\n got %q\nwant %q", got, exp.Outs[0].Labels)
			}
			p := pprofcheck.Parse(t, series.Samples[0].RawProfile)
			var types []string
			for _, st := range p.SampleType {
				types = append(types, st.Type+"/"+st.Unit)
			}
			if !slices.Equal(types, exp.Outs[0].SampleTypes) {
				t.Errorf("sample types %q, want %q", types, exp.Outs[0].SampleTypes)
			}
			// Pyroscope's samples read "stack | sample labels => values".
			var wantStacks []string
			for _, s := range exp.Outs[0].Samples {
				stack, rest, _ := strings.Cut(s, " | ")
				_, values, _ := strings.Cut(rest, "=> ")
				wantStacks = append(wantStacks, stack+" => "+values)
			}
			// Pyroscope's outs are after normalization, which drops all-zero
			// samples; that is the pipeline's job, not this layer's.
			got := slices.DeleteFunc(stacks(p), func(s string) bool { return strings.HasSuffix(s, "=> [0 0]") })
			if !slices.Equal(got, wantStacks) {
				t.Errorf("samples %q, want %q", got, wantStacks)
			}
		})
	}
	if n != 4 {
		t.Fatalf("replayed %d ingest cases, want 4", n)
	}
}

type quietLogger struct{ t *testing.T }

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Debugf(string, ...any) {}
func (l quietLogger) Errorf(f string, a ...any) {
	l.t.Errorf("pyroscope-go: "+f, a...)
}

// TestIngestGoSDKUploader pushes with pyroscope-go's own uploader, so the
// multipart shape, query and headers are exactly what the Go SDK sends.
func TestIngestGoSDKUploader(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.MultitenancyEnabled = true })
	r, err := remote.NewRemote(remote.Config{
		Address: ts.url, TenantID: "team-a", Threads: 1, Timeout: 10 * time.Second, Logger: quietLogger{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	defer r.Stop()

	var heap bytes.Buffer
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(&heap, 0); err != nil {
		t.Fatal(err)
	}
	name := "sdk-app{__session_id__=0123456789abcdef,env=test,otel.scope.name=com.grafana.pyroscope/go}"
	now := time.Now()
	cases := []struct {
		job        *upstream.UploadJob
		wantMetric string
	}{
		{&upstream.UploadJob{
			Name: name, StartTime: now.Add(-10 * time.Second), EndTime: now, SpyName: "gospy", SampleRate: 100,
			Units: "samples", AggregationType: "sum", Format: upstream.FormatPprof, Profile: cpuProfile(t),
		}, "process_cpu"},
		{&upstream.UploadJob{
			Name: name, StartTime: now.Add(-10 * time.Second), EndTime: now, SpyName: "gospy", SampleRate: 100,
			Format: upstream.FormatPprof, Profile: heap.Bytes(),
			SampleTypeConfig: map[string]*upstream.SampleType{
				"alloc_objects": {Units: "objects"}, "alloc_space": {Units: "bytes"},
				"inuse_space": {Units: "bytes", Aggregation: "average"}, "inuse_objects": {Units: "objects", Aggregation: "average"},
			},
		}, "memory"},
		{&upstream.UploadJob{
			Name: name, StartTime: now.Add(-10 * time.Second), EndTime: now, SpyName: "gospy",
			Format: upstream.FormatPprof, Profile: mutexProfile(t),
			SampleTypeConfig: map[string]*upstream.SampleType{
				"contentions": {DisplayName: "mutex_count", Units: "lock_samples"},
				"delay":       {DisplayName: "mutex_duration", Units: "lock_nanoseconds"},
			},
		}, "mutex"},
	}
	for _, tc := range cases {
		before := ts.pusher.count()
		r.Upload(tc.job)
		r.Flush()
		if ts.pusher.count() != before+1 {
			t.Fatalf("%s: the SDK's upload did not reach the pipeline", tc.wantMetric)
		}
		tenant, req := ts.pusher.last(t)
		if tenant != "team-a" {
			t.Errorf("tenant = %q, want team-a", tenant)
		}
		want := []string{
			"__delta__=false", "__name__=" + tc.wantMetric, "__session_id__=0123456789abcdef",
			"env=test", "otel.scope.name=com.grafana.pyroscope/go", "pyroscope_spy=gospy", "service_name=sdk-app",
		}
		if got := labelStrings(req.Series[0].Labels); !slices.Equal(got, want) {
			t.Errorf("labels\n got %q\nwant %q", got, want)
		}
		pprofcheck.Parse(t, req.Series[0].Samples[0].RawProfile)
	}
}

func mutexProfile(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("mutex").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestIngestFoldedScaling(t *testing.T) {
	ts := startServer(t, nil)
	cases := []struct {
		query, body string
		want        []string
		wantTypes   string
	}{
		{"name=app.cpu&sampleRate=100", "main;a 10\nmain;b 0\nmain;a 5\n", []string{"main;a => [150000000]"}, "cpu/nanoseconds"},
		{"name=app&sampleRate=1000", "main;a 3\r\nmain;b 1", []string{"main;a => [3000000]", "main;b => [1000000]"}, "cpu/nanoseconds"},
		{"name=app.wall&sampleRate=50", "x 2\n", []string{"x => [40000000]"}, "wall/nanoseconds"},
		{"name=app.alloc_space&sampleRate=100", "x;y 4096\n", []string{"x;y => [4096]"}, "alloc_space/bytes"},
		{"name=app.cpu&format=lines", "main;a\nmain;a\nmain;b\n", []string{"main;a => [20000000]", "main;b => [10000000]"}, "cpu/nanoseconds"},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			resp := post(t, ts.url+"/ingest?"+tc.query, "text/plain", []byte(tc.body), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			_, req := ts.pusher.last(t)
			p := pprofcheck.Parse(t, req.Series[0].Samples[0].RawProfile)
			if got := stacks(p); !slices.Equal(got, tc.want) {
				t.Errorf("samples %q, want %q", got, tc.want)
			}
			if got := p.SampleType[0].Type + "/" + p.SampleType[0].Unit; got != tc.wantTypes {
				t.Errorf("sample type %s, want %s", got, tc.wantTypes)
			}
		})
	}
}

func TestIngestRawPprofFixesTime(t *testing.T) {
	ts := startServer(t, nil)
	p := pprofcheck.Parse(t, cpuProfile(t))
	p.TimeNanos = 0
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	from := time.Now().Add(-time.Minute).Truncate(time.Second)
	resp := post(t, fmt.Sprintf("%s/pyroscope/ingest?format=pprof&name=raw{env=prod}&from=%d", ts.url, from.Unix()), "application/octet-stream", buf.Bytes(), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_, req := ts.pusher.last(t)
	got := pprofcheck.Parse(t, req.Series[0].Samples[0].RawProfile)
	if got.TimeNanos != from.UnixNano() {
		t.Errorf("time_nanos = %d, want from = %d", got.TimeNanos, from.UnixNano())
	}
	want := []string{"__delta__=false", "__name__=process_cpu", "env=prod", "pyroscope_spy=unknown", "service_name=raw"}
	if l := labelStrings(req.Series[0].Labels); !slices.Equal(l, want) {
		t.Errorf("labels %q, want %q", l, want)
	}
}

func multipartBody(t *testing.T, fields map[string][]byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range fields {
			if !yield(k) {
				return
			}
		}
	}) {
		w, err := mw.CreateFormFile(k, k)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(fields[k])
	}
	_ = mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// TestIngestStatusCodes covers the /ingest rows of
// docs/compatibility.md#status-codes decided here.
func TestIngestStatusCodes(t *testing.T) {
	cpu := smallProfile(t)
	big := bytes.Repeat([]byte("a;b 1\n"), 1000)
	mpOK, mpOKType := multipartBody(t, map[string][]byte{"profile": cpu})
	mpPrev, mpPrevType := multipartBody(t, map[string][]byte{"profile": cpu, "prev_profile": cpu})
	mpNone, mpNoneType := multipartBody(t, map[string][]byte{"other": []byte("x")})
	mpBig, mpBigType := multipartBody(t, map[string][]byte{"profile": big})
	bomb := gzipped(make([]byte, 8<<10))
	unavailable := status.Error(codes.Unavailable, "service is unavailable")
	cases := []struct {
		name        string
		method      string
		query       string
		contentType string
		body        []byte
		header      http.Header
		multiTenant bool
		pushErr     error
		wantStatus  int
		wantCode    string
		wantMsg     string
	}{
		{name: "folded ok", query: "name=a.cpu", body: []byte("main;a 10"), wantStatus: 200},
		{name: "bad name", query: "name={bad", body: []byte("main;a 10"), wantStatus: 400, wantCode: "invalid_argument", wantMsg: "name: service name is required"},
		{name: "reserved label", query: "name=a{__name__=x}", body: []byte("a 1"), wantStatus: 400, wantCode: "invalid_argument"},
		{name: "unknown suffix", query: "name=a.nosuchtype", body: []byte("a 1"), wantStatus: 400, wantCode: "invalid_argument"},
		{name: "folded without count", query: "name=a.cpu", body: []byte("this is not folded"), wantStatus: 422, wantCode: "invalid_argument"},
		{name: "pprof garbage", query: "name=a&format=pprof", body: []byte("garbage!"), wantStatus: 422, wantCode: "invalid_argument"},
		{name: "pprof format wins over multipart", query: "name=a&format=pprof", contentType: mpOKType, body: mpOK, wantStatus: 422},
		{name: "multipart ok", query: "name=a", contentType: mpOKType, body: mpOK, wantStatus: 200},
		{name: "multipart prev_profile", query: "name=a", contentType: mpPrevType, body: mpPrev, wantStatus: 422, wantMsg: "unsupported client version. Please update github.com/grafana/pyroscope-go to the latest version"},
		{name: "multipart without profile", query: "name=a", contentType: mpNoneType, body: mpNone, wantStatus: 422},
		{name: "multipart no boundary", query: "name=a", contentType: "multipart/form-data", body: mpOK, wantStatus: 422},
		{name: "folded body too large", query: "name=a.cpu", body: big, wantStatus: 413, wantCode: "resource_exhausted"},
		{name: "multipart body too large", query: "name=a", contentType: mpBigType, body: mpBig, wantStatus: 413},
		{name: "raw body too large", query: "name=a&format=pprof", body: big, wantStatus: 413},
		{name: "gzip bomb over max profile size", query: "name=a&format=pprof", body: bomb, wantStatus: 422},
		{name: "jfr: not a recording", query: "name=a&format=jfr", body: []byte("x"), wantStatus: 422, wantCode: "unknown"},
		{name: "GET", method: http.MethodGet, query: "name=a.cpu", wantStatus: 405},
		{name: "no org id", query: "name=a.cpu", body: []byte("a 1"), multiTenant: true, wantStatus: 401, wantCode: "unauthenticated", wantMsg: "no org id"},
		{name: "bad org id", query: "name=a.cpu", body: []byte("a 1"), multiTenant: true, header: http.Header{"X-Scope-Orgid": {"bad/tenant"}}, wantStatus: 401, wantMsg: "tenant ID 'bad/tenant' contains unsupported character '/'"},
		{name: "two org ids", query: "name=a.cpu", body: []byte("a 1"), multiTenant: true, header: http.Header{"X-Scope-Orgid": {"a|b"}}, wantStatus: 401, wantMsg: "multiple org IDs present"},
		{name: "text: invalid", query: "name=a.cpu", body: []byte("a 1"), pushErr: connect.NewError(connect.CodeInvalidArgument, errors.New("bad")), wantStatus: 400, wantCode: "invalid_argument", wantMsg: "bad"},
		{name: "text: rate limited", query: "name=a.cpu", body: []byte("a 1"), pushErr: connect.NewError(connect.CodeResourceExhausted, errors.New("slow down")), wantStatus: 429, wantCode: "resource_exhausted"},
		{name: "text: writer unavailable", query: "name=a.cpu", body: []byte("a 1"), pushErr: unavailable, wantStatus: 503, wantCode: "unavailable", wantMsg: "rpc error: code = Unavailable desc = service is unavailable"},
		{name: "text: writer timeout", query: "name=a.cpu", body: []byte("a 1"), pushErr: status.Error(codes.DeadlineExceeded, "slow"), wantStatus: 504, wantCode: "deadline_exceeded"},
		{name: "pprof: invalid", query: "name=a", contentType: mpOKType, body: mpOK, pushErr: connect.NewError(connect.CodeInvalidArgument, errors.New("bad")), wantStatus: 422, wantCode: "invalid_argument"},
		{name: "pprof: rate limited", query: "name=a", contentType: mpOKType, body: mpOK, pushErr: connect.NewError(connect.CodeResourceExhausted, errors.New("slow down")), wantStatus: 429},
		{name: "pprof: writer unavailable", query: "name=a", contentType: mpOKType, body: mpOK, pushErr: unavailable, wantStatus: 503, wantCode: "unavailable"},
		{name: "pprof: writer timeout", query: "name=a", contentType: mpOKType, body: mpOK, pushErr: status.Error(codes.DeadlineExceeded, "slow"), wantStatus: 504, wantCode: "deadline_exceeded"},
		{name: "pprof: writer failed", query: "name=a", contentType: mpOKType, body: mpOK, pushErr: status.Error(codes.Internal, "bug"), wantStatus: 422, wantCode: "unknown"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, func(o *Options) {
				o.MultitenancyEnabled = tc.multiTenant
				o.Limits = fixedLimits{body: 4 << 10, profile: 4 << 10}
			})
			ts.pusher.setErr(tc.pushErr)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			resp := send(t, method, ts.url+"/ingest?"+tc.query, tc.contentType, tc.body, tc.header)
			if resp.StatusCode != tc.wantStatus {
				body, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantStatus == 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			b := decodeErrorBody(t, resp.Body)
			if tc.wantCode != "" && b.Code != tc.wantCode {
				t.Errorf("code %q, want %q (%s)", b.Code, tc.wantCode, b.Message)
			}
			if tc.wantMsg != "" && b.Message != tc.wantMsg {
				t.Errorf("message %q, want %q", b.Message, tc.wantMsg)
			}
			if b.Message == "" {
				t.Error("empty error message")
			}
		})
	}
}

func TestIngestProfileIDNameIsDropped(t *testing.T) {
	ts := startServer(t, nil)
	resp := post(t, ts.url+"/ingest?name="+url.QueryEscape("a.cpu{profile_id=123}"), "", []byte("a 1"), nil)
	if resp.StatusCode != 200 || ts.pusher.count() != 0 {
		t.Fatalf("status %d, pushes %d; want 200 and nothing pushed", resp.StatusCode, ts.pusher.count())
	}
}

// smallProfile is a two-sample CPU profile, gzipped as runtime/pprof writes.
func smallProfile(t *testing.T) []byte {
	t.Helper()
	fMain := &profile.Function{ID: 1, Name: "main"}
	fA := &profile.Function{ID: 2, Name: "a"}
	lMain := &profile.Location{ID: 1, Line: []profile.Line{{Function: fMain}}}
	lA := &profile.Location{ID: 2, Line: []profile.Line{{Function: fA}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10000000,
		TimeNanos:  time.Now().UnixNano(),
		Sample: []*profile.Sample{
			{Location: []*profile.Location{lA, lMain}, Value: []int64{2, 20000000}},
			{Location: []*profile.Location{lMain}, Value: []int64{1, 10000000}},
		},
		Location: []*profile.Location{lMain, lA},
		Function: []*profile.Function{fMain, fA},
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestIngestChunkedBodyLimit: without a Content-Length the limit is enforced
// while streaming, for raw and multipart bodies alike.
func TestIngestChunkedBodyLimit(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.Limits = fixedLimits{body: 4 << 10, profile: 4 << 10} })
	big := bytes.Repeat([]byte("a;b 1\n"), 2000)
	mp, mpType := multipartBody(t, map[string][]byte{"profile": big})
	for _, tc := range []struct {
		query, contentType string
		body               []byte
	}{
		{"name=a.cpu", "text/plain", big},
		{"name=a&format=pprof", "application/octet-stream", big},
		{"name=a", mpType, mp},
	} {
		// io.MultiReader hides the length, so the client sends it chunked.
		req, _ := http.NewRequest(http.MethodPost, ts.url+"/ingest?"+tc.query, io.MultiReader(bytes.NewReader(tc.body)))
		req.Header.Set("Content-Type", tc.contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: status %d, want 413", tc.query, resp.StatusCode)
		}
	}
	if ts.pusher.count() != 0 {
		t.Fatal("an oversized body reached the pipeline")
	}
}
