package segmentwriter

import (
	"fmt"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// transportCredentials secure the writer connections as configured.
func transportCredentials(cfg Config) (credentials.TransportCredentials, error) {
	g := cfg.GRPCClient
	if !g.TLSEnabled {
		return insecure.NewCredentials(), nil
	}
	if cfg.Credentials != nil {
		return cfg.Credentials, nil
	}
	tc, err := g.TLS.GetTLSConfig()
	if err != nil {
		return nil, fmt.Errorf("segment-writer TLS: %w", err)
	}
	return credentials.NewTLS(tc), nil
}
