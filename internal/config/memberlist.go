package config

import "flag"

// Memberlist is how the distributor joins the memberlist cluster of a
// Pyroscope v2 deployment. Owned by the placement work (issue 9); extend here.
type Memberlist struct {
	JoinMembers  []string `yaml:"join_members"`
	BindAddr     []string `yaml:"bind_addr"`
	BindPort     int      `yaml:"bind_port"`
	ClusterLabel string   `yaml:"cluster_label"`
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
}
