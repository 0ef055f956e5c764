package manifests

import (
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
)

func withTLS(clientAuth string) *v1.PyroscopeDistributor {
	pd := base("zone-a", "zone-b")
	pd.Spec.TLS = v1.TLSSpec{
		Server:        &v1.ServerTLSSpec{SecretName: "pyd-server-tls", ClientAuth: clientAuth},
		SegmentWriter: &v1.ClientTLSSpec{SecretName: "pyd-writer-client", ServerName: "segment-writer.pyroscope.svc"},
		Memberlist:    &v1.ClientTLSSpec{SecretName: "pyd-gossip", ServerName: "memberlist.pyroscope.svc"},
	}
	return pd
}

// mountedFrom is the Secret whose volume is mounted where file lives.
func mountedFrom(t *testing.T, pod corev1.PodSpec, file string) string {
	t.Helper()
	for _, m := range pod.Containers[0].VolumeMounts {
		if filepath.Dir(file) != m.MountPath {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("%s is mounted writable", m.MountPath)
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				return v.Secret.SecretName
			}
		}
	}
	t.Errorf("no Secret is mounted for %s", file)
	return ""
}

// A spec with TLS on every hop renders a config the distributor loads
// with its TLS files where the pod mounts each hop's Secret.
func TestTLSRendersMountsAndFlags(t *testing.T) {
	d := mustBuild(t, withTLS(v1.ClientAuthRequireAndVerify))
	for _, z := range d.Zones {
		pod := z.Deployment.Spec.Template.Spec
		c, _ := loadLikeDistributor(t, d, z.Name)

		h := c.Server.HTTPTLS
		if h.ClientAuth != v1.ClientAuthRequireAndVerify || h.ClientCAs == "" {
			t.Errorf("server TLS = %+v", h)
		}
		for _, f := range []string{h.CertPath, h.KeyPath, h.ClientCAs} {
			if got := mountedFrom(t, pod, f); got != "pyd-server-tls" {
				t.Errorf("%s comes from Secret %q", f, got)
			}
		}
		if filepath.Base(h.CertPath) != "tls.crt" || filepath.Base(h.KeyPath) != "tls.key" || filepath.Base(h.ClientCAs) != "ca.crt" {
			t.Errorf("server files are not cert-manager's keys: %+v", h)
		}

		g := c.SegmentWriter.GRPCClient
		if !g.TLSEnabled || g.TLS.ServerName != "segment-writer.pyroscope.svc" {
			t.Errorf("segment-writer TLS = %+v", g)
		}
		for _, f := range []string{g.TLS.CertPath, g.TLS.KeyPath, g.TLS.CAPath} {
			if got := mountedFrom(t, pod, f); got != "pyd-writer-client" {
				t.Errorf("%s comes from Secret %q", f, got)
			}
		}
		m := c.Memberlist
		if !m.TLSEnabled || m.TLS.ServerName != "memberlist.pyroscope.svc" {
			t.Errorf("memberlist TLS = %+v", m)
		}
		for _, f := range []string{m.TLS.CertPath, m.TLS.KeyPath, m.TLS.CAPath} {
			if got := mountedFrom(t, pod, f); got != "pyd-gossip" {
				t.Errorf("%s comes from Secret %q", f, got)
			}
		}
		if err := c.SegmentWriter.Validate(); err != nil {
			t.Error(err)
		}
		if err := c.Memberlist.ValidateTLS(); err != nil {
			t.Error(err)
		}

		// The kubelet has no client certificate: probes only connect.
		ctr := pod.Containers[0]
		for _, p := range []*corev1.Probe{ctr.ReadinessProbe, ctr.LivenessProbe} {
			if p.HTTPGet != nil || p.TCPSocket == nil {
				t.Errorf("probe with required client certificates = %+v", p.ProbeHandler)
			}
		}
	}
}

func TestTLSProbesAndCA(t *testing.T) {
	for _, tc := range []struct {
		auth   string
		scheme corev1.URIScheme // "" means a TCP probe
		ca     bool
	}{
		{"", corev1.URISchemeHTTPS, false},
		{v1.ClientAuthRequest, corev1.URISchemeHTTPS, false},
		{v1.ClientAuthVerifyIfGiven, corev1.URISchemeHTTPS, true},
		{v1.ClientAuthRequireAny, "", false},
		{v1.ClientAuthRequireAndVerify, "", true},
	} {
		d := mustBuild(t, withTLS(tc.auth))
		c, _ := loadLikeDistributor(t, d, "zone-a")
		if (c.Server.HTTPTLS.ClientCAs != "") != tc.ca {
			t.Errorf("%q: client CA file %q", tc.auth, c.Server.HTTPTLS.ClientCAs)
		}
		if err := c.Server.HTTPTLS.Validate(); err != nil {
			t.Errorf("%q: %v", tc.auth, err)
		}
		p := d.Zone("zone-a").Deployment.Spec.Template.Spec.Containers[0].ReadinessProbe
		switch {
		case tc.scheme == "" && p.TCPSocket == nil:
			t.Errorf("%q: readiness probe %+v, want a TCP connect", tc.auth, p.ProbeHandler)
		case tc.scheme != "" && (p.HTTPGet == nil || p.HTTPGet.Scheme != tc.scheme):
			t.Errorf("%q: readiness probe %+v, want %s", tc.auth, p.ProbeHandler, tc.scheme)
		}
	}
}

// Each hop stands alone: TLS on segment-writer connections only leaves
// the port and gossip in plaintext, with plain HTTP probes.
func TestTLSOneHop(t *testing.T) {
	pd := base("zone-a")
	pd.Spec.TLS.SegmentWriter = &v1.ClientTLSSpec{SecretName: "writers"}
	d := mustBuild(t, pd)
	c, _ := loadLikeDistributor(t, d, "zone-a")
	if c.Server.HTTPTLS.Enabled() || c.Memberlist.TLSEnabled || !c.SegmentWriter.GRPCClient.TLSEnabled {
		t.Errorf("hops: server %v, memberlist %v, segment-writer %v", c.Server.HTTPTLS.Enabled(), c.Memberlist.TLSEnabled, c.SegmentWriter.GRPCClient.TLSEnabled)
	}
	pod := d.Zone("zone-a").Deployment.Spec.Template.Spec
	if p := pod.Containers[0].ReadinessProbe; p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTP {
		t.Errorf("readiness probe = %+v", p.ProbeHandler)
	}
	n := 0
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d Secret volumes, want 1", n)
	}
	if plain := mustBuild(t, base("zone-a")); plain.ConfigHash == d.ConfigHash {
		t.Error("turning TLS on did not change the config hash (pods would not roll)")
	}
}

// The rendered objects of a spec with TLS on every hop, for review.
func TestGoldenTLS(t *testing.T) {
	d := mustBuild(t, withTLS(v1.ClientAuthVerifyIfGiven))
	got := render(t, d)
	checkGolden(t, "tls", got)
	if !strings.Contains(string(got), "secretName: pyd-server-tls") {
		t.Error("golden output lacks the server Secret")
	}
}
