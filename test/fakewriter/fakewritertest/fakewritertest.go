// Package fakewritertest runs segment-writer simulators inside a test
// process: listeners on one loopback IP with kernel-chosen ports, and
// heartbeat and leave timings short enough for tests.
package fakewritertest

import (
	"context"
	"testing"
	"time"

	"github.com/pyrodist/pyrodist/test/fakewriter"
)

// Config is a simulator config for instance id in zone, listening on ip.
// Callers adjust it (join targets, cluster label, faults) before Start.
func Config(id, zone, ip string) fakewriter.Config {
	cfg := fakewriter.DefaultConfig()
	cfg.GRPCListenAddress, cfg.GRPCListenPort = ip, 0
	cfg.HTTPListenAddress, cfg.HTTPListenPort = ip, 0
	cfg.Memberlist.TCPTransport.BindAddrs = []string{ip}
	cfg.Memberlist.TCPTransport.BindPort = 0
	cfg.Memberlist.NodeName = id
	cfg.Memberlist.LeaveTimeout = time.Second
	cfg.Memberlist.BroadcastTimeoutForLocalUpdatesOnShutdown = time.Second
	cfg.Lifecycler.ID = id
	cfg.Lifecycler.Zone = zone
	cfg.Lifecycler.Addr = ip
	cfg.Lifecycler.HeartbeatPeriod = 200 * time.Millisecond
	return cfg
}

// Start runs a simulator until it is ACTIVE in the ring and stops it when the
// test ends.
func Start(t testing.TB, cfg fakewriter.Config) *fakewriter.Writer {
	t.Helper()
	w, err := fakewriter.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s := time.Now()
		_ = w.Stop(context.Background())
		t.Logf("writer %s stopped in %v", cfg.Lifecycler.ID, time.Since(s))
	})
	return w
}
