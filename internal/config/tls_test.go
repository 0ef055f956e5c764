package config

import (
	"crypto/tls"
	"strings"
	"testing"
)

// Pyroscope's YAML keys and flag names for TLS on each hop load as they
// do there.
func TestTLSKeysAndFlags(t *testing.T) {
	file := writeFile(t, t.TempDir(), "config.yaml", `
server:
  http_tls_config:
    cert_file: /tls/server/tls.crt
    key_file: /tls/server/tls.key
    client_auth_type: VerifyClientCertIfGiven
    client_ca_file: /tls/server/ca.crt
segment_writer:
  grpc_client_config:
    tls_enabled: true
    tls_ca_path: /tls/writers/ca.crt
    tls_server_name: segment-writer.pyroscope.svc
memberlist:
  tls_enabled: true
  tls_cert_path: /tls/gossip/tls.crt
  tls_key_path: /tls/gossip/tls.key
  tls_ca_path: /tls/gossip/ca.crt
`)
	c, err := load(t, "-config.file", file,
		"-server.http-tls-client-auth=RequireAndVerifyClientCert",
		"-segment-writer.grpc-client-config.tls-min-version=VersionTLS13",
		"-memberlist.tls-server-name=memberlist.pyroscope.svc")
	if err != nil {
		t.Fatal(err)
	}
	h := c.Server.HTTPTLS
	if h.CertPath != "/tls/server/tls.crt" || h.KeyPath != "/tls/server/tls.key" || h.ClientCAs != "/tls/server/ca.crt" || h.ClientAuth != "RequireAndVerifyClientCert" {
		t.Errorf("server.http_tls_config = %+v", h)
	}
	if err := h.Validate(); err != nil {
		t.Error(err)
	}
	g := c.SegmentWriter.GRPCClient
	if !g.TLSEnabled || g.TLS.CAPath != "/tls/writers/ca.crt" || g.TLS.ServerName != "segment-writer.pyroscope.svc" || g.TLS.MinVersion != "VersionTLS13" {
		t.Errorf("segment_writer.grpc_client_config = %+v", g)
	}
	if err := c.SegmentWriter.Validate(); err != nil {
		t.Error(err)
	}
	m := c.Memberlist
	if !m.TLSEnabled || m.TLS.CertPath != "/tls/gossip/tls.crt" || m.TLS.KeyPath != "/tls/gossip/tls.key" || m.TLS.CAPath != "/tls/gossip/ca.crt" || m.TLS.ServerName != "memberlist.pyroscope.svc" {
		t.Errorf("memberlist TLS = %+v", m)
	}
	if err := m.ValidateTLS(); err != nil {
		t.Error(err)
	}
}

func TestServerTLSValidate(t *testing.T) {
	auth := map[string]tls.ClientAuthType{
		"":                           tls.NoClientCert,
		"NoClientCert":               tls.NoClientCert,
		"RequestClientCert":          tls.RequestClientCert,
		"RequireAnyClientCert":       tls.RequireAnyClientCert,
		"RequireClientCert":          tls.RequireAnyClientCert,
		"VerifyClientCertIfGiven":    tls.VerifyClientCertIfGiven,
		"RequireAndVerifyClientCert": tls.RequireAndVerifyClientCert,
	}
	for name, want := range auth {
		c := ServerTLS{ClientAuth: name}
		if got, err := c.ClientAuthType(); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", name, got, err, want)
		}
	}
	const cert, key, ca = "/c", "/k", "/ca"
	for _, tc := range []struct {
		c    ServerTLS
		want string // "" valid
	}{
		{ServerTLS{}, ""},
		{ServerTLS{CertPath: cert, KeyPath: key}, ""},
		{ServerTLS{CertPath: cert, KeyPath: key, ClientAuth: "RequireAndVerifyClientCert", ClientCAs: ca}, ""},
		{ServerTLS{CertPath: cert, KeyPath: key, ClientAuth: "RequireAnyClientCert"}, ""},
		{ServerTLS{CertPath: cert}, "go together"},
		{ServerTLS{KeyPath: key}, "go together"},
		{ServerTLS{ClientCAs: ca, ClientAuth: "RequireAndVerifyClientCert"}, "need cert_file"},
		{ServerTLS{CertPath: cert, KeyPath: key, ClientCAs: ca}, "does not ask for client certificates"},
		{ServerTLS{CertPath: cert, KeyPath: key, ClientAuth: "VerifyClientCertIfGiven"}, "needs client_ca_file"},
		{ServerTLS{CertPath: cert, KeyPath: key, ClientAuth: "Sometimes"}, "unknown value"},
	} {
		err := tc.c.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
}

// TLS files given with TLS off would be ignored by dskit and connect in
// plaintext: refused instead.
func TestClientTLSNeedsEnabled(t *testing.T) {
	d := Defaults()
	d.SegmentWriter.GRPCClient.TLS.CAPath = "/ca"
	if err := d.SegmentWriter.Validate(); err == nil || !strings.Contains(err.Error(), "tls_enabled is false") {
		t.Errorf("segment writer: %v", err)
	}
	d.SegmentWriter.GRPCClient.TLSEnabled = true
	d.SegmentWriter.GRPCClient.TLS.CertPath = "/cert"
	if err := d.SegmentWriter.Validate(); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Errorf("segment writer cert without key: %v", err)
	}
	d.Memberlist.TLS.InsecureSkipVerify = true
	if err := d.Memberlist.ValidateTLS(); err == nil {
		t.Error("memberlist: TLS setting with TLS off accepted")
	}
	d.Memberlist.TLSEnabled = true
	d.Memberlist.TLS.CAPath = "/ca"
	if err := d.Memberlist.ValidateTLS(); err == nil || !strings.Contains(err.Error(), "serves gossip") {
		t.Errorf("memberlist: TLS without a certificate: %v", err)
	}
}
