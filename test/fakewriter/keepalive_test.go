package fakewriter_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// HTTP/2 frame types and flags the test speaks (RFC 9113 §6).
const (
	frameSettings = 0x4
	framePing     = 0x6
	frameGoAway   = 0x7
	flagAck       = 0x1
)

// h2Conn is a bare HTTP/2 client connection: enough to send PINGs with no
// stream open and see what the server answers, which a gRPC client does
// not let a test do at will (grpc-go pings at most every 10 s).
type h2Conn struct {
	c    net.Conn
	mu   sync.Mutex // serializes frame writes
	acks chan struct{}
	away chan string // the GOAWAY's error code and debug data
}

func dialH2(t *testing.T, addr string) *h2Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := &h2Conn{c: c, acks: make(chan struct{}, 16), away: make(chan string, 1)}
	if _, err := io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := h.write(frameSettings, 0, nil); err != nil {
		t.Fatal(err)
	}
	go h.read()
	return h
}

func (h *h2Conn) write(typ, flags byte, payload []byte) error {
	var hdr [9]byte
	hdr[0], hdr[1], hdr[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	hdr[3], hdr[4] = typ, flags
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.c.Write(append(hdr[:], payload...))
	return err
}

func (h *h2Conn) read() {
	var hdr [9]byte
	for {
		if _, err := io.ReadFull(h.c, hdr[:]); err != nil {
			return
		}
		payload := make([]byte, int(hdr[0])<<16|int(hdr[1])<<8|int(hdr[2]))
		if _, err := io.ReadFull(h.c, payload); err != nil {
			return
		}
		switch typ, flags := hdr[3], hdr[4]; {
		case typ == frameSettings && flags&flagAck == 0:
			_ = h.write(frameSettings, flagAck, nil)
		case typ == framePing && flags&flagAck != 0:
			h.acks <- struct{}{}
		case typ == frameGoAway && len(payload) >= 8:
			h.away <- fmt.Sprintf("error code %#x, %q", binary.BigEndian.Uint32(payload[4:8]), payload[8:])
			return
		}
	}
}

// ping sends a PING and waits for its ACK; it fails on a GOAWAY.
func (h *h2Conn) ping(t *testing.T, n int) {
	t.Helper()
	var data [8]byte
	binary.BigEndian.PutUint64(data[:], uint64(n))
	if err := h.write(framePing, 0, data[:]); err != nil {
		t.Fatalf("ping %d: %v", n, err)
	}
	select {
	case <-h.acks:
	case msg := <-h.away:
		t.Fatalf("ping %d: the writer sent GOAWAY (%s)", n, msg)
	case <-time.After(5 * time.Second):
		t.Fatalf("ping %d: no ack", n)
	}
}

// A client may ping the writer's gRPC server, with no call in flight, as
// often as Pyroscope's segment-writer allows (every second). Under grpc-go's
// default policy such a ping within 2 hours of the previous one is a strike,
// and the third strike gets GOAWAY ENHANCE_YOUR_CALM "too_many_pings" and a
// closed connection.
func TestKeepalivePingsAreAccepted(t *testing.T) {
	w, _, _ := newWriter(t)
	h := dialH2(t, w.GRPCAddr())
	for i := range 5 {
		if i > 0 {
			time.Sleep(1250 * time.Millisecond)
		}
		h.ping(t, i)
	}
	select {
	case msg := <-h.away:
		t.Fatalf("the writer sent GOAWAY (%s)", msg)
	case <-time.After(200 * time.Millisecond):
	}
}
