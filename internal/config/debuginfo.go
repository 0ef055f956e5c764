package config

import (
	"flag"
	"fmt"
	"time"
)

// DebugInfo configures the debuginfo upload service (debuginfo.v1alpha1,
// served on the HTTP port). The flags are Pyroscope's (pkg/debuginfo/store.go
// at 3fe6a45); Pyroscope has no YAML keys for them (yaml:"-"), the keys
// under debug_info are ours (docs/compatibility.md#debuginfo-uploads).
type DebugInfo struct {
	// Enabled false (or no storage backend) makes ShouldInitiateUpload
	// answer that uploads are disabled, so agents upload nothing.
	Enabled           bool          `yaml:"enabled"`
	MaxUploadSize     int64         `yaml:"max_upload_size"`
	UploadStalePeriod time.Duration `yaml:"upload_stale_period"`
	UploadTimeout     time.Duration `yaml:"upload_timeout"`
}

func (c *DebugInfo) RegisterFlags(f *flag.FlagSet) {
	f.BoolVar(&c.Enabled, "debug-info.enabled", true, "Enable debug info uploads; they also need a storage backend.")
	f.Int64Var(&c.MaxUploadSize, "debug-info.max-upload-size", 1<<30, "Maximum size of a single debug info upload in bytes.")
	f.DurationVar(&c.UploadStalePeriod, "debug-info.upload-stale-period", 5*time.Minute, "Period after which a pending upload is considered stale and can be retried.")
	f.DurationVar(&c.UploadTimeout, "debug-info.upload-timeout", 2*time.Minute, "Timeout for a single debug info upload request. Overrides the server's HTTP read and write timeouts for this handler.")
}

// StaleAfter is how long an upload stays in progress before another may
// take over: the stale period plus two minutes, as Pyroscope counts it.
func (c *DebugInfo) StaleAfter() time.Duration { return c.UploadStalePeriod + 2*time.Minute }

// Validate refuses an upload timeout that outlives the stale threshold: a
// second upload could then start while the first still writes.
func (c *DebugInfo) Validate() error {
	switch {
	case c.MaxUploadSize < 0:
		return fmt.Errorf("debug-info.max-upload-size must not be negative, got %d", c.MaxUploadSize)
	case c.Enabled && c.UploadTimeout > c.StaleAfter():
		return fmt.Errorf("debug-info.upload-timeout %s exceeds the stale threshold %s (debug-info.upload-stale-period + 2m); lower the timeout or raise the period",
			c.UploadTimeout, c.StaleAfter())
	}
	return nil
}
