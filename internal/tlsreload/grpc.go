package tlsreload

import (
	"context"
	"crypto/tls"
	"errors"
	"net"

	"google.golang.org/grpc/credentials"
)

// GRPCCredentials are gRPC client transport credentials that take the TLS
// config of each new connection from config, so a connection dialed after
// a reload uses the new CAs and client certificate.
func GRPCCredentials(config func() *tls.Config) credentials.TransportCredentials {
	return &clientCreds{config: config}
}

type clientCreds struct {
	config     func() *tls.Config
	serverName string // OverrideServerName's, if called
}

func (c *clientCreds) tls() credentials.TransportCredentials {
	cfg := c.config()
	if c.serverName != "" {
		cfg = cfg.Clone()
		cfg.ServerName = c.serverName
	}
	return credentials.NewTLS(cfg)
}

func (c *clientCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.tls().ClientHandshake(ctx, authority, conn)
}

func (c *clientCreds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("tlsreload: client credentials cannot serve")
}

func (c *clientCreds) Info() credentials.ProtocolInfo { return c.tls().Info() }

func (c *clientCreds) Clone() credentials.TransportCredentials {
	cp := *c
	return &cp
}

// OverrideServerName is deprecated in gRPC but still part of the interface.
func (c *clientCreds) OverrideServerName(name string) error {
	c.serverName = name
	return nil
}
