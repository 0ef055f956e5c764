package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/go-kit/log/level"
	"github.com/google/uuid"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"

	"github.com/pyrodist/pyrodist/internal/inflight"
	"github.com/pyrodist/pyrodist/internal/ingest/legacy"
)

// Body formats of /ingest that this server converts.
const (
	formatFolded    = "folded"
	formatLines     = "lines"
	formatPprof     = "pprof"
	formatMultipart = "multipart"
)

// bodyFormat picks the format as Pyroscope does, first match wins; any
// unknown format value falls through to folded text.
func bodyFormat(format, contentType string) string {
	switch {
	case format == "trie" || contentType == "binary/octet-stream+trie":
		return "trie"
	case format == "tree" || contentType == "binary/octet-stream+tree":
		return "tree"
	case format == formatLines:
		return formatLines
	case format == formatJFR:
		return formatJFR
	case format == formatPprof:
		return formatPprof
	case format == "speedscope":
		return "speedscope"
	case strings.Contains(contentType, "multipart/form-data"):
		return formatMultipart
	default:
		return formatFolded
	}
}

// ingest serves the legacy POST /ingest API (docs/compatibility.md#push-apis).
func (s *Server) ingest(w http.ResponseWriter, r *http.Request) {
	tenant, err := s.tenantOf(r.Header)
	if err != nil {
		writeError(w, http.StatusUnauthorized, connect.CodeUnauthenticated, err.Error())
		return
	}
	md, err := legacy.ParseQuery(r.URL.Query(), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, connect.CodeInvalidArgument, err.Error())
		return
	}
	lim := s.opts.Limits.ForTenant(tenant)
	limit := bodyLimit(lim)
	if limit > 0 && r.ContentLength > limit { // refuse before reading a byte
		writeReadError(w, &http.MaxBytesError{Limit: limit})
		return
	}
	contentType := r.Header.Get("Content-Type")
	format := bodyFormat(md.Format, contentType)
	pprofBody := format == formatPprof || format == formatMultipart || format == formatJFR

	// The body as it arrives and the conversion's memory (inflated and
	// decoded pprof, text bodies) are charged to the pipeline's budget; the
	// charge ends before Push, which charges the converted profile itself.
	ch := s.opts.Budget.Charge()
	defer ch.Release()
	charged := s.newBody(w, r, ch, ingestBodyCopies, false)
	defer charged.drain()
	var body io.ReadCloser = charged
	if limit > 0 {
		body = http.MaxBytesReader(w, body, limit)
	}
	var series *legacy.Series
	var more []*legacy.Series // formats that make several profiles (JFR)
	switch format {
	case formatFolded, formatLines, formatPprof:
		data, err := readBody(body)
		if err != nil {
			writeReadError(w, err)
			return
		}
		if format != formatPprof {
			// text is converted in memory as it is: charge the body
			if err := ch.Reserve(len(data)); err != nil {
				writeConvertError(w, err, pprofBody)
				return
			}
		}
		switch format {
		case formatFolded:
			series, err = legacy.Folded(data, md)
		case formatLines:
			series, err = legacy.Lines(data, md)
		default:
			series, err = legacy.Pprof(data, md, nil, int64(lim.MaxProfileSizeBytes), ch.Reserve)
		}
		if err != nil {
			writeConvertError(w, err, pprofBody)
			return
		}
	case formatMultipart:
		profile, types, err := readMultipart(body, contentType)
		if err != nil {
			var tooLarge *http.MaxBytesError
			var slow errSlowBody
			if errors.As(err, &tooLarge) || errors.As(err, &slow) || inflight.IsExhausted(err) {
				writeReadError(w, err)
				return
			}
			writeError(w, http.StatusUnprocessableEntity, connect.CodeInvalidArgument, err.Error())
			return
		}
		if series, err = legacy.Pprof(profile, md, types, int64(lim.MaxProfileSizeBytes), ch.Reserve); err != nil {
			writeConvertError(w, err, true)
			return
		}
	case formatTrie, formatTree:
		var ok bool
		if series, ok = convertTree(w, body, format, md, lim, ch); !ok {
			return
		}
	case formatSpeedscope:
		s.ingestSpeedscope(w, r, tenant, body, md, lim, ch)
		return
	case formatJFR:
		var ok bool
		if more, ok = s.readJFR(w, body, contentType, md, lim, ch); !ok {
			return
		}
	default:
		writeError(w, http.StatusUnsupportedMediaType, connect.CodeUnimplemented,
			fmt.Sprintf("format %q is not supported; send pprof, folded or lines", format))
		return
	}
	if series != nil {
		more = append(more, series)
	}
	if len(more) == 0 { // dropped on purpose (a profile_id label), or no samples, as Pyroscope does
		return
	}
	ch.Release()
	req := &pushv1.PushRequest{Series: make([]*pushv1.RawProfileSeries, 0, len(more))}
	for _, m := range more {
		req.Series = append(req.Series, &pushv1.RawProfileSeries{
			Labels:  m.Labels,
			Samples: []*pushv1.RawSample{{RawProfile: m.Pprof, ID: uuid.NewString()}},
		})
	}
	if err := s.opts.Pusher.Push(r.Context(), tenant, req); err != nil {
		ce := ingestError(err)
		switch ce.Code() {
		case connect.CodeUnknown:
			_ = level.Warn(s.logger).Log("msg", "ingest failed", "tenant", tenant, "err", err)
		case connect.CodeUnavailable:
			w.Header().Set("Retry-After", retryAfter)
		}
		writeError(w, ingestStatus(ce, pprofBody), ce.Code(), ce.Message())
		return
	}
}

// readBody reads a whole body; its buffer grows as the charged bytes
// arrive, never ahead of them on a client's word (Content-Length).
func readBody(body io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), err
}

func writeReadError(w http.ResponseWriter, err error) {
	var tooLarge *http.MaxBytesError
	var full *inflight.ExhaustedError
	var slow errSlowBody
	switch {
	case errors.As(err, &full):
		writeError(w, http.StatusTooManyRequests, connect.CodeResourceExhausted, full.Error())
		return
	case errors.As(err, &slow):
		writeError(w, http.StatusRequestTimeout, connect.CodeDeadlineExceeded, slow.Error())
		return
	}
	if errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, connect.CodeResourceExhausted,
			fmt.Sprintf("request body too large: limit is %d bytes", tooLarge.Limit))
		return
	}
	writeError(w, http.StatusRequestTimeout, connect.CodeUnknown, "reading request body: "+err.Error())
}

// writeConvertError answers a body that could not be turned into a profile:
// a bad profile type in the name is the request's fault (400); a body that
// does not parse is 422, as Pyroscope answers both pprof and text bodies.
func writeConvertError(w http.ResponseWriter, err error, pprofBody bool) {
	var full *inflight.ExhaustedError
	switch {
	case errors.As(err, &full):
		ce := connect.NewError(connect.CodeResourceExhausted, full)
		writeError(w, ingestStatus(ce, pprofBody), ce.Code(), ce.Message())
	case errors.Is(err, legacy.ErrProfileType):
		writeError(w, http.StatusBadRequest, connect.CodeInvalidArgument, err.Error())
	case errors.Is(err, legacy.ErrTooLarge) && !pprofBody:
		writeError(w, http.StatusBadRequest, connect.CodeInvalidArgument, err.Error())
	default:
		writeError(w, http.StatusUnprocessableEntity, connect.CodeInvalidArgument, err.Error())
	}
}

// maxSampleTypeConfig bounds the JSON of sample_type_config.
const maxSampleTypeConfig = 1 << 20

// readMultipart streams a multipart/form-data body part by part in memory
// (never ParseMultipartForm: that spills to disk and pods have a read-only
// root fs) and returns the profile and the sample type config.
func readMultipart(body io.Reader, contentType string) ([]byte, map[string]*legacy.SampleType, error) {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["boundary"] == "" {
		return nil, nil, fmt.Errorf("multipart body without a boundary: %q", contentType)
	}
	mr := multipart.NewReader(body, params["boundary"])
	var (
		profile    []byte
		hasProfile bool
		types      map[string]*legacy.SampleType
	)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading multipart body: %w", err)
		}
		switch part.FormName() {
		case "profile":
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(part); err != nil {
				return nil, nil, fmt.Errorf("reading multipart field profile: %w", err)
			}
			profile, hasProfile = buf.Bytes(), true
		case "prev_profile":
			return nil, nil, errors.New("unsupported client version. Please update github.com/grafana/pyroscope-go to the latest version")
		case "sample_type_config":
			data, err := io.ReadAll(io.LimitReader(part, maxSampleTypeConfig+1))
			if err != nil {
				return nil, nil, fmt.Errorf("reading multipart field sample_type_config: %w", err)
			}
			if len(data) > maxSampleTypeConfig {
				return nil, nil, fmt.Errorf("multipart field sample_type_config is over %d bytes", maxSampleTypeConfig)
			}
			if err := json.Unmarshal(data, &types); err != nil {
				return nil, nil, fmt.Errorf("multipart field sample_type_config: %w", err)
			}
		default:
			if _, err := io.Copy(io.Discard, part); err != nil {
				return nil, nil, fmt.Errorf("reading multipart body: %w", err)
			}
		}
		_ = part.Close()
	}
	if !hasProfile {
		return nil, nil, errors.New("multipart body has no profile field")
	}
	return profile, types, nil
}
