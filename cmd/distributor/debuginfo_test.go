package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/go-kit/log"
	debuginfov1alpha1 "github.com/grafana/pyroscope/api/gen/proto/go/debuginfo/v1alpha1"
	"github.com/grafana/pyroscope/api/gen/proto/go/debuginfo/v1alpha1/debuginfov1alpha1connect"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/debuginfo"
)

// startDistributor runs the whole distributor in process with cfg (on
// 127.0.0.1, ports chosen by the system, no cluster to join) and returns
// its HTTP base URL; it stops with the test.
func startDistributor(t *testing.T, cfg config.Config) string {
	t.Helper()
	const ip = "127.0.0.1"
	cfg.Server.HTTPListenAddress, cfg.Server.HTTPListenPort = ip, 0
	cfg.Server.ShutdownDelay = 0
	cfg.Memberlist.BindAddr = []string{ip}
	cfg.Memberlist.BindPort = 0
	cfg.Memberlist.LeaveTimeout = time.Second
	cfg.Memberlist.BroadcastTimeoutOnShutdown = time.Second
	cfg.Memberlist.DistributorRing.InstanceID = "dist-" + t.Name()
	cfg.Memberlist.DistributorRing.InstanceAddr = ip

	stop, stopNow := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- serve(stop, &cfg, log.NewNopLogger(), func(a string) { addrs <- a }) }()
	t.Cleanup(func() {
		stopNow()
		if err := <-served; err != nil {
			t.Errorf("serve returned %v", err)
		}
	})
	select {
	case a := <-addrs:
		return "http://" + a
	case err := <-served:
		t.Fatalf("serve: %v", err)
		return ""
	}
}

// The distributor serves debuginfo.v1alpha1 on its HTTP port; without a
// storage backend agents are told uploads are disabled.
func TestDebuginfoServedWithoutStorage(t *testing.T) {
	base := startDistributor(t, config.Defaults())
	c := debuginfov1alpha1connect.NewDebuginfoServiceClient(http.DefaultClient, base)
	resp, err := c.ShouldInitiateUpload(context.Background(), connect.NewRequest(&debuginfov1alpha1.ShouldInitiateUploadRequest{
		File: &debuginfov1alpha1.FileMetadata{GnuBuildId: "abcd", Type: debuginfov1alpha1.FileMetadata_TYPE_EXECUTABLE_FULL},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Msg.ShouldInitiateUpload || resp.Msg.Reason != debuginfo.ReasonDisabled {
		t.Fatalf("ShouldInitiateUpload: %v", resp.Msg)
	}
}
