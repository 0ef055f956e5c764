package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
)

func TestTLSValidation(t *testing.T) {
	c := startAPIServer(t)
	ctx := context.Background()

	t.Run("every hop", func(t *testing.T) {
		pd := valid("tls")
		pd.Spec.TLS = v1.TLSSpec{
			Server:        &v1.ServerTLSSpec{SecretName: "pyd-server.tls", ClientAuth: v1.ClientAuthRequireAndVerify},
			SegmentWriter: &v1.ClientTLSSpec{SecretName: "writers", ServerName: "segment-writer.pyroscope.svc"},
			Memberlist:    &v1.ClientTLSSpec{SecretName: "gossip"},
		}
		if err := c.Create(ctx, pd); err != nil {
			t.Fatalf("create: %v", err)
		}
		got := &v1.PyroscopeDistributor{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(pd), got); err != nil {
			t.Fatal(err)
		}
		if got.Spec.TLS.Server == nil || got.Spec.TLS.Server.ClientAuth != v1.ClientAuthRequireAndVerify || got.Spec.TLS.Memberlist == nil || got.Spec.TLS.SegmentWriter.ServerName != "segment-writer.pyroscope.svc" {
			t.Errorf("spec.tls = %+v", got.Spec.TLS)
		}
	})

	for i, tc := range []struct {
		name string
		tls  v1.TLSSpec
		want string
	}{
		{"unknown client auth", v1.TLSSpec{Server: &v1.ServerTLSSpec{SecretName: "s", ClientAuth: "Sometimes"}}, "spec.tls.server.clientAuth"},
		{"no server secret", v1.TLSSpec{Server: &v1.ServerTLSSpec{}}, "spec.tls.server.secretName"},
		{"no writer secret", v1.TLSSpec{SegmentWriter: &v1.ClientTLSSpec{ServerName: "w"}}, "spec.tls.segmentWriter.secretName"},
		{"secret name not a DNS subdomain", v1.TLSSpec{Memberlist: &v1.ClientTLSSpec{SecretName: "Gossip_TLS"}}, "secretName must be a Secret name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pd := valid("bad-tls-" + strings.Repeat("x", i+1))
			pd.Spec.TLS = tc.tls
			err := c.Create(ctx, pd)
			if err == nil {
				t.Fatalf("accepted; want an error containing %q", tc.want)
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v; want Invalid containing %q", err, tc.want)
			}
		})
	}
}
