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
	HTTPReadTimeout   time.Duration `yaml:"http_server_read_timeout"`
	HTTPWriteTimeout  time.Duration `yaml:"http_server_write_timeout"`
	HTTPIdleTimeout   time.Duration `yaml:"http_server_idle_timeout"`
	// MaxConnectionAge makes long-lived client connections reconnect, so a
	// scale-out gets traffic (HTTP/2 GOAWAY, HTTP/1.1 Connection: close).
	MaxConnectionAge time.Duration `yaml:"http_max_connection_age"`
	HTTPTLS          ServerTLS     `yaml:"http_tls_config"`
}

func (c *Server) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.HTTPListenAddress, "server.http-listen-address", "", "HTTP server listen address.")
	f.IntVar(&c.HTTPListenPort, "server.http-listen-port", 4040, "HTTP server listen port.")
	f.DurationVar(&c.ShutdownDelay, "shutdown-delay", 5*time.Second, "After SIGTERM, how long /ready fails while requests are still served, so load balancers stop sending.")
	f.DurationVar(&c.GracefulTimeout, "server.graceful-shutdown-timeout", 30*time.Second, "How long in-flight requests may take to finish after the server stops accepting new ones.")
	f.DurationVar(&c.HTTPReadTimeout, "server.http-read-timeout", 30*time.Second, "Read timeout for an entire HTTP request, including the body.")
	f.DurationVar(&c.HTTPWriteTimeout, "server.http-write-timeout", 30*time.Second, "Write timeout for HTTP responses; it bounds the whole request handling.")
	f.DurationVar(&c.HTTPIdleTimeout, "server.http-idle-timeout", 120*time.Second, "How long an idle keep-alive connection stays open.")
	f.DurationVar(&c.MaxConnectionAge, "server.http-max-connection-age", 5*time.Minute, "After about this long (±10% jitter) a client connection is asked to reconnect (HTTP/2 GOAWAY, HTTP/1.1 Connection: close), so new replicas get traffic. 0 to disable.")
	c.HTTPTLS.RegisterFlagsWithPrefix("server.http", "HTTP", f)
}
