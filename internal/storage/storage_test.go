package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/backoff"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/thanos-io/objstore"

	"github.com/pyrodist/pyrodist/internal/config"
)

// fast keeps the tests' waits short; none of them asserts a duration.
var fast = Options{StartWait: 5 * time.Second, CheckTimeout: 2 * time.Second, Backoff: backoff.Config{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}}

func storageCfg(t *testing.T, args ...string) config.Storage {
	t.Helper()
	c := config.Defaults().Storage
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "backend":
			c.Backend = args[i+1]
		case "prefix":
			c.Prefix = args[i+1]
		case "dir":
			c.Filesystem.Dir = args[i+1]
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func start(t *testing.T, s *Service) {
	t.Helper()
	if err := services.StartAndAwaitRunning(context.Background(), s); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = services.StopAndAwaitTerminated(context.Background(), s) })
}

// TestFilesystemRoundTrip: through the service's bucket an object is
// written under the prefix in the directory, read back, listed and
// deleted, and objstore's metrics count the operations.
func TestFilesystemRoundTrip(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	s := New(storageCfg(t, "backend", "filesystem", "dir", dir, "prefix", "pyro/v2"), fast, log.NewNopLogger(), reg)
	start(t, s)
	bkt := s.Bucket()
	if bkt == nil {
		t.Fatal("no bucket with the filesystem backend")
	}
	ctx := context.Background()
	const name = "adaptive_placement/placement_rules.binpb"
	if err := bkt.Upload(ctx, name, strings.NewReader("rules")); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, "pyro/v2", name))
	if err != nil || string(onDisk) != "rules" {
		t.Fatalf("on disk under the prefix: %q, %v", onDisk, err)
	}
	r, err := bkt.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	_ = r.Close()
	if string(got) != "rules" {
		t.Errorf("read back %q", got)
	}
	var listed []string
	if err := bkt.Iter(ctx, "adaptive_placement/", func(n string) error { listed = append(listed, n); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0] != name {
		t.Errorf("listed %v", listed)
	}
	if err := bkt.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	_, err = bkt.Get(ctx, name)
	if !bkt.IsObjNotFoundErr(err) {
		t.Errorf("after delete: %v, want not found", err)
	}
	if bkt.Provider() != objstore.FILESYSTEM || bkt.Name() != BucketName {
		t.Errorf("provider %s, name %s", bkt.Provider(), bkt.Name())
	}
	if n := testutil.ToFloat64(s.ready); n != 1 {
		t.Errorf("ready gauge %v", n)
	}
	if n, err := testutil.GatherAndCount(reg, "objstore_bucket_operations_total"); err != nil || n == 0 {
		t.Errorf("objstore metrics: %d series, %v", n, err)
	}
}

// TestNoBackend: without a backend the service runs idle and hands out no bucket.
func TestNoBackend(t *testing.T) {
	s := New(config.Defaults().Storage, fast, log.NewNopLogger(), prometheus.NewRegistry())
	start(t, s)
	if s.Bucket() != nil {
		t.Error("a bucket without a backend")
	}
}

// TestUnreachableStoreDoesNotFailStart: an S3 endpoint that refuses
// connections leaves the service running, its bucket answering with
// errors, and the check retried and logged.
func TestUnreachableStoreDoesNotFailStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	c := config.Defaults().Storage
	c.Backend = config.StorageS3
	c.S3.Endpoint, c.S3.BucketName, c.S3.Region, c.S3.Insecure = addr, "profiles", "us-east-1", true
	c.S3.AccessKeyID, c.S3.SecretAccessKey = "k", "s"
	var warned atomic.Bool
	logger := log.LoggerFunc(func(kv ...any) error {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == "msg" && kv[i+1] == "object storage does not answer; retrying" {
				warned.Store(true)
			}
		}
		return nil
	})
	opts := fast
	opts.StartWait, opts.CheckTimeout = 200*time.Millisecond, 100*time.Millisecond
	s := New(c, opts, logger, prometheus.NewRegistry())
	start(t, s)
	if s.State() != services.Running {
		t.Fatalf("state %s", s.State())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := s.Bucket().Exists(ctx, "x"); err == nil {
		t.Error("Exists on an unreachable store succeeded")
	}
	for i := 0; i < 200 && !warned.Load(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !warned.Load() {
		t.Error("no warning logged")
	}
	if n := testutil.ToFloat64(s.ready); n != 0 {
		t.Errorf("ready gauge %v for an unreachable store", n)
	}
}

// TestBuildRetried: while the client cannot be built the bucket answers
// ErrNotReady (with the cause); once a later attempt builds it, the same
// bucket value works.
func TestBuildRetried(t *testing.T) {
	var mu sync.Mutex
	attempts := 0
	s := New(storageCfg(t, "backend", "filesystem", "dir", t.TempDir()), fast, log.NewNopLogger(), prometheus.NewRegistry())
	release := make(chan struct{})
	s.build = func(context.Context, config.Storage, log.Logger) (objstore.Bucket, error) {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		select {
		case <-release:
			return objstore.NewInMemBucket(), nil
		default:
			return nil, errors.New("auth server down")
		}
	}
	bkt := s.Bucket()
	if _, err := bkt.Exists(context.Background(), "x"); !errors.Is(err, ErrNotReady) {
		t.Errorf("before start: %v, want ErrNotReady", err)
	}
	start(t, s)
	_, err := bkt.Exists(context.Background(), "x")
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "auth server down") {
		t.Errorf("while the build fails: %v", err)
	}
	close(release)
	var upErr error
	for i := 0; i < 500; i++ {
		if upErr = bkt.Upload(context.Background(), "x", bytes.NewReader([]byte("1"))); upErr == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if upErr != nil {
		t.Fatalf("bucket never became usable: %v", upErr)
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts < 2 {
		t.Errorf("%d build attempts", attempts)
	}
}

// TestStopDoesNotWaitForABlockedBuild: a build that never returns (an
// authentication that hangs) neither fails start nor holds up stop.
func TestStopDoesNotWaitForABlockedBuild(t *testing.T) {
	opts := fast
	opts.StartWait, opts.StopWait = 50*time.Millisecond, 50*time.Millisecond
	s := New(storageCfg(t, "backend", "filesystem", "dir", t.TempDir()), opts, log.NewNopLogger(), prometheus.NewRegistry())
	unblock := make(chan struct{})
	defer close(unblock)
	s.build = func(context.Context, config.Storage, log.Logger) (objstore.Bucket, error) {
		<-unblock
		return nil, errors.New("unblocked")
	}
	if err := services.StartAndAwaitRunning(context.Background(), s); err != nil {
		t.Fatalf("start: %v", err)
	}
	if _, err := s.Bucket().Exists(context.Background(), "x"); !errors.Is(err, ErrNotReady) {
		t.Errorf("while building: %v, want ErrNotReady", err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- services.StopAndAwaitTerminated(context.Background(), s) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("stop: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("stop waits for a build that never returns")
	}
}
