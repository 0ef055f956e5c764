package main

import (
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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

	return "http://" + startServing(t, &cfg, log.NewNopLogger()).addr
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

// An upload through the distributor, configured as the binary is (flags
// through config.Load, a filesystem storage backend with a prefix), lands
// where Pyroscope puts it: <prefix>/debug-info/<tenant>/<gnu_build_id>/.
func TestDebuginfoUploadLandsInStorage(t *testing.T) {
	dir := t.TempDir()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, err := config.Load(fs, []string{"-storage.backend=filesystem", "-storage.filesystem.dir=" + dir, "-storage.prefix=pyro"})
	if err != nil {
		t.Fatal(err)
	}
	base := startDistributor(t, *cfg)
	const id = "0123456789abcdef0123456789abcdef01234567"
	ctx := context.Background()
	c := debuginfov1alpha1connect.NewDebuginfoServiceClient(http.DefaultClient, base)
	resp, err := c.ShouldInitiateUpload(ctx, connect.NewRequest(&debuginfov1alpha1.ShouldInitiateUploadRequest{
		File: &debuginfov1alpha1.FileMetadata{GnuBuildId: id, Name: "app", Type: debuginfov1alpha1.FileMetadata_TYPE_EXECUTABLE_NO_TEXT},
	}))
	if err != nil || !resp.Msg.ShouldInitiateUpload {
		t.Fatalf("ShouldInitiateUpload: %v, %v", resp, err)
	}
	up, err := http.Post(base+debuginfo.UploadPathPrefix+id, "application/octet-stream", strings.NewReader("\x7fELF"))
	if err != nil {
		t.Fatal(err)
	}
	up.Body.Close()
	if up.StatusCode != http.StatusOK {
		t.Fatalf("upload: %d", up.StatusCode)
	}
	if _, err := c.UploadFinished(ctx, connect.NewRequest(&debuginfov1alpha1.UploadFinishedRequest{GnuBuildId: id})); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "pyro", "debug-info", "anonymous", id)
	exe, err := os.ReadFile(filepath.Join(folder, "exe"))
	if err != nil || string(exe) != "\x7fELF" {
		t.Fatalf("exe: %q, %v", exe, err)
	}
	md, err := os.ReadFile(filepath.Join(folder, "metadata"))
	if err != nil || !strings.Contains(string(md), "STATE_UPLOADED") {
		t.Fatalf("metadata: %s, %v", md, err)
	}
	list, err := c.ListDebuginfo(ctx, connect.NewRequest(&debuginfov1alpha1.ListDebuginfoRequest{}))
	if err != nil || len(list.Msg.Object) != 1 || list.Msg.Object[0].SizeBytes != 4 {
		t.Fatalf("ListDebuginfo: %v, %v", list, err)
	}
}
