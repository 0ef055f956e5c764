/*
Copyright 2026 The pyrodist Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

// Values of spec.tls.server.clientAuth, as the distributor's
// -server.http-tls-client-auth (and Pyroscope's) take them.
const (
	ClientAuthNone             = "NoClientCert"
	ClientAuthRequest          = "RequestClientCert"
	ClientAuthRequireAny       = "RequireAnyClientCert"
	ClientAuthVerifyIfGiven    = "VerifyClientCertIfGiven"
	ClientAuthRequireAndVerify = "RequireAndVerifyClientCert"
)

// TLSSpec secures the distributor's connections, each hop on its own. Each
// hop names a Secret in the PyroscopeDistributor's namespace that the pods
// mount read-only; the operator never reads it. The keys are those of a
// kubernetes.io/tls Secret as cert-manager writes it: tls.crt, tls.key and
// ca.crt. Running distributors pick up a renewed certificate on port 4040
// and towards segment-writers without a restart; memberlist reads its
// files when a pod starts.
type TLSSpec struct {
	// Server serves port 4040 (every agent API, probes and metrics) over
	// TLS only, HTTP/1.1 and HTTP/2 by ALPN.
	// +optional
	Server *ServerTLSSpec `json:"server,omitempty"`

	// SegmentWriter connects to segment-writers over TLS, presenting
	// tls.crt as the client certificate and verifying the writers against
	// ca.crt.
	// +optional
	SegmentWriter *ClientTLSSpec `json:"segmentWriter,omitempty"`

	// Memberlist gossips over TLS: tls.crt is served to peers and presented
	// to them, peers are verified against ca.crt. Every member of the
	// Pyroscope cluster must gossip over TLS too.
	// +optional
	Memberlist *ClientTLSSpec `json:"memberlist,omitempty"`
}

// ServerTLSSpec is TLS on port 4040.
type ServerTLSSpec struct {
	// SecretName is the Secret holding the server certificate and key
	// (tls.crt, tls.key) and, when clientAuth verifies client certificates,
	// the CA they are verified against (ca.crt).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="secretName must be a Secret name (a DNS subdomain)"
	SecretName string `json:"secretName"`

	// ClientAuth is what the port asks of clients: NoClientCert (default),
	// RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or
	// RequireAndVerifyClientCert (certificates verified against ca.crt).
	// The kubelet has no client certificate: with RequireAnyClientCert or
	// RequireAndVerifyClientCert the pods' probes only check that the port
	// accepts connections instead of calling /ready and /healthz.
	// +optional
	// +kubebuilder:validation:Enum=NoClientCert;RequestClientCert;RequireAnyClientCert;VerifyClientCertIfGiven;RequireAndVerifyClientCert
	ClientAuth string `json:"clientAuth,omitempty"`
}

// ClientTLSSpec is TLS on connections the distributor opens.
type ClientTLSSpec struct {
	// SecretName is the Secret holding this hop's certificate and key
	// (tls.crt, tls.key) and the CA peers are verified against (ca.crt).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="secretName must be a Secret name (a DNS subdomain)"
	SecretName string `json:"secretName"`

	// ServerName is the name peers' certificates must carry. Peers are
	// dialed by the pod IP they registered, so without it their
	// certificates must hold that IP.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServerName string `json:"serverName,omitempty"`
}
