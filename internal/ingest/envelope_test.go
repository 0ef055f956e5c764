package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"

	"github.com/pyrodist/pyrodist/internal/inflight"
	"github.com/pyrodist/pyrodist/test/testutil/hostile"
)

// waitBudgetIdle waits until nothing holds the budget: the client may see
// the answer before the server's deferred release has run.
func waitBudgetIdle(t *testing.T, b *inflight.Budget) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.InUse() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the budget holds %d bytes after the requests", b.InUse())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// bombCall sends body, whose whole envelope is gzip, as protocol proto and
// returns the answer's code and message.
func bombCall(t *testing.T, url, proto string, bomb []byte) (connect.Code, string) {
	t.Helper()
	// A connection of its own: the server closes one whose body it did
	// not read, and a POST is not retried on another.
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	ct, body := "application/proto", bomb
	if proto != "connect" {
		ct, body = "application/"+proto+"+proto", make([]byte, 5, 5+len(bomb))
		body[0] = 1 // compressed
		binary.BigEndian.PutUint32(body[1:], uint32(len(bomb)))
		body = append(body, bomb...)
		if proto == "grpc" {
			var p http.Protocols
			p.SetUnencryptedHTTP2(true)
			client.Transport.(*http.Transport).Protocols = &p
		}
	}
	req, err := http.NewRequest(http.MethodPost, url+pushv1connect.PusherServicePushProcedure, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	if proto == "connect" {
		req.Header.Set("Content-Encoding", "gzip")
	} else {
		req.Header.Set("Grpc-Encoding", "gzip")
		req.Header.Set("Te", "trailers")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	switch proto {
	case "connect":
		var eb struct{ Code, Message string }
		if err := json.Unmarshal(out, &eb); err != nil {
			t.Fatalf("status %d, body %q", resp.StatusCode, out)
		}
		var code connect.Code
		if err := code.UnmarshalText([]byte(eb.Code)); err != nil {
			t.Fatalf("status %d, code %q", resp.StatusCode, eb.Code)
		}
		if code == connect.CodeResourceExhausted && resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("resource_exhausted with HTTP %d", resp.StatusCode)
		}
		return code, eb.Message
	case "grpc":
		status, msg := resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
		if status == "" { // trailers-only
			status, msg = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
		}
		return grpcCode(status), msg
	default: // grpc-web: trailers-only in the headers, or the body's last message
		if status := resp.Header.Get("Grpc-Status"); status != "" {
			return grpcCode(status), resp.Header.Get("Grpc-Message")
		}
		i := bytes.LastIndex(out, []byte("grpc-status: "))
		if i < 0 {
			t.Fatalf("no grpc-status in %q", out)
		}
		s := string(out[i+len("grpc-status: "):])
		status, rest, _ := strings.Cut(s, "\r\n")
		_, msg, _ := strings.Cut(rest, "grpc-message: ")
		msg, _, _ = strings.Cut(msg, "\r\n")
		return grpcCode(status), msg
	}
}

// grpcCode reads a grpc-status value.
func grpcCode(status string) connect.Code {
	n, err := strconv.Atoi(strings.TrimSpace(status))
	if err != nil {
		return connect.CodeUnknown
	}
	return connect.Code(n)
}

// A 1 MB request whose whole envelope is gzip inflates to 1 GiB. Inflating
// it is charged to the in-flight budget as it goes and stops at the read
// limit: the client gets resource_exhausted over Connect, gRPC (h2c) and
// gRPC-Web, from the budget or the limit, whichever comes first; nothing
// reaches the pipeline, the server allocates a fraction of the bomb, and
// the budget is released.
func TestGzipEnvelopeBomb(t *testing.T) {
	bomb := hostile.GzipZeros(1 << 30)
	for _, tc := range []struct {
		name      string
		bodyLimit int64
		budget    int64
		want      string
	}{
		// The default read limit (256 MiB) is far above the budget: the
		// budget stops the inflating.
		{name: "budget", bodyLimit: 256 << 20, budget: 64 << 20, want: "holding its limit of 64 MiB"},
		// A read limit below the budget stops it there.
		{name: "read limit", bodyLimit: 8 << 20, budget: 1 << 30, want: "larger than configured max 8388608"},
	} {
		for _, proto := range []string{"connect", "grpc", "grpc-web"} {
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				b := inflight.New(tc.budget)
				ts := startServer(t, func(o *Options) {
					o.Budget = b
					o.Limits = fixedLimits{body: tc.bodyLimit, profile: 4 << 20}
				})
				runtime.GC()
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				code, msg := bombCall(t, ts.url, proto, bomb)
				runtime.ReadMemStats(&m1)
				alloc := m1.TotalAlloc - m0.TotalAlloc
				t.Logf("%d bytes of gzip: %d MB allocated; %v %q", len(bomb), alloc>>20, code, msg)
				// Less than a quarter of what inflating it whole allocated
				// (connect's buffer doubling up to the 256 MiB read limit);
				// about the budget itself, twice that with -race.
				if alloc > 256<<20 {
					t.Errorf("the server allocated %d MB for a 1 GiB bomb", alloc>>20)
				}
				if code != connect.CodeResourceExhausted || !strings.Contains(msg, tc.want) {
					t.Errorf("answer %v %q, want resource_exhausted %q", code, msg, tc.want)
				}
				if ts.pusher.count() != 0 {
					t.Fatal("the bomb reached the pipeline")
				}
				waitBudgetIdle(t, b)
			})
		}
	}
}

// clientProtocol is a Connect client's protocol, for tests that try each.
type clientProtocol struct {
	name   string
	client *http.Client
	opts   []connect.ClientOption
}

// clientProtocols returns the protocols push.v1 serves: Connect, gRPC
// (over h2c) and gRPC-Web, in that order.
func clientProtocols(t *testing.T) []clientProtocol {
	return []clientProtocol{
		{"connect", http.DefaultClient, nil},
		{"grpc", h2cClient(t), []connect.ClientOption{connect.WithGRPC()}},
		{"grpc-web", http.DefaultClient, []connect.ClientOption{connect.WithGRPCWeb()}},
	}
}

// gzip envelopes that are not bombs pass, charged and released: a budget
// that holds the compressed body but not the inflated message refuses it,
// one with room passes it unchanged. gzip that does not inflate gets
// connect's invalid_argument.
func TestGzipEnvelopeCharged(t *testing.T) {
	protocols := clientProtocols(t)
	raw := make([]byte, 2<<20) // a message of 2 MiB that gzip takes to a few KB
	for _, budget := range []struct {
		max int64
		ok  bool
	}{{4 << 20, false}, {64 << 20, true}} {
		b := inflight.New(budget.max)
		ts := startServer(t, func(o *Options) { o.Budget = b })
		for _, proto := range protocols {
			c := pushv1connect.NewPusherServiceClient(proto.client, ts.url, append(proto.opts, connect.WithSendGzip())...)
			_, err := c.Push(context.Background(), connect.NewRequest(pushRequest(raw)))
			switch {
			case budget.ok && err != nil:
				t.Fatalf("%s, budget %d: %v", proto.name, budget.max, err)
			case budget.ok:
				if _, got := ts.pusher.last(t); !bytes.Equal(got.Series[0].Samples[0].RawProfile, raw) {
					t.Fatalf("%s: the profile changed on the way", proto.name)
				}
			case connect.CodeOf(err) != connect.CodeResourceExhausted:
				t.Fatalf("%s, budget %d: %v, want resource_exhausted", proto.name, budget.max, err)
			}
		}
		if !budget.ok && ts.pusher.count() != 0 {
			t.Fatal("a refused message reached the pipeline")
		}
		for _, proto := range []string{"connect", "grpc"} {
			code, msg := bombCall(t, ts.url, proto, []byte("not gzip at all"))
			if code != connect.CodeInvalidArgument || !strings.Contains(msg, "gzip") {
				t.Fatalf("%s: bad gzip answered %v %q, want invalid_argument", proto, code, msg)
			}
		}
		waitBudgetIdle(t, b)
	}
}

// A gzip reader whose first Reset failed goes back to the pool without
// panicking (its Close would dereference nil).
func TestInflaterReleaseAfterBadHeader(t *testing.T) {
	in := &inflater{src: io.NopCloser(strings.NewReader("not gzip")), ch: inflight.New(1 << 20).Charge(), copies: inflatedCopies}
	in.gz = &gzipState{br: bufio.NewReader(nil)}
	if err := in.open(in.src); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("open: %v, want invalid_argument", err)
	}
	in.release()
}
