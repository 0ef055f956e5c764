package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/pyrodist/pyrodist/internal/config"
)

// TestServeWithFilesystemStorage: a distributor configured with a
// filesystem bucket starts, becomes ready, and its storage service built
// and checked the bucket (its metrics say so on /metrics).
func TestServeWithFilesystemStorage(t *testing.T) {
	const ip = "127.0.0.1"
	w := startFakeWriter(t, ip, 0)
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, err := config.Load(fs, []string{
		"-server.http-listen-address=" + ip, "-server.http-listen-port=0", "-shutdown-delay=0s",
		"-memberlist.bind-addr=" + ip, "-memberlist.bind-port=0",
		fmt.Sprintf("-memberlist.join=%s:%d", ip, w.GossipPort()),
		"-memberlist.leave-timeout=1s", "-memberlist.broadcast-timeout-for-local-updates-on-shutdown=1s",
		"-distributor.ring.instance-id=dist-storage-test", "-distributor.ring.instance-addr=" + ip,
		"-storage.backend=filesystem", "-storage.filesystem.dir=" + t.TempDir(), "-storage.prefix=pyro",
	})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + startServing(t, cfg, log.NewNopLogger()).addr
	awaitReady(base)
	if code := readyCode(base); code != 200 {
		t.Fatalf("/ready = %d", code)
	}
	var metrics string
	for i := 0; i < 100 && !strings.Contains(metrics, "pyrodist_storage_bucket_ready 1"); i++ {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"pyrodist_storage_bucket_ready 1", `objstore_bucket_operations_total{bucket="storage",operation="exists"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestStorageFlagsAndErrors: -help documents Pyroscope's -storage.* flags,
// and a storage block that names a backend it cannot use stops the
// distributor at load (exit 2) with a message naming the key.
func TestStorageFlagsAndErrors(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-help"}, &out); code != 0 {
		t.Fatalf("-help: exit %d", code)
	}
	for _, f := range []string{
		"storage.backend", "storage.prefix", "storage.s3.bucket-name", "storage.s3.secret-access-key",
		"storage.gcs.service-account", "storage.azure.account-key", "storage.swift.password",
		"storage.cos.secret-key", "storage.filesystem.dir",
	} {
		if !strings.Contains(out.String(), "  -"+f+" ") {
			t.Errorf("-help does not document -%s", f)
		}
	}
	out.Reset()
	if code := run([]string{"-storage.backend=s3", "-storage.s3.endpoint=minio:9000"}, &out); code != 2 {
		t.Errorf("invalid storage: exit %d, want 2", code)
	}
	if !strings.Contains(out.String(), "storage.s3: bucket_name is required") {
		t.Errorf("message: %s", out.String())
	}
}
