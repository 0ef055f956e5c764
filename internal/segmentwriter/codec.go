package segmentwriter

import (
	"fmt"

	"google.golang.org/grpc/mem"
)

// vtCodec marshals with the api module's vtproto methods. It is forced on
// every call, so the process-wide "proto" codec (which any dependency may
// replace in init) never serializes our requests.
type vtCodec struct{}

type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
	UnmarshalVT([]byte) error
}

func (vtCodec) Name() string { return "proto" }

func (vtCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(vtMessage)
	if !ok {
		return nil, fmt.Errorf("segmentwriter codec: %T is not a vtproto message", v)
	}
	// A buffer of our own rather than one from gRPC's pool: requests carry
	// whole profiles (up to MBs), and under overload the pool kept hundreds
	// of MB of freed request buffers alive that no budget accounts for. The
	// distributor charges this copy to its in-flight budget while it sends;
	// once gRPC has written the frame the buffer is garbage.
	buf := make([]byte, m.SizeVT())
	if _, err := m.MarshalToSizedBufferVT(buf); err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
}

func (vtCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(vtMessage)
	if !ok {
		return fmt.Errorf("segmentwriter codec: %T is not a vtproto message", v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return m.UnmarshalVT(buf.ReadOnlyData())
}
