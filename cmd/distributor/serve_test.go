package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/go-kit/log"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/ringhealth"
	"github.com/pyrodist/pyrodist/test/fakewriter"
	"github.com/pyrodist/pyrodist/test/fakewriter/fakewritertest"
)

func startFakeWriter(t *testing.T, ip string, latency time.Duration) *fakewriter.Writer {
	t.Helper()
	cfg := fakewritertest.Config("sw-serve-test", "", ip)
	cfg.Latency = latency
	return fakewritertest.Start(t, cfg)
}

// readyCode is the status of GET /ready, -1 when it cannot be had.
func readyCode(base string) int {
	resp, err := http.Get(base + "/ready")
	if err != nil {
		return -1
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// serving is a distributor run in process by a test, through serve.
type serving struct {
	addr   string // host:port of its HTTP port
	cancel context.CancelFunc
	served chan error
	once   sync.Once
	err    error
}

// startServing runs serve with cfg and logger until shutdown or the end of
// the test, and waits for its HTTP listener. At the end of the test a serve
// that returned an error fails it.
func startServing(t *testing.T, cfg *config.Config, logger log.Logger) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{cancel: cancel, served: make(chan error, 1)}
	addrs := make(chan string, 1)
	go func() { s.served <- serve(ctx, cfg, logger, func(a string) { addrs <- a }) }()
	t.Cleanup(func() {
		if err := s.shutdown(); err != nil {
			t.Errorf("serve returned %v", err)
		}
	})
	select {
	case s.addr = <-addrs:
	case err := <-s.served:
		s.once.Do(func() { s.err = err })
		t.Fatalf("serve: %v", err)
	}
	return s
}

// shutdown stops serving (SIGTERM's path) and returns what serve returned.
func (s *serving) shutdown() error {
	s.once.Do(func() {
		s.cancel()
		s.err = <-s.served
	})
	return s.err
}

// awaitReady polls /ready for up to 15 s until it answers 200.
func awaitReady(base string) {
	for i := 0; i < 300 && readyCode(base) != 200; i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

func heapPprof(t *testing.T) []byte {
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestServeShutdownSequence runs the whole distributor in process against a
// segment-writer simulator: it becomes ready once the writer is known,
// forwards a push, and on stop fails /ready at once, keeps serving for the
// shutdown delay, lets an in-flight push finish, then returns.
func TestServeShutdownSequence(t *testing.T) {
	const ip = "127.0.0.1"
	w := startFakeWriter(t, ip, 500*time.Millisecond)

	cfg := config.Defaults()
	cfg.Server.HTTPListenAddress, cfg.Server.HTTPListenPort = ip, 0
	cfg.Server.ShutdownDelay = 300 * time.Millisecond
	cfg.Server.GracefulTimeout = 20 * time.Second
	cfg.Memberlist.BindAddr = []string{ip}
	cfg.Memberlist.BindPort = 0
	cfg.Memberlist.JoinMembers = []string{fmt.Sprintf("%s:%d", ip, w.GossipPort())}
	cfg.Memberlist.LeaveTimeout = time.Second
	cfg.Memberlist.BroadcastTimeoutOnShutdown = time.Second
	cfg.Memberlist.DistributorRing.InstanceID = "dist-serve-test"
	cfg.Memberlist.DistributorRing.InstanceAddr = ip
	// The writer registers without a zone: this distributor's own zone has
	// none, so its ring report says it falls back.
	cfg.Distributor.Zone, cfg.Distributor.PreferSameZone = "zone-a", true

	srv := startServing(t, &cfg, log.NewNopLogger())
	base := "http://" + srv.addr

	ready := func() int { return readyCode(base) }
	awaitReady(base)
	if code := ready(); code != 200 {
		t.Fatalf("/ready = %d; the writer never became known", code)
	}

	push := func() error { return pushHeap(t, base, "serve-test") }
	if err := push(); err != nil {
		t.Fatalf("push: %v", err)
	}
	if n := len(w.Records()); n != 1 {
		t.Fatalf("writer recorded %d pushes, want 1", n)
	}
	checkRingReport(t, base)

	// A push in flight when the stop arrives: the writer holds it 500ms.
	// Should it not have left the client yet, it lands in the shutdown
	// delay instead; either way it must succeed.
	inflight := make(chan error, 1)
	go func() { inflight <- push() }()
	time.Sleep(100 * time.Millisecond)
	shut := make(chan error, 1)
	go func() { shut <- srv.shutdown() }()
	// During the shutdown delay /ready fails while the port still answers.
	sawNotReady := false
	for i := 0; i < 50 && !sawNotReady; i++ {
		if ready() == http.StatusServiceUnavailable {
			sawNotReady = true
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !sawNotReady {
		t.Error("/ready never answered 503 during the shutdown delay")
	}
	if err := <-inflight; err != nil {
		t.Fatalf("in-flight push failed during shutdown: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if n := len(w.Records()); n != 2 {
		t.Fatalf("writer recorded %d pushes, want 2", n)
	}
}

// checkRingReport reads GET /ring/writers of a distributor of zone-a that
// knows one ACTIVE writer without a zone.
func checkRingReport(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Get(base + ringhealth.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep ringhealth.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatalf("%s: %v", ringhealth.Path, err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("%s: %d %s", ringhealth.Path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if rep.Zone != "zone-a" || !rep.PreferSameZone || rep.Active != 1 || rep.ActiveInZone != 0 || !rep.FallingBack ||
		len(rep.Zones) != 1 || rep.Zones[0].States["ACTIVE"] != 1 || len(rep.Zones[0].Writers) != 1 || rep.Zones[0].Writers[0].ID != "sw-serve-test" {
		t.Errorf("%s: %+v", ringhealth.Path, rep)
	}
}

// pushHeap pushes one heap profile of service to the distributor at base
// over push.v1.
func pushHeap(t *testing.T, base, service string) error {
	t.Helper()
	client := pushv1connect.NewPusherServiceClient(http.DefaultClient, base)
	_, err := client.Push(context.Background(), connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "memory"}, {Name: "service_name", Value: service}},
		Samples: []*pushv1.RawSample{{RawProfile: heapPprof(t)}},
	}}}))
	return err
}
