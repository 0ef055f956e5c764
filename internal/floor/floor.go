// Package floor is the least work any distributor does per profile: inflate
// the gzipped pprof, decode it and encode it once. Its throughput on the
// corpus is the yardstick the distributor's own cost is reported against.
package floor

import (
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"syscall"
	"time"

	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	"github.com/klauspost/compress/gzip"
)

// Pass inflates, decodes and re-encodes profiles, keeping its inflate state
// and buffers between calls as a lean distributor would. Not safe for
// concurrent use.
type Pass struct {
	zr  *gzip.Reader
	in  bytes.Buffer
	out []byte
}

// Run processes one gzipped profile and returns the encoded output, valid
// until the next call.
func (p *Pass) Run(gz []byte) ([]byte, error) {
	var err error
	if p.zr == nil {
		p.zr, err = gzip.NewReader(bytes.NewReader(gz))
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
	return p.codec(p.in.Bytes())
}

func (p *Pass) codec(raw []byte) ([]byte, error) {
	var m googlev1.Profile
	if err := m.UnmarshalVT(raw); err != nil {
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

// StdlibPass is Pass with compress/gzip, the naive reference.
type StdlibPass struct {
	zr  *stdgzip.Reader
	in  bytes.Buffer
	enc Pass
}

// Run processes one gzipped profile with the standard library's inflate.
func (p *StdlibPass) Run(gz []byte) ([]byte, error) {
	var err error
	if p.zr == nil {
		p.zr, err = stdgzip.NewReader(bytes.NewReader(gz))
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
	return p.enc.codec(p.in.Bytes())
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

// CPUTime is the CPU time (user + system) this process has used, all
// goroutines and the garbage collector included: benchmarks divide bytes by
// it to get MB per CPU-second, the unit the distributor's load run reports.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
