package config

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"strings"

	dstls "github.com/grafana/dskit/crypto/tls"
)

// ServerTLS is a server's TLS, with the YAML keys and flags of dskit's
// server.http_tls_config (the ones Pyroscope exposes). With a certificate
// the distributor's HTTP port serves TLS only (HTTP/1.1 and HTTP/2 by
// ALPN); without, plaintext HTTP/1.1 and h2c. The files are reloaded when
// they change.
type ServerTLS struct {
	CertPath   string `yaml:"cert_file"`
	KeyPath    string `yaml:"key_file"`
	ClientAuth string `yaml:"client_auth_type"`
	ClientCAs  string `yaml:"client_ca_file"`
}

// ClientAuthTypes are the values -server.http-tls-client-auth accepts, as
// dskit's server does (through Prometheus' exporter-toolkit).
var ClientAuthTypes = []string{"NoClientCert", "RequestClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"}

// RegisterFlagsWithPrefix registers <prefix>-tls-cert-path, -key-path,
// -client-auth and -ca-path (prefix server.http or server.grpc, as dskit).
func (c *ServerTLS) RegisterFlagsWithPrefix(prefix, what string, f *flag.FlagSet) {
	f.StringVar(&c.CertPath, prefix+"-tls-cert-path", "", what+" TLS server cert path. With it (and the key) the port serves TLS only; the files are reloaded when they change.")
	f.StringVar(&c.KeyPath, prefix+"-tls-key-path", "", what+" TLS server key path.")
	f.StringVar(&c.ClientAuth, prefix+"-tls-client-auth", "", what+" TLS Client Auth type: "+strings.Join(ClientAuthTypes, ", ")+". Default: NoClientCert.")
	f.StringVar(&c.ClientCAs, prefix+"-tls-ca-path", "", what+" TLS Client CA path: the CAs client certificates are verified against.")
}

// Enabled reports whether the HTTP port serves TLS.
func (c *ServerTLS) Enabled() bool { return c.CertPath != "" || c.KeyPath != "" }

// ClientAuthType maps client_auth_type onto crypto/tls.
func (c *ServerTLS) ClientAuthType() (tls.ClientAuthType, error) {
	switch c.ClientAuth {
	case "", "NoClientCert":
		return tls.NoClientCert, nil
	case "RequestClientCert":
		return tls.RequestClientCert, nil
	case "RequireAnyClientCert", "RequireClientCert": // the second: an older name dskit still accepts
		return tls.RequireAnyClientCert, nil
	case "VerifyClientCertIfGiven":
		return tls.VerifyClientCertIfGiven, nil
	case "RequireAndVerifyClientCert":
		return tls.RequireAndVerifyClientCert, nil
	}
	return 0, fmt.Errorf("client_auth_type: unknown value %q (one of %s)", c.ClientAuth, strings.Join(ClientAuthTypes, ", "))
}

// Validate reports settings a server cannot serve with (files are read
// when the server is built); the caller names the block.
func (c *ServerTLS) Validate() error {
	auth, err := c.ClientAuthType()
	if err != nil {
		return err
	}
	switch {
	case !c.Enabled():
		if c.ClientAuth != "" || c.ClientCAs != "" {
			return errors.New("client_auth_type and client_ca_file need cert_file and key_file")
		}
	case c.CertPath == "" || c.KeyPath == "":
		return errors.New("cert_file and key_file go together")
	case c.ClientCAs != "" && auth == tls.NoClientCert:
		// As dskit: a CA that would never be used is a mistake.
		return errors.New("client_ca_file is set but client_auth_type does not ask for client certificates")
	case c.ClientCAs == "" && (auth == tls.VerifyClientCertIfGiven || auth == tls.RequireAndVerifyClientCert):
		return fmt.Errorf("client_auth_type %s needs client_ca_file", c.ClientAuth)
	}
	return nil
}

// validateClientTLS refuses TLS files given while TLS is off: dskit would
// silently connect in plaintext.
func validateClientTLS(block string, enabled bool, c *dstls.ClientConfig) error {
	if enabled {
		if (c.CertPath == "") != (c.KeyPath == "") {
			return fmt.Errorf("%s: tls_cert_path and tls_key_path go together", block)
		}
		return nil
	}
	if c.CertPath != "" || c.KeyPath != "" || c.CAPath != "" || c.ServerName != "" || c.InsecureSkipVerify || c.CipherSuites != "" || c.MinVersion != "" {
		return fmt.Errorf("%s: TLS settings are given but tls_enabled is false", block)
	}
	return nil
}
