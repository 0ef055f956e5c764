package config

import (
	"flag"
	"time"
)

// Server is the one HTTP port (HTTP/1.1 and h2c) that serves every API.
// Owned by the ingest work (issue 3); extend here.
type Server struct {
	HTTPListenAddress string        `yaml:"http_listen_address"`
	HTTPListenPort    int           `yaml:"http_listen_port"`
	ShutdownDelay     time.Duration `yaml:"shutdown_delay"`
	GracefulTimeout   time.Duration `yaml:"graceful_shutdown_timeout"`
}

func (c *Server) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.HTTPListenAddress, "server.http-listen-address", "", "HTTP server listen address.")
	f.IntVar(&c.HTTPListenPort, "server.http-listen-port", 4040, "HTTP server listen port.")
	f.DurationVar(&c.ShutdownDelay, "shutdown-delay", 5*time.Second, "After SIGTERM, how long /ready fails while requests are still served, so load balancers stop sending.")
	f.DurationVar(&c.GracefulTimeout, "server.graceful-shutdown-timeout", 30*time.Second, "How long in-flight requests may take to finish after the server stops accepting new ones.")
}
