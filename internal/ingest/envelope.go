package ingest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"connectrpc.com/connect"
	"github.com/klauspost/compress/gzip"

	"github.com/pyrodist/pyrodist/internal/inflight"
)

// A push.v1 request whose envelope is gzip (Connect `Content-Encoding:
// gzip`, gRPC and gRPC-Web `grpc-encoding: gzip`) is inflated here, before
// connect sees it. connect inflates a message whole into a buffer before it
// compares it with the read limit, then inflates the rest to learn its size,
// and charges nothing: a 1 MB body of gzip made it hold 1 GB. Here the
// inflated bytes are charged to the in-flight budget before they are
// produced, inflating stops at the read limit, and connect reads the
// message as if it had been sent uncompressed (its read limit still
// applies). The answers are connect's: resource_exhausted past the limit or
// the budget, invalid_argument for gzip that does not inflate.

const (
	// inflateChunk is how many inflated bytes are reserved at a time.
	inflateChunk = 256 << 10
	// inflatedCopies is how many times an inflated Connect body is charged:
	// connect reads it into a buffer that grows by doubling (up to twice
	// the message) and the codec copies every profile out of it. A gRPC
	// message is also held here, whole, until connect has read it: one
	// more copy.
	inflatedCopies = 3
)

// gzipState is a gzip reader and the buffered reader it reads through
// (without one it allocates its own at every Reset), pooled together.
type gzipState struct {
	zr gzip.Reader
	br *bufio.Reader
}

var gzipStates = sync.Pool{New: func() any { return &gzipState{br: bufio.NewReaderSize(nil, 16<<10)} }}

// inflateEnvelope inflates the gzip envelope of push.v1 requests (see
// above) within readMax bytes per message (0: no limit).
func (s *Server) inflateEnvelope(next http.Handler, readMax int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var copies int64
		switch {
		case isEnvelope(r.Header.Get("Content-Type")):
			if r.Header.Get("Grpc-Encoding") != "gzip" {
				next.ServeHTTP(w, r)
				return
			}
			copies = inflatedCopies + 1
		case r.Header.Get("Content-Encoding") == "gzip":
			copies = inflatedCopies
		default:
			next.ServeHTTP(w, r)
			return
		}
		in := &inflater{src: r.Body, ch: s.opts.Budget.Charge(), copies: copies, max: readMax}
		defer in.release()
		if copies > inflatedCopies {
			r.Body = &envelopes{in: in}
		} else {
			// Connect's unary body is the message itself.
			r.Header.Del("Content-Encoding")
			r.Body = &gzipBody{in: in}
		}
		r.ContentLength = -1
		next.ServeHTTP(w, r)
	})
}

// isEnvelope reports whether a content type is gRPC's or gRPC-Web's, whose
// bodies are enveloped messages (gRPC-Web's base64 text form is not served).
func isEnvelope(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	for _, p := range []string{"application/grpc", "application/grpc-web"} {
		if mt == p || strings.HasPrefix(mt, p+"+") {
			return true
		}
	}
	return false
}

// inflater is one request's inflating: its body, the gzip reader and the
// charge for what it inflated, released when the request ends.
type inflater struct {
	src    io.ReadCloser
	ch     *inflight.Charge // nil: nothing charged
	copies int64
	max    int64 // per message; 0: none
	gz     *gzipState
	// produced is the bytes inflated so far in the request, paid those
	// reserved for (copies times each).
	produced, paid int64
}

// open starts inflating r. io.EOF means r is empty.
func (in *inflater) open(r io.Reader) error {
	if in.gz == nil {
		in.gz = gzipStates.Get().(*gzipState)
	}
	in.gz.br.Reset(r)
	err := in.gz.zr.Reset(in.gz.br)
	if err == nil || err == io.EOF {
		return err
	}
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("get decompressor: %w", err))
}

// room reserves another chunk when everything reserved is inflated and
// returns how many bytes may be inflated now (at least 1).
func (in *inflater) room() (int64, error) {
	if in.ch == nil {
		return inflateChunk, nil
	}
	if in.produced == in.paid {
		if err := in.ch.Reserve(int(in.copies * inflateChunk)); err != nil {
			return 0, connect.NewError(connect.CodeResourceExhausted, err)
		}
		in.paid += inflateChunk
	}
	return in.paid - in.produced, nil
}

// read inflates into p the next bytes of a message of which done bytes
// are inflated, within the read limit and what is reserved.
func (in *inflater) read(p []byte, done int64) (int, error) {
	if in.max > 0 && done >= in.max {
		// At the limit: one more byte makes the message too large.
		var one [1]byte
		if n, err := io.ReadFull(&in.gz.zr, one[:]); n == 0 {
			return 0, in.inflateErr(err)
		}
		return 0, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("message is larger than configured max %d", in.max))
	}
	room, err := in.room()
	if err != nil {
		return 0, err
	}
	want := min(int64(len(p)), room)
	if in.max > 0 {
		want = min(want, in.max-done)
	}
	n, err := in.gz.zr.Read(p[:want])
	in.produced += int64(n)
	return n, in.inflateErr(err)
}

// inflateErr is connect's answer to gzip that does not inflate.
func (in *inflater) inflateErr(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("decompress: %w", err))
}

func (in *inflater) release() {
	in.ch.Release()
	if in.gz != nil {
		// No Close: it has nothing to free, and on a reader whose first
		// Reset failed it dereferences nil. Reset makes it new again.
		in.gz.br.Reset(nil) // the pool must not keep the request's body
		gzipStates.Put(in.gz)
		in.gz = nil
	}
}

// gzipBody is a Connect unary body, inflated as connect reads it.
type gzipBody struct {
	in     *inflater
	opened bool
	done   int64
	err    error
}

func (b *gzipBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if !b.opened {
		b.opened = true
		// An empty body is an empty message, as connect reads it.
		if b.err = b.in.open(b.in.src); b.err != nil {
			return 0, b.err
		}
	}
	n, err := b.in.read(p, b.done)
	b.done += int64(n)
	b.err = err
	return n, err
}

func (b *gzipBody) Close() error { return b.in.src.Close() }

// envelopes is a gRPC or gRPC-Web body whose gzip messages are inflated,
// each whole before connect reads its envelope, which then carries the
// inflated length. Other messages go through unchanged, and so do empty
// ones (connect reads them as empty messages) and gzip ones whose size
// already passes the limit (connect refuses them from their envelope
// without inflating them).
type envelopes struct {
	in   *inflater
	out  [][]byte  // what to hand out next, in order
	pass io.Reader // then the rest of a message that goes through as it is
	err  error     // then this
}

func (e *envelopes) Read(p []byte) (int, error) {
	for {
		if len(e.out) > 0 {
			n := copy(p, e.out[0])
			if e.out[0] = e.out[0][n:]; len(e.out[0]) == 0 {
				e.out[0] = nil // inflated memory goes as connect copies it
				e.out = e.out[1:]
			}
			if n == 0 && len(p) > 0 {
				continue
			}
			return n, nil
		}
		if e.pass != nil {
			n, err := e.pass.Read(p)
			if err == io.EOF {
				e.pass, err = nil, nil
			}
			if n > 0 || err != nil {
				return n, err
			}
			continue
		}
		if e.err != nil {
			return 0, e.err
		}
		e.next()
	}
}

func (e *envelopes) Close() error { return e.in.src.Close() }

// next reads the next envelope and queues it, inflated when it is gzip.
func (e *envelopes) next() {
	var hdr [5]byte
	n, err := io.ReadFull(e.in.src, hdr[:])
	if err != nil {
		// The end, or a broken envelope: hand on what came and let connect
		// answer it.
		e.out = append(e.out, hdr[:n])
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		e.err = err
		return
	}
	flags, size := hdr[0], int64(binary.BigEndian.Uint32(hdr[1:]))
	if flags&1 == 0 || size == 0 || (e.in.max > 0 && size > e.in.max) {
		e.out = append(e.out, hdr[:])
		e.pass = io.LimitReader(e.in.src, size)
		return
	}
	lr := &io.LimitedReader{R: e.in.src, N: size}
	msg, total, err := e.inflate(lr)
	if err == nil && lr.N > 0 {
		// The body ended inside the message.
		err = io.ErrUnexpectedEOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) && lr.N > 0 {
		err = connect.NewError(connect.CodeInternal, fmt.Errorf(
			"protocol error: promised %d bytes in enveloped message, got %d bytes: %w", size, size-lr.N, io.ErrUnexpectedEOF))
	}
	if err != nil {
		e.err = err
		return
	}
	hdr[0] = flags &^ 1
	binary.BigEndian.PutUint32(hdr[1:], uint32(total))
	e.out = append(append(e.out, hdr[:]), msg...)
}

// inflate inflates one message whole, in chunks allocated only once they
// are reserved.
func (e *envelopes) inflate(r io.Reader) (msg [][]byte, total int64, err error) {
	in := e.in
	if err := in.open(r); err != nil {
		if err == io.EOF { // the body ended before the message
			err = io.ErrUnexpectedEOF
		}
		return nil, 0, err
	}
	size := int64(16 << 10)
	for {
		if in.max > 0 && total >= in.max {
			// Nothing more may come: read says whether something does.
			var probe [1]byte
			if _, err := in.read(probe[:], total); err != io.EOF {
				return nil, 0, err
			}
			return msg, total, nil
		}
		room, err := in.room()
		if err != nil {
			return nil, 0, err
		}
		buf := make([]byte, min(size, room))
		size = min(2*size, inflateChunk)
		n := 0
		for n < len(buf) {
			k, err := in.read(buf[n:], total)
			n += k
			total += int64(k)
			if err == io.EOF {
				if n > 0 {
					msg = append(msg, buf[:n])
				}
				return msg, total, nil
			}
			if err != nil {
				return nil, 0, err
			}
		}
		msg = append(msg, buf)
	}
}
