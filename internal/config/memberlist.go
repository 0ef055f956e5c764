package config

import (
	"errors"
	"flag"
	"time"

	dstls "github.com/grafana/dskit/crypto/tls"
)

// Memberlist is how the distributor joins the memberlist cluster of a
// Pyroscope v2 deployment. Flag names and defaults are dskit's (the ones
// Pyroscope exposes), so the same command line works for both.
type Memberlist struct {
	JoinMembers  []string `yaml:"join_members"`
	BindAddr     []string `yaml:"bind_addr"`
	BindPort     int      `yaml:"bind_port"`
	ClusterLabel string   `yaml:"cluster_label"`

	// AdvertiseAddr/AdvertisePort are what other members dial; empty/0 means
	// the bind address (or the first private IP) and the bind port.
	AdvertiseAddr                    string        `yaml:"advertise_addr"`
	AdvertisePort                    int           `yaml:"advertise_port"`
	ClusterLabelVerificationDisabled bool          `yaml:"cluster_label_verification_disabled"`
	NodeName                         string        `yaml:"node_name"`
	RandomizeNodeName                bool          `yaml:"randomize_node_name"`
	RejoinInterval                   time.Duration `yaml:"rejoin_interval"`
	GossipInterval                   time.Duration `yaml:"gossip_interval"`
	PushPullInterval                 time.Duration `yaml:"pull_push_interval"`
	LeaveTimeout                     time.Duration `yaml:"leave_timeout"`
	// BroadcastTimeoutOnShutdown bounds how long shutdown waits for our own
	// last updates (the LEAVING/removal of our ring entry) to be gossiped.
	BroadcastTimeoutOnShutdown time.Duration `yaml:"broadcast_timeout_for_local_updates_on_shutdown"`
	// TransportCheckInterval is how often the distributor checks that its
	// gossip port still listens; two misses in a row stop the process.
	TransportCheckInterval time.Duration `yaml:"transport_check_interval"`
	// TLS of the gossip transport, as dskit's: tls_enabled and the inline
	// tls_* keys (the certificate serves and dials; members check peers'
	// certificates against the CA when dialing).
	TLSEnabled bool               `yaml:"tls_enabled"`
	TLS        dstls.ClientConfig `yaml:",inline"`

	// DistributorRing is this distributor's own entry in collectors/distributor,
	// which the global rate-limit strategy counts.
	DistributorRing DistributorRing `yaml:"distributor_ring"`
}

// DistributorRing is the registration in Pyroscope's distributor ring.
type DistributorRing struct {
	// InstanceID defaults to the hostname.
	InstanceID string `yaml:"instance_id"`
	// InstanceAddr is the IP advertised in the ring; empty means the first
	// private IP. The port is the HTTP listen port unless InstancePort is set.
	InstanceAddr     string        `yaml:"instance_addr"`
	InstancePort     int           `yaml:"instance_port"`
	HeartbeatPeriod  time.Duration `yaml:"heartbeat_period"`
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout"`
}

func (c *Memberlist) RegisterFlags(f *flag.FlagSet) {
	f.Func("memberlist.join", "Other cluster members to join (host:port, dns+host:port or dnssrv+_service._proto.domain). Can be given more than once.", func(s string) error {
		c.JoinMembers = append(c.JoinMembers, s)
		return nil
	})
	f.Func("memberlist.bind-addr", "IP address to listen on for gossip. Can be given more than once. Default: all interfaces.", func(s string) error {
		c.BindAddr = append(c.BindAddr, s)
		return nil
	})
	f.IntVar(&c.BindPort, "memberlist.bind-port", 7946, "Port to listen on for gossip.")
	f.StringVar(&c.ClusterLabel, "memberlist.cluster-label", "", "Cluster label; members with another label are ignored.")
	f.StringVar(&c.AdvertiseAddr, "memberlist.advertise-addr", "", "Gossip address to advertise to other members. Default: the bind address, or the first private IP.")
	f.IntVar(&c.AdvertisePort, "memberlist.advertise-port", 7946, "Gossip port to advertise to other members.")
	f.BoolVar(&c.ClusterLabelVerificationDisabled, "memberlist.cluster-label-verification-disabled", false, "Accept gossip whatever its cluster label (use while rolling out a label change).")
	f.StringVar(&c.NodeName, "memberlist.nodename", "", "Name of this node in the memberlist cluster. Default: the hostname.")
	f.BoolVar(&c.RandomizeNodeName, "memberlist.randomize-node-name", true, "Add a random suffix to the node name.")
	f.DurationVar(&c.RejoinInterval, "memberlist.rejoin-interval", 0, "If not 0, how often to rejoin the cluster (heals splits when -memberlist.join names only a few seeds).")
	f.DurationVar(&c.GossipInterval, "memberlist.gossip-interval", 200*time.Millisecond, "How often to gossip.")
	f.DurationVar(&c.PushPullInterval, "memberlist.pullpush-interval", 30*time.Second, "How often to exchange the full state with a random member.")
	f.DurationVar(&c.LeaveTimeout, "memberlist.leave-timeout", 20*time.Second, "Timeout for leaving the memberlist cluster on shutdown.")
	f.DurationVar(&c.BroadcastTimeoutOnShutdown, "memberlist.broadcast-timeout-for-local-updates-on-shutdown", 10*time.Second, "How long shutdown waits for this node's last updates to be gossiped; 0 waits until they are.")
	f.DurationVar(&c.TransportCheckInterval, "memberlist.transport-check-interval", 5*time.Second, "How often to check that the gossip port still listens; after two misses in a row the distributor stops with an error (it could no longer hear about segment-writers). 0 turns the check off.")
	f.BoolVar(&c.TLSEnabled, "memberlist.tls-enabled", false, "Enable TLS on the memberlist transport layer.")
	c.TLS.RegisterFlagsWithPrefix("memberlist", f)
	c.DistributorRing.RegisterFlags(f)
}

// ValidateTLS refuses TLS files given while memberlist TLS is off, and
// TLS without a certificate: every member also serves gossip.
func (c *Memberlist) ValidateTLS() error {
	if err := validateClientTLS("memberlist", c.TLSEnabled, &c.TLS); err != nil {
		return err
	}
	if c.TLSEnabled && c.TLS.CertPath == "" {
		return errors.New("memberlist: TLS needs tls_cert_path and tls_key_path, as every member also serves gossip")
	}
	return nil
}

func (c *DistributorRing) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.InstanceID, "distributor.ring.instance-id", "", "Instance ID in the distributor ring. Default: the hostname.")
	f.StringVar(&c.InstanceAddr, "distributor.ring.instance-addr", "", "IP address advertised in the distributor ring. Default: the first private IP.")
	f.IntVar(&c.InstancePort, "distributor.ring.instance-port", 0, "Port advertised in the distributor ring. Default: -server.http-listen-port.")
	f.DurationVar(&c.HeartbeatPeriod, "distributor.ring.heartbeat-period", 15*time.Second, "How often this distributor heartbeats its entry in the distributor ring.")
	f.DurationVar(&c.HeartbeatTimeout, "distributor.ring.heartbeat-timeout", time.Minute, "A distributor whose heartbeat is older than this does not count towards the global rate limit.")
}
