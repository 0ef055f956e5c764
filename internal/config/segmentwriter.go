package config

import (
	"flag"
	"time"
)

// SegmentWriter is how the distributor finds and calls segment-writers.
// Owned by the placement work (issue 9); extend here.
type SegmentWriter struct {
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout"`
}

func (c *SegmentWriter) RegisterFlags(f *flag.FlagSet) {
	f.DurationVar(&c.HeartbeatTimeout, "segment-writer.ring.heartbeat-timeout", time.Minute, "A segment-writer whose last heartbeat is older than this is not used.")
}
