package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return Load(fs, args)
}

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "config.yaml", `
server:
  http_listen_port: 4100
  shutdown_delay: 2s
multitenancy_enabled: true
memberlist:
  join_members: [writers:7946]
limits:
  ingestion_rate_mb: 8
  max_profile_size_bytes: 1024
  adaptive_placement_tenant_shards: 3
runtime_config:
  file: /etc/pyrodist/overrides.yaml
`)
	cases := []struct {
		name  string
		args  []string
		check func(t *testing.T, c *Config)
	}{
		{"defaults", nil, func(t *testing.T, c *Config) {
			if c.Server.HTTPListenPort != 4040 || c.MultitenancyEnabled || c.Limits.IngestionRateMB != 4 ||
				c.Limits.IngestionBodyLimitMB != 256 || c.Limits.MaxProfileSizeBytes != 4<<20 || c.RuntimeConfig.Period != 10*time.Second {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{"yaml over defaults", []string{"-config.file", file}, func(t *testing.T, c *Config) {
			if c.Server.HTTPListenPort != 4100 || c.Server.ShutdownDelay != 2*time.Second || !c.MultitenancyEnabled ||
				c.Limits.IngestionRateMB != 8 || c.Limits.MaxProfileSizeBytes != 1024 || c.Limits.Placement.TenantShards != 3 ||
				c.RuntimeConfig.File != "/etc/pyrodist/overrides.yaml" || len(c.Memberlist.JoinMembers) != 1 {
				t.Errorf("yaml: %+v", c)
			}
			// Keys the file does not name keep their defaults.
			if c.Limits.IngestionBurstSizeMB != 2 || c.Server.GracefulTimeout != 30*time.Second {
				t.Errorf("defaults lost: %+v", c)
			}
		}},
		{"flags over yaml", []string{"--config.file=" + file, "-server.http-listen-port=5000", "-distributor.ingestion-rate-limit-mb", "1", "-auth.multitenancy-enabled=false"}, func(t *testing.T, c *Config) {
			if c.Server.HTTPListenPort != 5000 || c.Limits.IngestionRateMB != 1 || c.MultitenancyEnabled {
				t.Errorf("flags: %+v", c)
			}
			if c.Limits.MaxProfileSizeBytes != 1024 {
				t.Errorf("yaml value lost: %d", c.Limits.MaxProfileSizeBytes)
			}
		}},
		{"flag before config.file still wins", []string{"-server.http-listen-port=5001", "-config.file", file}, func(t *testing.T, c *Config) {
			if c.Server.HTTPListenPort != 5001 {
				t.Errorf("port %d", c.Server.HTTPListenPort)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestLoadExpandEnv(t *testing.T) {
	t.Setenv("PYRODIST_TEST_PORT", "4242")
	file := writeFile(t, t.TempDir(), "env.yaml", "server:\n  http_listen_port: ${PYRODIST_TEST_PORT}\n")
	c, err := load(t, "-config.file", file, "-config.expand-env")
	if err != nil || c.Server.HTTPListenPort != 4242 {
		t.Fatalf("expanded: %v %v", c, err)
	}
	if _, err := load(t, "-config.file", file); err == nil {
		t.Fatal("without -config.expand-env the placeholder must not parse as a port")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	unknown := writeFile(t, dir, "unknown.yaml", "server:\n  http_listen_prot: 1\n")
	badType := writeFile(t, dir, "bad.yaml", "limits:\n  ingestion_rate_mb: lots\n")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-config.file", unknown}, "http_listen_prot"},
		{[]string{"-config.file", badType}, "lots"},
		{[]string{"-config.file", filepath.Join(dir, "missing.yaml")}, "reading config file"},
		{[]string{"-config.file"}, "needs an argument"},
		{[]string{"-no-such-flag"}, "no-such-flag"},
		{[]string{"-adaptive-placement.placement-rules-update-interval=0s"}, "placement_rules_update_interval must be positive"},
	}
	for _, tc := range cases {
		if _, err := load(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
	rules := writeFile(t, dir, "rules.yaml", "adaptive_placement:\n  placement_rules_update_interval: 30s\n")
	if c, err := load(t, "-config.file", rules); err != nil || c.AdaptivePlacement.PlacementRulesUpdateInterval != 30*time.Second {
		t.Errorf("adaptive_placement block: %v, %+v", err, c)
	}
	if c, err := load(t); err != nil || c.AdaptivePlacement.PlacementRulesUpdateInterval != 15*time.Second {
		t.Errorf("default placement rules interval: %v, %+v", err, c)
	}
	if c, err := load(t, "-config.file", writeFile(t, dir, "empty.yaml", "")); err != nil || c.Server.HTTPListenPort != 4040 {
		t.Errorf("empty file: %v", err)
	}
}
