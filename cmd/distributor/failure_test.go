package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyrodist/pyrodist/test/testutil/sockets"
)

// TestPartFailureEndsTheProcess: when the memberlist transport's listener
// dies under a running distributor, /ready turns false and the process ends
// with a non-zero exit and one log line that says why. (dskit's KV keeps
// running without its listener; before the service graph the distributor
// went on answering /ready while it could no longer hear about writers.)
func TestPartFailureEndsTheProcess(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("needs Linux's socket tables")
	}
	const ip, gossipIP = "127.0.0.1", "127.0.0.77"
	w := startFakeWriter(t, ip, 0)
	logs := &syncBuffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- run([]string{
			"-server.http-listen-address=" + ip, "-server.http-listen-port=0",
			"-shutdown-delay=100ms",
			"-memberlist.bind-addr=" + gossipIP, "-memberlist.bind-port=0",
			fmt.Sprintf("-memberlist.join=%s:%d", ip, w.GossipPort()),
			"-memberlist.leave-timeout=1s", "-memberlist.broadcast-timeout-for-local-updates-on-shutdown=1s",
			"-memberlist.transport-check-interval=100ms",
			"-distributor.ring.instance-id=dist-failure-test", "-distributor.ring.instance-addr=" + ip,
		}, logs)
	}()

	serving := regexp.MustCompile(`msg="distributor serving" addr=(\S+)`)
	var base string
	for i := 0; i < 300 && base == ""; i++ {
		if m := serving.FindStringSubmatch(logs.String()); m != nil {
			base = "http://" + m[1]
		}
		time.Sleep(50 * time.Millisecond)
	}
	if base == "" {
		t.Fatalf("the distributor never served:\n%s", logs)
	}
	ready := func() int { return readyCode(base) }
	awaitReady(base)
	if code := ready(); code != 200 {
		t.Fatalf("/ready = %d before the failure:\n%s", code, logs)
	}

	sockets.KillListener(t, gossipIP)

	sawNotReady := false
	var code int
	deadline := time.After(30 * time.Second)
wait:
	for {
		select {
		case code = <-exit:
			break wait
		case <-deadline:
			t.Fatalf("the distributor kept running after its memberlist listener died:\n%s", logs)
		default:
			if ready() == http.StatusServiceUnavailable {
				sawNotReady = true
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if code == 0 {
		t.Errorf("exit code 0 after a part failed")
	}
	if !sawNotReady {
		t.Errorf("/ready never answered 503 between the failure and the exit")
	}
	var failed []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `msg="distributor failed"`) {
			failed = append(failed, l)
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0], "level=error") ||
		!strings.Contains(failed[0], "memberlist transport no longer listens") {
		t.Errorf("want one error line naming the failure, got %q\nlogs:\n%s", failed, logs)
	}
}

// syncBuffer is a log sink the test reads while the distributor writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
