package tlsreload_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/tlsreload"
	"github.com/pyrodist/pyrodist/test/testutil/certs"
	"github.com/pyrodist/pyrodist/test/testutil/loglines"
)

func files(d *certs.SecretDir) tlsreload.Files {
	return tlsreload.Files{CertPath: d.File(certs.CertFile), KeyPath: d.File(certs.KeyFile), CAPath: d.File(certs.CAFile)}
}

// serve runs a TLS echo-less server with cfg; each accepted connection
// completes its handshake and stays open until the test ends.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				buf := make([]byte, 1)
				_, _ = c.Read(buf)
				_ = c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// servedSerial dials addr trusting ca and returns the server certificate's serial.
func servedSerial(t *testing.T, addr string, ca *certs.CA, client *tls.Certificate) (string, *tls.Conn) {
	t.Helper()
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	if client != nil {
		cfg.Certificates = []tls.Certificate{*client}
	}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Text(16), c
}

func TestServerSeesNewCertificateOnNewHandshakes(t *testing.T) {
	ca := certs.NewCA(t, "ca")
	first := ca.Issue(t, "server")
	dir := certs.NewSecretDir(t, first, ca)
	reg := prometheus.NewRegistry()
	r, err := tlsreload.New("test", files(dir), tlsreload.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r.ServerConfig(&tls.Config{}))
	got, old := servedSerial(t, addr, ca, nil)
	if got != first.Serial() {
		t.Fatalf("served serial %s, want %s", got, first.Serial())
	}
	if exp := expiry(t, reg); exp != float64(first.Cert.NotAfter.Unix()) {
		t.Errorf("expiry gauge = %v, want %d", exp, first.Cert.NotAfter.Unix())
	}

	if r.Reload() {
		t.Fatal("Reload swapped in unchanged files")
	}
	second := ca.Issue(t, "server")
	dir.Update(t, second, ca)
	if !r.Reload() {
		t.Fatal("Reload did not notice the new files")
	}
	if got, _ := servedSerial(t, addr, ca, nil); got != second.Serial() {
		t.Fatalf("after reload: served serial %s, want %s", got, second.Serial())
	}
	if exp := expiry(t, reg); exp != float64(second.Cert.NotAfter.Unix()) {
		t.Errorf("expiry gauge = %v after reload", exp)
	}
	// A connection made before the reload keeps working.
	if _, err := old.Write([]byte{1}); err != nil {
		t.Errorf("connection from before the reload: %v", err)
	}
}

func TestBadFilesKeepThePreviousCertificate(t *testing.T) {
	ca := certs.NewCA(t, "ca")
	first := ca.Issue(t, "server")
	dir := certs.NewSecretDir(t, first, ca)
	var logs loglines.Lines
	r, err := tlsreload.New("test", files(dir), tlsreload.Options{Logger: &logs})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r.ServerConfig(&tls.Config{}))

	other := ca.Issue(t, "server")
	for name, content := range map[string]map[string][]byte{
		"key of another certificate": {certs.CertFile: other.CertPEM, certs.KeyFile: first.KeyPEM, certs.CAFile: ca.PEM},
		"garbage certificate":        {certs.CertFile: []byte("not PEM"), certs.KeyFile: first.KeyPEM, certs.CAFile: ca.PEM},
		"empty CA":                   {certs.CertFile: first.CertPEM, certs.KeyFile: first.KeyPEM, certs.CAFile: nil},
		"missing key":                {certs.CertFile: other.CertPEM, certs.CAFile: ca.PEM},
	} {
		t.Run(name, func(t *testing.T) {
			before := logs.Count("not usable")
			if name == "missing key" {
				_ = os.Remove(dir.File(certs.KeyFile))
				t.Cleanup(func() { _ = os.Symlink("..data/"+certs.KeyFile, dir.File(certs.KeyFile)) })
			}
			dir.UpdateFiles(t, content)
			// The first failure may be a read straddling a swap: silent.
			// The same content failing again is logged, once.
			for range 3 {
				if r.Reload() {
					t.Fatal("Reload swapped in unusable files")
				}
			}
			if n := logs.Count("not usable") - before; n != 1 {
				t.Errorf("logged %d warnings, want 1", n)
			}
			if got, _ := servedSerial(t, addr, ca, nil); got != first.Serial() {
				t.Errorf("served serial %s, want the previous %s", got, first.Serial())
			}
		})
	}
	// Good files again: in use at once.
	dir.Update(t, other, ca)
	if !r.Reload() {
		t.Fatal("good files after bad ones not loaded")
	}
	if got, _ := servedSerial(t, addr, ca, nil); got != other.Serial() {
		t.Errorf("served serial %s, want %s", got, other.Serial())
	}
}

func TestNewRefusesUnusableFiles(t *testing.T) {
	ca := certs.NewCA(t, "ca")
	dir := certs.NewSecretDir(t, ca.Issue(t, "server"), ca)
	for name, f := range map[string]tlsreload.Files{
		"nothing":      {},
		"cert no key":  {CertPath: dir.File(certs.CertFile)},
		"missing file": {CertPath: dir.File(certs.CertFile), KeyPath: dir.File("nope")},
		"key as CA":    {CAPath: dir.File(certs.KeyFile)},
	} {
		if _, err := tlsreload.New("test", f, tlsreload.Options{}); err == nil {
			t.Errorf("%s: New accepted %+v", name, f)
		}
	}
}

// The service reads the files on its own and verifies clients against the
// CA in use: a client certificate from a new CA is refused until the CA
// file names it.
func TestServicePollsAndClientCAsFollow(t *testing.T) {
	ca1 := certs.NewCA(t, "ca-1")
	dir := certs.NewSecretDir(t, ca1.Issue(t, "server"), ca1)
	r, err := tlsreload.New("test", files(dir), tlsreload.Options{Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := services.StartAndAwaitRunning(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = services.StopAndAwaitTerminated(context.Background(), r) })
	addr := serve(t, r.ServerConfig(&tls.Config{ClientAuth: tls.RequireAndVerifyClientCert}))

	client1 := ca1.Issue(t, "client").TLS(t)
	if _, c := servedSerial(t, addr, ca1, &client1); !handshakeAccepted(c) {
		t.Fatal("client of the CA in use refused")
	}
	ca2 := certs.NewCA(t, "ca-2")
	next := ca2.Issue(t, "server")
	client2 := ca2.Issue(t, "client").TLS(t)
	if _, c := servedSerial(t, addr, ca1, &client2); handshakeAccepted(c) {
		t.Fatal("client of an unknown CA accepted")
	}
	dir.Update(t, next, ca2)
	deadline := time.Now().Add(10 * time.Second)
	for r.Current().Leaf().SerialNumber.Cmp(next.Cert.SerialNumber) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the service never loaded the new files")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got, c := servedSerial(t, addr, ca2, &client2); got != next.Serial() || !handshakeAccepted(c) {
		t.Fatalf("after rotation to a new CA: serial %s (want %s), accepted %v", got, next.Serial(), handshakeAccepted(c))
	}
}

// handshakeAccepted: in TLS 1.3 a client learns that the server refused
// its certificate only when it reads; the test server closes (EOF) after
// one byte when it accepted.
func handshakeAccepted(c *tls.Conn) bool {
	_, _ = c.Write([]byte{1})
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF)
}

func expiry(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "pyrodist_tls_certificate_expiry_timestamp_seconds" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no expiry gauge")
	return 0
}

// ClientConfig hands each new connection the current roots and client
// certificate.
func TestClientConfigFollowsTheFiles(t *testing.T) {
	ca1 := certs.NewCA(t, "ca-1")
	c1 := ca1.Issue(t, "client")
	dir := certs.NewSecretDir(t, c1, ca1)
	r, err := tlsreload.New("test", files(dir), tlsreload.Options{})
	if err != nil {
		t.Fatal(err)
	}
	get := r.ClientConfig(&tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS12})
	cfg := get()
	if cfg != get() {
		t.Error("an unchanged snapshot should give the same config")
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.ServerName != "localhost" || cfg.RootCAs == nil {
		t.Errorf("config lost base settings or roots: %+v", cfg)
	}
	cert, err := cfg.GetClientCertificate(nil)
	if err != nil || cert.Leaf.SerialNumber.Cmp(c1.Cert.SerialNumber) != 0 {
		t.Fatalf("client certificate = %v, %v", cert, err)
	}

	ca2 := certs.NewCA(t, "ca-2")
	c2 := ca2.Issue(t, "client")
	dir.Update(t, c2, ca2)
	r.Reload()
	cfg2 := get()
	if cert, _ := cfg2.GetClientCertificate(nil); cert.Leaf.SerialNumber.Cmp(c2.Cert.SerialNumber) != 0 {
		t.Error("client certificate not reloaded")
	}
	srv := ca2.Issue(t, "server")
	addr := serve(t, &tls.Config{Certificates: []tls.Certificate{srv.TLS(t)}})
	if c, err := tls.Dial("tcp", addr, cfg2); err != nil {
		t.Errorf("dial a server of the new CA with the new roots: %v", err)
	} else {
		c.Close()
	}
	if _, err := tls.Dial("tcp", addr, cfg); err == nil {
		t.Error("the old roots trusted a server of the new CA")
	}
}
