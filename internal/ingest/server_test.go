package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
)

// fakePusher records pushes and answers with err (or block until released).
type fakePusher struct {
	mu      sync.Mutex
	tenants []string
	reqs    []*pushv1.PushRequest
	err     error
	// started, when set, is closed at the first push; release gates it.
	started chan struct{}
	release chan struct{}
}

func (f *fakePusher) Push(ctx context.Context, tenant string, req *pushv1.PushRequest) error {
	f.mu.Lock()
	f.tenants = append(f.tenants, tenant)
	f.reqs = append(f.reqs, req)
	started, release, err := f.started, f.release, f.err
	f.mu.Unlock()
	if started != nil {
		close(started)
		<-release
	}
	return err
}

func (f *fakePusher) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakePusher) last(t *testing.T) (string, *pushv1.PushRequest) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("nothing was pushed")
	}
	return f.tenants[len(f.tenants)-1], f.reqs[len(f.reqs)-1]
}

func (f *fakePusher) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// fixedLimits gives every tenant a body and a profile size limit in bytes.
type fixedLimits struct{ body, profile int64 }

func (l fixedLimits) ForTenant(string) *config.Limits {
	return &config.Limits{IngestionBodyLimitMB: float64(l.body) / (1 << 20), MaxProfileSizeBytes: int(l.profile)}
}

var defaultTestLimits = fixedLimits{body: 256 << 20, profile: 4 << 20}

type testServer struct {
	*Server
	pusher *fakePusher
	url    string
	done   chan error
}

// startServer serves on a real socket on 127.0.0.1.
func startServer(t *testing.T, mod func(*Options)) *testServer {
	t.Helper()
	fp := &fakePusher{}
	reg := prometheus.NewRegistry()
	opts := Options{Pusher: fp, Limits: defaultTestLimits, Registerer: reg, Gatherer: reg}
	if mod != nil {
		mod(&opts)
	}
	if p, ok := opts.Pusher.(*fakePusher); ok {
		fp = p
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, pusher: fp, url: "http://" + ln.Addr().String(), done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return ts
}

// h2cClient speaks HTTP/2 without TLS, as gRPC clients do.
// Its connections close with the test, so the server's shutdown need not
// wait out HTTP/2's GOAWAY grace.
func h2cClient(t *testing.T) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: &p}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// cpuProfile is a real runtime/pprof CPU profile (gzipped).
func cpuProfile(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	pprof.StopCPUProfile()
	return buf.Bytes()
}

func pushRequest(raw []byte) *pushv1.PushRequest {
	return &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: "process_cpu"},
			{Name: "service_name", Value: "roundtrip"},
		},
		Samples: []*pushv1.RawSample{{RawProfile: raw, ID: "id-1"}},
	}}}
}

func TestPushRoundTrip(t *testing.T) {
	ts := startServer(t, nil)
	raw := cpuProfile(t)
	cases := []struct {
		name   string
		client *http.Client
		opts   []connect.ClientOption
	}{
		{"connect-proto", http.DefaultClient, nil},
		{"connect-json", http.DefaultClient, []connect.ClientOption{connect.WithProtoJSON()}},
		{"connect-gzip", http.DefaultClient, []connect.ClientOption{connect.WithSendGzip()}},
		{"grpc-h2c", h2cClient(t), []connect.ClientOption{connect.WithGRPC()}},
		{"grpc-h2c-gzip", h2cClient(t), []connect.ClientOption{connect.WithGRPC(), connect.WithSendGzip()}},
		{"grpc-web", http.DefaultClient, []connect.ClientOption{connect.WithGRPCWeb()}},
		{"grpc-web-json", http.DefaultClient, []connect.ClientOption{connect.WithGRPCWeb(), connect.WithProtoJSON()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.pusher.count()
			c := pushv1connect.NewPusherServiceClient(tc.client, ts.url, tc.opts...)
			if _, err := c.Push(context.Background(), connect.NewRequest(pushRequest(raw))); err != nil {
				t.Fatal(err)
			}
			if ts.pusher.count() != before+1 {
				t.Fatalf("pushes = %d, want %d", ts.pusher.count(), before+1)
			}
			tenant, req := ts.pusher.last(t)
			if tenant != AnonymousTenant {
				t.Errorf("tenant = %q", tenant)
			}
			got := req.Series[0].Samples[0].RawProfile
			if !bytes.Equal(got, raw) {
				t.Fatalf("raw profile changed in transit: %d bytes, want %d", len(got), len(raw))
			}
			if _, err := profile.ParseData(got); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPushConnectTimeoutHonoured(t *testing.T) {
	deadlines := make(chan time.Time, 1)
	ts := startServer(t, func(o *Options) {
		o.Pusher = pusherFunc(func(ctx context.Context, _ string, _ *pushv1.PushRequest) error {
			d, _ := ctx.Deadline()
			deadlines <- d
			return nil
		})
	})
	c := pushv1connect.NewPusherServiceClient(http.DefaultClient, ts.url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := c.Push(ctx, connect.NewRequest(pushRequest(cpuProfile(t)))); err != nil {
		t.Fatal(err)
	}
	// Connect-Timeout-Ms carried the client's hour to the handler's context.
	if d := <-deadlines; d.IsZero() || time.Until(d) > time.Hour || time.Until(d) < 50*time.Minute {
		t.Fatalf("handler deadline = %v, want about an hour from now", d)
	}
}

type pusherFunc func(context.Context, string, *pushv1.PushRequest) error

func (f pusherFunc) Push(ctx context.Context, tenant string, req *pushv1.PushRequest) error {
	return f(ctx, tenant, req)
}

func decodeErrorBody(t *testing.T, r io.Reader) errorBody {
	t.Helper()
	var b errorBody
	data, _ := io.ReadAll(r)
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatalf("error body %q is not JSON: %v", data, err)
	}
	return b
}

func TestPushErrorsReachClient(t *testing.T) {
	ts := startServer(t, nil)
	c := pushv1connect.NewPusherServiceClient(http.DefaultClient, ts.url)
	ts.pusher.setErr(connect.NewError(connect.CodeInvalidArgument, errors.New("no profiles received")))
	_, err := c.Push(context.Background(), connect.NewRequest(&pushv1.PushRequest{}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("code = %v (%v)", connect.CodeOf(err), err)
	}
	var ce *connect.Error
	if errors.As(err, &ce) && ce.Message() != "no profiles received" {
		t.Fatalf("message = %q", ce.Message())
	}
}

// Extra routes share the port and are measured under their own name.
func TestExtraRoutesServedAndMeasured(t *testing.T) {
	var reg *prometheus.Registry
	ts := startServer(t, func(o *Options) {
		reg = prometheus.NewRegistry()
		o.Registerer, o.Gatherer = reg, reg
		o.Routes = []Route{{Pattern: "GET /extra/hello", Name: "extra_hello", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("hello"))
		})}}
	})
	resp, err := http.Get(ts.url + "/extra/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello" {
		t.Fatalf("GET /extra/hello: %d %q", resp.StatusCode, body)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && l.GetValue() == "extra_hello" {
					found = true
				}
			}
		}
	}
	if !found {
		t.Fatal("no request metric carries route=extra_hello")
	}
}
