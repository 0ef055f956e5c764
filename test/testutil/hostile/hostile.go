// Package hostile builds the small requests that used to take far more
// memory than their size: pprof that decodes to many times its bytes and
// gzip that inflates a thousandfold. Tests of the memory bounds use them.
package hostile

import (
	"bytes"
	"sync"

	"github.com/klauspost/compress/gzip"
	"google.golang.org/protobuf/encoding/protowire"
)

func field(b []byte, num protowire.Number, body []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(body)))
	return append(b, body...)
}

func varint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// header is a profile's sample type (cpu/nanoseconds), one function (main)
// and its string table.
func header() []byte {
	b := field(nil, 1, varint(varint(nil, 1, 1), 2, 2))
	for _, s := range []string{"", "cpu", "nanoseconds", "main"} {
		b = field(b, 6, []byte(s))
	}
	return field(b, 5, varint(varint(nil, 1, 1), 2, 3))
}

// EmptySamples is uncompressed pprof with n samples that are empty: two
// bytes each on the wire, more than a hundred decoded. 2,000,000 of them
// are 4 MB, which gzip takes to 4 KB.
func EmptySamples(n int) []byte {
	b := header()
	for range n {
		b = append(b, 0x12, 0x00)
	}
	return b
}

// Locations is valid uncompressed pprof of about size bytes: one sample on
// location 1 and as many further locations as fit, with dense ids and one
// line each. It decodes to about twenty times its size; nothing in it
// passes a limit.
func Locations(size int) []byte {
	b := header()
	b = field(b, 2, field(field(nil, 1, []byte{1}), 2, []byte{1}))
	line := field(nil, 4, varint(nil, 1, 1))
	for id := uint64(1); len(b) < size; id++ {
		b = field(b, 4, append(varint(nil, 1, id), line...))
	}
	return b
}

// Gzip compresses b.
func Gzip(b []byte) []byte {
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return out.Bytes()
}

const zeroMember = 16 << 20

var zeros = sync.OnceValue(func() []byte { return Gzip(make([]byte, zeroMember)) })

// GzipZeros is gzip data that inflates to n zero bytes (n rounded up to
// 16 MiB): gzip members of 16 MiB each, about 1 KB of gzip per MB, so
// 1 GiB costs 1 MB to send. gzip readers read concatenated members as one
// stream.
func GzipZeros(n int64) []byte {
	m := zeros()
	var b []byte
	for i := int64(0); i < n; i += zeroMember {
		b = append(b, m...)
	}
	return b
}
