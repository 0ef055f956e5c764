package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/go-kit/log"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/test/fakewriter/fakewritertest"
	"github.com/pyrodist/pyrodist/test/testutil/certs"
)

// handshakes records the serial of every server certificate a client saw.
type handshakes struct {
	mu      sync.Mutex
	serials []string
}

func (h *handshakes) add(cs tls.ConnectionState) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.serials = append(h.serials, cs.PeerCertificates[0].SerialNumber.Text(16))
	return nil
}

func (h *handshakes) seen(serial string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.serials {
		if s == serial {
			return true
		}
	}
	return false
}

func (h *handshakes) last(n int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.serials[max(0, len(h.serials)-n):]...)
}

// TestTLSOnEveryHop runs the distributor with TLS on each of its hops,
// each with a CA of its own, configured with Pyroscope's flag names:
// agents reach port 4040 over TLS (HTTP/1.1 and h2), the distributor finds
// the segment-writer over TLS gossip and sends to it over mutual TLS. Under
// a steady load of pushes, each on a new connection, the server certificate
// is replaced twice (a new serial from the same CA through an atomic Secret
// update, then one from a new CA written in place, file by file, so the
// reloader sees a certificate without its key for a while): no push fails,
// and new handshakes get the new certificate.
func TestTLSOnEveryHop(t *testing.T) {
	defer func(d time.Duration) { tlsReloadInterval = d }(tlsReloadInterval)
	tlsReloadInterval = 50 * time.Millisecond
	const ip = "127.0.0.1"

	serverCA, writerCA, gossipCA := certs.NewCA(t, "agents-ca"), certs.NewCA(t, "writers-ca"), certs.NewCA(t, "gossip-ca")
	serverCA2 := certs.NewCA(t, "agents-ca-2")

	wcfg := fakewritertest.Config("sw-tls", "", ip)
	writerFiles := certs.NewSecretDir(t, writerCA.Issue(t, "segment-writer"), writerCA)
	wcfg.GRPCTLS = config.ServerTLS{
		CertPath: writerFiles.File(certs.CertFile), KeyPath: writerFiles.File(certs.KeyFile),
		ClientAuth: "RequireAndVerifyClientCert", ClientCAs: writerFiles.File(certs.CAFile),
	}
	writerGossip := certs.NewSecretDir(t, gossipCA.Issue(t, "segment-writer"), gossipCA)
	wcfg.Memberlist.TCPTransport.TLSEnabled = true
	wcfg.Memberlist.TCPTransport.TLS.CertPath = writerGossip.File(certs.CertFile)
	wcfg.Memberlist.TCPTransport.TLS.KeyPath = writerGossip.File(certs.KeyFile)
	wcfg.Memberlist.TCPTransport.TLS.CAPath = writerGossip.File(certs.CAFile)
	w := fakewritertest.Start(t, wcfg)

	server1 := serverCA.Issue(t, "distributor")
	serverFiles := certs.NewSecretDir(t, server1, nil)
	clientFiles := certs.NewSecretDir(t, writerCA.Issue(t, "distributor"), writerCA)
	gossipFiles := certs.NewSecretDir(t, gossipCA.Issue(t, "distributor"), gossipCA)
	fs := flag.NewFlagSet("distributor", flag.ContinueOnError)
	cfg, err := config.Load(fs, []string{
		"-server.http-listen-address=" + ip, "-server.http-listen-port=0", "-shutdown-delay=0s",
		"-server.http-tls-cert-path=" + serverFiles.File(certs.CertFile),
		"-server.http-tls-key-path=" + serverFiles.File(certs.KeyFile),
		"-segment-writer.grpc-client-config.tls-enabled",
		"-segment-writer.grpc-client-config.tls-cert-path=" + clientFiles.File(certs.CertFile),
		"-segment-writer.grpc-client-config.tls-key-path=" + clientFiles.File(certs.KeyFile),
		"-segment-writer.grpc-client-config.tls-ca-path=" + clientFiles.File(certs.CAFile),
		"-memberlist.tls-enabled",
		"-memberlist.tls-cert-path=" + gossipFiles.File(certs.CertFile),
		"-memberlist.tls-key-path=" + gossipFiles.File(certs.KeyFile),
		"-memberlist.tls-ca-path=" + gossipFiles.File(certs.CAFile),
		"-memberlist.bind-addr=" + ip, "-memberlist.bind-port=0",
		fmt.Sprintf("-memberlist.join=%s:%d", ip, w.GossipPort()),
		"-memberlist.leave-timeout=1s", "-memberlist.broadcast-timeout-for-local-updates-on-shutdown=1s",
		"-distributor.ring.instance-id=dist-tls-test", "-distributor.ring.instance-addr=" + ip,
		"-distributor.ingestion-rate-limit-mb=10000", "-distributor.ingestion-burst-size-mb=1000",
	})
	if err != nil {
		t.Fatal(err)
	}

	logs := &syncBuffer{}
	srv := startServing(t, cfg, log.NewLogfmtLogger(logs))
	base := "https://" + srv.addr

	// Agents trust both CAs of the port, as they would during a CA change.
	roots := x509.NewCertPool()
	roots.AddCert(serverCA.Cert)
	roots.AddCert(serverCA2.Cert)
	var seen handshakes
	// client makes one connection per request: every push is a handshake.
	client := func(h2 bool) *http.Client {
		var p http.Protocols
		p.SetHTTP1(!h2)
		p.SetHTTP2(h2)
		return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
			Protocols:         &p,
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{RootCAs: roots, VerifyConnection: seen.add},
		}}
	}

	ready := func() int {
		c := client(false)
		resp, err := c.Get(base + "/ready")
		if err != nil {
			return -1
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := 0; i < 300 && ready() != 200; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if code := ready(); code != 200 {
		t.Fatalf("/ready = %d over TLS; the writer never became known over TLS gossip", code)
	}

	profile := heapPprof(t)
	push := func(h2 bool) error {
		c := client(h2)
		defer c.CloseIdleConnections()
		var opts []connect.ClientOption
		if h2 {
			opts = append(opts, connect.WithGRPC())
		}
		_, err := pushv1connect.NewPusherServiceClient(c, base, opts...).Push(context.Background(), connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
			Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "memory"}, {Name: "service_name", Value: "tls-test"}},
			Samples: []*pushv1.RawSample{{RawProfile: profile}},
		}}}))
		return err
	}

	var ok, failed atomic.Int64
	var failures sync.Map
	loadDone := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		h2 := i%2 == 1 // Connect over HTTP/1.1 and gRPC over h2
		wg.Go(func() {
			for {
				select {
				case <-loadDone:
					return
				default:
				}
				if err := push(h2); err != nil {
					failures.Store(failed.Add(1), err.Error())
					continue
				}
				ok.Add(1)
			}
		})
	}
	waitPushes := func(n int64) {
		t.Helper()
		target := ok.Load() + n
		for deadline := time.Now().Add(30 * time.Second); ok.Load() < target; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("load stalled at %d pushes (%d failed)", ok.Load(), failed.Load())
			}
		}
	}
	waitSerial := func(p *certs.Pair) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !seen.seen(p.Serial()); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no handshake saw serial %s; last: %v", p.Serial(), seen.last(5))
			}
		}
	}

	waitPushes(30)
	// A new serial from the same CA, as cert-manager renews: one atomic swap.
	server2 := serverCA.Issue(t, "distributor")
	serverFiles.Update(t, server2, nil)
	waitSerial(server2)
	waitPushes(30)
	// A certificate of a new CA written in place, the key well after the
	// certificate: the mismatched pair in between is not used.
	server3 := serverCA2.Issue(t, "distributor")
	if err := os.WriteFile(serverFiles.File(certs.CertFile), server3.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * tlsReloadInterval)
	waitPushes(10)
	if err := os.WriteFile(serverFiles.File(certs.KeyFile), server3.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	waitSerial(server3)
	if !strings.Contains(logs.String(), "not usable") {
		t.Error("the certificate without its key was not logged")
	}
	waitPushes(30)
	close(loadDone)
	wg.Wait()

	if n := failed.Load(); n > 0 {
		var msgs []string
		failures.Range(func(_, v any) bool { msgs = append(msgs, v.(string)); return len(msgs) < 5 })
		t.Errorf("%d of %d pushes failed during rotation, e.g.:\n%s", n, n+ok.Load(), strings.Join(msgs, "\n"))
	}
	for _, s := range seen.last(8) {
		if s != server3.Serial() {
			t.Errorf("a handshake after the last rotation saw serial %s, want %s", s, server3.Serial())
		}
	}
	if !seen.seen(server1.Serial()) {
		t.Error("no handshake saw the first certificate")
	}
	if err := srv.shutdown(); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if got, want := int64(len(w.Records())), ok.Load(); got != want {
		t.Errorf("writer recorded %d pushes over mutual TLS, the distributor acked %d", got, want)
	}
	t.Logf("%d pushes, %d handshakes", ok.Load(), len(seen.last(1<<30)))
}
