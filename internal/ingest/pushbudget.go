package ingest

import (
	"io"
	"net/http"

	"connectrpc.com/connect"

	"github.com/pyrodist/pyrodist/internal/inflight"
)

// pushBodyChunk is what a push.v1 body of unknown length (gRPC, chunked
// HTTP/1.1) may read per reservation, up front and then per step.
const pushBodyChunk = 256 << 10

// pushBodyCopies is how many times its size a push.v1 body is charged:
// connect reads it into a pooled bytes.Buffer that grows by doubling (up to
// twice the body), and the codec's UnmarshalVT copies every profile out of
// it. Charging the body once left those buffers, 72 MB of a 264 MB heap
// under overload, outside the budget.
const pushBodyCopies = 3

// pushBudget charges a push.v1 request's body to the in-flight budget before
// connect reads it: connect buffers the whole body, and under overload those
// buffers were the largest memory nobody charged. A body of known length is
// charged up front, one of unknown length (gRPC, chunked HTTP/1.1) step by
// step as it is read. A body that does not fit is refused at once with
// resource_exhausted in the shape of the request's protocol (429 for
// Connect, grpc-status 8 for gRPC). The charge is released when the handler
// returns; the pipeline charges its own memory on top.
func (s *Server) pushBudget(next http.Handler, readMax int64) http.Handler {
	if s.opts.Budget == nil {
		return next
	}
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch := s.opts.Budget.Charge()
		defer ch.Release()
		if r.ContentLength >= 0 {
			// connect reads no more than readMax (+1 to notice excess).
			n := r.ContentLength
			if readMax > 0 {
				n = min(n, readMax+1)
			}
			if err := ch.Reserve(int(pushBodyCopies * n)); err != nil {
				_ = ew.Write(w, r, connect.NewError(connect.CodeResourceExhausted, err))
				return
			}
		} else {
			r.Body = chargedBody{&inflight.Reader{R: r.Body, C: ch, Step: pushBodyChunk, Copies: pushBodyCopies}, r.Body}
		}
		next.ServeHTTP(w, r)
	})
}

// chargedBody is a body read through the budget. Its budget error is a
// *connect.Error, which connect passes on to the client unchanged.
type chargedBody struct {
	r *inflight.Reader
	io.Closer
}

func (b chargedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if inflight.IsExhausted(err) {
		err = connect.NewError(connect.CodeResourceExhausted, err)
	}
	return n, err
}
