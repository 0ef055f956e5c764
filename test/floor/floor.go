// Package floor is the least work any distributor does per profile: inflate
// the gzipped pprof, decode it and encode it once. Its throughput on the
// corpus is the yardstick the distributor's own cost is reported against.
package floor

import (
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"io"

	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	"github.com/klauspost/compress/gzip"
)

// gzipReader is what both gzip packages offer: a reader that can be reset
// onto the next stream, so inflate state is reused between profiles.
type gzipReader interface {
	io.Reader
	Reset(io.Reader) error
}

// pass is the floor's per-profile work over either gzip implementation.
type pass struct {
	open func(io.Reader) (gzipReader, error)
	zr   gzipReader
	in   bytes.Buffer
	out  []byte
}

// Pass inflates (klauspost), decodes and re-encodes profiles, keeping its
// inflate state and buffers between calls as a lean distributor would. Not
// safe for concurrent use.
type Pass struct{ p pass }

// Run processes one gzipped profile and returns the encoded output, valid
// until the next call.
func (p *Pass) Run(gz []byte) ([]byte, error) {
	if p.p.open == nil {
		p.p.open = func(r io.Reader) (gzipReader, error) { return gzip.NewReader(r) }
	}
	return p.p.run(gz)
}

// StdlibPass is Pass with compress/gzip, the naive reference.
type StdlibPass struct{ p pass }

// Run processes one gzipped profile with the standard library's inflate.
func (p *StdlibPass) Run(gz []byte) ([]byte, error) {
	if p.p.open == nil {
		p.p.open = func(r io.Reader) (gzipReader, error) { return stdgzip.NewReader(r) }
	}
	return p.p.run(gz)
}

func (p *pass) run(gz []byte) ([]byte, error) {
	var err error
	if p.zr == nil {
		p.zr, err = p.open(bytes.NewReader(gz))
	} else {
		err = p.zr.Reset(bytes.NewReader(gz))
	}
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	p.in.Reset()
	if _, err := p.in.ReadFrom(p.zr); err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	var m googlev1.Profile
	if err := m.UnmarshalVT(p.in.Bytes()); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	n := m.SizeVT()
	if cap(p.out) < n {
		p.out = make([]byte, n)
	}
	p.out = p.out[:n]
	if _, err := m.MarshalToSizedBufferVT(p.out); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return p.out, nil
}

// Inflate decompresses gz into buf with klauspost (stdlib when std is true).
func Inflate(buf *bytes.Buffer, gz []byte, std bool) error {
	var r io.Reader
	var err error
	if std {
		r, err = stdgzip.NewReader(bytes.NewReader(gz))
	} else {
		r, err = gzip.NewReader(bytes.NewReader(gz))
	}
	if err != nil {
		return err
	}
	buf.Reset()
	_, err = buf.ReadFrom(r)
	return err
}
