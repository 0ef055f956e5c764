package fakewriter

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/pyrodist/pyrodist/internal/config"
)

// grpcTLS are the gRPC server options for c: none without a certificate.
func grpcTLS(c config.ServerTLS) ([]grpc.ServerOption, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("fakewriter: server.grpc_tls_config: %w", err)
	}
	if !c.Enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertPath, c.KeyPath)
	if err != nil {
		return nil, fmt.Errorf("fakewriter: gRPC TLS: %w", err)
	}
	auth, _ := c.ClientAuthType()
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: auth, MinVersion: tls.VersionTLS12}
	if c.ClientCAs != "" {
		pem, err := os.ReadFile(c.ClientCAs)
		if err != nil {
			return nil, fmt.Errorf("fakewriter: gRPC TLS: %w", err)
		}
		tc.ClientCAs = x509.NewCertPool()
		if !tc.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("fakewriter: gRPC TLS: no certificate in " + c.ClientCAs)
		}
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(tc))}, nil
}
