package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// clientError maps an error of the pipeline or of the sender to what a
// client sees (docs/compatibility.md#status-codes). The pipeline's own verdicts are
// connect errors (InvalidArgument, ResourceExhausted) and pass unchanged. A
// segment-writer's gRPC status keeps its code only when it is the client's
// doing or a timeout (Canceled, DeadlineExceeded, InvalidArgument); anything
// else is Unknown (500) with the writer's text, as Pyroscope answers.
func clientError(err error) *connect.Error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		switch st.Code() {
		case codes.Canceled:
			return connect.NewError(connect.CodeCanceled, err)
		case codes.DeadlineExceeded:
			return connect.NewError(connect.CodeDeadlineExceeded, err)
		case codes.InvalidArgument:
			return connect.NewError(connect.CodeInvalidArgument, err)
		default:
			return connect.NewError(connect.CodeUnknown, err)
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	return connect.NewError(connect.CodeUnknown, err)
}

// httpStatus is the HTTP status of a connect code in the Connect protocol.
func httpStatus(c connect.Code) int {
	switch c {
	case connect.CodeCanceled:
		return 499
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition, connect.CodeOutOfRange:
		return http.StatusBadRequest
	case connect.CodeDeadlineExceeded:
		return http.StatusGatewayTimeout
	case connect.CodeNotFound:
		return http.StatusNotFound
	case connect.CodeAlreadyExists, connect.CodeAborted:
		return http.StatusConflict
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case connect.CodeUnimplemented:
		return http.StatusNotImplemented
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized
	default:
		return http.StatusInternalServerError
	}
}

// ingestError is clientError for /ingest, which keeps a writer outage
// apart: the sender's Unavailable (no writer took the profile) stays
// Unavailable, so that /ingest answers 503 with Retry-After. Pyroscope
// answers 422 there, which clients take as final: they drop the profile.
func ingestError(err error) *connect.Error {
	var ce *connect.Error
	if !errors.As(err, &ce) && status.Code(err) == codes.Unavailable {
		return connect.NewError(connect.CodeUnavailable, err)
	}
	return clientError(err)
}

// retryAfter is the Retry-After (seconds) of a 503: about what a writer
// takes to restart or the ring to drop it; clients add their own backoff.
const retryAfter = "5"

// ingestStatus is the status /ingest answers for a push error. pprof and JFR
// bodies get 429 for limits and 422 for what is wrong with them, as
// Pyroscope answers them; text formats get the status of the connect code.
// A failure on the writers' side (outage, timeout, the client gone) is not
// the body's fault: it gets its own 5xx (or 499) whatever the format, so
// that clients retry rather than drop the profile.
func ingestStatus(ce *connect.Error, pprofBody bool) int {
	switch ce.Code() {
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeCanceled:
		return httpStatus(ce.Code())
	}
	if pprofBody {
		if ce.Code() == connect.CodeResourceExhausted {
			return http.StatusTooManyRequests
		}
		return http.StatusUnprocessableEntity
	}
	return httpStatus(ce.Code())
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError writes Pyroscope's JSON error body {"code","message"}.
func writeError(w http.ResponseWriter, statusCode int, code connect.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(statusCode)
	_ = json.NewEncoder(w).Encode(errorBody{Code: code.String(), Message: msg})
}
