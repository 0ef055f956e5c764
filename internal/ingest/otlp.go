package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/go-kit/log/level"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/klauspost/compress/gzip"
	collectorv1 "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	profilesv1 "go.opentelemetry.io/proto/otlp/profiles/v1development"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pyrodist/pyrodist/internal/inflight"
	"github.com/pyrodist/pyrodist/internal/ingest/otlp"
	"github.com/pyrodist/pyrodist/internal/profile"
)

// The OTLP profiles paths: OTLP/HTTP's and the gRPC method's. Both take
// OTLP/HTTP (protobuf or JSON) and gRPC, as Pyroscope serves them.
const (
	otlpHTTPPath        = "/v1development/profiles"
	otlpServiceName     = "opentelemetry.proto.collector.profiles.v1development.ProfilesService"
	otlpExportProcedure = "/" + otlpServiceName + "/Export"
)

// Memory charged per byte of an OTLP export, on top of the body as it
// arrives: protobuf-go allocates about 13 bytes of decoded message per byte
// of protobuf (an eBPF-profiler export of 8 MB decodes into 110 MB); JSON is
// about 4 times larger than protobuf for the same message.
const (
	otlpDecodedFactor     = 13
	otlpJSONDecodedFactor = 4
)

// How many times the bytes of an export are charged as they arrive:
// OTLP/HTTP reads them into a buffer that grows by doubling, where the old
// and the new buffer are live at once while it grows; over gRPC connect
// does the same and the codec copies the message.
const (
	otlpHTTPBodyCopies = 3
	otlpGRPCBodyCopies = 4
)

// otlpService serves OTLP profiles exports: gRPC (and gRPC-Web) through a
// connect handler, OTLP/HTTP itself. Every profile of an export is
// converted and pushed on its own, several at once: at most perExport per
// export and slots (process-wide) in all.
type otlpService struct {
	s         *Server
	grpc      http.Handler
	perExport int
	slots     chan struct{} // nil: no process-wide bound
	conv      sync.Pool     // *otlp.Converter
}

func (s *Server) newOTLP() *otlpService {
	o := &otlpService{s: s, perExport: s.opts.OTLPExportConcurrency}
	if n := s.opts.OTLPMaxConcurrency; n > 0 {
		o.slots = make(chan struct{}, n)
	}
	o.conv.New = func() any { return new(otlp.Converter) }
	readMax := min(bodyLimit(s.opts.Limits.ForTenant("")), int64(^uint32(0)>>1))
	h := connect.NewUnaryHandler(otlpExportProcedure, o.exportGRPC,
		connect.WithCodec(rawExportCodec{name: "proto"}),
		connect.WithCodec(rawExportCodec{name: "json"}),
		withGzip(),
		connect.WithReadMaxBytes(int(readMax)),
	)
	// Collectors send gzip: it is inflated under the budget and the read
	// limit before connect sees it, as push.v1's is.
	o.grpc = s.inflateEnvelope(h, readMax)
	return o
}

// routes registers both paths; other methods get 405.
func (o *otlpService) routes(mux *http.ServeMux) {
	for _, r := range []struct{ path, route string }{
		{otlpHTTPPath, "v1development_profiles"},
		{otlpExportProcedure, "opentelemetry_proto_collector_profiles_v1development_ProfilesService_Export"},
	} {
		mux.Handle("POST "+r.path, o.s.instrumentPush(r.route, o.s.answerInTime(o)))
		mux.Handle(r.path, o.s.instrument(r.route, http.HandlerFunc(methodNotAllowed)))
	}
}

func (o *otlpService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/grpc") {
		ch := o.s.opts.Budget.Charge()
		defer ch.Release()
		// connect reads the whole message into a buffer that grows by
		// doubling (the old and the new one are live while it grows), and
		// the codec copies it; exportGRPC charges the decoded message.
		r.Body = o.s.newBody(w, r, ch, otlpGRPCBodyCopies, true)
		o.grpc.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), chargeKey{}, ch)))
		return
	}
	mt, _, _ := mime.ParseMediaType(ct)
	var enc otlpEncoding
	known := true
	switch mt {
	case "application/x-protobuf", "application/protobuf":
		enc = otlpProto
	case "application/json":
		enc = otlpJSON
	default:
		known = false
	}
	// The tenant first, as Pyroscope's auth middleware runs before its handler.
	tenant, err := o.s.tenantOf(r.Header)
	switch {
	case err != nil && known:
		writeOTLPError(w, enc, connect.NewError(connect.CodeUnauthenticated, err))
	case err != nil:
		http.Error(w, err.Error(), http.StatusUnauthorized)
	case !known:
		http.Error(w, fmt.Sprintf("Unsupported Content-Type: %s", ct), http.StatusUnsupportedMediaType)
	default:
		o.serveHTTP(w, r, enc, tenant)
	}
}

type chargeKey struct{}

type otlpEncoding uint8

const (
	otlpProto otlpEncoding = iota
	otlpJSON
)

func (e otlpEncoding) contentType() string {
	if e == otlpJSON {
		return "application/json"
	}
	return "application/x-protobuf"
}

func (e otlpEncoding) marshal(m proto.Message) ([]byte, error) {
	if e == otlpJSON {
		return protojson.Marshal(m)
	}
	return proto.Marshal(m)
}

// serveHTTP serves OTLP/HTTP: the answer, an error's google.rpc.Status
// included, is encoded as the request was.
func (o *otlpService) serveHTTP(w http.ResponseWriter, r *http.Request, enc otlpEncoding, tenant string) {
	var gzipped bool
	switch ce := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); ce {
	case "", "identity":
	case "gzip":
		gzipped = true
	default:
		writeOTLPStatus(w, enc, http.StatusUnsupportedMediaType, connect.CodeUnimplemented,
			fmt.Sprintf("unsupported Content-Encoding %q; send gzip or identity", ce))
		return
	}
	limit := bodyLimit(o.s.opts.Limits.ForTenant(tenant))
	if limit > 0 && r.ContentLength > limit { // refuse before reading a byte
		writeOTLPStatus(w, enc, http.StatusRequestEntityTooLarge, connect.CodeResourceExhausted,
			"profile payload size exceeds limit of "+profile.SIBytes(uint64(limit)))
		return
	}
	ch := o.s.opts.Budget.Charge()
	defer ch.Release()
	data, err := o.readHTTPBody(w, r, ch, limit, gzipped)
	if err != nil {
		writeOTLPReadError(w, enc, err)
		return
	}
	factor := otlpDecodedFactor
	if enc == otlpJSON {
		factor = otlpJSONDecodedFactor
	}
	if err := ch.Reserve(factor * len(data)); err != nil {
		writeOTLPError(w, enc, connect.NewError(connect.CodeResourceExhausted, err))
		return
	}
	req := &collectorv1.ExportProfilesServiceRequest{}
	if enc == otlpJSON {
		err = protojson.Unmarshal(data, req)
	} else {
		err = proto.Unmarshal(data, req)
	}
	if err != nil {
		what := "protobuf"
		if enc == otlpJSON {
			what = "JSON"
		}
		writeOTLPStatus(w, enc, http.StatusBadRequest, connect.CodeInvalidArgument, fmt.Sprintf("Failed to parse %s request: %v", what, err))
		return
	}
	resp, cerr := o.export(r.Context(), tenant, req, ch)
	if cerr != nil {
		writeOTLPError(w, enc, cerr)
		return
	}
	out, err := enc.marshal(resp)
	if err != nil {
		writeOTLPStatus(w, enc, http.StatusInternalServerError, connect.CodeInternal, "failed to marshal response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", enc.contentType())
	_, _ = w.Write(out)
}

// errTooLargeInflated is an OTLP/HTTP body over the limit once inflated.
type errTooLargeInflated struct{ limit int64 }

func (e errTooLargeInflated) Error() string {
	return "uncompressed profile payload size exceeds limit of " + profile.SIBytes(uint64(e.limit))
}

// errBadGzip is a body that is not gzip although it says so.
type errBadGzip struct{ err error }

func (e errBadGzip) Error() string {
	return "failed to read gzip-compressed request body: " + e.err.Error()
}

var gzipReaders sync.Pool // *gzip.Reader

// readHTTPBody reads the body through the request's charge: as it arrives
// (and, gzipped, as it inflates, into a buffer that grows by doubling),
// bounded by limit before and after inflating.
func (o *otlpService) readHTTPBody(w http.ResponseWriter, r *http.Request, ch *inflight.Charge, limit int64, gzipped bool) ([]byte, error) {
	copies := otlpHTTPBodyCopies
	if gzipped {
		copies = 1 // streamed through the inflater
	}
	var body io.ReadCloser = o.s.newBody(w, r, ch, copies, false)
	if limit > 0 {
		body = http.MaxBytesReader(w, body, limit)
	}
	if !gzipped {
		return readBody(body)
	}
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(body)
	} else {
		err = zr.Reset(body)
	}
	if err != nil {
		if zr != nil {
			gzipReaders.Put(zr)
		}
		if isBodyError(err) {
			return nil, err
		}
		return nil, errBadGzip{err}
	}
	defer gzipReaders.Put(zr)
	var in io.Reader = &inflight.Reader{R: zr, C: ch, Step: bodyStep, Copies: otlpHTTPBodyCopies}
	if limit > 0 {
		in = io.LimitReader(in, limit+1)
	}
	data, err := readBody(in)
	if err != nil {
		if isBodyError(err) {
			return nil, err
		}
		return nil, errBadGzip{err}
	}
	if limit > 0 && int64(len(data)) > limit {
		return nil, errTooLargeInflated{limit}
	}
	return data, nil
}

// isBodyError: reading the body failed for a reason of its own (size,
// budget, pace), not because its bytes are wrong.
func isBodyError(err error) bool {
	var tooLarge *http.MaxBytesError
	var slow errSlowBody
	return errors.As(err, &tooLarge) || errors.As(err, &slow) || inflight.IsExhausted(err)
}

func writeOTLPReadError(w http.ResponseWriter, enc otlpEncoding, err error) {
	var tooLarge *http.MaxBytesError
	var inflated errTooLargeInflated
	var slow errSlowBody
	var badGzip errBadGzip
	switch {
	case inflight.IsExhausted(err):
		writeOTLPError(w, enc, connect.NewError(connect.CodeResourceExhausted, err))
	case errors.As(err, &tooLarge):
		writeOTLPStatus(w, enc, http.StatusRequestEntityTooLarge, connect.CodeResourceExhausted,
			"profile payload size exceeds limit of "+profile.SIBytes(uint64(tooLarge.Limit)))
	case errors.As(err, &inflated):
		writeOTLPStatus(w, enc, http.StatusRequestEntityTooLarge, connect.CodeResourceExhausted, inflated.Error())
	case errors.As(err, &slow):
		writeOTLPStatus(w, enc, http.StatusRequestTimeout, connect.CodeDeadlineExceeded, slow.Error())
	case errors.As(err, &badGzip):
		writeOTLPStatus(w, enc, http.StatusBadRequest, connect.CodeInvalidArgument, badGzip.Error())
	default:
		writeOTLPStatus(w, enc, http.StatusBadRequest, connect.CodeInvalidArgument, "failed to read request body: "+err.Error())
	}
}

// writeOTLPError answers an export error: the status of its code, with
// Retry-After where a retry may succeed (429 from the budget or the rate
// limit, 503 when no writer took a profile), which OTLP exporters honour.
func writeOTLPError(w http.ResponseWriter, enc otlpEncoding, ce *connect.Error) {
	switch ce.Code() {
	case connect.CodeResourceExhausted, connect.CodeUnavailable:
		w.Header().Set("Retry-After", retryAfter)
	}
	writeOTLPStatus(w, enc, httpStatus(ce.Code()), ce.Code(), ce.Message())
}

// writeOTLPStatus writes a google.rpc.Status body, encoded as the request
// was, as OTLP/HTTP asks.
func writeOTLPStatus(w http.ResponseWriter, enc otlpEncoding, status int, code connect.Code, msg string) {
	body, err := enc.marshal(&rpcstatus.Status{Code: int32(code), Message: msg})
	if err != nil {
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Type", enc.contentType())
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// rawExport is an export as connect read it, decoded by exportGRPC once
// its memory is charged.
type rawExport struct {
	data []byte
	json bool
}

// rawExportCodec keeps the message bytes (connect reuses its buffer, so
// they are copied) and encodes answers and errors as usual.
type rawExportCodec struct{ name string }

func (c rawExportCodec) Name() string { return c.name }

func (c rawExportCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a protobuf message", v)
	}
	if c.name == "json" {
		return protojson.Marshal(m)
	}
	return proto.Marshal(m)
}

func (c rawExportCodec) Unmarshal(data []byte, v any) error {
	raw, ok := v.(*rawExport)
	if !ok {
		return fmt.Errorf("%T is not an export request", v)
	}
	raw.data = bytes.Clone(data)
	raw.json = c.name == "json"
	return nil
}

// exportGRPC serves ProfilesService/Export over gRPC (and gRPC-Web).
func (o *otlpService) exportGRPC(ctx context.Context, req *connect.Request[rawExport]) (*connect.Response[collectorv1.ExportProfilesServiceResponse], error) {
	tenant, err := o.s.tenantOf(req.Header())
	if err != nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, err)
	}
	ch, _ := ctx.Value(chargeKey{}).(*inflight.Charge)
	data := req.Msg.data
	if limit := bodyLimit(o.s.opts.Limits.ForTenant(tenant)); limit > 0 && int64(len(data)) > limit {
		// Final: no retry hint, a retry cannot succeed.
		return nil, connect.NewError(connect.CodeResourceExhausted, errTooLargeInflated{limit})
	}
	factor := otlpDecodedFactor
	if req.Msg.json {
		factor = otlpJSONDecodedFactor
	}
	if err := ch.Reserve(factor * len(data)); err != nil {
		return nil, retryable(connect.NewError(connect.CodeResourceExhausted, err))
	}
	msg := &collectorv1.ExportProfilesServiceRequest{}
	if req.Msg.json {
		err = protojson.Unmarshal(data, msg)
	} else {
		err = proto.Unmarshal(data, msg)
	}
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("failed to parse request: %w", err))
	}
	req.Msg.data = nil
	resp, cerr := o.export(ctx, tenant, msg, ch)
	if cerr != nil {
		return nil, retryable(cerr)
	}
	return connect.NewResponse(resp), nil
}

// retryable adds a RetryInfo detail to ResourceExhausted: OTLP gRPC
// exporters retry that code only with one.
func retryable(ce *connect.Error) *connect.Error {
	if ce.Code() != connect.CodeResourceExhausted {
		return ce
	}
	if d, err := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfterDuration)}); err == nil {
		ce.AddDetail(d)
	}
	return ce
}

const retryAfterDuration = 5 * time.Second // = retryAfter

// profileResult is what became of one OTLP profile.
type profileResult struct {
	stored int // converted profiles acked by the pipeline
	err    error
}

// export converts and pushes every profile of an export. Profiles rejected
// for what they hold are reported in partial_success when others were
// stored; a retry would store those twice. When nothing was stored, the
// export fails: with the error a retry may get past (429, 503, ...) if
// there is one, else with the rejection (400), as Pyroscope fails it.
func (o *otlpService) export(ctx context.Context, tenant string, req *collectorv1.ExportProfilesServiceRequest, ch *inflight.Charge) (*collectorv1.ExportProfilesServiceResponse, *connect.Error) {
	if err := otlp.CheckExport(req); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	refs := otlp.Profiles(req)
	results := make([]profileResult, len(refs))
	now := time.Now()
	workers := len(refs)
	if o.perExport > 0 {
		workers = min(workers, o.perExport)
	}
	var next atomic.Int64
	work := func() {
		conv := o.conv.Get().(*otlp.Converter)
		defer o.conv.Put(conv)
		for {
			i := int(next.Add(1) - 1)
			if i >= len(refs) {
				return
			}
			results[i] = o.pushProfile(ctx, tenant, req.Dictionary, refs[i], conv, ch, now)
		}
	}
	if workers <= 1 {
		work()
	} else {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(work)
		}
		wg.Wait()
	}

	stored, rejected := 0, 0
	var permanent, transient error
	for _, r := range results {
		stored += r.stored
		if r.err == nil {
			continue
		}
		rejected++
		if otlpPermanent(r.err) {
			if permanent == nil {
				permanent = r.err
			}
		} else if transient == nil {
			transient = r.err
		}
	}
	switch {
	case rejected == 0:
		return &collectorv1.ExportProfilesServiceResponse{}, nil
	case stored > 0:
		first := permanent
		if first == nil {
			first = transient
		}
		_ = level.Debug(o.s.logger).Log("msg", "otlp export partly rejected", "tenant", tenant, "rejected", rejected, "profiles", len(refs), "err", first)
		return &collectorv1.ExportProfilesServiceResponse{PartialSuccess: &collectorv1.ExportProfilesPartialSuccess{
			RejectedProfiles: int64(rejected),
			ErrorMessage:     fmt.Sprintf("%d of %d profiles rejected; the first: %s", rejected, len(refs), otlpErrorMessage(first)),
		}}, nil
	case transient != nil:
		ce := ingestError(transient)
		if ce.Code() == connect.CodeUnknown || ce.Code() == connect.CodeInternal {
			_ = level.Warn(o.s.logger).Log("msg", "otlp export failed", "tenant", tenant, "err", transient)
		}
		return nil, ce
	default:
		var ce *connect.Error
		if errors.As(permanent, &ce) {
			return nil, ce
		}
		return nil, connect.NewError(connect.CodeInvalidArgument, permanent)
	}
}

// otlpPermanent: the profile itself is wrong (it does not convert, or the
// pipeline refused it); sending it again cannot help.
func otlpPermanent(err error) bool {
	var conv *otlp.ConvertError
	if errors.As(err, &conv) {
		return true
	}
	var ce *connect.Error
	return errors.As(err, &ce) && ce.Code() == connect.CodeInvalidArgument
}

func otlpErrorMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return err.Error()
}

// pushProfile converts one profile and pushes what it becomes (a profile
// per sample service.name), each on its own, holding one of the process's
// slots. The converted bytes are charged until their push returns.
func (o *otlpService) pushProfile(ctx context.Context, tenant string, dict *profilesv1.ProfilesDictionary, ref otlp.Ref, conv *otlp.Converter, ch *inflight.Charge, now time.Time) (res profileResult) {
	defer func() {
		if r := recover(); r != nil {
			_ = level.Error(o.s.logger).Log("msg", "panic converting an otlp profile", "panic", r)
			res.err = connect.NewError(connect.CodeInternal, fmt.Errorf("internal error: %v", r))
		}
	}()
	if o.slots != nil {
		select {
		case o.slots <- struct{}{}:
			defer func() { <-o.slots }()
		case <-ctx.Done():
			return profileResult{err: ctx.Err()}
		}
	}
	series, err := conv.Convert(dict, ref, now, nil)
	if err != nil {
		return profileResult{err: err}
	}
	defer func() {
		for i := range series {
			series[i].Release()
		}
	}()
	for _, s := range series {
		if err := ch.Reserve(len(s.Pprof)); err != nil {
			if res.err == nil {
				res.err = connect.NewError(connect.CodeResourceExhausted, err)
			}
			continue
		}
		err := o.s.opts.Pusher.Push(ctx, tenant, &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
			Labels:  s.Labels,
			Samples: []*pushv1.RawSample{{RawProfile: s.Pprof}},
		}}})
		ch.Free(len(s.Pprof))
		if err != nil {
			if res.err == nil {
				res.err = err
			}
			continue
		}
		res.stored++
	}
	return res
}
