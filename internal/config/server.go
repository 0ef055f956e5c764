package config

import (
	"flag"
	"time"
)

// Server is the one HTTP port (HTTP/1.1 and h2c) that serves every API.
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
	// A body must arrive at MinBodyRate bytes/s on average once
	// BodyRateGrace has passed: a client that trickles a body holds memory
	// and a connection for as long as it is allowed to.
	MinBodyRate   int64         `yaml:"http_body_min_rate"`
	BodyRateGrace time.Duration `yaml:"http_body_rate_grace_period"`
	// EnablePprof serves /debug/pprof on the ingest port, which clients
	// reach: off by default, as profiling the process costs CPU and its
	// pages reveal the command line.
	EnablePprof bool `yaml:"enable_pprof"`

	HTTPTLS ServerTLS `yaml:"http_tls_config"`
}

func (c *Server) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.HTTPListenAddress, "server.http-listen-address", "", "HTTP server listen address.")
	f.IntVar(&c.HTTPListenPort, "server.http-listen-port", 4040, "HTTP server listen port.")
	f.DurationVar(&c.ShutdownDelay, "shutdown-delay", 5*time.Second, "After SIGTERM, how long /ready fails while requests are still served, so load balancers stop sending.")
	f.DurationVar(&c.GracefulTimeout, "server.graceful-shutdown-timeout", 30*time.Second, "How long in-flight requests may take to finish after the server stops accepting new ones.")
	f.DurationVar(&c.HTTPReadTimeout, "server.http-read-timeout", 30*time.Second, "Read timeout for an entire HTTP request, including the body.")
	f.DurationVar(&c.HTTPWriteTimeout, "server.http-write-timeout", 30*time.Second, "Write timeout for HTTP responses; it bounds the whole request handling.")
	f.DurationVar(&c.HTTPIdleTimeout, "server.http-idle-timeout", 120*time.Second, "How long an idle keep-alive connection stays open.")
	f.Int64Var(&c.MinBodyRate, "server.http-body-min-rate", 8<<10, "Minimum average rate, in bytes/s, at which a request body must arrive once the grace period has passed; slower bodies are dropped (408, or deadline_exceeded for push.v1). 0 to disable.")
	f.DurationVar(&c.BodyRateGrace, "server.http-body-rate-grace-period", 5*time.Second, "How long a request body may take before -server.http-body-min-rate applies.")
	f.BoolVar(&c.EnablePprof, "server.enable-pprof", false, "Serve Go's /debug/pprof endpoints on the HTTP port.")
	f.DurationVar(&c.MaxConnectionAge, "server.http-max-connection-age", 5*time.Minute, "After about this long (±10% jitter) a client connection is asked to reconnect (HTTP/2 GOAWAY, HTTP/1.1 Connection: close), so new replicas get traffic. 0 to disable.")
	c.HTTPTLS.RegisterFlagsWithPrefix("server.http", "HTTP", f)
}
