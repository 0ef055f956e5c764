package membership_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/kv"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"

	versionv1 "github.com/grafana/pyroscope/api/gen/proto/go/version/v1"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/membership"
	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/test/fakewriter"
	"github.com/pyrodist/pyrodist/test/fakewriter/fakewritertest"
	"github.com/pyrodist/pyrodist/test/testutil/sockets"
)

// Every member of these tests carries a cluster label: a member that did not
// pass ours on would be dropped by the writers and never see the ring.
const clusterLabel = "pyrodist-test"

// startWriter runs an in-process segment-writer simulator on ip with random
// ports, joining join (memberlist host:port) when set.
func startWriter(t *testing.T, id, zone, ip, join string) *fakewriter.Writer {
	t.Helper()
	cfg := fakewritertest.Config(id, zone, ip)
	cfg.Memberlist.ClusterLabel = clusterLabel
	if join != "" {
		cfg.Memberlist.JoinMembers = []string{join}
	}
	return fakewritertest.Start(t, cfg)
}

type addrLog struct {
	mu   sync.Mutex
	last []string
}

func (a *addrLog) set(addrs []string) { a.mu.Lock(); a.last = addrs; a.mu.Unlock() }
func (a *addrLog) get() []string      { a.mu.Lock(); defer a.mu.Unlock(); return a.last }

// errLog keeps the error-level log lines of a member.
type errLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *errLog) Log(kv ...interface{}) error {
	isErr := false
	for i := 0; i+1 < len(kv); i += 2 {
		if fmt.Sprint(kv[i]) == "level" && fmt.Sprint(kv[i+1]) == "error" {
			isErr = true
		}
	}
	if isErr {
		l.mu.Lock()
		l.lines = append(l.lines, fmt.Sprint(kv...))
		l.mu.Unlock()
	}
	return nil
}

func (l *errLog) errors() []string { l.mu.Lock(); defer l.mu.Unlock(); return slices.Clone(l.lines) }

// member is a distributor's membership: the KV, the writer ring view and
// the distributor ring member, started in that order.
type member struct {
	ml      *membership.Memberlist
	writers *membership.WriterRing
	dists   *membership.DistributorRing
}

func (m *member) Ring() *placement.Ring           { return m.writers.Ring() }
func (m *member) Ready(ctx context.Context) error { return m.writers.Ready(ctx) }
func (m *member) HealthyDistributors() int        { return m.dists.HealthyDistributors() }
func (m *member) KV() *memberlist.KV              { return m.ml.KV() }

func (m *member) services() []services.Service {
	return []services.Service{m.ml.KV(), m.writers, m.dists}
}

// Stop stops the parts in reverse order; the ring member leaves first.
func (m *member) Stop(ctx context.Context) error {
	ss := m.services()
	for i := len(ss) - 1; i >= 0; i-- {
		if err := services.StopAndAwaitTerminated(ctx, ss[i]); err != nil {
			return err
		}
	}
	return nil
}

func buildMember(t *testing.T, c config.Memberlist, zone string, addrs *addrLog, logger log.Logger) *member {
	t.Helper()
	ml, err := membership.NewMemberlist(c, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	wopts := membership.WriterRingOptions{HeartbeatTimeout: 5 * time.Second, Logger: logger}
	if addrs != nil {
		wopts.OnAddrs = addrs.set
	}
	w, err := membership.NewWriterRing(ml, wopts)
	if err != nil {
		t.Fatal(err)
	}
	d, err := membership.NewDistributorRing(ml, membership.DistributorRingOptions{Ring: c.DistributorRing, Zone: zone, HTTPPort: 4040, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	return &member{ml: ml, writers: w, dists: d}
}

func startMember(t *testing.T, m *member) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, s := range m.services() {
		// A service lives as long as the context it starts with: not ctx.
		if err := s.StartAsync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.AwaitRunning(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
}

func newMembership(t *testing.T, id, zone, ip, join string, addrs *addrLog) *member {
	return newMembershipLogged(t, id, zone, ip, join, addrs, nil)
}

// memberConfig is the memberlist config of distributor id on ip, joining
// join with the given cluster label, with short timeouts for tests.
func memberConfig(id, ip, join, label string) config.Memberlist {
	c := config.Defaults().Memberlist
	c.BindAddr = []string{ip}
	c.BindPort = 0
	c.JoinMembers = []string{join}
	c.NodeName = id
	c.ClusterLabel = label
	c.LeaveTimeout = time.Second
	c.BroadcastTimeoutOnShutdown = time.Second
	c.DistributorRing.InstanceID = id
	c.DistributorRing.InstanceAddr = ip
	c.DistributorRing.HeartbeatPeriod = 200 * time.Millisecond
	c.DistributorRing.HeartbeatTimeout = 5 * time.Second
	return c
}

func newMembershipLogged(t *testing.T, id, zone, ip, join string, addrs *addrLog, logger *errLog) *member {
	t.Helper()
	c := memberConfig(id, ip, join, clusterLabel)
	var l log.Logger = log.NewNopLogger()
	if logger != nil {
		l = logger
	}
	m := buildMember(t, c, zone, addrs, l)
	startMember(t, m)
	return m
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestViewConvergesAndFollowsChanges(t *testing.T) {
	w1 := startWriter(t, "sw-a", "zone-a", "127.0.0.2", "")
	// The gossip port is random; the others join the first writer.
	seed := fmt.Sprintf("127.0.0.2:%d", writerGossipPort(t, w1))
	w2 := startWriter(t, "sw-b", "zone-b", "127.0.0.3", seed)
	w3 := startWriter(t, "sw-c", "zone-c", "127.0.0.4", seed)

	var addrs addrLog
	d1 := newMembership(t, "dist-1", "zone-a", "127.0.0.5", seed, &addrs)

	want := []placement.Instance{
		{ID: "sw-a", Addr: w1.RingAddr(), Zone: "zone-a", State: placement.Active, Tokens: 4},
		{ID: "sw-b", Addr: w2.RingAddr(), Zone: "zone-b", State: placement.Active, Tokens: 4},
		{ID: "sw-c", Addr: w3.RingAddr(), Zone: "zone-c", State: placement.Active, Tokens: 4},
	}
	eventually(t, "three ACTIVE writers in the view", func() bool {
		return slices.Equal(d1.Ring().Instances(), want)
	})
	if got := d1.Ring().Len(); got != 12 {
		t.Fatalf("shards = %d, want 12 (3 writers x 4 tokens)", got)
	}
	if err := d1.Ready(context.Background()); err != nil {
		t.Fatalf("Ready = %v with three writers", err)
	}
	wantAddrs := []string{w1.RingAddr(), w2.RingAddr(), w3.RingAddr()}
	slices.Sort(wantAddrs)
	eventually(t, "pool told the three addresses", func() bool { return slices.Equal(addrs.get(), wantAddrs) })
	for _, w := range []*fakewriter.Writer{w1, w2, w3} {
		// Like Pyroscope's writer: the ring address is the IP and the gRPC port.
		if w.RingAddr() != w.GRPCAddr() {
			t.Fatalf("ring address %q does not carry the gRPC port of %q", w.RingAddr(), w.GRPCAddr())
		}
	}

	// A second distributor registers; both count two healthy distributors.
	d2 := newMembership(t, "dist-2", "zone-b", "127.0.0.6", seed, nil)
	eventually(t, "two healthy distributors seen by both", func() bool {
		return d1.HealthyDistributors() == 2 && d2.HealthyDistributors() == 2
	})
	// Leaving unregisters: the other one falls back to counting itself.
	if err := d2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "one healthy distributor after the other left", func() bool { return d1.HealthyDistributors() == 1 })

	// A writer shutting down like Pyroscope's keeps its entry as LEAVING:
	// it still owns its shards but is no longer ACTIVE.
	if err := w3.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "sw-c LEAVING in the view", func() bool {
		in := d1.Ring().Instances()
		return len(in) == 3 && in[2].ID == "sw-c" && in[2].State == placement.Leaving
	})
	if got := d1.Ring().Len(); got != 12 {
		t.Fatalf("shards = %d after sw-c went LEAVING, want 12", got)
	}
}

func writerGossipPort(t *testing.T, w *fakewriter.Writer) int {
	t.Helper()
	p := w.GossipPort()
	if p == 0 {
		t.Fatal("writer has no gossip port")
	}
	return p
}

func TestNotReadyWithoutWriters(t *testing.T) {
	c := config.Defaults().Memberlist
	c.BindAddr = []string{"127.0.0.8"}
	c.BindPort = 0
	c.DistributorRing.InstanceID = "dist-alone"
	c.DistributorRing.InstanceAddr = "127.0.0.8"
	m := buildMember(t, c, "", nil, log.NewNopLogger())
	// Not started and alone: nothing known.
	if err := m.Ready(context.Background()); err == nil {
		t.Fatal("Ready = nil with no segment-writer known")
	}
	if got := m.HealthyDistributors(); got != 1 {
		t.Fatalf("HealthyDistributors = %d, want 1 (never below one)", got)
	}
	startMember(t, m)
	time.Sleep(300 * time.Millisecond)
	if err := m.Ready(context.Background()); err == nil {
		t.Fatal("Ready = nil without joining any writer")
	}
	if got := m.HealthyDistributors(); got != 1 {
		t.Fatalf("HealthyDistributors = %d, want 1 (itself)", got)
	}
}

// Pyroscope gossips collectors/versions with codec "versions"; a member
// that knows the codec stores and relays it instead of logging errors.
func TestVersionsKeyIsCarried(t *testing.T) {
	// The writer gossips on 127.0.0.1 so the distributor can find it through
	// a dns+ join target (localhost).
	w := startWriter(t, "sw-v", "zone-a", "127.0.0.1", "")
	seed := fmt.Sprintf("dns+localhost:%d", w.GossipPort())
	var logs errLog
	d := newMembershipLogged(t, "dist-v", "zone-a", "127.0.0.10", seed, nil, &logs)

	// Play Pyroscope: write the versions key from the writer's KV.
	client, err := kv.NewClient(kv.Config{
		Store:       "memberlist",
		Prefix:      membership.KVPrefix,
		StoreConfig: kv.StoreConfig{MemberlistKV: func() (*memberlist.KV, error) { return w.KV(), nil }},
	}, membership.VersionsCodec(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	err = client.CAS(context.Background(), "versions", func(interface{}) (interface{}, bool, error) {
		return &membership.Versions{Versions: &versionv1.Versions{Instances: map[string]*versionv1.InstanceVersion{
			"querier-1": {ID: "querier-1", Addr: "10.0.0.1:9095", Timestamp: now, QuerierAPI: 1},
		}}}, false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "versions key decoded by the distributor", func() bool {
		v, err := d.KV().Get(membership.KVPrefix+"versions", membership.VersionsCodec())
		if err != nil || v == nil {
			return false
		}
		got := v.(*membership.Versions).Instances["querier-1"]
		return got != nil && got.Timestamp == now && got.QuerierAPI == 1
	})
	// dskit logs "unknown codec" at error level for a key it cannot decode.
	for _, l := range logs.errors() {
		if strings.Contains(l, "codec") {
			t.Errorf("distributor logged a codec error: %s", l)
		}
	}
}

func TestHealthy(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	fresh, stale := now.Add(-10*time.Second).Unix(), now.Add(-2*time.Minute).Unix()
	tokens := func(n int) []uint32 { return make([]uint32, n) }
	d := &ring.Desc{Ingesters: map[string]ring.InstanceDesc{
		"c": {Id: "c", Addr: "10.0.0.3:9095", Zone: "z2", State: ring.ACTIVE, Timestamp: fresh, Tokens: tokens(4)},
		"a": {Id: "a", Addr: "10.0.0.1:9095", Zone: "z1", State: ring.LEAVING, Timestamp: fresh, Tokens: tokens(4)},
		"b": {Id: "b", Addr: "10.0.0.2:9095", Zone: "z1", State: ring.PENDING, Timestamp: fresh},
		"d": {Id: "d", Addr: "10.0.0.4:9095", Zone: "z2", State: ring.JOINING, Timestamp: fresh, Tokens: tokens(2)},
		"e": {Id: "e", Addr: "10.0.0.5:9095", Zone: "z3", State: ring.LEFT, Timestamp: fresh, Tokens: tokens(4)},
		"f": {Id: "f", Addr: "10.0.0.6:9095", Zone: "z3", State: ring.ACTIVE, Timestamp: stale, Tokens: tokens(4)},
		// An entry without its id field takes the map key, as dskit does.
		"g": {Addr: "10.0.0.7:9095", Zone: "z3", State: ring.ACTIVE, Timestamp: fresh, Tokens: tokens(1)},
	}}
	instances, addrs, byState := membership.Healthy(d, time.Minute, now)
	want := []placement.Instance{
		{ID: "a", Addr: "10.0.0.1:9095", Zone: "z1", State: placement.Leaving, Tokens: 4},
		{ID: "b", Addr: "10.0.0.2:9095", Zone: "z1", State: placement.Pending, Tokens: 0},
		{ID: "c", Addr: "10.0.0.3:9095", Zone: "z2", State: placement.Active, Tokens: 4},
		{ID: "d", Addr: "10.0.0.4:9095", Zone: "z2", State: placement.Joining, Tokens: 2},
		{ID: "g", Addr: "10.0.0.7:9095", Zone: "z3", State: placement.Active, Tokens: 1},
	}
	if !slices.Equal(instances, want) {
		t.Fatalf("instances:\n got %+v\nwant %+v", instances, want)
	}
	// The pool keeps every fresh entry, LEFT included; the stale one goes.
	wantAddrs := []string{"10.0.0.1:9095", "10.0.0.2:9095", "10.0.0.3:9095", "10.0.0.4:9095", "10.0.0.5:9095", "10.0.0.7:9095"}
	if !slices.Equal(addrs, wantAddrs) {
		t.Fatalf("addrs = %v, want %v", addrs, wantAddrs)
	}
	if byState[placement.Active] != 2 || byState[placement.Leaving] != 1 {
		t.Fatalf("byState = %v", byState)
	}
	if got := membership.CountHealthyDistributors(d, time.Minute, now); got != 2 {
		t.Fatalf("healthy distributors = %d, want 2 (ACTIVE and fresh)", got)
	}
	if got, _, _ := membership.Healthy(nil, time.Minute, now); got != nil {
		t.Fatalf("nil ring gave %v", got)
	}
}

func TestVersionsMerge(t *testing.T) {
	mk := func(entries ...*versionv1.InstanceVersion) *membership.Versions {
		v := &membership.Versions{Versions: &versionv1.Versions{Instances: map[string]*versionv1.InstanceVersion{}}}
		for _, e := range entries {
			v.Instances[e.ID] = e
		}
		return v
	}
	tests := []struct {
		name        string
		local, in   *membership.Versions
		wantChanged []string
		wantTS      map[string]int64
	}{
		{"new instance", mk(), mk(&versionv1.InstanceVersion{ID: "a", Timestamp: 5}), []string{"a"}, map[string]int64{"a": 5}},
		{"newer wins", mk(&versionv1.InstanceVersion{ID: "a", Timestamp: 5}), mk(&versionv1.InstanceVersion{ID: "a", Timestamp: 6}), []string{"a"}, map[string]int64{"a": 6}},
		{"older ignored", mk(&versionv1.InstanceVersion{ID: "a", Timestamp: 6}), mk(&versionv1.InstanceVersion{ID: "a", Timestamp: 5}), nil, map[string]int64{"a": 6}},
		{"same is no change", mk(&versionv1.InstanceVersion{ID: "a", Timestamp: 6}), mk(&versionv1.InstanceVersion{ID: "a", Timestamp: 6}), nil, map[string]int64{"a": 6}},
		{"left wins a tie", mk(&versionv1.InstanceVersion{ID: "a", Timestamp: 6}), mk(&versionv1.InstanceVersion{ID: "a", Timestamp: 6, Left: true}), []string{"a"}, map[string]int64{"a": 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			change, err := tt.local.Merge(tt.in, false)
			if err != nil {
				t.Fatal(err)
			}
			var changed []string
			if change != nil {
				changed = change.MergeContent()
			}
			if !slices.Equal(changed, tt.wantChanged) {
				t.Fatalf("changed = %v, want %v", changed, tt.wantChanged)
			}
			for id, ts := range tt.wantTS {
				if got := tt.local.Instances[id].Timestamp; got != ts {
					t.Fatalf("%s timestamp = %d, want %d", id, got, ts)
				}
			}
			// Idempotent: merging the same input again changes nothing.
			if again, _ := tt.local.Merge(tt.in, false); again != nil {
				t.Fatalf("second merge changed %v", again.MergeContent())
			}
		})
	}
	// Round trip through the codec.
	c := membership.VersionsCodec()
	b, err := c.Encode(mk(&versionv1.InstanceVersion{ID: "q", Addr: "x:1", Timestamp: 9, QuerierAPI: 1}))
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.(*membership.Versions).Instances["q"]; got.GetAddr() != "x:1" || got.GetQuerierAPI() != 1 {
		t.Fatalf("round trip = %+v", got)
	}
	if _, err := c.Decode([]byte("not snappy")); err == nil {
		t.Fatal("garbage decoded without error")
	}
}

// TestTransportCheckFailsWhenTheListenerDies: dskit's KV keeps running when
// its listener dies; the transport check is what notices.
func TestTransportCheckFailsWhenTheListenerDies(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("needs Linux's socket tables")
	}
	const ip = "127.0.0.78"
	c := config.Defaults().Memberlist
	c.BindAddr = []string{ip}
	c.BindPort = 0
	c.TransportCheckInterval = 20 * time.Millisecond
	c.LeaveTimeout = time.Second
	c.DistributorRing.InstanceID = "dist-check"
	c.DistributorRing.InstanceAddr = ip
	m := buildMember(t, c, "", nil, log.NewNopLogger())
	startMember(t, m)
	check := m.ml.TransportCheck()
	if err := services.StartAndAwaitRunning(context.Background(), check); err != nil {
		t.Fatal(err)
	}
	defer services.StopAndAwaitTerminated(context.Background(), check) //nolint:errcheck
	time.Sleep(100 * time.Millisecond)
	if s := check.State(); s != services.Running {
		t.Fatalf("check %v while the port listens", s)
	}
	sockets.KillListener(t, ip)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := check.AwaitTerminated(ctx)
	if check.State() != services.Failed || err == nil || !strings.Contains(err.Error(), "no longer listens") {
		t.Fatalf("after the listener died: state %v, err %v", check.State(), err)
	}
	if s := m.ml.KV().State(); s != services.Running {
		t.Fatalf("the KV is %v; it must keep running for those that leave through it", s)
	}
}
