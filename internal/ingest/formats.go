package ingest

import (
	"context"
	"errors"
	"io"
	"net/http"

	"connectrpc.com/connect"
	"github.com/go-kit/log/level"
	"github.com/google/uuid"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/inflight"
	"github.com/pyrodist/pyrodist/internal/ingest/legacy"
)

// The /ingest formats converted in this file (bodyFormat's names).
const (
	formatTrie       = "trie"
	formatTree       = "tree"
	formatSpeedscope = "speedscope"
)

// convertLimits are the tenant's limits a conversion builds within, and the
// request's charge for what it builds.
func convertLimits(lim *config.Limits, ch *inflight.Charge) legacy.Limits {
	return legacy.Limits{
		MaxProfileSize: int64(lim.MaxProfileSizeBytes),
		MaxNameLen:     lim.MaxProfileSymbolValueLength,
		MaxChildren:    lim.MaxProfileStacktraceSamples,
		Reserve:        ch.Reserve,
	}
}

// convertTree reads a trie or tree body and converts it; on failure it has
// answered the request. Statuses are the text formats' (as folded): a body
// that does not decode is 422, a name without a known profile type 400.
func convertTree(w http.ResponseWriter, body io.Reader, format string, md legacy.Metadata, lim *config.Limits, ch *inflight.Charge) (*legacy.Series, bool) {
	data, err := readBody(body)
	if err != nil {
		writeReadError(w, err)
		return nil, false
	}
	convert := legacy.Tree
	if format == formatTrie {
		convert = legacy.Trie
	}
	series, err := convert(data, md, convertLimits(lim, ch))
	switch {
	case errors.Is(err, legacy.ErrInvalidUTF8):
		writeError(w, http.StatusBadRequest, connect.CodeInvalidArgument, err.Error())
		return nil, false
	case err != nil:
		writeConvertError(w, err, false)
		return nil, false
	}
	return series, true
}

// ingestSpeedscope converts a speedscope document and pushes each of its
// profiles in turn, as Pyroscope does. Its errors, conversion and push
// alike, are answered as Pyroscope answers them for speedscope (its errors
// are not wrapped as ingestion errors): 429 for a limit, else 422, and a
// writer outage as for every format.
func (s *Server) ingestSpeedscope(w http.ResponseWriter, r *http.Request, tenant string, body io.Reader, md legacy.Metadata, lim *config.Limits, ch *inflight.Charge) {
	data, err := readBody(body)
	if err != nil {
		writeReadError(w, err)
		return
	}
	var pushErr error
	err = legacy.Speedscope(data, md, convertLimits(lim, ch), func(series *legacy.Series) error {
		// The pipeline charges the profile itself; the document stays
		// charged until the last profile is sent.
		ch.Free(len(series.Pprof))
		pushErr = s.pushSeries(r.Context(), tenant, series)
		return pushErr
	})
	switch {
	case err == nil:
	case pushErr != nil:
		s.writePushError(w, tenant, pushErr, true)
	case errors.Is(err, legacy.ErrProfileType):
		writeError(w, http.StatusUnprocessableEntity, connect.CodeInvalidArgument, err.Error())
	default:
		writeConvertError(w, err, true)
	}
}

func (s *Server) pushSeries(ctx context.Context, tenant string, series *legacy.Series) error {
	return s.opts.Pusher.Push(ctx, tenant, &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels:  series.Labels,
		Samples: []*pushv1.RawSample{{RawProfile: series.Pprof, ID: uuid.NewString()}},
	}}})
}

// writePushError answers a push that failed, as /ingest answers every push.
func (s *Server) writePushError(w http.ResponseWriter, tenant string, err error, pprofBody bool) {
	ce := ingestError(err)
	switch ce.Code() {
	case connect.CodeUnknown:
		_ = level.Warn(s.logger).Log("msg", "ingest failed", "tenant", tenant, "err", err)
	case connect.CodeUnavailable:
		w.Header().Set("Retry-After", retryAfter)
	}
	writeError(w, ingestStatus(ce, pprofBody), ce.Code(), ce.Message())
}
