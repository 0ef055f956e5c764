// Package profile is the pprof hot path: inflate, decode, validate,
// normalize, split by service_name and encode, with pooled buffers and one
// inflate, one decode and at most one encode per profile.
package profile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// ErrTooLarge is returned when a profile inflates past the size limit.
type ErrTooLarge struct{ Limit int }

func (e *ErrTooLarge) Error() string {
	return fmt.Sprintf("uncompressed profile payload size exceeds limit of %s", SIBytes(uint64(e.Limit)))
}

// Reserver charges inflated bytes against a budget; it returns an error when
// the budget is exhausted.
type Reserver func(n int) error

const (
	chunkSize = 32 << 10
	// maxPooledBuffer caps what buffers go back to the pool, so one huge
	// profile does not pin memory forever.
	maxPooledBuffer = 8 << 20
)

var (
	gzipPool sync.Pool // *gzip.Reader
	bufPool  = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
)

// GetBuffer returns an empty pooled buffer.
func GetBuffer() *[]byte {
	b := bufPool.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

// PutBuffer returns a buffer to the pool unless it grew too large.
func PutBuffer(b *[]byte) {
	if b == nil || cap(*b) > maxPooledBuffer {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// IsGzip reports whether b starts with the gzip magic number.
func IsGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// Inflate returns the uncompressed pprof of raw: raw itself when it is not
// gzipped, otherwise the inflated bytes in *buf (grown as needed). It never
// holds more than limit+chunk bytes (limit 0: unlimited) and charges every
// byte of buffer growth to reserve before it is allocated, so a
// decompression bomb costs at most the limit.
func Inflate(raw []byte, limit int, buf *[]byte, reserve Reserver) ([]byte, error) {
	if !IsGzip(raw) {
		if limit > 0 && len(raw) > limit {
			return nil, &ErrTooLarge{Limit: limit}
		}
		if reserve != nil {
			if err := reserve(len(raw)); err != nil {
				return nil, err
			}
		}
		return raw, nil
	}
	zr, _ := gzipPool.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(raw))
	} else {
		err = zr.Reset(bytes.NewReader(raw))
	}
	if err != nil {
		if zr != nil {
			gzipPool.Put(zr)
		}
		return nil, fmt.Errorf("gzip reset: %w", err)
	}
	defer gzipPool.Put(zr)
	zr.Multistream(true)

	out := (*buf)[:0]
	// The gzip trailer holds the size mod 2^32: a hint only (it is client
	// data), clamped to the limit.
	want := chunkSize
	if len(raw) >= 18 {
		if hint := int(binary.LittleEndian.Uint32(raw[len(raw)-4:])); hint > 0 {
			want = hint + 1 // room to see EOF without growing
		}
	}
	// Deflate cannot expand more than ~1032:1: a larger claim is a lie.
	if maxRatio := 1032*len(raw) + chunkSize; want > maxRatio {
		want = maxRatio
	}
	if limit > 0 && want > limit+1 {
		want = limit + 1
	}
	charged := 0
	grow := func(n int) error {
		if cap(out)-len(out) >= n {
			return nil
		}
		newCap := max(2*cap(out), len(out)+n)
		if limit > 0 && newCap > limit+chunkSize {
			newCap = max(limit+chunkSize, len(out)+n)
		}
		if reserve != nil && newCap > charged {
			if err := reserve(newCap - charged); err != nil {
				return err
			}
			charged = newCap
		}
		nb := make([]byte, len(out), newCap)
		copy(nb, out)
		out = nb
		return nil
	}
	if cap(out) > 0 && reserve != nil {
		// A pooled buffer is memory we hold: charge its capacity.
		if err := reserve(cap(out)); err != nil {
			return nil, err
		}
		charged = cap(out)
	}
	if err := grow(want); err != nil {
		return nil, err
	}
	for {
		if len(out) == cap(out) {
			if err := grow(chunkSize); err != nil {
				*buf = out
				return nil, err
			}
		}
		n, rerr := zr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if limit > 0 && len(out) > limit {
			*buf = out
			return nil, &ErrTooLarge{Limit: limit}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			*buf = out
			return nil, fmt.Errorf("gzip read: %w", rerr)
		}
	}
	*buf = out
	return out, nil
}

// SIBytes formats a byte count in SI units the way Pyroscope's messages do
// (e.g. 4194304 -> "4.2 MB").
func SIBytes(n uint64) string {
	return humanBytes(n, 1000, []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"})
}

// IECBytes formats a byte count in IEC units (e.g. 2097152 -> "2.0 MiB").
func IECBytes(n uint64) string {
	return humanBytes(n, 1024, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"})
}

func humanBytes(n uint64, base float64, units []string) string {
	if n < 10 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	e := 0
	for v >= base && e < len(units)-1 {
		v /= base
		e++
	}
	v = float64(int64(v*10+0.5)) / 10
	if v >= 10 {
		return fmt.Sprintf("%.0f %s", v, units[e])
	}
	return fmt.Sprintf("%.1f %s", v, units[e])
}
