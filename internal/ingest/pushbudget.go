package ingest

import (
	"errors"
	"io"
	"net/http"

	"connectrpc.com/connect"
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
// buffers were the largest memory nobody charged. A body that does not fit
// is refused at once with resource_exhausted in the shape of the request's
// protocol (429 for Connect, grpc-status 8 for gRPC). The charge is released
// when the handler returns; the pipeline charges its own memory on top.
func (s *Server) pushBudget(next http.Handler, readMax int64) http.Handler {
	b := s.opts.Budget
	if b == nil {
		return next
	}
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int64(pushBodyChunk)
		known := r.ContentLength >= 0
		if known {
			// connect reads no more than readMax (+1 to notice excess).
			n = r.ContentLength
			if readMax > 0 {
				n = min(n, readMax+1)
			}
		}
		if err := b.ReserveInflight(int(pushBodyCopies * n)); err != nil {
			s.refuseBody(ew, w, r, err)
			return
		}
		body := &budgetBody{ReadCloser: r.Body, b: b, allowed: n}
		defer func() { b.ReleaseInflight(int(pushBodyCopies * body.allowed)) }()
		if !known {
			r.Body = body
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) refuseBody(ew *connect.ErrorWriter, w http.ResponseWriter, r *http.Request, err error) {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		ce = connect.NewError(connect.CodeResourceExhausted, err)
	}
	_ = ew.Write(w, r, ce)
}

// budgetBody reserves a body of unknown length chunk by chunk before it is
// read; past the budget, Read fails with resource_exhausted, which connect
// passes on to the client unchanged.
type budgetBody struct {
	io.ReadCloser
	b       Budget
	allowed int64 // body bytes paid for, pushBodyCopies times each; released by pushBudget
	read    int64
}

func (r *budgetBody) Read(p []byte) (int, error) {
	if r.read == r.allowed {
		if err := r.b.ReserveInflight(pushBodyCopies * pushBodyChunk); err != nil {
			var ce *connect.Error
			if !errors.As(err, &ce) {
				ce = connect.NewError(connect.CodeResourceExhausted, err)
			}
			return 0, ce
		}
		r.allowed += pushBodyChunk
	}
	if rest := r.allowed - r.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := r.ReadCloser.Read(p)
	r.read += int64(n)
	return n, err
}
