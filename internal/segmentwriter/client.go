// Package segmentwriter pushes profiles to Pyroscope segment-writers over
// gRPC (segmentwriter.v1.SegmentWriterService/Push) with the failover of
// Pyroscope's client (Client.Push in pkg/segmentwriter/client/client.go at
// 3fe6a45): candidates in order, same shard id on every attempt, errors
// classified as Pyroscope's client classifies them.
package segmentwriter

import (
	"cmp"
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/services"
	segmentwriterv1 "github.com/grafana/pyroscope/api/gen/proto/go/segmentwriter/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	encproto "google.golang.org/grpc/encoding/proto"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/metriclabel"
	"github.com/pyrodist/pyrodist/internal/placement"
)

// MaxAttempts is how many distinct candidates one Push tries (Pyroscope's
// loop runs from 5 down to 0).
const MaxAttempts = 6

const unavailableMsg = "service is unavailable"

// ErrUnavailable is what Push returns when no writer took the profile.
var ErrUnavailable = status.Error(codes.Unavailable, unavailableMsg)

// Config configures a Client.
type Config struct {
	config.SegmentWriter
	// Zone is this distributor's zone; with PreferSameZone, acks from other
	// zones are counted as fallbacks.
	Zone           string
	PreferSameZone bool
	// Tenants bounds the tenant label of the sent-bytes metric; the
	// pipeline's set, so a tenant has its own series in both or in neither.
	// nil makes one of MaxMetricTenants (0: the flag default).
	Tenants          *metriclabel.Set
	MaxMetricTenants int
	// Now is the clock of the circuit breakers (tests inject one).
	Now func() time.Time
	// DialOptions are appended to the client's own (tests).
	DialOptions []grpc.DialOption
	// Credentials secure the connections when GRPCClient.TLSEnabled; nil
	// reads GRPCClient.TLS once, with dskit.
	Credentials credentials.TransportCredentials
}

// Client is a pool of connections to segment-writers, keyed by address. It
// is a service: stopping closes every connection.
type Client struct {
	*services.BasicService

	cfg     Config
	logger  log.Logger
	metrics *metrics
	dial    []grpc.DialOption

	mu     sync.RWMutex
	conns  map[string]*conn
	known  map[string]struct{} // the last address set from the ring; nil until set
	closed bool
}

var errClosed = status.Error(codes.Unavailable, "segment-writer client is closed")

type conn struct {
	addr   string
	cc     *grpc.ClientConn
	client segmentwriterv1.SegmentWriterServiceClient
	cb     *breaker

	refs    atomic.Int64
	removed atomic.Bool
	once    sync.Once
}

func (c *conn) close() { c.once.Do(func() { _ = c.cc.Close() }) }

// New builds a Client. reg may be nil.
func New(cfg Config, reg prometheus.Registerer, logger log.Logger) (*Client, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = log.NewNopLogger()
	}
	g := cfg.GRPCClient
	if g.MaxRecvMsgSize == 0 && g.ConnectTimeout == 0 {
		// A zero Config gets Pyroscope's defaults.
		def := config.Defaults().SegmentWriter
		cfg.GRPCClient = def.GRPCClient
		g = def.GRPCClient
	}
	if err := cfg.SegmentWriter.Validate(); err != nil {
		return nil, err
	}
	tenants := cfg.Tenants
	if tenants == nil {
		tenants = metriclabel.Tenants(cmp.Or(cfg.MaxMetricTenants, config.Defaults().Distributor.InstanceLimits.MaxMetricTenants))
	}
	m, err := newMetrics(reg, tenants)
	if err != nil {
		return nil, err
	}
	creds, err := transportCredentials(cfg)
	if err != nil {
		return nil, err
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// Failover is ours: gRPC must not retry on its own.
		grpc.WithDisableRetry(),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  g.ConnectBackoffBaseDelay,
				Multiplier: backoff.DefaultConfig.Multiplier,
				Jitter:     backoff.DefaultConfig.Jitter,
				MaxDelay:   g.ConnectBackoffMaxDelay,
			},
			MinConnectTimeout: g.ConnectTimeout,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 20 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(g.MaxRecvMsgSize),
			grpc.MaxCallSendMsgSize(g.MaxSendMsgSize),
			grpc.ForceCodecV2(vtCodec{}),
		),
	}
	dial = append(dial, cfg.DialOptions...)
	c := &Client{cfg: cfg, logger: logger, metrics: m, dial: dial, conns: map[string]*conn{}}
	c.BasicService = services.NewIdleService(nil, func(error) error { return c.Close() }).WithName("segment-writer-client")
	return c, nil
}

// SetAddresses tells the pool which writer addresses the ring holds now:
// connections to other addresses are closed (once their in-flight calls
// end) and connections to new ones start dialing. The membership side
// calls it whenever the set changes.
func (c *Client) SetAddresses(addrs []string) {
	known := make(map[string]struct{}, len(addrs))
	for _, a := range addrs {
		known[a] = struct{}{}
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.known = known
	var dropped []string
	for addr, cn := range c.conns {
		if _, ok := known[addr]; !ok {
			delete(c.conns, addr)
			c.retire(cn)
			dropped = append(dropped, addr)
		}
	}
	for addr := range known {
		if _, ok := c.conns[addr]; !ok {
			cn, err := c.newConn(addr)
			if err != nil {
				level.Warn(c.logger).Log("msg", "cannot create segment-writer client", "addr", addr, "err", err)
				continue
			}
			// Pre-dial, so the first push does not pay for the handshake.
			cn.cc.Connect()
			c.conns[addr] = cn
		}
	}
	c.mu.Unlock()
	for _, addr := range dropped {
		c.metrics.forget(addr)
	}
}

// Addresses lists the pooled addresses (for tests and debugging).
func (c *Client) Addresses() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.conns))
	for a := range c.conns {
		out = append(out, a)
	}
	return out
}

// Close closes every connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for addr, cn := range c.conns {
		delete(c.conns, addr)
		c.retire(cn)
	}
	return nil
}

// retire closes cn once nobody uses it. Callers hold c.mu.
func (c *Client) retire(cn *conn) {
	cn.removed.Store(true)
	if cn.refs.Load() == 0 {
		cn.close()
	}
}

func (c *Client) newConn(addr string) (*conn, error) {
	// passthrough: the ring gives host:port; no resolver in between.
	cc, err := grpc.NewClient("passthrough:///"+addr, c.dial...)
	if err != nil {
		return nil, err
	}
	return &conn{addr: addr, cc: cc, client: segmentwriterv1.NewSegmentWriterServiceClient(cc), cb: newBreaker(c.cfg.Now)}, nil
}

// acquire returns the pooled connection for addr, creating it if needed.
// A connection for an address the ring no longer lists serves this call
// only and is closed on release.
func (c *Client) acquire(addr string) (*conn, error) {
	c.mu.RLock()
	cn := c.conns[addr]
	if cn != nil {
		cn.refs.Add(1)
	}
	c.mu.RUnlock()
	if cn != nil {
		return cn, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if cn = c.conns[addr]; cn == nil {
		var err error
		if cn, err = c.newConn(addr); err != nil {
			return nil, err
		}
		if _, ok := c.known[addr]; ok || c.known == nil {
			c.conns[addr] = cn
		} else {
			cn.removed.Store(true)
		}
	}
	cn.refs.Add(1)
	return cn, nil
}

func (c *Client) release(cn *conn) {
	if cn.refs.Add(-1) == 0 && cn.removed.Load() {
		cn.close()
	}
}

// Push sends req to one segment-writer: the first of candidates (at most
// MaxAttempts of them, in order) that acks it. req.Shard is never changed.
//
// A writer stores a profile as soon as it takes the request and acks only
// after its segment is flushed, so an attempt given up on may still be
// stored: trying another writer then stores it twice, and when that one
// fails too the client is told failure for a stored profile and sends it
// again. So Push never runs two attempts at once (no hedging) and gives up
// on a writer only when it did not take the profile or is not there:
//   - Every attempt carries ctx's deadline, the client's remaining time
//     (the ingest server bounds it by its write timeout), never a shorter
//     one: a slow writer gets all of it to ack. Without a deadline on ctx,
//     Push bounds the whole call to MaxAttempts × AttemptTimeout.
//   - A retryable error (see isRetryable) moves on to the next candidate at
//     once, as in Pyroscope. Mostly it is Unavailable: a connection not
//     ready or refused, an open circuit breaker, a stopping writer; none of
//     them took the profile.
//   - An attempt still running after AttemptTimeout is checked with a gRPC
//     health probe on its connection. A writer that answers at all is
//     reachable and only slow: its call keeps running, checked again every
//     AttemptTimeout. One that does not answer within the connect timeout
//     is taken for hung: its call is given up (it counts against its
//     circuit breaker) for the next candidate, but only when there is one
//     and at least AttemptTimeout remains for it; otherwise the call keeps
//     its chance until the deadline.
//
// Errors:
//   - the writer's InvalidArgument, Canceled, PermissionDenied or
//     Unauthenticated, unchanged (the client's fault; no retry);
//   - Unavailable "service is unavailable" after Unknown, Internal or
//     FailedPrecondition (no retry), or when every candidate failed;
//   - the context's error (with its gRPC code) when ctx ends first.
func (c *Client) Push(ctx context.Context, req *segmentwriterv1.PushRequest, candidates []*placement.Instance) error {
	if _, ok := ctx.Deadline(); !ok && c.cfg.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, MaxAttempts*c.cfg.AttemptTimeout)
		defer cancel()
	}
	n := min(len(candidates), MaxAttempts)
	var lastErr error
	for i, in := range candidates[:n] {
		err := c.pushTo(ctx, req, in, i == n-1)
		if err == nil {
			if c.cfg.PreferSameZone && c.cfg.Zone != "" && in.Zone != c.cfg.Zone {
				c.metrics.zoneFallback.Inc()
			}
			return nil
		}
		lastErr = err
		if isClientError(err) {
			return err
		}
		if !isRetryable(err) {
			level.Error(c.logger).Log("msg", "segment-writer push failed", "tenant", req.TenantId, "shard", req.Shard, "addr", in.Addr, "err", err)
			return ErrUnavailable
		}
		level.Debug(c.logger).Log("msg", "segment-writer push attempt failed", "tenant", req.TenantId, "shard", req.Shard, "addr", in.Addr, "attempt", i+1, "err", err)
		if err := ctxDone(ctx); err != nil {
			return contextError{err}
		}
	}
	if err := ctxDone(ctx); err != nil {
		return contextError{err}
	}
	level.Warn(c.logger).Log("msg", "no segment-writer took the profile", "tenant", req.TenantId, "shard", req.Shard, "candidates", len(candidates), "last_err", lastErr)
	return ErrUnavailable
}

// errUnresponsive is an attempt given up on because its writer did not
// answer a health probe; retryable, and a failure for the breaker.
var errUnresponsive = status.Error(codes.Unavailable, "segment-writer did not answer a health probe during a slow push")

// pushTo makes one attempt on in; last says no candidate follows it.
func (c *Client) pushTo(ctx context.Context, req *segmentwriterv1.PushRequest, in *placement.Instance, last bool) error {
	cn, err := c.acquire(in.Addr)
	if err != nil {
		if status.Code(err) == codes.Unknown {
			err = status.Error(codes.Unavailable, err.Error())
		}
		return err
	}
	defer c.release(cn)
	gen, err := cn.cb.allow()
	if err != nil {
		c.metrics.rejected.WithLabelValues(in.Addr).Inc()
		return err
	}
	actx, abandon := context.WithCancelCause(ctx)
	defer abandon(nil)
	if !last && c.cfg.AttemptTimeout > 0 {
		w := c.watch(actx, abandon, cn)
		defer w.stop()
	}
	start := time.Now()
	_, err = cn.client.Push(actx, req, grpc.WaitForReady(false))
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), errUnresponsive) {
		err = errUnresponsive
	}
	code := status.Code(err)
	c.metrics.observe(in.Addr, code, time.Since(start))
	// Timeouts do not count against the writer (as in Pyroscope): when
	// object storage is slow every writer is, and opening every circuit
	// would turn slowness into an outage. A writer that does not answer a
	// probe does count.
	cn.cb.done(gen, isBreakerFailure(err))
	if err == nil {
		// The distributor validated the tenant before sending.
		tenant := c.metrics.tenants.Accepted(req.TenantId)
		c.metrics.sentBytes.WithLabelValues(strconv.FormatUint(uint64(req.Shard), 10), tenant, in.Addr).Observe(float64(len(req.Profile)))
	}
	return err
}

// healthService is the gRPC health service a segment-writer reports.
const healthService = "pyroscope.segment-writer"

// watchdog checks one running attempt every AttemptTimeout (see Push).
type watchdog struct {
	c       *Client
	cn      *conn
	actx    context.Context
	abandon context.CancelCauseFunc
	every   time.Duration

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

func (c *Client) watch(actx context.Context, abandon context.CancelCauseFunc, cn *conn) *watchdog {
	// Probes are never closer together than one probe lasts.
	w := &watchdog{c: c, cn: cn, actx: actx, abandon: abandon, every: max(c.cfg.AttemptTimeout, c.probeTimeout())}
	w.mu.Lock()
	w.timer = time.AfterFunc(c.cfg.AttemptTimeout, w.check)
	w.mu.Unlock()
	return w
}

func (w *watchdog) stop() {
	w.mu.Lock()
	w.stopped = true
	w.timer.Stop()
	w.mu.Unlock()
}

func (w *watchdog) check() {
	if !w.timeForAnother() {
		return // this writer keeps its call until the deadline
	}
	if w.c.reachable(w.actx, w.cn) {
		w.mu.Lock()
		if !w.stopped {
			w.timer.Reset(w.every)
		}
		w.mu.Unlock()
		return
	}
	if w.timeForAnother() {
		w.c.metrics.abandoned.WithLabelValues(w.cn.addr).Inc()
		level.Warn(w.c.logger).Log("msg", "segment-writer did not answer a health probe during a slow push; trying the next candidate", "addr", w.cn.addr)
		w.abandon(errUnresponsive)
	}
}

// timeForAnother: the attempt is still running and the next candidate
// could still get a full AttemptTimeout.
func (w *watchdog) timeForAnother() bool {
	if w.actx.Err() != nil {
		return false
	}
	d, ok := w.actx.Deadline()
	return !ok || time.Until(d) >= w.c.cfg.AttemptTimeout
}

// probeTimeout is how long a writer has to answer a health probe: as long
// as it has to take a connection.
func (c *Client) probeTimeout() time.Duration { return c.cfg.GRPCClient.ConnectTimeout }

// reachable reports whether the writer behind cn answers a health check.
// Any answer counts, NOT_SERVING and unknown service included: a writer
// that is stopping still finishes the pushes it took.
func (c *Client) reachable(ctx context.Context, cn *conn) bool {
	ctx, cancel := context.WithTimeout(ctx, c.probeTimeout())
	defer cancel()
	// Health messages are not vtproto: the standard codec marshals them.
	_, err := healthpb.NewHealthClient(cn.cc).Check(ctx, &healthpb.HealthCheckRequest{Service: healthService},
		grpc.ForceCodecV2(encoding.GetCodecV2(encproto.Name)))
	switch status.Code(err) {
	case codes.DeadlineExceeded, codes.Canceled, codes.Unavailable:
		return false
	}
	return true
}

// ctxDone is ctx.Err(), also when the deadline has passed but the
// context's timer has not fired yet: gRPC fails such a call at once with
// DeadlineExceeded, which must not read as every writer failing.
func ctxDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// isClientError: the request itself is at fault, so another writer would
// refuse it too; returned unchanged.
func isClientError(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.Canceled, codes.PermissionDenied, codes.Unauthenticated:
		return true
	}
	return errors.Is(err, context.Canceled)
}

// isRetryable: Unknown (a writer's failed flush), Internal and
// FailedPrecondition are likely permanent; anything else (Unavailable,
// DeadlineExceeded, ResourceExhausted, transport errors) tries the next writer.
func isRetryable(err error) bool {
	switch status.Code(err) {
	case codes.Unknown, codes.Internal, codes.FailedPrecondition:
		return false
	}
	return true
}

// isBreakerFailure: only a writer that is down or not answering trips the
// breaker; request-specific errors must not open every circuit.
func isBreakerFailure(err error) bool {
	return err != nil && (status.Code(err) == codes.Unavailable || errors.Is(err, os.ErrDeadlineExceeded))
}

// contextError is ctx.Err() that also carries its gRPC status, so that
// errors.Is(err, context.Canceled) and status.Code(err) both work.
type contextError struct{ err error }

func (e contextError) Error() string              { return e.err.Error() }
func (e contextError) Unwrap() error              { return e.err }
func (e contextError) GRPCStatus() *status.Status { return status.FromContextError(e.err) }

// ConfigFrom picks the client's settings out of the config file.
func ConfigFrom(c *config.Config) Config {
	return Config{SegmentWriter: c.SegmentWriter, Zone: c.Distributor.Zone, PreferSameZone: c.Distributor.PreferSameZone,
		MaxMetricTenants: c.Distributor.InstanceLimits.MaxMetricTenants}
}
