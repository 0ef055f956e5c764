package membership_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-kit/log"
	dstls "github.com/grafana/dskit/crypto/tls"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/membership"
	"github.com/pyrodist/pyrodist/test/fakewriter/fakewritertest"
	"github.com/pyrodist/pyrodist/test/testutil/certs"
)

// tlsMember is a distributor's membership on ip joining join, with gossip
// over TLS when dir is set, carrying label.
func tlsMember(t *testing.T, id, ip, join, label string, dir *certs.SecretDir) *member {
	t.Helper()
	c := memberConfig(id, ip, join, label)
	if dir != nil {
		c.TLSEnabled = true
		c.TLS = secretTLS(dir)
	}
	m := buildMember(t, c, "zone-a", nil, log.NewNopLogger())
	startMember(t, m)
	return m
}

func secretTLS(dir *certs.SecretDir) dstls.ClientConfig {
	return dstls.ClientConfig{CertPath: dir.File(certs.CertFile), KeyPath: dir.File(certs.KeyFile), CAPath: dir.File(certs.CAFile)}
}

// never fails when cond turns true within d.
func never(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			t.Fatalf("%s", what)
		}
	}
}

// With -memberlist.tls-* a distributor and a segment-writer gossip over
// TLS and keep checking the cluster label; a member without TLS, or with
// TLS and another label, stays out.
func TestMemberlistOverTLS(t *testing.T) {
	ca := certs.NewCA(t, "gossip-ca")
	wcfg := fakewritertest.Config("sw-tls", "zone-a", "127.0.0.20")
	wcfg.Memberlist.ClusterLabel = clusterLabel
	wcfg.Memberlist.TCPTransport.TLSEnabled = true
	wcfg.Memberlist.TCPTransport.TLS = secretTLS(certs.NewSecretDir(t, ca.Issue(t, "sw-tls"), ca))
	w := fakewritertest.Start(t, wcfg)
	seed := fmt.Sprintf("127.0.0.20:%d", writerGossipPort(t, w))

	d1 := tlsMember(t, "dist-tls", "127.0.0.21", seed, clusterLabel, certs.NewSecretDir(t, ca.Issue(t, "dist-tls"), ca))
	eventually(t, "the TLS distributor sees the TLS writer", func() bool {
		in := d1.Ring().Instances()
		return len(in) == 1 && in[0].ID == "sw-tls"
	})
	if err := d1.Ready(context.Background()); err != nil {
		t.Fatalf("TLS member not ready: %v", err)
	}

	plain := tlsMember(t, "dist-plain", "127.0.0.22", seed, clusterLabel, nil)
	if n, err := plain.KV().JoinMembers([]string{seed}); err == nil || n != 0 {
		t.Errorf("a member without TLS joined the TLS cluster: %d, %v", n, err)
	}
	otherLabel := tlsMember(t, "dist-other-label", "127.0.0.23", seed, "another-cluster", certs.NewSecretDir(t, ca.Issue(t, "dist-other-label"), ca))
	if n, err := otherLabel.KV().JoinMembers([]string{seed}); err == nil || n != 0 {
		t.Errorf("a TLS member with another cluster label joined: %d, %v", n, err)
	}
	stranger := certs.NewCA(t, "other-ca")
	untrusted := tlsMember(t, "dist-other-ca", "127.0.0.24", seed, clusterLabel, certs.NewSecretDir(t, stranger.Issue(t, "dist-other-ca"), stranger))
	if n, err := untrusted.KV().JoinMembers([]string{seed}); err == nil || n != 0 {
		t.Errorf("a TLS member trusting another CA joined: %d, %v", n, err)
	}

	never(t, "a member that should stay out saw the writer", 2*time.Second, func() bool {
		return len(plain.Ring().Instances()) > 0 || len(otherLabel.Ring().Instances()) > 0 || len(untrusted.Ring().Instances()) > 0
	})
	if n := d1.HealthyDistributors(); n != 1 {
		t.Errorf("the TLS distributor counts %d distributors, want only itself", n)
	}
}

// TLS files given while TLS is off are refused rather than ignored, and a
// missing file fails when the member is built, not when it starts.
func TestMemberlistTLSConfigErrors(t *testing.T) {
	c := config.Defaults().Memberlist
	c.TLS.CAPath = "/etc/ca.crt"
	if _, err := membership.KVConfig(c); err == nil {
		t.Error("tls_ca_path without tls_enabled accepted")
	}
	c.TLSEnabled = true
	c.TLS.CAPath = "/nonexistent/ca.crt"
	if _, err := membership.NewMemberlist(c, nil, nil); err == nil {
		t.Error("a missing CA file accepted")
	}
	ca := certs.NewCA(t, "ca")
	dir := certs.NewSecretDir(t, ca.Issue(t, "m"), ca)
	c.TLS = secretTLS(dir)
	kv, err := membership.KVConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	if !kv.TCPTransport.TLSEnabled || kv.TCPTransport.TLS.CertPath != c.TLS.CertPath || kv.TCPTransport.TLS.CAPath != c.TLS.CAPath {
		t.Errorf("TLS not mapped onto dskit's transport: %+v", kv.TCPTransport)
	}
}
