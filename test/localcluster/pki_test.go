package localcluster

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWritePKI(t *testing.T) {
	dir := t.TempDir()
	if err := writePKI(dir, net.IPv4(10, 96, 0, 1)); err != nil {
		t.Fatal(err)
	}
	roots := map[string]*x509.CertPool{"ca": pool(t, dir, "ca"), "front-proxy-ca": pool(t, dir, "front-proxy-ca")}
	tests := []struct {
		name, ca string
		usage    x509.ExtKeyUsage
		cn       string
		orgs     []string
		ip       string // must be in the SANs when set
	}{
		{"apiserver", "ca", x509.ExtKeyUsageServerAuth, "kube-apiserver", nil, "10.96.0.1"},
		{"admin", "ca", x509.ExtKeyUsageClientAuth, "pyrodist-local-admin", []string{"system:masters"}, ""},
		{"kcm", "ca", x509.ExtKeyUsageClientAuth, "system:kube-controller-manager", nil, ""},
		{"scheduler", "ca", x509.ExtKeyUsageClientAuth, "system:kube-scheduler", nil, ""},
		{"kwok-serving", "ca", x509.ExtKeyUsageServerAuth, "kwok", nil, "127.0.0.1"},
		{"front-proxy-client", "front-proxy-ca", x509.ExtKeyUsageClientAuth, "front-proxy-client", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The key must match the certificate.
			pair, err := tls.LoadX509KeyPair(filepath.Join(dir, tt.name+".crt"), filepath.Join(dir, tt.name+".key"))
			if err != nil {
				t.Fatal(err)
			}
			cert, err := x509.ParseCertificate(pair.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots[tt.ca], KeyUsages: []x509.ExtKeyUsage{tt.usage}}); err != nil {
				t.Fatalf("verify against %s: %v", tt.ca, err)
			}
			if cert.Subject.CommonName != tt.cn || !slices.Equal(cert.Subject.Organization, tt.orgs) {
				t.Errorf("subject = %v, want CN=%s O=%v", cert.Subject, tt.cn, tt.orgs)
			}
			if tt.ip != "" && !slices.ContainsFunc(cert.IPAddresses, func(ip net.IP) bool { return ip.String() == tt.ip }) {
				t.Errorf("SAN IPs %v lack %s", cert.IPAddresses, tt.ip)
			}
		})
	}
	// Another CA must not vouch for the cluster's certificates.
	if _, err := parse(t, dir, "admin").Verify(x509.VerifyOptions{Roots: roots["front-proxy-ca"], KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("admin certificate verified against the front-proxy CA")
	}
	// The ServiceAccount key pair: private key parses, public key matches it.
	keyPEM, _ := pem.Decode(read(t, dir, "sa.key"))
	key, err := x509.ParseECPrivateKey(keyPEM.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, _ := pem.Decode(read(t, dir, "sa.pub"))
	pub, err := x509.ParsePKIXPublicKey(pubPEM.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(pub) {
		t.Error("sa.pub does not match sa.key")
	}
	if st, _ := os.Stat(filepath.Join(dir, "sa.key")); st.Mode().Perm() != 0o600 {
		t.Errorf("sa.key mode %v, want 0600", st.Mode().Perm())
	}
}

func read(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parse(t *testing.T, dir, name string) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(read(t, dir, name+".crt"))
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pool(t *testing.T, dir, name string) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(parse(t, dir, name))
	return p
}
