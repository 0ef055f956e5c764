// Package membership joins the memberlist cluster of a Pyroscope v2
// deployment (dskit's memberlist KV over its TCP transport), keeps a
// placement view of the segment-writer ring, and registers this distributor
// in the distributor ring so global rate limits divide by the number of
// healthy distributors, as Pyroscope's own distributors do. Each of the
// three is a dskit service: Memberlist, WriterRing and DistributorRing.
package membership

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/dns"
	"github.com/grafana/dskit/kv"
	"github.com/grafana/dskit/kv/codec"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
)

// Keys and names as Pyroscope uses them (pkg/segmentwriter/service.go and
// pkg/distributor/distributor.go at 3fe6a45;
// docs/compatibility.md#memberlist-ring).
const (
	KVPrefix             = "collectors/"
	SegmentWriterRingKey = "segment-writer-ring"
	DistributorRingKey   = "distributor"
)

// transportCheckMisses is how many checks in a row must find the gossip
// port closed before the service fails: one miss can be a check that raced
// the kernel's socket table.
const transportCheckMisses = 2

// Memberlist holds the memberlist KV (dskit's, itself a service) and makes
// the check of its transport. dskit's KV keeps running when its transport's
// listener dies (it logs accept errors forever), which leaves a distributor
// that no longer hears about writers but still looks healthy: the check
// fails then. It is a service apart from the KV so that its failure stops the
// process while the KV still runs for those that leave through it (the
// distributor ring member unregisters through the KV).
type Memberlist struct {
	kv     *memberlist.KV
	logger log.Logger
	reg    prometheus.Registerer
	check  *services.BasicService
	// checkEvery is how often the gossip port is checked; 0: never.
	checkEvery time.Duration
}

// NewMemberlist builds the KV from our memberlist settings; nothing listens
// until the KV service starts.
func NewMemberlist(c config.Memberlist, logger log.Logger, reg prometheus.Registerer) (*Memberlist, error) {
	logger = orNop(logger)
	kvCfg, err := KVConfig(c)
	if err != nil {
		return nil, err
	}
	if c.TLSEnabled {
		// dskit reads the files only when the KV starts: fail here, with
		// the configuration's other errors, instead.
		if _, err := c.TLS.GetTLSConfig(); err != nil {
			return nil, fmt.Errorf("memberlist TLS: %w", err)
		}
	}
	kvCfg.Codecs = []codec.Codec{ring.GetCodec(), VersionsCodec()}
	m := &Memberlist{
		kv:         memberlist.NewKV(kvCfg, logger, NewDNSProvider(logger, reg), reg),
		logger:     logger,
		reg:        reg,
		checkEvery: c.TransportCheckInterval,
	}
	m.check = services.NewBasicService(nil, m.checkTransport, nil).WithName("memberlist-transport-check")
	return m, nil
}

// KV is the memberlist KV: the service that joins and gossips.
func (m *Memberlist) KV() *memberlist.KV { return m.kv }

// TransportCheck is the service that fails when the KV's gossip port no
// longer listens. It must start after the KV.
func (m *Memberlist) TransportCheck() services.Service { return m.check }

// Client is a ring-codec client of the KV under Pyroscope's prefix; name
// labels its metrics.
func (m *Memberlist) Client(name string) (kv.Client, error) {
	c, err := kv.NewClient(kv.Config{
		Store:       "memberlist",
		Prefix:      KVPrefix,
		StoreConfig: kv.StoreConfig{MemberlistKV: func() (*memberlist.KV, error) { return m.kv, nil }},
	}, ring.GetCodec(), kv.RegistererWithKVName(m.reg, name), m.logger)
	if err != nil {
		return nil, fmt.Errorf("membership: kv client %s: %w", name, err)
	}
	return c, nil
}

func (m *Memberlist) checkTransport(ctx context.Context) error {
	if m.checkEvery <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(m.checkEvery)
	defer t.Stop()
	misses := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		port := m.kv.GetListeningPort()
		ok, err := listening(port)
		if err != nil {
			// No socket table to read (not Linux): nothing to check.
			level.Debug(m.logger).Log("msg", "memberlist transport check off", "err", err)
			<-ctx.Done()
			return nil
		}
		if ok {
			misses = 0
			continue
		}
		if misses++; misses >= transportCheckMisses {
			return fmt.Errorf("memberlist transport no longer listens on port %d: this distributor can no longer hear about segment-writers", port)
		}
	}
}

// listening reports whether a TCP socket of this network namespace listens
// on port, from the kernel's socket tables: no connection is made, so the
// check leaves no trace in the transport's logs.
func listening(port int) (bool, error) {
	var read int
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		read++
		found := listensIn(bufio.NewScanner(f), port)
		_ = f.Close()
		if found {
			return true, nil
		}
	}
	if read == 0 {
		return false, errors.New("no /proc/net/tcp")
	}
	return false, nil
}

// listensIn scans a /proc/net/tcp table for a socket in state LISTEN (0A)
// whose local address has port.
func listensIn(s *bufio.Scanner, port int) bool {
	want := fmt.Sprintf(":%04X", port)
	for s.Scan() {
		f := strings.Fields(s.Text())
		// sl local_address rem_address st ...
		if len(f) > 3 && f[3] == "0A" && strings.HasSuffix(f[1], want) {
			return true
		}
	}
	return false
}

// KVConfig maps our memberlist settings onto dskit's, starting from dskit's
// own flag defaults (which also set its unexported DNS backoff).
func KVConfig(c config.Memberlist) (memberlist.KVConfig, error) {
	var cfg memberlist.KVConfig
	fs := flag.NewFlagSet("memberlist-defaults", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	cfg.JoinMembers = slices.Clone(c.JoinMembers)
	cfg.TCPTransport.BindAddrs = slices.Clone(c.BindAddr)
	if len(cfg.TCPTransport.BindAddrs) == 0 {
		cfg.TCPTransport.BindAddrs = []string{"0.0.0.0"}
	}
	cfg.TCPTransport.BindPort = c.BindPort
	cfg.ClusterLabel = c.ClusterLabel
	cfg.ClusterLabelVerificationDisabled = c.ClusterLabelVerificationDisabled
	cfg.AdvertiseAddr = c.AdvertiseAddr
	if c.AdvertisePort != 0 {
		cfg.AdvertisePort = c.AdvertisePort
	}
	cfg.NodeName = c.NodeName
	cfg.RandomizeNodeName = c.RandomizeNodeName
	cfg.RejoinInterval = c.RejoinInterval
	if c.GossipInterval > 0 {
		cfg.GossipInterval = c.GossipInterval
	}
	if c.PushPullInterval > 0 {
		cfg.PushPullInterval = c.PushPullInterval
	}
	if c.LeaveTimeout > 0 {
		cfg.LeaveTimeout = c.LeaveTimeout
	}
	cfg.BroadcastTimeoutForLocalUpdatesOnShutdown = c.BroadcastTimeoutOnShutdown
	if err := c.ValidateTLS(); err != nil {
		return cfg, err
	}
	cfg.TCPTransport.TLSEnabled = c.TLSEnabled
	cfg.TCPTransport.TLS = c.TLS
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("memberlist: %w", err)
	}
	return cfg, nil
}

// NewDNSProvider resolves dns+ and dnssrv+ join targets.
func NewDNSProvider(logger log.Logger, reg prometheus.Registerer) *dns.Provider {
	if reg != nil {
		reg = prometheus.WrapRegistererWithPrefix("pyrodist_memberlist_", reg)
	}
	return dns.NewProvider(dns.GolangResolverType, 10, logger, reg)
}

// watchKey keeps calling store with the key's value until ctx ends: once
// with its current value, then on every change. It returns when the watch
// ends.
func watchKey(ctx context.Context, c kv.Client, key string, store func(*ring.Desc)) {
	if v, err := c.Get(ctx, key); err == nil {
		d, _ := v.(*ring.Desc)
		store(d)
	}
	c.WatchKey(ctx, key, func(v interface{}) bool {
		d, _ := v.(*ring.Desc)
		store(d)
		return true
	})
}

func orNop(l log.Logger) log.Logger {
	if l == nil {
		return log.NewNopLogger()
	}
	return l
}

// refreshEvery is how often a ring view is rebuilt without a key change, so
// that an entry whose heartbeat stops drops out about a tick after its
// timeout even when nothing is written.
func refreshEvery(timeout time.Duration) time.Duration {
	return max(min(time.Second, timeout/10), 50*time.Millisecond)
}
