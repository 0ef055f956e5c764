package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	collectorv1 "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	profilesv1 "go.opentelemetry.io/proto/otlp/profiles/v1development"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor collectors use
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/inflight"
	x "github.com/pyrodist/pyrodist/test/testutil/otlpexport"
	"github.com/pyrodist/pyrodist/test/testutil/pprofcheck"
)

// smallExport is n resources with one valid CPU profile each, stamped now.
func smallExport(n int) (*x.Builder, []*profilesv1.Profile) {
	b := x.New()
	m := b.Mapping("/bin/app", 0x400000, 0x800000, "")
	stack := b.Stack(
		b.Location(m, 0x401000, x.Line{Function: b.Function("work", "main.go"), Line: 7}),
		b.Location(m, 0x402000, x.Line{Function: b.Function("main", "main.go"), Line: 3}),
	)
	var ps []*profilesv1.Profile
	for i := range n {
		sp := b.Resource("test", x.KV("service.name", x.String(fmt.Sprintf("svc-%d", i))))
		p := b.Profile(sp, "samples", "count", "cpu", "nanoseconds", 10_000_000, time.Now(), 10*time.Second)
		p.Samples = []*profilesv1.Sample{{StackIndex: stack, Values: []int64{int64(i + 1)}}}
		ps = append(ps, p)
	}
	return b, ps
}

func marshalExport(t testing.TB, req *collectorv1.ExportProfilesServiceRequest, json bool) []byte {
	t.Helper()
	marshal := proto.Marshal
	if json {
		marshal = protojson.Marshal
	}
	b, err := marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeStatus reads an OTLP/HTTP error body: a google.rpc.Status encoded
// as the request was.
func decodeStatus(t *testing.T, resp *http.Response) *rpcstatus.Status {
	t.Helper()
	data, _ := io.ReadAll(resp.Body)
	var st rpcstatus.Status
	unmarshal := proto.Unmarshal
	if resp.Header.Get("Content-Type") == "application/json" {
		unmarshal = protojson.Unmarshal
	}
	if err := unmarshal(data, &st); err != nil {
		t.Fatalf("error body %q (%s) is not a google.rpc.Status: %v", data, resp.Header.Get("Content-Type"), err)
	}
	return &st
}

func decodeExportResponse(t *testing.T, resp *http.Response) *collectorv1.ExportProfilesServiceResponse {
	t.Helper()
	data, _ := io.ReadAll(resp.Body)
	var r collectorv1.ExportProfilesServiceResponse
	unmarshal := proto.Unmarshal
	if resp.Header.Get("Content-Type") == "application/json" {
		unmarshal = protojson.Unmarshal
	}
	if err := unmarshal(data, &r); err != nil {
		t.Fatalf("answer %q: %v", data, err)
	}
	return &r
}

// OTLP/HTTP in protobuf and JSON, identity and gzip, on both paths: each
// profile reaches the pipeline as its own valid pprof, and the answer is
// encoded like the request.
func TestOTLPHTTPEncodings(t *testing.T) {
	ts := startServer(t, nil)
	b, _ := smallExport(3)
	for _, path := range []string{otlpHTTPPath, otlpExportProcedure} {
		for _, ct := range []string{"application/x-protobuf", "application/protobuf", "application/json", "application/json; charset=utf-8"} {
			for _, gz := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s %s gzip=%v", path, ct, gz), func(t *testing.T) {
					json := strings.HasPrefix(ct, "application/json")
					body := marshalExport(t, b.Req, json)
					var h http.Header
					if gz {
						body = gzipped(body)
						h = http.Header{"Content-Encoding": {"gzip"}}
					}
					before := ts.pusher.count()
					resp := post(t, ts.url+path, ct, body, h)
					if resp.StatusCode != http.StatusOK {
						data, _ := io.ReadAll(resp.Body)
						t.Fatalf("status %d: %s", resp.StatusCode, data)
					}
					wantCT := "application/x-protobuf"
					if json {
						wantCT = "application/json"
					}
					if got := resp.Header.Get("Content-Type"); got != wantCT {
						t.Errorf("answer Content-Type %q, want %q", got, wantCT)
					}
					if r := decodeExportResponse(t, resp); r.PartialSuccess != nil {
						t.Errorf("partial success %v", r.PartialSuccess)
					}
					if n := ts.pusher.count() - before; n != 3 {
						t.Fatalf("%d pushes, want one per profile (3)", n)
					}
					_, req := ts.pusher.last(t)
					s := req.Series[0]
					if got := labelStrings(s.Labels); !strings.Contains(strings.Join(got, ","), "__otel__=true") {
						t.Errorf("labels %q", got)
					}
					pprofcheck.Parse(t, s.Samples[0].RawProfile)
				})
			}
		}
	}
}

// An OpenTelemetry collector's export: the otlp module's generated gRPC
// client, gzip, over h2c to the real server, with 300 resources (an eBPF
// profiler's node) through the real pipeline to the writer.
func TestOTLPGRPCCollectorExport(t *testing.T) {
	// The rate limit is not what this test is about.
	d, w := pipelineToWriter(t, func(l *config.Limits) { l.IngestionRateMB, l.IngestionBurstSizeMB = 1<<10, 1<<10 })
	ts := startServer(t, func(o *Options) {
		o.Pusher = d
		o.OTLPExportConcurrency, o.OTLPMaxConcurrency = 16, 64
	})
	client := collectorv1.NewProfilesServiceClient(grpcConn(t, ts.url))
	const procs = 300
	req := x.EBPF(x.EBPFOptions{Processes: procs, Stacks: 20, Seed: 7, Time: time.Now()})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-scope-orgid", "ignored-without-multitenancy")
	resp, err := client.Export(ctx, req, grpc.UseCompressor("gzip"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetPartialSuccess() != nil {
		t.Fatalf("partial success %v", resp.GetPartialSuccess())
	}
	got := w.since(0)
	if len(got) != procs {
		t.Fatalf("%d profiles reached the writer, want %d", len(got), procs)
	}
	seen := map[string]bool{}
	for _, r := range got {
		ls := strings.Join(labelStrings(r.Labels), ",")
		if seen[ls] {
			t.Errorf("two profiles with labels %s", ls)
		}
		seen[ls] = true
		if !strings.Contains(ls, "__otel__=true") || !strings.Contains(ls, "service_name=") || !strings.Contains(ls, "__name__=process_cpu") {
			t.Errorf("labels %s", ls)
		}
		p := pprofcheck.Parse(t, r.Profile)
		if len(p.Sample) == 0 || p.SampleType[0].Type != "cpu" {
			t.Fatalf("%d samples of %v", len(p.Sample), p.SampleType)
		}
	}
	if d.Budget().InUse() != 0 {
		t.Errorf("%d bytes still charged", d.Budget().InUse())
	}
}

// failingPusher fails the pushes whose series' service_name is in fail.
type failingPusher struct {
	mu   sync.Mutex
	n    int
	fail map[string]error
}

func (f *failingPusher) Push(_ context.Context, _ string, req *pushv1.PushRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range req.Series[0].Labels {
		if l.Name == "service_name" {
			if err := f.fail[l.Value]; err != nil {
				return err
			}
		}
	}
	f.n++
	return nil
}

// Rejected profiles next to stored ones are reported in partial_success;
// when none was stored the export fails: 400 when every profile is wrong,
// the retryable error (429 or 503 with Retry-After) when one may get in
// later.
func TestOTLPPartialSuccess(t *testing.T) {
	limited := connect.NewError(connect.CodeResourceExhausted, errors.New("push rate limit (4 MiB) exceeded"))
	invalid := connect.NewError(connect.CodeInvalidArgument, errors.New("profile is outside of ingestion window"))
	unavailable := status.Error(codes.Unavailable, "service is unavailable")
	for _, tc := range []struct {
		name     string
		fail     map[string]error
		badStack bool // svc-0 does not convert
		status   int
		grpc     codes.Code
		rejected int64
		first    string
	}{
		{"one does not convert", nil, true, 200, codes.OK, 1, "failed to convert otel profile: invalid stack index: 99"},
		{"one invalid, one rate limited", map[string]error{"svc-1": invalid, "svc-2": limited}, false, 200, codes.OK, 2, "outside of ingestion window"},
		{"all invalid", map[string]error{"svc-1": invalid, "svc-2": invalid, "svc-3": invalid}, true, 400, codes.InvalidArgument, 0, ""},
		{"all limited", map[string]error{"svc-0": limited, "svc-1": limited, "svc-2": limited, "svc-3": limited}, false, 429, codes.ResourceExhausted, 0, ""},
		{"invalid and writers down", map[string]error{"svc-1": unavailable, "svc-2": unavailable, "svc-3": unavailable}, true, 503, codes.Unavailable, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := &failingPusher{fail: tc.fail}
			ts := startServer(t, func(o *Options) { o.Pusher = fp })
			b, ps := smallExport(4)
			if tc.badStack {
				ps[0].Samples[0].StackIndex = 99
			}
			resp := post(t, ts.url+otlpHTTPPath, "application/x-protobuf", marshalExport(t, b.Req, false), nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 200 {
				ps := decodeExportResponse(t, resp).GetPartialSuccess()
				if ps.GetRejectedProfiles() != tc.rejected || !strings.Contains(ps.GetErrorMessage(), tc.first) ||
					!strings.HasPrefix(ps.GetErrorMessage(), fmt.Sprintf("%d of 4 profiles rejected", tc.rejected)) {
					t.Errorf("partial success %v, want %d rejected, first %q", ps, tc.rejected, tc.first)
				}
			} else {
				st := decodeStatus(t, resp)
				if codes.Code(st.Code) != tc.grpc {
					t.Errorf("status code %v, want %v (%s)", codes.Code(st.Code), tc.grpc, st.Message)
				}
				if ra := resp.Header.Get("Retry-After"); (tc.status == 429 || tc.status == 503) != (ra == "5") {
					t.Errorf("Retry-After %q with status %d", ra, tc.status)
				}
			}

			// The same over gRPC.
			client := collectorv1.NewProfilesServiceClient(grpcConn(t, ts.url))
			r, err := client.Export(context.Background(), b.Req)
			if st := status.Convert(err); st.Code() != tc.grpc {
				t.Fatalf("gRPC %v, want %v", err, tc.grpc)
			} else if tc.grpc == codes.ResourceExhausted {
				// OTLP exporters retry ResourceExhausted only with RetryInfo.
				var ri *errdetails.RetryInfo
				for _, d := range st.Details() {
					if v, ok := d.(*errdetails.RetryInfo); ok {
						ri = v
					}
				}
				if ri == nil || ri.GetRetryDelay().AsDuration() != 5*time.Second {
					t.Errorf("no RetryInfo of 5s in %v", st.Details())
				}
			}
			if tc.grpc == codes.OK && r.GetPartialSuccess().GetRejectedProfiles() != tc.rejected {
				t.Errorf("gRPC partial success %v", r.GetPartialSuccess())
			}
		})
	}
}

// concurrencyPusher counts pushes in progress; each waits until want are
// in progress at once (or a while has passed), so the highest count shows
// the bound.
type concurrencyPusher struct {
	mu         sync.Mutex
	active     int
	max        int
	want       int
	calls      atomic.Int64
	reachedMax chan struct{}
	once       sync.Once
}

func (c *concurrencyPusher) Push(ctx context.Context, _ string, _ *pushv1.PushRequest) error {
	c.calls.Add(1)
	c.mu.Lock()
	c.active++
	c.max = max(c.max, c.active)
	if c.active >= c.want {
		c.once.Do(func() { close(c.reachedMax) })
	}
	c.mu.Unlock()
	select {
	case <-c.reachedMax:
		time.Sleep(5 * time.Millisecond) // let a push past the bound show itself
	case <-time.After(2 * time.Second):
	}
	c.mu.Lock()
	c.active--
	c.mu.Unlock()
	return nil
}

func TestOTLPConcurrencyBounds(t *testing.T) {
	b, _ := smallExport(40)
	body := marshalExport(t, b.Req, false)

	t.Run("per export", func(t *testing.T) {
		cp := &concurrencyPusher{want: 4, reachedMax: make(chan struct{})}
		ts := startServer(t, func(o *Options) { o.Pusher, o.OTLPExportConcurrency = cp, 4 })
		if resp := post(t, ts.url+otlpHTTPPath, "application/x-protobuf", body, nil); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if cp.max != 4 || cp.calls.Load() != 40 {
			t.Fatalf("%d pushes at once (bound 4), %d in all", cp.max, cp.calls.Load())
		}
	})
	t.Run("process-wide", func(t *testing.T) {
		cp := &concurrencyPusher{want: 6, reachedMax: make(chan struct{})}
		ts := startServer(t, func(o *Options) {
			o.Pusher, o.OTLPExportConcurrency, o.OTLPMaxConcurrency = cp, 4, 6
		})
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				resp, err := http.Post(ts.url+otlpHTTPPath, "application/x-protobuf", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
				}
			})
		}
		wg.Wait()
		if cp.max != 6 || cp.calls.Load() != 120 {
			t.Fatalf("%d pushes at once (bound 6 over 3 exports of 4), %d in all", cp.max, cp.calls.Load())
		}
	})
}

// What OTLP/HTTP answers to requests that do not get as far as a profile.
func TestOTLPRequestErrors(t *testing.T) {
	b, _ := smallExport(1)
	good := marshalExport(t, b.Req, false)
	// Zeros: not an export, but they inflate 1000:1. Under the 256 KiB the
	// server drains of a body it refused, so the client reads the answer
	// rather than a reset.
	big := bytes.Repeat([]byte{0}, 128<<10)
	small := func(o *Options) { o.Limits = fixedLimits{body: 64 << 10} }
	noDict := marshalExport(t, &collectorv1.ExportProfilesServiceRequest{ResourceProfiles: b.Req.ResourceProfiles}, false)
	for _, tc := range []struct {
		name     string
		method   string
		ct       string
		header   http.Header
		body     []byte
		opts     func(*Options)
		status   int
		contains string
	}{
		{"unknown content type", "POST", "text/plain", nil, good, nil, 415, "Unsupported Content-Type: text/plain"},
		{"unknown encoding", "POST", "application/x-protobuf", http.Header{"Content-Encoding": {"br"}}, good, nil, 415, "unsupported Content-Encoding"},
		{"GET", "GET", "", nil, nil, nil, 405, ""},
		{"not protobuf", "POST", "application/x-protobuf", nil, []byte("not an export request"), nil, 400, "Failed to parse protobuf request"},
		{"not JSON", "POST", "application/json", nil, []byte("{"), nil, 400, "Failed to parse JSON request"},
		{"not gzip", "POST", "application/x-protobuf", http.Header{"Content-Encoding": {"gzip"}}, good, nil, 400, "failed to read gzip-compressed request body"},
		{"no dictionary", "POST", "application/x-protobuf", nil, noDict, nil, 400, "missing profile metadata dictionary"},
		{"no tenant", "POST", "application/x-protobuf", nil, good, func(o *Options) { o.MultitenancyEnabled = true }, 401, "no org id"},
		{"no tenant, unknown content type", "POST", "text/plain", nil, good, func(o *Options) { o.MultitenancyEnabled = true }, 401, "no org id"},
		{"over the body limit", "POST", "application/x-protobuf", nil, big, small, 413, "profile payload size exceeds limit of 66 kB"},
		{"over the limit inflated", "POST", "application/x-protobuf", http.Header{"Content-Encoding": {"gzip"}}, gzipped(big), small, 413, "uncompressed profile payload size exceeds limit of 66 kB"},
		{"budget", "POST", "application/x-protobuf", nil, good, func(o *Options) { o.Budget = inflight.New(1024) }, 429, "in flight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, tc.opts)
			resp := send(t, tc.method, ts.url+otlpHTTPPath, tc.ct, tc.body, tc.header)
			if resp.StatusCode != tc.status {
				data, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, data, tc.status)
			}
			if tc.contains == "" {
				return
			}
			var msg string
			if tc.ct == "text/plain" {
				data, _ := io.ReadAll(resp.Body)
				msg = string(data) // no encoding to answer in: plain text, as Pyroscope
			} else {
				msg = decodeStatus(t, resp).Message
			}
			if !strings.Contains(msg, tc.contains) {
				t.Errorf("message %q, want %q in it", msg, tc.contains)
			}
			if tc.status == 429 && resp.Header.Get("Retry-After") != "5" {
				t.Errorf("429 without Retry-After")
			}
			if ts.pusher.count() != 0 {
				t.Errorf("%d pushes", ts.pusher.count())
			}
		})
	}

	// gRPC, gzip: inflating stops at the read limit and under the budget.
	t.Run("grpc over the limit inflated", func(t *testing.T) {
		budget := inflight.New(64 << 20)
		ts := startServer(t, func(o *Options) { o.Limits, o.Budget = fixedLimits{body: 1 << 20}, budget })
		client := collectorv1.NewProfilesServiceClient(grpcConn(t, ts.url))
		req := x.EBPF(x.EBPFOptions{Processes: 50, Stacks: 200, Seed: 2, Time: time.Now()})
		if proto.Size(req) < 2<<20 {
			t.Fatalf("export of %d bytes is not over the 1 MiB limit", proto.Size(req))
		}
		_, err := client.Export(context.Background(), req, grpc.UseCompressor("gzip"))
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("err %v, want ResourceExhausted", err)
		}
		if ts.pusher.count() != 0 {
			t.Error("an export over the limit was pushed")
		}
		deadline := time.Now().Add(5 * time.Second)
		for budget.InUse() != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := budget.InUse(); n != 0 {
			t.Errorf("%d bytes still charged", n)
		}
	})

	// gRPC without a tenant when one is required.
	ts := startServer(t, func(o *Options) { o.MultitenancyEnabled = true })
	client := collectorv1.NewProfilesServiceClient(grpcConn(t, ts.url))
	if _, err := client.Export(context.Background(), b.Req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC without X-Scope-OrgID: %v", err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-scope-orgid", "team-a")
	if _, err := client.Export(ctx, b.Req); err != nil {
		t.Errorf("gRPC with X-Scope-OrgID: %v", err)
	}
	if tenant, _ := ts.pusher.last(t); tenant != "team-a" {
		t.Errorf("tenant %q", tenant)
	}
}
