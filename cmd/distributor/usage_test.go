package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/go-kit/log"

	"github.com/pyrodist/pyrodist/internal/config"
)

// TestUsageLimitsLive runs the whole distributor with an overrides file in
// Pyroscope's form that changes while it runs: a sampling rule drops the
// tenant's profiles with success, then a reached ingestion limit lets the
// sample's one profile through to the writer with its annotation and
// refuses the next (429), then the tenant's limits are gone.
func TestUsageLimitsLive(t *testing.T) {
	const ip = "127.0.0.1"
	w := startFakeWriter(t, ip, 0)
	overrides := filepath.Join(t.TempDir(), "overrides.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(overrides, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`overrides:
  anonymous:
    distributor_usage_groups:
      app/${labels.service_name}: '{service_name="usage-test"}'
    distributor_sampling:
      usage_groups:
        app/usage-test:
          probability: 0
`)

	cfg := config.Defaults()
	cfg.Server.HTTPListenAddress, cfg.Server.HTTPListenPort = ip, 0
	cfg.Server.ShutdownDelay = 0
	cfg.Memberlist.BindAddr = []string{ip}
	cfg.Memberlist.BindPort = 0
	cfg.Memberlist.JoinMembers = []string{fmt.Sprintf("%s:%d", ip, w.GossipPort())}
	cfg.Memberlist.LeaveTimeout = time.Second
	cfg.Memberlist.BroadcastTimeoutOnShutdown = time.Second
	cfg.Memberlist.DistributorRing.InstanceID = "dist-usage-test"
	cfg.Memberlist.DistributorRing.InstanceAddr = ip
	cfg.RuntimeConfig = config.RuntimeConfig{File: overrides, Period: 50 * time.Millisecond}

	base := "http://" + startServing(t, &cfg, log.NewNopLogger()).addr
	awaitReady(base)

	push := func() error { return pushHeap(t, base, "usage-test") }
	if err := push(); err != nil {
		t.Fatalf("sampled out: %v, want success", err)
	}
	if n := len(w.Records()); n != 0 {
		t.Fatalf("a sampled-out profile reached the writer (%d pushes)", n)
	}

	// One distributor: the sample admits its one request for sure.
	write(`overrides:
  anonymous:
    ingestion_limit:
      period_type: hour
      period_limit_mb: 128
      limit_reset_time: 1737721086
      limit_reached: true
      sampling:
        num_requests: 1
        period: 1h
`)
	// Until the reload, pushes are still sampled out (success, nothing sent).
	var err error
	for i := 0; i < 200 && len(w.Records()) == 0; i++ {
		if err = push(); err != nil {
			t.Fatalf("the sample's request: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	recs := w.Records()
	if len(recs) != 1 || len(recs[0].Annotations) != 1 || recs[0].Annotations[0].Name != "pyroscope.ingest.throttled" {
		t.Fatalf("writer got %+v, want one push annotated pyroscope.ingest.throttled", recs)
	}
	err = push()
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("over the reached limit: %v, want resource_exhausted", err)
	}

	write("overrides: {}\n")
	for i := 0; i < 200; i++ {
		if err = push(); err == nil {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("after the limits were removed: %v", err)
	}
	if recs := w.Records(); len(recs) != 2 || len(recs[1].Annotations) != 0 {
		t.Fatalf("writer got %+v, want a second push without annotations", recs)
	}
}
