package main

import (
	"crypto/tls"
	"fmt"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/credentials"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/tlsreload"
)

// The certificate reloaders, one per kind of connection, each a service
// that the part using its certificates depends on.
const (
	svcServerTLS     = "server-tls"
	svcWriterTLS     = "segment-writer-tls"
	svcMemberlistTLS = "memberlist-tls"
)

// tlsReloadInterval is how often certificate files are read (tests shorten it).
var tlsReloadInterval = tlsreload.DefaultInterval

// tlsParts are the TLS settings of the distributor's connections and the
// reloaders that keep their files current.
type tlsParts struct {
	// server is the HTTP port's config; nil: plaintext.
	server *tls.Config
	// writers secure segment-writer connections; nil: the client's default.
	writers credentials.TransportCredentials

	services map[string]services.Service
	// dependents names, per reloader, the part that uses it.
	dependents map[string]string
}

func newTLSParts(cfg *config.Config, logger log.Logger, reg prometheus.Registerer) (*tlsParts, error) {
	p := &tlsParts{services: map[string]services.Service{}, dependents: map[string]string{}}
	opts := tlsreload.Options{Interval: tlsReloadInterval, Logger: logger, Registerer: reg}

	h := cfg.Server.HTTPTLS
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("server.http_tls_config: %w", err)
	}
	if h.Enabled() {
		auth, _ := h.ClientAuthType()
		r, err := tlsreload.New("server", tlsreload.Files{CertPath: h.CertPath, KeyPath: h.KeyPath, CAPath: h.ClientCAs}, opts)
		if err != nil {
			return nil, err
		}
		p.server = r.ServerConfig(&tls.Config{
			ClientAuth: auth,
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"h2", "http/1.1"},
		})
		p.add(svcServerTLS, r, svcServer)
	}

	if g := cfg.SegmentWriter.GRPCClient; g.TLSEnabled {
		// dskit's config: server name, verification, versions and ciphers.
		base, err := g.TLS.GetTLSConfig()
		if err != nil {
			return nil, fmt.Errorf("segment-writer TLS: %w", err)
		}
		files := tlsreload.Files{CertPath: g.TLS.CertPath, KeyPath: g.TLS.KeyPath, CAPath: g.TLS.CAPath}
		if files != (tlsreload.Files{}) {
			r, err := tlsreload.New("segment-writer", files, opts)
			if err != nil {
				return nil, err
			}
			p.writers = tlsreload.GRPCCredentials(r.ClientConfig(base))
			p.add(svcWriterTLS, r, svcWriterClient)
		} else {
			p.writers = credentials.NewTLS(base)
		}
	}

	if m := cfg.Memberlist; m.TLSEnabled && (m.TLS.CertPath != "" || m.TLS.CAPath != "") {
		// dskit's gossip transport reads its certificate and CAs once, when
		// it starts (only its client certificate is read per connection):
		// say so when the files change, so a rotation is not mistaken for
		// done.
		wopts := opts
		wopts.Registerer = nil
		wopts.OnReload = func(s *tlsreload.Snapshot) {
			level.Warn(logger).Log(append([]any{"msg", "memberlist TLS files changed; the gossip transport keeps the certificate and CAs it started with until the distributor restarts"}, s.LogValues()...)...)
		}
		r, err := tlsreload.New("memberlist", tlsreload.Files{CertPath: m.TLS.CertPath, KeyPath: m.TLS.KeyPath, CAPath: m.TLS.CAPath}, wopts)
		if err != nil {
			return nil, err
		}
		p.add(svcMemberlistTLS, r, svcMemberlist)
	}
	return p, nil
}

func (p *tlsParts) add(name string, r *tlsreload.Reloader, dependent string) {
	p.services[name] = r
	p.dependents[name] = dependent
}

// withDependencies is deps plus each reloader as a dependency of its user.
func (p *tlsParts) withDependencies(deps map[string][]string) map[string][]string {
	out := make(map[string][]string, len(deps)+len(p.dependents))
	for name, d := range deps {
		out[name] = append([]string(nil), d...)
	}
	for reloader, user := range p.dependents {
		out[user] = append(out[user], reloader)
	}
	return out
}
