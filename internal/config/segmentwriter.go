package config

import (
	"flag"
	"fmt"
	"time"

	dstls "github.com/grafana/dskit/crypto/tls"
)

// SegmentWriter is how the distributor finds and calls segment-writers.
type SegmentWriter struct {
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout"`
	// GRPCClient has the keys and defaults of Pyroscope's
	// segment_writer.grpc_client_config (dskit grpcclient, with the
	// overrides of pkg/pyroscope/pyroscope.go at 3fe6a45).
	GRPCClient SegmentWriterGRPCClient `yaml:"grpc_client_config"`
	// AttemptTimeout is how long a push attempt runs before its writer is
	// checked with a health probe: one that answers keeps the call (a slow
	// writer is not abandoned, which would store the profile twice); one
	// that does not is left for the next candidate when this long remains.
	// Without a request deadline a push is bounded to 6 times this.
	// Pyroscope has no such check: only the caller's context bounds an
	// attempt (pkg/segmentwriter/client/client.go at 3fe6a45).
	AttemptTimeout time.Duration `yaml:"attempt_timeout"`
}

func (c *SegmentWriter) RegisterFlags(f *flag.FlagSet) {
	f.DurationVar(&c.HeartbeatTimeout, "segment-writer.ring.heartbeat-timeout", time.Minute, "A segment-writer whose last heartbeat is older than this is not used.")
	c.GRPCClient.RegisterFlagsWithPrefix("segment-writer.grpc-client-config", f)
	f.DurationVar(&c.AttemptTimeout, "segment-writer.attempt-timeout", 5*time.Second, "How long a push attempt to a segment-writer runs before the writer is probed: one that answers keeps the call until the request's deadline, one that does not is left for the next candidate if this long remains. Without a request deadline, a push takes at most 6 times this. 0 disables both.")
}

// Validate reports settings the client cannot use.
func (c *SegmentWriter) Validate() error {
	if c.AttemptTimeout < 0 {
		return fmt.Errorf("segment_writer.attempt_timeout must not be negative, got %s", c.AttemptTimeout)
	}
	return c.GRPCClient.Validate()
}

// SegmentWriterGRPCClient are the gRPC connection settings for
// segment-writers. Keepalive (20 s ping, 10 s timeout, also without
// streams) is fixed, as in dskit.
type SegmentWriterGRPCClient struct {
	MaxRecvMsgSize          int           `yaml:"max_recv_msg_size"`
	MaxSendMsgSize          int           `yaml:"max_send_msg_size"`
	ConnectTimeout          time.Duration `yaml:"connect_timeout"`
	ConnectBackoffBaseDelay time.Duration `yaml:"connect_backoff_base_delay"`
	ConnectBackoffMaxDelay  time.Duration `yaml:"connect_backoff_max_delay"`
	// TLS as dskit's grpcclient: tls_enabled and the inline tls_* keys.
	TLSEnabled bool               `yaml:"tls_enabled"`
	TLS        dstls.ClientConfig `yaml:",inline"`
}

func (c *SegmentWriterGRPCClient) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	f.IntVar(&c.MaxRecvMsgSize, prefix+".grpc-max-recv-msg-size", 100<<20, "gRPC client max receive message size (bytes).")
	f.IntVar(&c.MaxSendMsgSize, prefix+".grpc-max-send-msg-size", 100<<20, "gRPC client max send message size (bytes).")
	// Pyroscope lowers dskit's 5s: a writer that cannot connect within a
	// second is skipped for the next candidate.
	f.DurationVar(&c.ConnectTimeout, prefix+".connect-timeout", time.Second, "Minimum time to establish a connection to a segment-writer.")
	f.DurationVar(&c.ConnectBackoffBaseDelay, prefix+".connect-backoff-base-delay", time.Second, "Initial backoff delay after a failed connection attempt.")
	f.DurationVar(&c.ConnectBackoffMaxDelay, prefix+".connect-backoff-max-delay", 5*time.Second, "Maximum backoff delay between connection attempts.")
	f.BoolVar(&c.TLSEnabled, prefix+".tls-enabled", false, "Enable TLS to segment-writers; needed for any other TLS flag to take effect. The files are reloaded when they change.")
	c.TLS.RegisterFlagsWithPrefix(prefix, f)
}

func (c *SegmentWriterGRPCClient) Validate() error {
	switch {
	case c.MaxRecvMsgSize <= 0 || c.MaxSendMsgSize <= 0:
		return fmt.Errorf("segment_writer.grpc_client_config message size limits must be positive")
	case c.ConnectTimeout <= 0:
		return fmt.Errorf("segment_writer.grpc_client_config.connect_timeout must be positive")
	case c.ConnectBackoffBaseDelay <= 0 || c.ConnectBackoffMaxDelay < c.ConnectBackoffBaseDelay:
		return fmt.Errorf("segment_writer.grpc_client_config connect backoff delays must be positive, base <= max")
	}
	return validateClientTLS("segment_writer.grpc_client_config", c.TLSEnabled, &c.TLS)
}
