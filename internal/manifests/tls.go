package manifests

import (
	"fmt"
	"path"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/config"
)

// Where each hop's Secret is mounted: outside the config folder, whose
// ConfigMap volume is read-only and cannot hold mount points.
const tlsMountRoot = "/etc/pyrodist-tls"

// Keys of a kubernetes.io/tls Secret as cert-manager writes it.
const (
	tlsCertKey = "tls.crt"
	tlsKeyKey  = "tls.key"
	tlsCAKey   = "ca.crt"
)

// tlsHop is one secured kind of connection and its Secret.
type tlsHop struct {
	name   string // volume name suffix and mount folder
	secret string
}

func (h tlsHop) volume() string       { return "tls-" + h.name }
func (h tlsHop) dir() string          { return path.Join(tlsMountRoot, h.name) }
func (h tlsHop) file(k string) string { return path.Join(h.dir(), k) }

func tlsHops(t v1.TLSSpec) []tlsHop {
	var hops []tlsHop
	if t.Server != nil {
		hops = append(hops, tlsHop{"server", t.Server.SecretName})
	}
	if t.SegmentWriter != nil {
		hops = append(hops, tlsHop{"segment-writer", t.SegmentWriter.SecretName})
	}
	if t.Memberlist != nil {
		hops = append(hops, tlsHop{"memberlist", t.Memberlist.SecretName})
	}
	return hops
}

// applyTLS points the distributor's TLS settings at the mounted Secrets.
func applyTLS(c *config.Config, t v1.TLSSpec) error {
	for _, h := range tlsHops(t) {
		if h.secret == "" {
			return fmt.Errorf("spec.tls.%s.secretName must be set", h.name)
		}
	}
	if s := t.Server; s != nil {
		hop := tlsHop{"server", s.SecretName}
		c.Server.HTTPTLS = config.ServerTLS{CertPath: hop.file(tlsCertKey), KeyPath: hop.file(tlsKeyKey), ClientAuth: s.ClientAuth}
		if verifiesClients(s.ClientAuth) {
			c.Server.HTTPTLS.ClientCAs = hop.file(tlsCAKey)
		}
		if err := c.Server.HTTPTLS.Validate(); err != nil {
			return fmt.Errorf("spec.tls.server: %w", err)
		}
	}
	if s := t.SegmentWriter; s != nil {
		hop := tlsHop{"segment-writer", s.SecretName}
		g := &c.SegmentWriter.GRPCClient
		g.TLSEnabled = true
		g.TLS.CertPath, g.TLS.KeyPath, g.TLS.CAPath = hop.file(tlsCertKey), hop.file(tlsKeyKey), hop.file(tlsCAKey)
		g.TLS.ServerName = s.ServerName
	}
	if s := t.Memberlist; s != nil {
		hop := tlsHop{"memberlist", s.SecretName}
		m := &c.Memberlist
		m.TLSEnabled = true
		m.TLS.CertPath, m.TLS.KeyPath, m.TLS.CAPath = hop.file(tlsCertKey), hop.file(tlsKeyKey), hop.file(tlsCAKey)
		m.TLS.ServerName = s.ServerName
	}
	return nil
}

func verifiesClients(auth string) bool {
	return auth == v1.ClientAuthVerifyIfGiven || auth == v1.ClientAuthRequireAndVerify
}

// requiresClientCert: the kubelet, which has no client certificate, cannot
// complete a handshake.
func requiresClientCert(auth string) bool {
	return auth == v1.ClientAuthRequireAny || auth == v1.ClientAuthRequireAndVerify
}

// addTLS mounts each hop's Secret read-only into the pod and makes the
// probes speak TLS when port 4040 does.
func addTLS(spec *corev1.PodSpec, t v1.TLSSpec) {
	ctr := &spec.Containers[0]
	for _, h := range tlsHops(t) {
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: h.volume(), VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: h.secret, DefaultMode: ptr.To[int32](0o440)},
		}})
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: h.volume(), MountPath: h.dir(), ReadOnly: true})
	}
	if t.Server == nil {
		return
	}
	for _, p := range []*corev1.Probe{ctr.ReadinessProbe, ctr.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			continue
		}
		if requiresClientCert(t.Server.ClientAuth) {
			// A connect is all the kubelet can check; a pod that stops
			// serving still fails it.
			p.ProbeHandler = corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString(HTTPPortName)}}
			continue
		}
		p.HTTPGet.Scheme = corev1.URISchemeHTTPS
	}
}
