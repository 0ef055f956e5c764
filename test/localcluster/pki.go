package localcluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ca is a certificate authority kept in memory while the PKI is written.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// certSpec describes one leaf certificate.
type certSpec struct {
	name   string // file base name: <name>.crt / <name>.key
	cn     string
	orgs   []string
	server bool // serverAuth instead of clientAuth
	ips    []net.IP
	dns    []string
}

// writePKI creates every key and certificate the control plane needs under dir.
// ECDSA P-256 throughout: it is generated in milliseconds where RSA takes seconds.
func writePKI(dir string, serviceIP net.IP) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	clusterCA, err := newCA(dir, "ca", "pyrodist-local-ca")
	if err != nil {
		return err
	}
	proxyCA, err := newCA(dir, "front-proxy-ca", "pyrodist-local-front-proxy-ca")
	if err != nil {
		return err
	}
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	leaves := []struct {
		ca   *ca
		spec certSpec
	}{
		{clusterCA, certSpec{name: "apiserver", cn: "kube-apiserver", server: true,
			ips: append(loopback, serviceIP),
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}}},
		{clusterCA, certSpec{name: "admin", cn: "pyrodist-local-admin", orgs: []string{"system:masters"}}},
		{clusterCA, certSpec{name: "kcm", cn: "system:kube-controller-manager"}},
		{clusterCA, certSpec{name: "scheduler", cn: "system:kube-scheduler"}},
		// kwok and metrics-server are test infrastructure, not what is under test: admin rights keep them simple.
		{clusterCA, certSpec{name: "kwok", cn: "kwok-controller", orgs: []string{"system:masters"}}},
		{clusterCA, certSpec{name: "kwok-serving", cn: "kwok", server: true, ips: loopback, dns: []string{"localhost"}}},
		{clusterCA, certSpec{name: "metrics-server", cn: "metrics-server", orgs: []string{"system:masters"}}},
		{proxyCA, certSpec{name: "front-proxy-client", cn: "front-proxy-client"}},
	}
	for _, l := range leaves {
		if err := newLeaf(dir, l.ca, l.spec); err != nil {
			return fmt.Errorf("certificate %s: %w", l.spec.name, err)
		}
	}
	// ServiceAccount token signing pair.
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "sa.key"), saKey); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub, 0o644)
}

func newCA(dir, name, cn string) (*ca, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(dir, name+".crt"), "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(dir, name+".key"), key); err != nil {
		return nil, err
	}
	return &ca{cert: cert, key: key}, nil
}

func newLeaf(dir string, issuer *ca, s certSpec) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	usage := x509.ExtKeyUsageClientAuth
	if s.server {
		usage = x509.ExtKeyUsageServerAuth
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: s.cn, Organization: s.orgs},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
		IPAddresses:           s.ips,
		DNSNames:              s.dns,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer.cert, &key.PublicKey, issuer.key)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, s.name+".crt"), "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writeKey(filepath.Join(dir, s.name+".key"), key)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on Linux; a fixed serial would still be valid.
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}
