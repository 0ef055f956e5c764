// Package fakewriter is a segment-writer simulator for tests. It joins the
// memberlist cluster and registers in collectors/segment-writer-ring exactly
// as Pyroscope's segment-writer does (dskit Lifecycler: ID, Addr = IP and
// gRPC port, zone, 4 tokens, ACTIVE, heartbeats; LEAVING on shutdown),
// serves grpc.health.v1 for "pyroscope.segment-writer" and
// segmentwriter.v1.SegmentWriterService/Push with the writer's checks, and
// records every profile it acknowledged (with an ack delay: every profile
// it stored, acked or not; see /control/ack-delay).
// Its gRPC server accepts keepalive pings as Pyroscope's writer does: one
// a second, also between calls.
//
// Push checks: tenant_id set, profile_id exactly 16 bytes, and the profile
// (raw or gzip pprof) parses with github.com/google/pprof/profile and passes
// its CheckValid; otherwise InvalidArgument. (Pyroscope only decodes the
// protobuf; the stricter check makes the simulator a test oracle;
// -fakewriter.skip-profile-check turns it off for load runs.) While
// stopping, Push answers Unavailable "service is unavailable".
//
// # HTTP API (on -server.http-listen-address:port)
//
// GET /profiles returns every acknowledged push, in arrival order:
//
//	{"id": "<lifecycler ID>", "addr": "<ring address>", "zone": "<zone>",
//	 "profiles": [{"profile_id": "<uuid>", "tenant": "<tenant_id>",
//	               "service_name": "<label value>", "shard": <uint32>,
//	               "bytes": <profile size>, "received_unix_ms": <int>,
//	               "labels": [{"name": "...", "value": "..."}],
//	               "writer": "<lifecycler ID>"}],
//	 "dropped": <pushes acknowledged beyond -fakewriter.max-records, not listed>}
//
// With -fakewriter.record-file, the same records are also appended to that
// file, one JSON object a line, before each ack (readable after a crash).
//
// GET /counts returns every acknowledged push (the cap does not apply)
// counted per tenant, service and shard, sorted by them:
//
//	{"id": "...", "addr": "...", "zone": "...",
//	 "counts": [{"tenant": "...", "service_name": "...", "shard": <uint32>, "count": <int>}]}
//
// Fault injection (POST, answers 204):
//
//	/control/latency?duration=250ms   delay every Push by this much before
//	                                  taking it (0 clears); a caller that
//	                                  gives up meanwhile has nothing stored
//	/control/ack-delay?duration=5s    store every Push on receipt and ack it
//	                                  this much later (0 clears), as a real
//	                                  writer acks only after its segment
//	                                  flush: a caller that gives up meanwhile
//	                                  still has its profile stored (and
//	                                  listed by /profiles)
//	/control/fail?code=Unavailable&count=3
//	                                  fail the next count Pushes with this gRPC
//	                                  code (count 0 or absent: until cleared;
//	                                  code=OK clears)
//	/control/crash                    exit the process at once (no ring leave)
//	/control/reset                    forget the recorded profiles
//
// GET /ready is 200 once the instance is ACTIVE in the ring; /metrics serves
// Prometheus metrics.
//
// # TLS
//
// With -server.grpc-tls-cert-path and -server.grpc-tls-key-path the gRPC
// port serves TLS only; -server.grpc-tls-client-auth and -ca-path ask for
// client certificates (Pyroscope's flags). Gossip takes dskit's
// -memberlist.tls-* flags, as Pyroscope's writer does.
package fakewriter

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/google/pprof/profile"
	"github.com/google/uuid"
	"github.com/grafana/dskit/kv/codec"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	segmentwriterv1 "github.com/grafana/pyroscope/api/gen/proto/go/segmentwriter/v1"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/membership"
)

// HealthService is the gRPC health service name Pyroscope's writer reports.
const HealthService = "pyroscope.segment-writer"

const (
	ringName = "segment-writer"
	// Pyroscope raises the writer's gRPC max receive size to 100 MiB.
	maxRecvMsgSize = 100 << 20
)

// Config holds the flags, named as Pyroscope names them.
type Config struct {
	GRPCListenAddress string
	GRPCListenPort    int
	HTTPListenAddress string
	HTTPListenPort    int
	Memberlist        memberlist.KVConfig
	Lifecycler        ring.LifecyclerConfig
	// The gRPC server's keepalive enforcement, as dskit's server sets it:
	// clients that ping more often, or without a call in flight when that
	// is not allowed, get GOAWAY "too_many_pings".
	GRPCServerMinTimeBetweenPings      time.Duration
	GRPCServerPingWithoutStreamAllowed bool
	// GRPCTLS serves the gRPC port over TLS (Pyroscope's
	// -server.grpc-tls-* flags); read once, at New.
	GRPCTLS config.ServerTLS

	// Initial fault injection; the HTTP control endpoints change it later.
	Latency  time.Duration
	AckDelay time.Duration
	FailCode string
	// RecordFile, when set, gets every acknowledged push as one JSON line
	// (a Record) before the ack is sent, so a test can still read what a
	// crashed writer had acknowledged.
	RecordFile string
	// SkipProfileCheck acks without parsing the profile, so load runs
	// measure the distributor and not the simulator's pprof parser.
	SkipProfileCheck bool
	// MaxRecords caps the records kept in memory for GET /profiles (0: no
	// cap), so a long load run does not grow without bound; counts and the
	// record file still see every push.
	MaxRecords int
}

// RegisterFlags registers the flags with Pyroscope's names and the
// segment-writer defaults Pyroscope sets (4 tokens, entry kept on shutdown,
// memberlist store).
func (c *Config) RegisterFlags(f *flag.FlagSet, logger log.Logger) {
	f.StringVar(&c.GRPCListenAddress, "server.grpc-listen-address", "", "gRPC server listen address.")
	f.IntVar(&c.GRPCListenPort, "server.grpc-listen-port", 9095, "gRPC server listen port.")
	f.StringVar(&c.HTTPListenAddress, "server.http-listen-address", "", "HTTP server listen address.")
	f.IntVar(&c.HTTPListenPort, "server.http-listen-port", 4040, "HTTP server listen port.")
	// Pyroscope lowers dskit's 10s to 1s.
	f.DurationVar(&c.GRPCServerMinTimeBetweenPings, "server.grpc.keepalive.min-time-between-pings", time.Second, "Minimum time a client should wait between keepalive pings.")
	f.BoolVar(&c.GRPCServerPingWithoutStreamAllowed, "server.grpc.keepalive.ping-without-stream-allowed", true, "Allow keepalive pings when no call is in flight.")
	c.Memberlist.RegisterFlags(f)
	c.GRPCTLS.RegisterFlagsWithPrefix("server.grpc", "gRPC", f)
	c.Lifecycler.RegisterFlagsWithPrefix("segment-writer.", f, logger)
	f.DurationVar(&c.Latency, "fakewriter.latency", 0, "Delay every Push by this much before taking it.")
	f.DurationVar(&c.AckDelay, "fakewriter.ack-delay", 0, "Store every Push on receipt and ack it this much later, as a real writer acks after its segment flush.")
	f.StringVar(&c.FailCode, "fakewriter.fail-code", "", "Fail every Push with this gRPC code (e.g. Unavailable).")
	f.StringVar(&c.RecordFile, "fakewriter.record-file", "", "Append every acknowledged push to this file as a JSON line before acking it.")
	f.BoolVar(&c.SkipProfileCheck, "fakewriter.skip-profile-check", false, "Ack without parsing the profile (load runs).")
	f.IntVar(&c.MaxRecords, "fakewriter.max-records", 200000, "Most records kept in memory for GET /profiles (0: no cap); counts and the record file see every push.")

	// Pyroscope's segment-writer overrides of dskit's lifecycler defaults.
	for name, v := range map[string]string{
		"segment-writer.num-tokens":             "4",
		"segment-writer.unregister-on-shutdown": "false",
		"segment-writer.min-ready-duration":     "0s",
		"segment-writer.store":                  "memberlist",
	} {
		if fl := f.Lookup(name); fl != nil {
			_ = fl.Value.Set(v)
			fl.DefValue = v
		}
	}
}

// Record is one acknowledged push.
type Record struct {
	ProfileID      string `json:"profile_id"`
	Tenant         string `json:"tenant"`
	ServiceName    string `json:"service_name"`
	Shard          uint32 `json:"shard"`
	Bytes          int    `json:"bytes"`
	ReceivedUnixMs int64  `json:"received_unix_ms"`
	// Labels are the series labels in the order received (sorted by name).
	Labels []Label `json:"labels"`
	// Writer is the lifecycler ID of the writer that acknowledged the push.
	Writer string `json:"writer"`
	// Annotations are the request's profile annotations (key, value).
	Annotations []Label `json:"annotations,omitempty"`
}

// Label is one series label of a recorded push.
type Label struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Count is the number of acknowledged pushes for one (tenant, service, shard).
type Count struct {
	Tenant      string `json:"tenant"`
	ServiceName string `json:"service_name"`
	Shard       uint32 `json:"shard"`
	Count       int    `json:"count"`
}

// ProfilesResponse is the body of GET /profiles.
type ProfilesResponse struct {
	ID       string   `json:"id"`
	Addr     string   `json:"addr"`
	Zone     string   `json:"zone"`
	Profiles []Record `json:"profiles"`
	// Dropped counts pushes acknowledged but not listed because of
	// -fakewriter.max-records.
	Dropped int `json:"dropped"`
}

// CountsResponse is the body of GET /counts.
type CountsResponse struct {
	ID     string  `json:"id"`
	Addr   string  `json:"addr"`
	Zone   string  `json:"zone"`
	Counts []Count `json:"counts"`
}

// Writer is one simulated segment-writer.
type Writer struct {
	segmentwriterv1.UnimplementedSegmentWriterServiceServer

	cfg    Config
	logger log.Logger
	reg    *prometheus.Registry

	kv         *memberlist.KV
	lifecycler *ring.Lifecycler
	health     *health.Server
	grpcSrv    *grpc.Server
	httpSrv    *http.Server
	grpcLis    net.Listener
	httpLis    net.Listener

	stopping atomic.Bool
	latency  atomic.Int64 // nanoseconds
	ackDelay atomic.Int64 // nanoseconds
	fail     struct {
		sync.Mutex
		code  codes.Code
		count int // remaining; <0 means until cleared
	}
	mu      sync.Mutex
	records []Record
	dropped int // records not kept because of MaxRecords
	counts  map[countKey]int
	file    *os.File // RecordFile, guarded by mu

	pushes *prometheus.CounterVec
	// Crash is called by /control/crash; os.Exit by default.
	Crash func()
}

// New listens on the gRPC and HTTP ports (so port 0 resolves to a real port
// before registering) and prepares the lifecycler; Start joins the ring.
func New(cfg Config, logger log.Logger) (*Writer, error) {
	if logger == nil {
		logger = log.NewNopLogger()
	}
	w := &Writer{cfg: cfg, logger: logger, reg: prometheus.NewRegistry(), counts: map[countKey]int{}, Crash: func() { os.Exit(2) }}
	w.pushes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fakewriter_pushes_total", Help: "Push calls by gRPC code.",
	}, []string{"code"})
	w.reg.MustRegister(w.pushes)
	w.latency.Store(int64(cfg.Latency))
	w.ackDelay.Store(int64(cfg.AckDelay))
	if cfg.FailCode != "" {
		if err := w.setFail(cfg.FailCode, 0); err != nil {
			return nil, err
		}
	}

	var err error
	if cfg.RecordFile != "" {
		if w.file, err = os.OpenFile(cfg.RecordFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return nil, fmt.Errorf("fakewriter: record file: %w", err)
		}
	}
	w.grpcLis, err = net.Listen("tcp", net.JoinHostPort(cfg.GRPCListenAddress, strconv.Itoa(cfg.GRPCListenPort)))
	if err != nil {
		return nil, fmt.Errorf("fakewriter: grpc listen: %w", err)
	}
	w.httpLis, err = net.Listen("tcp", net.JoinHostPort(cfg.HTTPListenAddress, strconv.Itoa(cfg.HTTPListenPort)))
	if err != nil {
		w.grpcLis.Close()
		return nil, fmt.Errorf("fakewriter: http listen: %w", err)
	}

	kvCfg := cfg.Memberlist
	kvCfg.Codecs = []codec.Codec{ring.GetCodec(), membership.VersionsCodec()}
	w.kv = memberlist.NewKV(kvCfg, logger, membership.NewDNSProvider(logger, w.reg), w.reg)

	lc := cfg.Lifecycler
	lc.RingConfig.KVStore.Store = "memberlist"
	lc.RingConfig.KVStore.MemberlistKV = func() (*memberlist.KV, error) { return w.kv, nil }
	lc.ListenPort = w.grpcLis.Addr().(*net.TCPAddr).Port
	w.lifecycler, err = ring.NewLifecycler(lc, nil, ringName, membership.SegmentWriterRingKey, false, logger, w.reg)
	if err != nil {
		w.closeListeners()
		return nil, fmt.Errorf("fakewriter: lifecycler: %w", err)
	}

	w.health = health.NewServer()
	w.health.SetServingStatus(HealthService, healthpb.HealthCheckResponse_NOT_SERVING)
	// Without a policy grpc-go allows a ping every 5 minutes and none
	// without a call, so the distributor's keepalive would cost it its
	// connections to the simulator but not to a real writer.
	grpcOpts, err := grpcTLS(cfg.GRPCTLS)
	if err != nil {
		w.closeListeners()
		return nil, err
	}
	w.grpcSrv = grpc.NewServer(append(grpcOpts, grpc.MaxRecvMsgSize(maxRecvMsgSize), grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
		MinTime:             cfg.GRPCServerMinTimeBetweenPings,
		PermitWithoutStream: cfg.GRPCServerPingWithoutStreamAllowed,
	}))...)
	segmentwriterv1.RegisterSegmentWriterServiceServer(w.grpcSrv, w)
	healthpb.RegisterHealthServer(w.grpcSrv, w.health)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /profiles", w.handleProfiles)
	mux.HandleFunc("GET /counts", w.handleCounts)
	mux.HandleFunc("GET /ready", w.handleReady)
	mux.HandleFunc("POST /control/latency", w.handleLatency)
	mux.HandleFunc("POST /control/ack-delay", w.handleAckDelay)
	mux.HandleFunc("POST /control/fail", w.handleFail)
	mux.HandleFunc("POST /control/crash", w.handleCrash)
	mux.HandleFunc("POST /control/reset", w.handleReset)
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.reg, promhttp.HandlerOpts{}))
	w.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return w, nil
}

func (w *Writer) closeListeners() {
	w.grpcLis.Close()
	w.httpLis.Close()
}

// GRPCAddr and HTTPAddr are the bound listener addresses.
func (w *Writer) GRPCAddr() string { return w.grpcLis.Addr().String() }
func (w *Writer) HTTPAddr() string { return w.httpLis.Addr().String() }

// RecordFile is the path records are appended to ("" if none).
func (w *Writer) RecordFile() string { return w.cfg.RecordFile }

// GossipPort is the bound memberlist port (after Start).
func (w *Writer) GossipPort() int { return w.kv.GetListeningPort() }

// KV is the writer's memberlist KV.
func (w *Writer) KV() *memberlist.KV { return w.kv }

// RingAddr is the address registered in the ring.
func (w *Writer) RingAddr() string { return w.lifecycler.Addr }

// startDetached starts s with a lifetime of its own (dskit ties a service
// to the context it was started with; Stop ends these) and waits until it
// runs or ctx ends.
func startDetached(ctx context.Context, s services.Service) error {
	if err := s.StartAsync(context.Background()); err != nil {
		return err
	}
	if err := s.AwaitRunning(ctx); err != nil {
		s.StopAsync()
		return err
	}
	return nil
}

// Start serves, joins memberlist and registers in the ring; the health
// status turns SERVING once the lifecycler runs.
func (w *Writer) Start(ctx context.Context) error {
	go func() { _ = w.grpcSrv.Serve(w.grpcLis) }()
	go func() { _ = w.httpSrv.Serve(w.httpLis) }()
	if err := startDetached(ctx, w.kv); err != nil {
		return fmt.Errorf("fakewriter: memberlist: %w", err)
	}
	if err := startDetached(ctx, w.lifecycler); err != nil {
		return fmt.Errorf("fakewriter: lifecycler: %w", err)
	}
	// The lifecycler runs before it has picked tokens; report SERVING only
	// once the entry is ACTIVE, so a caller of Start sees it in the ring.
	for !w.registered(ctx) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("fakewriter: waiting for ACTIVE: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	w.health.SetServingStatus(HealthService, healthpb.HealthCheckResponse_SERVING)
	level.Info(w.logger).Log("msg", "segment-writer simulator running", "id", w.lifecycler.ID, "addr", w.lifecycler.Addr, "zone", w.lifecycler.Zone, "http", w.HTTPAddr())
	return nil
}

// registered reports whether the KV store holds our entry ACTIVE with its
// tokens (the lifecycler's own state flips before its write lands).
func (w *Writer) registered(ctx context.Context) bool {
	v, err := w.lifecycler.KVStore.Get(ctx, membership.SegmentWriterRingKey)
	if err != nil {
		return false
	}
	d, ok := v.(*ring.Desc)
	if !ok || d == nil {
		return false
	}
	in, ok := d.Ingesters[w.lifecycler.ID]
	return ok && in.State == ring.ACTIVE && len(in.Tokens) == w.cfg.Lifecycler.NumTokens
}

// Stop behaves like Pyroscope's writer on SIGTERM: NOT_SERVING, Push answers
// Unavailable, the ring entry goes LEAVING (and is removed only with
// -segment-writer.unregister-on-shutdown), memberlist is left, servers stop.
func (w *Writer) Stop(ctx context.Context) error {
	w.stopping.Store(true)
	w.health.SetServingStatus(HealthService, healthpb.HealthCheckResponse_NOT_SERVING)
	var errs []error
	if err := services.StopAndAwaitTerminated(ctx, w.lifecycler); err != nil {
		errs = append(errs, err)
	}
	if err := services.StopAndAwaitTerminated(ctx, w.kv); err != nil {
		errs = append(errs, err)
	}
	done := make(chan struct{})
	go func() { w.grpcSrv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		w.grpcSrv.Stop()
	}
	if err := w.httpSrv.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	w.mu.Lock()
	if w.file != nil {
		errs = append(errs, w.file.Close())
		w.file = nil
	}
	w.mu.Unlock()
	return errors.Join(errs...)
}

// Push implements segmentwriter.v1.SegmentWriterService/Push.
func (w *Writer) Push(ctx context.Context, req *segmentwriterv1.PushRequest) (*segmentwriterv1.PushResponse, error) {
	resp, err := w.push(ctx, req)
	w.pushes.WithLabelValues(status.Code(err).String()).Inc()
	return resp, err
}

func (w *Writer) push(ctx context.Context, req *segmentwriterv1.PushRequest) (*segmentwriterv1.PushResponse, error) {
	if w.stopping.Load() {
		return nil, status.Error(codes.Unavailable, "service is unavailable")
	}
	if err := wait(ctx, time.Duration(w.latency.Load())); err != nil {
		return nil, err
	}
	if code, ok := w.takeFail(); ok {
		return nil, status.Error(code, "injected failure")
	}
	if req.TenantId == "" {
		return nil, status.Error(codes.InvalidArgument, "tenant_id is empty")
	}
	id, err := uuid.FromBytes(req.ProfileId)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "profile_id must be 16 bytes")
	}
	if !w.cfg.SkipProfileCheck {
		if _, err := profile.ParseData(req.Profile); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "invalid profile: %v", err)
		}
	}
	rec := Record{
		ProfileID:      id.String(),
		Tenant:         req.TenantId,
		Shard:          req.Shard,
		Bytes:          len(req.Profile),
		ReceivedUnixMs: time.Now().UnixMilli(),
		Labels:         make([]Label, 0, len(req.Labels)),
		Writer:         w.lifecycler.ID,
	}
	for _, l := range req.Labels {
		rec.Labels = append(rec.Labels, Label{Name: l.GetName(), Value: l.GetValue()})
		if l.GetName() == "service_name" && rec.ServiceName == "" {
			rec.ServiceName = l.GetValue()
		}
	}
	for _, a := range req.Annotations {
		rec.Annotations = append(rec.Annotations, Label{Name: a.GetKey(), Value: a.GetValue()})
	}
	if err := w.store(rec); err != nil {
		return nil, err
	}
	// A real writer has the profile in its segment now and answers once the
	// segment is flushed; a caller that stops waiting does not undo that.
	if err := wait(ctx, time.Duration(w.ackDelay.Load())); err != nil {
		return nil, err
	}
	return &segmentwriterv1.PushResponse{}, nil
}

// wait waits d (not at all if d <= 0), or fails with the status of a
// call whose context ends first.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

func (w *Writer) store(rec Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.file != nil {
		line, _ := json.Marshal(rec)
		if _, err := w.file.Write(append(line, '\n')); err != nil {
			return status.Errorf(codes.Unknown, "record file: %v", err)
		}
	}
	if w.cfg.MaxRecords > 0 && len(w.records) >= w.cfg.MaxRecords {
		w.dropped++
	} else {
		w.records = append(w.records, rec)
	}
	w.counts[countKey{rec.Tenant, rec.ServiceName, rec.Shard}]++
	return nil
}

func (w *Writer) takeFail() (codes.Code, bool) {
	w.fail.Lock()
	defer w.fail.Unlock()
	if w.fail.code == codes.OK || w.fail.count == 0 {
		return codes.OK, false
	}
	if w.fail.count > 0 {
		w.fail.count--
	}
	return w.fail.code, true
}

func (w *Writer) setFail(name string, count int) error {
	code, err := ParseCode(name)
	if err != nil {
		return err
	}
	if count <= 0 {
		count = -1
	}
	w.fail.Lock()
	w.fail.code, w.fail.count = code, count
	w.fail.Unlock()
	return nil
}

// ParseCode reads a gRPC code by its Go name ("Unavailable"), its proto
// name ("UNAVAILABLE") or its number.
func ParseCode(name string) (codes.Code, error) {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if strings.EqualFold(c.String(), name) {
			return c, nil
		}
	}
	var c codes.Code
	if err := c.UnmarshalJSON([]byte(strconv.Quote(name))); err == nil {
		return c, nil
	}
	if n, err := strconv.ParseUint(name, 10, 32); err == nil && n <= uint64(codes.Unauthenticated) {
		return codes.Code(n), nil
	}
	return codes.OK, fmt.Errorf("fakewriter: unknown gRPC code %q", name)
}

// Records returns a copy of everything acknowledged so far.
func (w *Writer) Records() []Record {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.records)
}

// ReadRecordFile reads a -fakewriter.record-file; a torn last line (the
// writer died mid-write, so it never acked it) is ignored.
func ReadRecordFile(path string) ([]Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

type countKey struct {
	t, s  string
	shard uint32
}

func sortedCounts(m map[countKey]int) []Count {
	out := make([]Count, 0, len(m))
	for k, n := range m {
		out = append(out, Count{Tenant: k.t, ServiceName: k.s, Shard: k.shard, Count: n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.ServiceName, b.ServiceName), cmp.Compare(a.Shard, b.Shard))
	})
	return out
}

func (w *Writer) handleProfiles(rw http.ResponseWriter, _ *http.Request) {
	w.mu.Lock()
	resp := ProfilesResponse{ID: w.lifecycler.ID, Addr: w.lifecycler.Addr, Zone: w.lifecycler.Zone, Profiles: slices.Clone(w.records), Dropped: w.dropped}
	w.mu.Unlock()
	writeJSON(rw, resp)
}

func (w *Writer) handleCounts(rw http.ResponseWriter, _ *http.Request) {
	w.mu.Lock()
	counts := sortedCounts(w.counts)
	w.mu.Unlock()
	writeJSON(rw, CountsResponse{ID: w.lifecycler.ID, Addr: w.lifecycler.Addr, Zone: w.lifecycler.Zone, Counts: counts})
}

func (w *Writer) handleReady(rw http.ResponseWriter, _ *http.Request) {
	if w.stopping.Load() || w.lifecycler.GetState() != ring.ACTIVE {
		http.Error(rw, "not ready: "+w.lifecycler.GetState().String(), http.StatusServiceUnavailable)
		return
	}
	_, _ = rw.Write([]byte("ready\n"))
}

func (w *Writer) handleLatency(rw http.ResponseWriter, r *http.Request) {
	setDuration(rw, r, &w.latency)
}

func (w *Writer) handleAckDelay(rw http.ResponseWriter, r *http.Request) {
	setDuration(rw, r, &w.ackDelay)
}

func setDuration(rw http.ResponseWriter, r *http.Request, dst *atomic.Int64) {
	d, err := time.ParseDuration(r.URL.Query().Get("duration"))
	if err != nil || d < 0 {
		http.Error(rw, "duration: want a non-negative Go duration", http.StatusBadRequest)
		return
	}
	dst.Store(int64(d))
	rw.WriteHeader(http.StatusNoContent)
}

func (w *Writer) handleFail(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	count := 0
	if s := q.Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			http.Error(rw, "count: want a non-negative integer", http.StatusBadRequest)
			return
		}
		count = n
	}
	if err := w.setFail(q.Get("code"), count); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	rw.WriteHeader(http.StatusNoContent)
}

func (w *Writer) handleCrash(rw http.ResponseWriter, _ *http.Request) {
	level.Warn(w.logger).Log("msg", "crash requested")
	rw.WriteHeader(http.StatusNoContent)
	if f, ok := rw.(http.Flusher); ok {
		f.Flush()
	}
	w.Crash()
}

func (w *Writer) handleReset(rw http.ResponseWriter, _ *http.Request) {
	w.mu.Lock()
	w.records = nil
	w.dropped = 0
	w.counts = map[countKey]int{}
	w.mu.Unlock()
	rw.WriteHeader(http.StatusNoContent)
}

func writeJSON(rw http.ResponseWriter, v any) {
	rw.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(rw).Encode(v); err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
	}
}

// DefaultConfig is the flag defaults, for callers that build a Writer in
// process (tests) rather than from a command line.
func DefaultConfig() Config {
	var c Config
	fs := flag.NewFlagSet("fakewriter", flag.ContinueOnError)
	c.RegisterFlags(fs, log.NewNopLogger())
	return c
}
