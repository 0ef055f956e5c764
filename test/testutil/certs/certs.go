// Package certs makes TLS material for tests in Go: a CA, certificates it
// signs (server and client use at once, for the loopback IPs and localhost),
// and folders laid out as Kubernetes mounts a Secret (tls.crt, tls.key,
// ca.crt as links into a ..data folder that an update swaps atomically).
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// Keys of a cert-manager (kubernetes.io/tls) Secret.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
	CAFile   = "ca.crt"
)

// CA is a certificate authority.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA certificate, as ca.crt holds it.
	PEM []byte
}

// NewCA makes a self-signed CA named name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Pool is a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Pair is a certificate and its key.
type Pair struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// TLS is the pair as crypto/tls uses it.
func (p *Pair) TLS(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Serial is the certificate's serial number in hex.
func (p *Pair) Serial() string { return p.Cert.SerialNumber.Text(16) }

// Issue signs a certificate for name, usable by servers and clients, valid
// for localhost, every 127.0.0.0/8 address a test may bind and dnsNames.
func (ca *CA) Issue(t testing.TB, name string, dnsNames ...string) *Pair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ips := []net.IP{net.IPv6loopback}
	for i := 1; i < 32; i++ {
		ips = append(ips, net.IPv4(127, 0, 0, byte(i)))
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     append([]string{"localhost", name}, dnsNames...),
		IPAddresses:  ips,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &Pair{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

// SecretDir is a folder laid out as the kubelet mounts a Secret: each key
// is a link to ..data/<key>, ..data links to a timestamped folder, and an
// update writes a new folder and swaps ..data with one rename.
type SecretDir struct {
	Path string
	gen  atomic.Int64
}

// NewSecretDir makes the folder under t.TempDir() holding the pair's
// tls.crt and tls.key and the CA's ca.crt (either may be nil).
func NewSecretDir(t testing.TB, pair *Pair, ca *CA) *SecretDir {
	t.Helper()
	d := &SecretDir{Path: filepath.Join(t.TempDir(), "secret")}
	if err := os.Mkdir(d.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	d.Update(t, pair, ca)
	return d
}

// File is the path of key in the folder.
func (d *SecretDir) File(key string) string { return filepath.Join(d.Path, key) }

// Update replaces the folder's content atomically, as the kubelet does
// when the Secret changes.
func (d *SecretDir) Update(t testing.TB, pair *Pair, ca *CA) {
	t.Helper()
	files := map[string][]byte{}
	if pair != nil {
		files[CertFile], files[KeyFile] = pair.CertPEM, pair.KeyPEM
	}
	if ca != nil {
		files[CAFile] = ca.PEM
	}
	d.UpdateFiles(t, files)
}

// UpdateFiles is Update with arbitrary content per key.
func (d *SecretDir) UpdateFiles(t testing.TB, files map[string][]byte) {
	t.Helper()
	gen := fmt.Sprintf("..%d_%d", time.Now().UnixNano(), d.gen.Add(1))
	if err := os.Mkdir(filepath.Join(d.Path, gen), 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range files {
		if err := os.WriteFile(filepath.Join(d.Path, gen, k), v, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := os.Readlink(filepath.Join(d.Path, "..data"))
	tmp := filepath.Join(d.Path, "..data_tmp")
	if err := os.Symlink(gen, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.Path, "..data")); err != nil {
		t.Fatal(err)
	}
	for k := range files {
		link := filepath.Join(d.Path, k)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", k), link); err != nil {
			t.Fatal(err)
		}
	}
	if old != "" {
		_ = os.RemoveAll(filepath.Join(d.Path, old))
	}
}
