package config

import (
	"strings"
	"testing"
	"time"
)

// The debug_info block and Pyroscope's -debug-info.* flags, flags winning.
func TestDebugInfoConfig(t *testing.T) {
	file := writeFile(t, t.TempDir(), "config.yaml", `
debug_info:
  enabled: false
  max_upload_size: 1000
  upload_stale_period: 10m
  upload_timeout: 1m
`)
	def := Defaults().DebugInfo
	if !def.Enabled || def.MaxUploadSize != 1<<30 || def.UploadStalePeriod != 5*time.Minute || def.UploadTimeout != 2*time.Minute {
		t.Fatalf("defaults: %+v", def)
	}
	c, err := load(t, "-config.file", file, "-debug-info.max-upload-size=2000")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.DebugInfo; got.Enabled || got.MaxUploadSize != 2000 || got.UploadStalePeriod != 10*time.Minute || got.UploadTimeout != time.Minute {
		t.Fatalf("loaded: %+v", got)
	}
}

func TestDebugInfoValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*DebugInfo)
		err  string
	}{
		{name: "defaults", mod: func(*DebugInfo) {}},
		{name: "timeout at the stale threshold", mod: func(c *DebugInfo) { c.UploadTimeout = 7 * time.Minute }},
		{name: "timeout past the stale threshold", mod: func(c *DebugInfo) { c.UploadTimeout = 7*time.Minute + time.Second }, err: "exceeds the stale threshold 7m0s"},
		{name: "disabled, any timeout", mod: func(c *DebugInfo) { c.Enabled, c.UploadTimeout = false, time.Hour }},
		{name: "negative size", mod: func(c *DebugInfo) { c.MaxUploadSize = -1 }, err: "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults().DebugInfo
			tc.mod(&c)
			err := c.Validate()
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Validate: %v, want %q", err, tc.err)
			}
		})
	}
}
