package ingest

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/pyrodist/pyrodist/internal/tlsreload"
	"github.com/pyrodist/pyrodist/test/testutil/certs"
)

// startTLSServer serves TLS with a certificate of ca, asking clients for
// certificates as auth says (verified against ca).
func startTLSServer(t *testing.T, ca *certs.CA, auth tls.ClientAuthType) *testServer {
	t.Helper()
	dir := certs.NewSecretDir(t, ca.Issue(t, "distributor"), ca)
	r, err := tlsreload.New("server", tlsreload.Files{CertPath: dir.File(certs.CertFile), KeyPath: dir.File(certs.KeyFile), CAPath: dir.File(certs.CAFile)}, tlsreload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(o *Options) {
		o.TLS = r.ServerConfig(&tls.Config{ClientAuth: auth, NextProtos: []string{"h2", "http/1.1"}})
	})
	ts.url = strings.Replace(ts.url, "http://", "https://", 1)
	return ts
}

// tlsClient speaks only the given protocol over TLS, trusting roots and
// presenting cert when set.
func tlsClient(t *testing.T, h2 bool, roots *certs.CA, cert *certs.Pair) *http.Client {
	t.Helper()
	var p http.Protocols
	p.SetHTTP1(!h2)
	p.SetHTTP2(h2)
	tc := &tls.Config{}
	if roots != nil {
		tc.RootCAs = roots.Pool()
	}
	if cert != nil {
		tc.Certificates = []tls.Certificate{cert.TLS(t)}
	}
	c := &http.Client{Transport: &http.Transport{Protocols: &p, TLSClientConfig: tc}, Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func connectPush(t *testing.T, c *http.Client, url string, opts ...connect.ClientOption) error {
	t.Helper()
	_, err := pushv1connect.NewPusherServiceClient(c, url, opts...).Push(context.Background(), connect.NewRequest(pushRequest(cpuProfile(t))))
	return err
}

// grpcPush pushes with grpc-go, as Alloy does, over creds.
func grpcPush(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = pushv1.NewPusherServiceClient(cc).Push(ctx, pushRequest(cpuProfile(t)))
	return err
}

func protoOf(t *testing.T, c *http.Client, url string) (int, error) {
	t.Helper()
	resp, err := c.Get(url + "/healthz")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.ProtoMajor, nil
}

// With a certificate the port serves TLS only: Connect over HTTP/1.1,
// gRPC over h2 (negotiated by ALPN) and gRPC-Web all work for a client
// that trusts the CA; plaintext and untrusting clients do not get in.
func TestTLSServesHTTP1AndH2(t *testing.T) {
	ca := certs.NewCA(t, "test-ca")
	ts := startTLSServer(t, ca, tls.NoClientCert)
	addr := strings.TrimPrefix(ts.url, "https://")

	h1 := tlsClient(t, false, ca, nil)
	if major, err := protoOf(t, h1, ts.url); err != nil || major != 1 {
		t.Fatalf("HTTP/1.1 over TLS: proto %d, %v", major, err)
	}
	if err := connectPush(t, h1, ts.url); err != nil {
		t.Fatalf("Connect over HTTP/1.1 and TLS: %v", err)
	}
	h2 := tlsClient(t, true, ca, nil)
	if major, err := protoOf(t, h2, ts.url); err != nil || major != 2 {
		t.Fatalf("HTTP/2 over TLS: proto %d, %v", major, err)
	}
	if err := connectPush(t, h2, ts.url, connect.WithGRPC()); err != nil {
		t.Fatalf("Connect's gRPC over h2 and TLS: %v", err)
	}
	if err := connectPush(t, h1, ts.url, connect.WithGRPCWeb()); err != nil {
		t.Fatalf("gRPC-Web over HTTP/1.1 and TLS: %v", err)
	}
	if err := grpcPush(t, addr, credentials.NewTLS(&tls.Config{RootCAs: ca.Pool()})); err != nil {
		t.Fatalf("grpc-go over TLS: %v", err)
	}
	if n := ts.pusher.count(); n != 4 {
		t.Fatalf("pusher saw %d pushes, want 4", n)
	}

	if _, err := protoOf(t, h2cClient(t), strings.Replace(ts.url, "https://", "http://", 1)); err == nil {
		t.Error("a plaintext h2c client was served on the TLS port")
	}
	// net/http answers plaintext HTTP/1.x on a TLS port with a bare 400.
	if resp, err := http.Get(strings.Replace(ts.url, "https://", "http://", 1) + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a plaintext HTTP/1.1 client got %s on the TLS port", resp.Status)
		}
	}
	if err := connectPush(t, tlsClient(t, false, certs.NewCA(t, "other-ca"), nil), ts.url); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client trusting another CA: %v, want a certificate error", err)
	}
	if n := ts.pusher.count(); n != 4 {
		t.Fatalf("pusher saw %d pushes, want still 4", n)
	}
}

// RequireAndVerifyClientCert refuses clients without a certificate of the
// CA, whatever the protocol, and serves those with one.
func TestMutualTLS(t *testing.T) {
	ca := certs.NewCA(t, "test-ca")
	ts := startTLSServer(t, ca, tls.RequireAndVerifyClientCert)
	addr := strings.TrimPrefix(ts.url, "https://")
	client := ca.Issue(t, "agent")
	stranger := certs.NewCA(t, "other-ca").Issue(t, "agent")

	if err := connectPush(t, tlsClient(t, false, ca, client), ts.url); err != nil {
		t.Fatalf("HTTP/1.1 client with a certificate: %v", err)
	}
	if err := grpcPush(t, addr, credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{client.TLS(t)}})); err != nil {
		t.Fatalf("gRPC client with a certificate: %v", err)
	}
	for name, cert := range map[string]*certs.Pair{"no certificate": nil, "certificate of another CA": stranger} {
		if err := connectPush(t, tlsClient(t, false, ca, cert), ts.url); err == nil {
			t.Errorf("HTTP/1.1 client with %s was served", name)
		}
		if err := connectPush(t, tlsClient(t, true, ca, cert), ts.url, connect.WithGRPC()); err == nil {
			t.Errorf("h2 client with %s was served", name)
		}
		tc := &tls.Config{RootCAs: ca.Pool()}
		if cert != nil {
			tc.Certificates = []tls.Certificate{cert.TLS(t)}
		}
		if err := grpcPush(t, addr, credentials.NewTLS(tc)); err == nil {
			t.Errorf("grpc-go client with %s was served", name)
		}
	}
	if n := ts.pusher.count(); n != 2 {
		t.Fatalf("pusher saw %d pushes, want 2", n)
	}
}
