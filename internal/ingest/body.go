package ingest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"connectrpc.com/connect"

	"github.com/pyrodist/pyrodist/internal/inflight"
)

// bodyStep bounds what one read of a request body may take, so a body is
// charged as its bytes arrive: a slow or stalled body holds the budget for
// what it sent, not for what it declared.
const bodyStep = 16 << 10

// pushBodyCopies is how many times its size a push.v1 body is charged:
// connect reads it into a pooled bytes.Buffer that grows by doubling (up to
// twice the body), and the codec's UnmarshalVT copies every profile out of
// it. Charging the body once left those buffers, 72 MB of a 264 MB heap
// under overload, outside the budget.
const pushBodyCopies = 3

// ingestBodyCopies: /ingest reads its body into a buffer that grows by
// doubling: while it grows, the old buffer and the new one of twice its size
// are both live. What is made of the body is charged by the conversion.
const ingestBodyCopies = 3

// errSlowBody is what reading a body that arrives too slowly returns.
type errSlowBody struct{ min int64 }

func (e errSlowBody) Error() string {
	return fmt.Sprintf("request body arrived slower than %d bytes/s; the distributor dropped it", e.min)
}

// body is a request body read through the in-flight budget and at a
// minimum rate. A body holds memory while it arrives, so a client that
// declares a large body and sends it byte by byte would hold the budget (or
// a connection and a buffer) for as long as it likes: after a grace period
// the body must have arrived at minRate on average, else the read fails.
type body struct {
	charged inflight.Reader
	closer  io.Closer
	rc      *http.ResponseController
	start   time.Time
	// end is the latest deadline: the server's whole-request read timeout.
	end     time.Time
	minRate int64
	grace   time.Duration
	read    int64
	// asConnect turns the errors into *connect.Error, which connect passes
	// to the client unchanged (push.v1).
	asConnect bool
	// refused: a read failed for the budget; the handler answers 429.
	refused bool
}

func (s *Server) newBody(w http.ResponseWriter, r *http.Request, ch *inflight.Charge, copies int, asConnect bool) *body {
	now := time.Now()
	b := &body{
		charged:   inflight.Reader{R: r.Body, C: ch, Step: bodyStep, Copies: copies},
		closer:    r.Body,
		start:     now,
		minRate:   s.opts.MinBodyRate,
		grace:     s.opts.BodyRateGrace,
		asConnect: asConnect,
	}
	if b.minRate > 0 {
		b.rc = http.NewResponseController(w)
		if s.opts.ReadTimeout > 0 {
			b.end = now.Add(s.opts.ReadTimeout)
		}
	}
	return b
}

func (b *body) Read(p []byte) (int, error) {
	if b.rc != nil {
		// The next byte is due when the body's average rate would fall
		// under minRate, the grace period aside.
		due := b.start.Add(b.grace + time.Duration(float64(b.read+1)/float64(b.minRate)*float64(time.Second)))
		if !b.end.IsZero() && due.After(b.end) {
			due = b.end
		}
		if err := b.rc.SetReadDeadline(due); err != nil {
			b.rc = nil // not supported here (a test recorder): no rate check
		}
	}
	n, err := b.charged.Read(p)
	b.read += int64(n)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		if b.rc != nil {
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	case errors.Is(err, os.ErrDeadlineExceeded) && b.rc != nil:
		err = errSlowBody{b.minRate}
		if b.asConnect {
			err = connect.NewError(connect.CodeDeadlineExceeded, err)
		}
	case inflight.IsExhausted(err):
		b.refused = true
		if b.asConnect {
			err = connect.NewError(connect.CodeResourceExhausted, err)
		}
	}
	return n, err
}

// Close drains a refused body first: connect closes the body right after it
// wrote its answer, and net/http would then cut the connection under a
// client that is still sending.
func (b *body) Close() error {
	b.drain()
	return b.closer.Close()
}

// refusedDrain bounds what is read and thrown away of a body refused for
// the budget, so that its client, still sending, reads the 429 instead of a
// connection reset (HTTP/1.1 servers close a connection whose body was left
// unread). Discarding holds no memory; past this the connection is closed.
const refusedDrain = 4 << 20

// drain reads the rest of a body refused for the budget, uncharged and at
// the minimum rate, up to refusedDrain bytes.
func (b *body) drain() {
	if !b.refused {
		return
	}
	b.refused = false
	b.charged.C = nil
	_, _ = io.CopyN(io.Discard, b, refusedDrain)
}

// pushBody reads push.v1 bodies through the budget and at the minimum rate.
// A body that does not fit is refused with resource_exhausted in the shape
// of the request's protocol (429 for Connect, grpc-status 8 for gRPC). The
// charge is released when the handler returns; the pipeline charges its own
// memory on top.
func (s *Server) pushBody(next http.Handler) http.Handler {
	if s.opts.Budget == nil && s.opts.MinBodyRate <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch := s.opts.Budget.Charge()
		defer ch.Release()
		b := s.newBody(w, r, ch, pushBodyCopies, true)
		r.Body = b
		next.ServeHTTP(w, r)
		b.drain()
	})
}
