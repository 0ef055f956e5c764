// Package ingest is the distributor's HTTP server: one port speaking HTTP/1.1
// and h2c that serves push.v1 (Connect, gRPC, gRPC-Web), the legacy /ingest
// API, readiness, health, metrics and opt-in pprof. It resolves the tenant, turns
// each request into a push.v1 PushRequest for the pipeline, and maps the
// pipeline's errors to the status codes and bodies clients expect.
package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/services"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/inflight"
)

// Pusher is the pipeline: it validates, splits and sends req for tenant.
type Pusher interface {
	Push(ctx context.Context, tenant string, req *pushv1.PushRequest) error
}

// Limits gives a tenant's limits; the server applies the body and profile
// size limits itself while it reads a request.
type Limits interface {
	ForTenant(tenant string) *config.Limits
}

// bodyLimit is ingestion_body_limit_mb in bytes; 0: none.
func bodyLimit(l *config.Limits) int64 { return int64(l.IngestionBodyLimitMB * (1 << 20)) }

// Options configure a Server. Pusher and Limits are required.
type Options struct {
	Pusher Pusher
	Limits Limits
	// Budget is the in-flight budget, the pipeline's: the server charges
	// request bodies and /ingest's conversions to it; nil: nothing is charged.
	Budget *inflight.Budget
	// Ready returns nil once the distributor can send (a healthy
	// segment-writer is known); nil means always ready.
	Ready               func(context.Context) error
	MultitenancyEnabled bool
	// MaxConnectionAge asks clients to reconnect (GOAWAY on HTTP/2,
	// Connection: close on HTTP/1.1) after about this long; 0: never.
	MaxConnectionAge time.Duration
	ReadTimeout      time.Duration
	WriteTimeout     time.Duration
	IdleTimeout      time.Duration
	// MinBodyRate (bytes/s) is the average rate below which a request body
	// is dropped once BodyRateGrace has passed; 0: no minimum.
	MinBodyRate   int64
	BodyRateGrace time.Duration
	// OTLPExportConcurrency bounds the profiles of one OTLP export converted
	// and pushed at once; OTLPMaxConcurrency bounds them over all exports
	// of the process. 0: unbounded.
	OTLPExportConcurrency int
	OTLPMaxConcurrency    int
	// ListenAddress (host:port) is where the service listens.
	ListenAddress string
	// TLS, when set, makes the port serve TLS only, HTTP/1.1 and HTTP/2
	// chosen by ALPN (a config returned by its GetConfigForClient must
	// offer both in NextProtos); nil: plaintext HTTP/1.1 and h2c.
	TLS *tls.Config
	// ShutdownDelay is how long the stopping service keeps serving with
	// /ready failing, so load balancers stop sending before the port closes.
	ShutdownDelay time.Duration
	// GracefulTimeout bounds how long stopping waits for in-flight requests.
	GracefulTimeout time.Duration
	Registerer      prometheus.Registerer
	// Gatherer serves /metrics; nil leaves /metrics out.
	Gatherer prometheus.Gatherer
	Logger   log.Logger

	// EnablePprof serves /debug/pprof; off, those paths are 404.
	EnablePprof bool

	// Routes are further services on the same port (one listener for
	// every API, docs/compatibility.md), each measured like the built-in
	// routes under its Name.
	Routes []Route
}

// Route is one extra handler served by the Server.
type Route struct {
	// Pattern is an http.ServeMux pattern, e.g. "GET /ring/health" or a
	// Connect service path prefix.
	Pattern string
	// Name labels the route in the request metrics.
	Name    string
	Handler http.Handler
}

// Server is the distributor's HTTP server. As a service it listens on
// ListenAddress while starting and serves while running; stopping makes
// /ready fail at once, keeps serving for ShutdownDelay, then closes the port
// and drains in-flight requests within GracefulTimeout.
type Server struct {
	*services.BasicService

	opts         Options
	logger       log.Logger
	metrics      *httpMetrics
	handler      http.Handler
	http         *http.Server
	shuttingDown atomic.Bool

	ln       net.Listener
	serveErr chan error
}

// New builds the server and its routes.
func New(opts Options) (*Server, error) {
	if opts.Pusher == nil || opts.Limits == nil {
		return nil, errors.New("ingest: Pusher and Limits are required")
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	s := &Server{opts: opts, logger: opts.Logger, metrics: newHTTPMetrics(opts.Registerer)}
	s.handler = s.routes()
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if opts.TLS != nil {
		protocols.SetHTTP2(true) // gRPC clients need h2 over TLS
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	s.http = &http.Server{
		Handler:           s.handler,
		Protocols:         &protocols,
		TLSConfig:         opts.TLS,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		ConnContext:       s.connContext,
		// Connection-level noise (bad clients, resets) at debug, in our log format.
		ErrorLog: stdlog.New(log.NewStdlibAdapter(level.Debug(opts.Logger)), "", 0),
	}
	s.BasicService = services.NewBasicService(s.starting, s.running, s.stopping).WithName("ingest-server")
	return s, nil
}

func (s *Server) starting(context.Context) error {
	ln, err := net.Listen("tcp", s.opts.ListenAddress)
	if err != nil {
		return err
	}
	s.ln = ln
	s.serveErr = make(chan error, 1)
	go func() { s.serveErr <- s.Serve(ln) }()
	level.Info(s.logger).Log("msg", "distributor serving", "addr", ln.Addr().String(), "tls", s.opts.TLS != nil)
	return nil
}

func (s *Server) running(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-s.serveErr:
		if err == nil {
			err = errors.New("closed")
		}
		return fmt.Errorf("http server: %w", err)
	}
}

func (s *Server) stopping(failure error) error {
	s.BeginShutdown()
	if failure == nil && s.opts.ShutdownDelay > 0 {
		level.Info(s.logger).Log("msg", "shutting down: /ready fails, still serving", "delay", s.opts.ShutdownDelay)
		time.Sleep(s.opts.ShutdownDelay)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.GracefulTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		level.Warn(s.logger).Log("msg", "in-flight requests did not finish in time", "err", err)
		_ = s.http.Close()
	}
	return nil
}

// Addr is the address the service listens on; empty before it started.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// connect reads at most the default tenant's body limit, after
	// decompression, as Pyroscope does (there is no per-tenant limit here).
	readMax := min(bodyLimit(s.opts.Limits.ForTenant("")), int64(^uint32(0)>>1))
	pushOpts := []connect.HandlerOption{
		connect.WithCodec(vtCodec{}),
		withGzip(),
		connect.WithReadMaxBytes(int(readMax)),
	}
	path, push := pushv1connect.NewPusherServiceHandler(&pushService{s: s}, pushOpts...)
	mux.Handle(path, s.instrumentPush("push_v1_PusherService_Push", s.answerInTime(s.pushBody(s.inflateEnvelope(push, readMax)))))

	ingest := s.answerInTime(http.HandlerFunc(s.ingest))
	mux.Handle("POST /ingest", s.instrumentPush("ingest", ingest))
	mux.Handle("POST /pyroscope/ingest", s.instrumentPush("pyroscope_ingest", ingest))
	// Other methods get 405 JSON, as Pyroscope's POST-only middleware does.
	mux.Handle("/ingest", s.instrument("ingest", http.HandlerFunc(methodNotAllowed)))
	mux.Handle("/pyroscope/ingest", s.instrument("pyroscope_ingest", http.HandlerFunc(methodNotAllowed)))

	s.newOTLP().routes(mux)

	mux.Handle("GET /ready", s.instrument("ready", http.HandlerFunc(s.ready)))
	mux.Handle("GET /healthz", s.instrument("healthz", http.HandlerFunc(healthz)))
	hpath, health := grpchealth.NewHandler(healthChecker{s})
	mux.Handle(hpath, s.instrument("grpc_health_v1_Health", health))
	if s.opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{}))
	}
	for _, r := range s.opts.Routes {
		mux.Handle(r.Pattern, s.instrument(r.Name, r.Handler))
	}
	if s.opts.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Handler serves every route; tests and embedding use it directly.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves connections from ln until Shutdown, over TLS when
// Options.TLS is set.
func (s *Server) Serve(ln net.Listener) error {
	var err error
	if s.http.TLSConfig != nil {
		err = s.http.ServeTLS(ln, "", "")
	} else {
		err = s.http.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// BeginShutdown makes /ready and gRPC health fail at once while requests are
// still served, so load balancers stop sending before the port closes.
func (s *Server) BeginShutdown() { s.shuttingDown.Store(true) }

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx ends; HTTP/2 clients get a GOAWAY.
func (s *Server) Shutdown(ctx context.Context) error {
	s.BeginShutdown()
	return s.http.Shutdown(ctx)
}

// readiness is nil when the server should get traffic.
func (s *Server) readiness(ctx context.Context) error {
	if s.shuttingDown.Load() {
		return errors.New("shutting down")
	}
	if s.opts.Ready != nil {
		return s.opts.Ready(ctx)
	}
	return nil
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.readiness(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("Distributor not ready: " + err.Error() + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// healthz is liveness: the process serves HTTP. It never depends on writers,
// so a segment-writer outage does not restart distributors.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func methodNotAllowed(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Allow", http.MethodPost)
	writeError(w, http.StatusMethodNotAllowed, connect.CodeUnimplemented, "method not allowed; use POST")
}

// healthChecker answers grpc.health.v1 on the HTTP port: SERVING when ready.
type healthChecker struct{ s *Server }

func (h healthChecker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	switch req.Service {
	case "", pushv1connect.PusherServiceName, otlpServiceName:
	default:
		return nil, connect.NewError(connect.CodeNotFound, errors.New("unknown service "+req.Service))
	}
	if err := h.s.readiness(ctx); err != nil {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}

// pushService serves push.v1.PusherService.
type pushService struct{ s *Server }

func (p *pushService) Push(ctx context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	tenant, err := p.s.tenantOf(req.Header())
	if err != nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, err)
	}
	if err := p.s.opts.Pusher.Push(ctx, tenant, req.Msg); err != nil {
		ce := clientError(err)
		if ce.Code() == connect.CodeUnknown {
			_ = level.Warn(p.s.logger).Log("msg", "push failed", "tenant", tenant, "err", err)
		}
		return nil, ce
	}
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}
