//go:build e2e

// Package e2e proves the whole system on a real local control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kwok nodes in three
// zones, metrics-server), built from Go modules by hack/build-tools.sh:
// `make test-e2e` builds what is missing, then runs these tests.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pyrodist/pyrodist/test/localcluster"
	"github.com/pyrodist/pyrodist/test/testutil/poll"
)

var (
	repoRoot string

	clusterOnce sync.Once
	shared      *localcluster.Cluster
	sharedErr   error
	stateDir    string
)

func TestMain(m *testing.M) {
	root, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	repoRoot = root
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	if stateDir != "" {
		if code == 0 && os.Getenv("E2E_KEEP") == "" {
			os.RemoveAll(stateDir)
		} else {
			fmt.Fprintf(os.Stderr, "e2e state and logs kept in %s\n", stateDir)
		}
	}
	os.Exit(code)
}

// cluster returns the control plane shared by every test, starting it on first
// use. Missing binaries fail the test: `make test-e2e` builds them first.
func cluster(t *testing.T) *localcluster.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		bin, err := localcluster.ToolBinaries(repoRoot)
		if err != nil {
			sharedErr = err
			return
		}
		stateDir, err = os.MkdirTemp("", "pyrodist-e2e-")
		if err != nil {
			sharedErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		shared, sharedErr = localcluster.Start(ctx, localcluster.Options{
			Dir:      stateDir,
			Bin:      bin,
			Progress: os.Stderr,
		})
	})
	if sharedErr != nil {
		t.Fatalf("local control plane: %v", sharedErr)
	}
	return shared
}

// eventually polls f until it returns nil or timeout passes, then fails with f's last error.
func eventually(t *testing.T, timeout time.Duration, what string, f func(ctx context.Context) error) {
	t.Helper()
	if err := poll.Until(context.Background(), timeout, 10*time.Second, 250*time.Millisecond, f); err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}
