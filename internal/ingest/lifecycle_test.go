package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/grafana/dskit/services"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestParseOrgID(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{in: "tenant-1", want: "tenant-1"},
		{in: "A.b_c!*'()-9", want: "A.b_c!*'()-9"},
		{in: "", err: "no org id"},
		{in: "bad/tenant", err: "tenant ID 'bad/tenant' contains unsupported character '/'"},
		{in: "sp ace", err: "tenant ID 'sp ace' contains unsupported character ' '"},
		{in: "a|b", err: "multiple org IDs present"},
		{in: "a|a", want: "a"},
		{in: "a:k=v", want: "a"},
		{in: "a:k=v|a:x=y", want: "a"},
		{in: "a:k=v|b", err: "multiple org IDs present"},
		{in: strings.Repeat("x", 150), want: strings.Repeat("x", 150)},
		{in: strings.Repeat("x", 151), err: "tenant ID is too long: max 150 characters"},
		{in: ".", err: "tenant ID is '.' or '..'"},
		{in: "..", err: "tenant ID is '.' or '..'"},
		{in: ":meta", err: "no org id"},
		{in: "ünïcode", err: "contains unsupported character"},
	}
	for _, tc := range cases {
		got, err := ParseOrgID(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseOrgID(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseOrgID(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestPushTenancy(t *testing.T) {
	cases := []struct {
		name       string
		multi      bool
		header     string
		second     string // a second X-Scope-OrgID header
		wantTenant string
		wantCode   connect.Code
	}{
		{name: "off ignores header", header: "team-a", wantTenant: AnonymousTenant},
		{name: "off without header", wantTenant: AnonymousTenant},
		{name: "on", multi: true, header: "team-a", wantTenant: "team-a"},
		{name: "on strips metadata", multi: true, header: "team-a:product=k6", wantTenant: "team-a"},
		{name: "on without header", multi: true, wantCode: connect.CodeUnauthenticated},
		{name: "on bad chars", multi: true, header: "bad/tenant", wantCode: connect.CodeUnauthenticated},
		{name: "on two tenants", multi: true, header: "a|b", wantCode: connect.CodeUnauthenticated},
		{name: "on too long", multi: true, header: strings.Repeat("t", 151), wantCode: connect.CodeUnauthenticated},
		{name: "on two headers", multi: true, header: "team-a", second: "team-b", wantCode: connect.CodeUnauthenticated},
		{name: "on two equal headers", multi: true, header: "team-a", second: "team-a", wantCode: connect.CodeUnauthenticated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, func(o *Options) { o.MultitenancyEnabled = tc.multi })
			for _, proto := range []struct {
				name   string
				client *http.Client
				opts   []connect.ClientOption
			}{{"connect", http.DefaultClient, nil}, {"grpc", h2cClient(t), []connect.ClientOption{connect.WithGRPC()}}} {
				c := pushv1connect.NewPusherServiceClient(proto.client, ts.url, proto.opts...)
				req := connect.NewRequest(pushRequest(smallProfile(t)))
				if tc.header != "" {
					req.Header().Set(OrgIDHeader, tc.header)
				}
				if tc.second != "" {
					req.Header().Add(OrgIDHeader, tc.second)
				}
				_, err := c.Push(context.Background(), req)
				if tc.wantCode != 0 {
					if connect.CodeOf(err) != tc.wantCode {
						t.Fatalf("%s: code %v (%v), want %v", proto.name, connect.CodeOf(err), err, tc.wantCode)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", proto.name, err)
				}
				if tenant, _ := ts.pusher.last(t); tenant != tc.wantTenant {
					t.Fatalf("%s: tenant %q, want %q", proto.name, tenant, tc.wantTenant)
				}
			}
		})
	}
}

// TestPushStatusCodes covers the push.v1 rows of
// docs/compatibility.md#status-codes that this layer decides: pipeline
// verdicts pass through, writer errors are classified.
func TestPushStatusCodes(t *testing.T) {
	cases := []struct {
		name     string
		err      error
		wantCode connect.Code
		wantHTTP int
		wantMsg  string
	}{
		{"invalid", connect.NewError(connect.CodeInvalidArgument, errors.New("no profiles received")), connect.CodeInvalidArgument, 400, "no profiles received"},
		{"rate limited", connect.NewError(connect.CodeResourceExhausted, errors.New("push rate limit exceeded")), connect.CodeResourceExhausted, 429, "push rate limit exceeded"},
		{"wrapped verdict", errors.Join(errors.New("push series with index 0 and id x failed"), connect.NewError(connect.CodeInvalidArgument, errors.New("bad"))), connect.CodeInvalidArgument, 400, "bad"},
		{"writer unavailable", status.Error(codes.Unavailable, "service is unavailable"), connect.CodeUnknown, 500, "rpc error: code = Unavailable desc = service is unavailable"},
		{"writer unknown", status.Error(codes.Unknown, "flush failed"), connect.CodeUnknown, 500, ""},
		{"writer deadline", status.Error(codes.DeadlineExceeded, "slow"), connect.CodeDeadlineExceeded, 504, ""},
		{"writer canceled", status.Error(codes.Canceled, "gone"), connect.CodeCanceled, 499, ""},
		{"writer invalid", status.Error(codes.InvalidArgument, "bad id"), connect.CodeInvalidArgument, 400, ""},
		{"context deadline", context.DeadlineExceeded, connect.CodeDeadlineExceeded, 504, ""},
		{"plain error", errors.New("boom"), connect.CodeUnknown, 500, "boom"},
	}
	ts := startServer(t, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts.pusher.setErr(tc.err)
			// The Connect protocol with JSON shows the HTTP status and body as curl would.
			resp := post(t, ts.url+"/push.v1.PusherService/Push", "application/json", []byte(`{"series":[]}`), nil)
			if resp.StatusCode != tc.wantHTTP {
				t.Errorf("HTTP %d, want %d", resp.StatusCode, tc.wantHTTP)
			}
			b := decodeErrorBody(t, resp.Body)
			if b.Code != tc.wantCode.String() {
				t.Errorf("code %q, want %q", b.Code, tc.wantCode)
			}
			if tc.wantMsg != "" && b.Message != tc.wantMsg {
				t.Errorf("message %q, want %q", b.Message, tc.wantMsg)
			}
		})
	}
}

func TestPushBodyLimit(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.Limits = fixedLimits{body: 1024, profile: 1024} })
	c := pushv1connect.NewPusherServiceClient(http.DefaultClient, ts.url)
	_, err := c.Push(context.Background(), connect.NewRequest(pushRequest(make([]byte, 4096))))
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("code %v (%v), want resource_exhausted", connect.CodeOf(err), err)
	}
	// The limit applies after decompression: a small gzip body inflating past it fails too.
	c = pushv1connect.NewPusherServiceClient(http.DefaultClient, ts.url, connect.WithSendGzip())
	_, err = c.Push(context.Background(), connect.NewRequest(pushRequest(make([]byte, 4096))))
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("gzip: code %v (%v), want resource_exhausted", connect.CodeOf(err), err)
	}
	if ts.pusher.count() != 0 {
		t.Fatal("an oversized request reached the pipeline")
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func healthCheck(t *testing.T, base string) string {
	t.Helper()
	resp := post(t, base+"/grpc.health.v1.Health/Check", "application/json", []byte(`{}`), nil)
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestReadiness(t *testing.T) {
	backendReady := make(chan struct{})
	ts := startServer(t, func(o *Options) {
		o.Ready = func(context.Context) error {
			select {
			case <-backendReady:
				return nil
			default:
				return errors.New("no healthy segment-writer")
			}
		}
	})
	if code, body := get(t, ts.url+"/ready"); code != 503 || !strings.Contains(body, "no healthy segment-writer") {
		t.Fatalf("before backend ready: %d %q", code, body)
	}
	if got := healthCheck(t, ts.url); !strings.Contains(got, "SERVING_STATUS_NOT_SERVING") {
		t.Fatalf("grpc health before ready: %s", got)
	}
	if code, _ := get(t, ts.url+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d while writers are missing; liveness must not depend on them", code)
	}
	close(backendReady)
	if code, body := get(t, ts.url+"/ready"); code != 200 || body != "ready\n" {
		t.Fatalf("after backend ready: %d %q", code, body)
	}
	if got := healthCheck(t, ts.url); !strings.Contains(got, `"SERVING_STATUS_SERVING"`) {
		t.Fatalf("grpc health when ready: %s", got)
	}
	ts.BeginShutdown()
	if code, body := get(t, ts.url+"/ready"); code != 503 || !strings.Contains(body, "shutting down") {
		t.Fatalf("after shutdown began: %d %q", code, body)
	}
	// Still serving: load balancers need the delay to notice.
	if resp := post(t, ts.url+"/ingest?name=a.cpu", "", []byte("a 1"), nil); resp.StatusCode != 200 {
		t.Fatalf("ingest after shutdown began: %d", resp.StatusCode)
	}
	if code, _ := get(t, ts.url+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
}

func TestMetricsAndPprofRoutes(t *testing.T) {
	ts := startServer(t, nil)
	post(t, ts.url+"/ingest?name=a.cpu", "", []byte("a 1"), nil)
	code, body := get(t, ts.url+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`pyroscope_request_duration_seconds_count{method="POST",route="ingest",status_code="200",ws="false"} 1`,
		`pyroscope_inflight_requests{method="POST",route="ingest"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// /debug/pprof is served only when asked for: clients reach this port.
func TestPprofIsOffByDefault(t *testing.T) {
	off := startServer(t, nil)
	on := startServer(t, func(o *Options) { o.EnablePprof = true })
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/symbol", "/debug/pprof/goroutine"} {
		if code, _ := get(t, off.url+path); code != http.StatusNotFound {
			t.Errorf("%s without the flag = %d, want 404", path, code)
		}
		if code, _ := get(t, on.url+path); code != http.StatusOK {
			t.Errorf("%s with the flag = %d, want 200", path, code)
		}
	}
}

// TestGracefulDrain: after shutdown starts, an in-flight request completes
// while new connections are refused.
func TestGracefulDrain(t *testing.T) {
	fp := &fakePusher{started: make(chan struct{}), release: make(chan struct{})}
	ts := startServer(t, func(o *Options) { o.Pusher = fp })
	inflight := make(chan int, 1)
	go func() {
		resp, err := http.Post(ts.url+"/ingest?name=a.cpu", "text/plain", bytes.NewReader([]byte("a 1")))
		if err != nil {
			inflight <- -1
			return
		}
		resp.Body.Close()
		inflight <- resp.StatusCode
	}()
	<-fp.started
	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shutdown <- ts.Shutdown(ctx)
	}()
	// The listener closes first; poll (bounded) until a dial is refused.
	addr := strings.TrimPrefix(ts.url, "http://")
	refused := false
	for i := 0; i < 500 && !refused; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			refused = true
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	if !refused {
		t.Fatal("new connections are still accepted after Shutdown began")
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) before the in-flight request finished", err)
	default:
	}
	close(fp.release)
	if code := <-inflight; code != 200 {
		t.Fatalf("in-flight request got %d, want 200", code)
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-ts.done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestMaxConnectionAge: old connections are asked to close so clients
// reconnect (and reach new replicas).
func TestMaxConnectionAge(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.MaxConnectionAge = time.Nanosecond })
	resp := post(t, ts.url+"/ingest?name=a.cpu", "", []byte("a 1"), nil)
	if !resp.Close {
		t.Error("HTTP/1.1: response does not close an aged connection")
	}
	// HTTP/2: the server sends GOAWAY; later requests use a new connection.
	client := h2cClient(t)
	newConns := 0
	for i := 0; i < 10; i++ {
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			if !info.Reused {
				newConns++
			}
		}}
		ctx := httptrace.WithClientTrace(context.Background(), trace)
		c := pushv1connect.NewPusherServiceClient(client, ts.url, connect.WithGRPC())
		if _, err := c.Push(ctx, connect.NewRequest(&pushv1.PushRequest{})); err != nil {
			t.Fatal(err)
		}
	}
	if newConns < 2 {
		t.Fatalf("HTTP/2: %d connections for 10 requests; aged connections were not closed", newConns)
	}
}

// TestGracefulDrainGRPC: an in-flight gRPC call over h2c finishes after
// shutdown began; the HTTP/2 connection gets a GOAWAY, not a reset.
func TestGracefulDrainGRPC(t *testing.T) {
	fp := &fakePusher{started: make(chan struct{}), release: make(chan struct{})}
	ts := startServer(t, func(o *Options) { o.Pusher = fp })
	c := pushv1connect.NewPusherServiceClient(h2cClient(t), ts.url, connect.WithGRPC())
	result := make(chan error, 1)
	go func() {
		_, err := c.Push(context.Background(), connect.NewRequest(pushRequest(smallProfile(t))))
		result <- err
	}()
	<-fp.started
	ts.BeginShutdown()
	if code, _ := get(t, ts.url+"/ready"); code != http.StatusServiceUnavailable {
		t.Fatalf("/ready = %d after shutdown began", code)
	}
	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shutdown <- ts.Shutdown(ctx)
	}()
	close(fp.release)
	if err := <-result; err != nil {
		t.Fatalf("in-flight gRPC call: %v", err)
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestPushGetIsRefused(t *testing.T) {
	ts := startServer(t, nil)
	if code, _ := get(t, ts.url+"/push.v1.PusherService/Push"); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET push = %d, want 405", code)
	}
	if code, _ := get(t, ts.url+"/ingest"); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /ingest = %d, want 405", code)
	}
}

// TestServiceStopSequence: the server as a service listens while starting;
// stopping fails /ready at once, keeps serving for the shutdown delay, then
// closes the port.
func TestServiceStopSequence(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(Options{
		Pusher: &fakePusher{}, Limits: defaultTestLimits, Registerer: reg,
		ListenAddress: "127.0.0.1:0", ShutdownDelay: 300 * time.Millisecond, GracefulTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := services.StartAndAwaitRunning(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	url := "http://" + s.Addr()
	if code, _ := get(t, url+"/ready"); code != 200 {
		t.Fatalf("/ready = %d while running", code)
	}
	s.StopAsync()
	if code, body := get(t, url+"/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Fatalf("/ready = %d %q right after the stop began", code, body)
	}
	if resp := post(t, url+"/ingest?name=a.cpu", "", []byte("a 1"), nil); resp.StatusCode != 200 {
		t.Fatalf("ingest during the shutdown delay: %d", resp.StatusCode)
	}
	if err := s.AwaitTerminated(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("the port still accepts connections after the service stopped")
	}
}

// TestServiceFailsWhenItCannotListen: a taken port fails the start.
func TestServiceFailsWhenItCannotListen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := New(Options{Pusher: &fakePusher{}, Limits: defaultTestLimits, ListenAddress: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if err := services.StartAndAwaitRunning(context.Background(), s); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("start on a taken port: %v", err)
	}
}
