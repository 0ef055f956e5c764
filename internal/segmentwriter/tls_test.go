package segmentwriter

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	segmentwriterv1 "github.com/grafana/pyroscope/api/gen/proto/go/segmentwriter/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/pyrodist/pyrodist/internal/tlsreload"
	"github.com/pyrodist/pyrodist/test/testutil/certs"
	"github.com/pyrodist/pyrodist/test/testutil/loglines"
)

// startTLSWriter is startWriter serving TLS with a certificate of ca;
// with requireClient it wants a client certificate of ca too.
func startTLSWriter(t *testing.T, ca *certs.CA, requireClient bool) *writer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "segment-writer").TLS(t)}}
	if requireClient {
		tc.ClientAuth, tc.ClientCAs = tls.RequireAndVerifyClientCert, ca.Pool()
	}
	w := &writer{addr: lis.Addr().String()}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(tc)))
	segmentwriterv1.RegisterSegmentWriterServiceServer(s, w)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return w
}

func tlsConfig(dir *certs.SecretDir) Config {
	cfg := testConfig()
	cfg.GRPCClient.TLSEnabled = true
	cfg.GRPCClient.TLS.CAPath = dir.File(certs.CAFile)
	cfg.GRPCClient.TLS.CertPath = dir.File(certs.CertFile)
	cfg.GRPCClient.TLS.KeyPath = dir.File(certs.KeyFile)
	return cfg
}

// dskit's settings alone (no reloader) secure the connections.
func TestPushOverTLS(t *testing.T) {
	ca := certs.NewCA(t, "writers-ca")
	w := startTLSWriter(t, ca, true)
	dir := certs.NewSecretDir(t, ca.Issue(t, "distributor"), ca)
	c := newClient(t, tlsConfig(dir))
	if err := c.Push(context.Background(), request(), instances("", w)); err != nil {
		t.Fatalf("push over mutual TLS: %v", err)
	}
	if w.calls() != 1 {
		t.Fatalf("writer saw %d calls", w.calls())
	}
}

// A writer whose certificate the CA does not sign gets nothing, and the
// log says why.
func TestPushOverTLSWithAnotherCAFails(t *testing.T) {
	w := startTLSWriter(t, certs.NewCA(t, "writers-ca"), false)
	ours := certs.NewCA(t, "our-ca")
	dir := certs.NewSecretDir(t, ours.Issue(t, "distributor"), ours)
	var logs loglines.Lines
	c, err := New(tlsConfig(dir), prometheus.NewRegistry(), &logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	err = c.Push(context.Background(), request(), instances("", w))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("push to an untrusted writer: %v, want Unavailable", err)
	}
	if w.calls() != 0 {
		t.Fatalf("untrusted writer got %d calls", w.calls())
	}
	if !logs.Contain("certificate signed by unknown authority") {
		t.Errorf("no log line names the certificate error:\n%s", logs.String())
	}
}

// Plaintext to a TLS writer fails too (no silent downgrade).
func TestPlaintextToTLSWriterFails(t *testing.T) {
	w := startTLSWriter(t, certs.NewCA(t, "writers-ca"), false)
	c := newClient(t, testConfig())
	if err := c.Push(context.Background(), request(), instances("", w)); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext push to a TLS writer: %v", err)
	}
}

// With reloading credentials a new connection uses the files as they are
// then: after the CA and client certificate move to a new CA, a writer of
// the new CA is reached and one of the old CA no longer is.
func TestReloadedCredentialsReachNewConnections(t *testing.T) {
	oldCA, newCA := certs.NewCA(t, "old-ca"), certs.NewCA(t, "new-ca")
	oldW := startTLSWriter(t, oldCA, true)
	newW := startTLSWriter(t, newCA, true)
	dir := certs.NewSecretDir(t, oldCA.Issue(t, "distributor"), oldCA)
	cfg := tlsConfig(dir)
	base, err := cfg.GRPCClient.TLS.GetTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	r, err := tlsreload.New("segment-writer", tlsreload.Files{CertPath: cfg.GRPCClient.TLS.CertPath, KeyPath: cfg.GRPCClient.TLS.KeyPath, CAPath: cfg.GRPCClient.TLS.CAPath}, tlsreload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Credentials = tlsreload.GRPCCredentials(r.ClientConfig(base))
	c := newClient(t, cfg)

	if err := c.Push(context.Background(), request(), instances("", oldW)); err != nil {
		t.Fatalf("push with the first files: %v", err)
	}
	if err := c.Push(context.Background(), request(), instances("", newW)); err == nil {
		t.Fatal("a writer of a CA not yet trusted was reached")
	}
	dir.Update(t, newCA.Issue(t, "distributor"), newCA)
	if !r.Reload() {
		t.Fatal("files not reloaded")
	}
	// Drop the pooled connections, so the next pushes dial again.
	c.SetAddresses(nil)
	if err := c.Push(context.Background(), request(), instances("", newW)); err != nil {
		t.Fatalf("push to a writer of the new CA after the reload: %v", err)
	}
	if err := c.Push(context.Background(), request(), instances("", oldW)); err == nil {
		t.Fatal("a writer of the old CA was still reached on a new connection")
	}
}
