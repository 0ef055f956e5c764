package manifests

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/test/testutil/envtestbin"
)

func withS3() *v1.PyroscopeDistributor {
	pd := base("zone-a", "zone-b")
	pd.Spec.Storage = &v1.StorageSpec{
		Prefix: "pyroscope",
		S3: &v1.S3StorageSpec{
			BucketName:       "profiles",
			Endpoint:         "s3.eu-west-1.amazonaws.com",
			Region:           "eu-west-1",
			BucketLookupType: "virtual-hosted-style",
			AccessKeyID:      &v1.SecretKeyRef{Name: "pyroscope-s3", Key: "access_key_id"},
			SecretAccessKey:  &v1.SecretKeyRef{Name: "pyroscope-s3", Key: "secret_access_key"},
			SSE:              &v1.S3SSESpec{Type: "SSE-KMS", KMSKeyID: "alias/profiles"},
		},
	}
	return pd
}

// secretValue stands for what the kubelet would read from a Secret.
func secretValue(ref *corev1.SecretKeySelector) string { return "from-" + ref.Name + "/" + ref.Key }

// setPodEnv sets in the test's environment every variable of the zone's
// container that comes from a Secret, as the kubelet would.
func setPodEnv(t *testing.T, d *Desired, zone string) {
	t.Helper()
	for _, e := range d.Zone(zone).Deployment.Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			t.Setenv(e.Name, secretValue(e.ValueFrom.SecretKeyRef))
		}
	}
}

// TestStorageRoundTrip: each backend of spec.storage renders a storage
// block the distributor loads (with the pod's Secret-backed env) into the
// settings the spec asked for, and no credential is in the ConfigMap.
func TestStorageRoundTrip(t *testing.T) {
	ref := func(name, key string) *v1.SecretKeyRef { return &v1.SecretKeyRef{Name: name, Key: key} }
	cases := []struct {
		name string
		spec v1.StorageSpec
		want func(c *config.Storage)
	}{
		{"s3", *withS3().Spec.Storage, func(c *config.Storage) {
			c.Backend, c.Prefix = "s3", "pyroscope"
			c.S3.BucketName, c.S3.Endpoint, c.S3.Region, c.S3.BucketLookupType = "profiles", "s3.eu-west-1.amazonaws.com", "eu-west-1", "virtual-hosted-style"
			c.S3.AccessKeyID, c.S3.SecretAccessKey = "from-pyroscope-s3/access_key_id", "from-pyroscope-s3/secret_access_key"
			c.S3.SSE.Type, c.S3.SSE.KMSKeyID = "SSE-KMS", "alias/profiles"
		}},
		{"s3 with the pod's role", v1.StorageSpec{S3: &v1.S3StorageSpec{BucketName: "b", Endpoint: "s3.amazonaws.com", NativeAWSAuth: true}}, func(c *config.Storage) {
			c.Backend, c.S3.BucketName, c.S3.Endpoint, c.S3.NativeAWSAuthEnabled = "s3", "b", "s3.amazonaws.com", true
		}},
		{"gcs", v1.StorageSpec{GCS: &v1.GCSStorageSpec{BucketName: "profiles", ServiceAccount: ref("gcs-key", "key.json")}}, func(c *config.Storage) {
			c.Backend, c.GCS.BucketName = "gcs", "profiles"
		}},
		{"azure", v1.StorageSpec{Azure: &v1.AzureStorageSpec{
			AccountName: "acct", ContainerName: "profiles", EndpointSuffix: "blob.core.chinacloudapi.cn",
			TenantID: "t", ClientID: "c", ClientSecret: ref("azure", "client-secret"),
		}}, func(c *config.Storage) {
			c.Backend = "azure"
			c.Azure.AccountName, c.Azure.ContainerName, c.Azure.EndpointSuffix = "acct", "profiles", "blob.core.chinacloudapi.cn"
			c.Azure.TenantID, c.Azure.ClientID, c.Azure.ClientSecret = "t", "c", "from-azure/client-secret"
		}},
		{"azure with an account key", v1.StorageSpec{Azure: &v1.AzureStorageSpec{AccountName: "acct", ContainerName: "p", AccountKey: ref("azure", "key")}}, func(c *config.Storage) {
			c.Backend, c.Azure.AccountName, c.Azure.ContainerName, c.Azure.AccountKey = "azure", "acct", "p", "from-azure/key"
		}},
		{"swift", v1.StorageSpec{Prefix: "v2/", Swift: &v1.SwiftStorageSpec{
			AuthURL: "https://keystone:5000/v3", AuthVersion: 3, ContainerName: "profiles",
			Username: "pyro", UserDomainName: "Default", ProjectName: "profiling", RegionName: "RegionOne",
			Password: ref("swift", "password"),
		}}, func(c *config.Storage) {
			c.Backend, c.Prefix = "swift", "v2/"
			w := &c.Swift
			w.AuthURL, w.AuthVersion, w.ContainerName = "https://keystone:5000/v3", 3, "profiles"
			w.Username, w.UserDomainName, w.ProjectName, w.RegionName = "pyro", "Default", "profiling", "RegionOne"
			w.Password = "from-swift/password"
		}},
		{"filesystem", v1.StorageSpec{Filesystem: &v1.FilesystemStorageSpec{ClaimName: "shared", SubPath: "pyroscope"}}, func(c *config.Storage) {
			c.Backend, c.Filesystem.Dir = "filesystem", storageDataDir
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pd := base("zone-a")
			pd.Spec.Storage = tc.spec.DeepCopy()
			d := mustBuild(t, pd)
			if strings.Contains(d.ConfigMap.Data[ConfigFileName], "from-") {
				t.Errorf("a credential reached the ConfigMap:\n%s", d.ConfigMap.Data[ConfigFileName])
			}
			setPodEnv(t, d, "zone-a")
			c, _ := loadLikeDistributor(t, d, "zone-a")
			want := config.Defaults().Storage
			tc.want(&want)
			if !reflect.DeepEqual(c.Storage, want) {
				t.Errorf("storage loaded by the distributor:\n got %+v\nwant %+v\nconfig.yaml:\n%s", c.Storage, want, d.ConfigMap.Data[ConfigFileName])
			}
		})
	}
}

// TestStoragePod: credentials reach the container as env from their
// Secrets, the GCS key as a read-only file GOOGLE_APPLICATION_CREDENTIALS
// names, the filesystem backend as its claim; -config.expand-env only when
// a credential is in env.
func TestStoragePod(t *testing.T) {
	pod := func(s *v1.StorageSpec) corev1.PodSpec {
		pd := base("zone-a")
		pd.Spec.Storage = s
		return mustBuild(t, pd).Zone("zone-a").Deployment.Spec.Template.Spec
	}
	env := func(p corev1.PodSpec, name string) *corev1.EnvVar {
		for i, e := range p.Containers[0].Env {
			if e.Name == name {
				return &p.Containers[0].Env[i]
			}
		}
		return nil
	}
	expands := func(p corev1.PodSpec) bool {
		for _, a := range p.Containers[0].Args {
			if a == "-config.expand-env=true" {
				return true
			}
		}
		return false
	}

	p := pod(withS3().Spec.Storage)
	for name, key := range map[string]string{envS3AccessKeyID: "access_key_id", envS3SecretAccessKey: "secret_access_key"} {
		e := env(p, name)
		if e == nil || e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
			e.ValueFrom.SecretKeyRef.Name != "pyroscope-s3" || e.ValueFrom.SecretKeyRef.Key != key {
			t.Errorf("%s = %+v, want it from Secret pyroscope-s3 key %s", name, e, key)
		}
	}
	if !expands(p) {
		t.Errorf("args %v lack -config.expand-env=true", p.Containers[0].Args)
	}

	p = pod(&v1.StorageSpec{GCS: &v1.GCSStorageSpec{BucketName: "b", ServiceAccount: &v1.SecretKeyRef{Name: "gcs-key", Key: "key.json"}}})
	creds := env(p, envGoogleCredentials)
	if creds == nil {
		t.Fatal("no GOOGLE_APPLICATION_CREDENTIALS")
	}
	if got := mountedFrom(t, p, creds.Value); got != "gcs-key" {
		t.Errorf("%s is mounted from %q", creds.Value, got)
	}
	for _, v := range p.Volumes {
		if v.Name == gcsVolume && (len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != "key.json" || v.Secret.Items[0].Path != gcsKeyFile) {
			t.Errorf("GCS volume items %+v", v.Secret.Items)
		}
	}
	if expands(p) {
		t.Error("-config.expand-env without a credential in env")
	}

	p = pod(&v1.StorageSpec{Filesystem: &v1.FilesystemStorageSpec{ClaimName: "shared", SubPath: "pyroscope"}})
	found := false
	for _, m := range p.Containers[0].VolumeMounts {
		if m.MountPath == storageDataDir {
			found = !m.ReadOnly && m.SubPath == "pyroscope"
			for _, v := range p.Volumes {
				if v.Name == m.Name && (v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "shared") {
					found = false
				}
			}
		}
	}
	if !found {
		t.Errorf("claim shared is not mounted writable at %s (subPath pyroscope): %+v", storageDataDir, p.Containers[0].VolumeMounts)
	}

	if p := pod(nil); expands(p) || len(p.Volumes) != 2 {
		t.Errorf("without storage: args %v, %d volumes", p.Containers[0].Args, len(p.Volumes))
	}
}

// TestStorageErrors: what the distributor would refuse is refused at
// build, where it becomes a condition instead of crash-looping pods.
func TestStorageErrors(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(pd *v1.PyroscopeDistributor)
		want   string
	}{
		{"no backend", func(pd *v1.PyroscopeDistributor) { pd.Spec.Storage = &v1.StorageSpec{} }, "set one backend"},
		{"dot-dot in prefix", func(pd *v1.PyroscopeDistributor) { pd.Spec.Storage.Prefix = "a/../b" }, "spec.storage: storage.prefix"},
		{"access key without secret", func(pd *v1.PyroscopeDistributor) { pd.Spec.Storage.S3.SecretAccessKey = nil }, "access_key_id and secret_access_key go together"},
		{"'$' elsewhere in the config", func(pd *v1.PyroscopeDistributor) { pd.Spec.Memberlist.ClusterLabel = "prod$1" }, "holds '$'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pd := withS3()
			tc.mutate(pd)
			_, err := Build(pd, testFacts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// Without Secret-backed credentials nothing is expanded, so '$' is fine.
	pd := base("zone-a")
	pd.Spec.Memberlist.ClusterLabel = "prod$1"
	pd.Spec.Storage = &v1.StorageSpec{S3: &v1.S3StorageSpec{BucketName: "b", Endpoint: "e", NativeAWSAuth: true}}
	if _, err := Build(pd, testFacts); err != nil {
		t.Errorf("'$' without expansion: %v", err)
	}
}

// The rendered objects of a spec with S3 credentials from a Secret, for review.
func TestGoldenStorageS3(t *testing.T) {
	d := mustBuild(t, withS3())
	got := render(t, d)
	checkGolden(t, "storage-s3", got)
	for _, want := range []string{"secret_access_key: ${" + envS3SecretAccessKey + "}", "name: pyroscope-s3", "-config.expand-env=true"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("golden output lacks %q", want)
		}
	}
	if plain := mustBuild(t, base("zone-a", "zone-b")); plain.ConfigHash == d.ConfigHash {
		t.Error("adding storage did not change the config hash (pods would not roll)")
	}
}

// TestStoragePodsPassAPIServerValidation: the pods of every backend, with
// their Secret-backed env, key file and claim, are accepted by a real
// kube-apiserver in a namespace that enforces the restricted Pod Security
// Standard.
func TestStoragePodsPassAPIServerValidation(t *testing.T) {
	c := envtestbin.Start(t, filepath.Join("..", ".."), &envtest.Environment{}, scheme.Scheme)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "profiling", Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	key := &v1.SecretKeyRef{Name: "creds", Key: "k"}
	for i, s := range []v1.StorageSpec{
		*withS3().Spec.Storage,
		{GCS: &v1.GCSStorageSpec{BucketName: "b", ServiceAccount: key}},
		{Azure: &v1.AzureStorageSpec{AccountName: "a", ContainerName: "c", ConnectionString: key}},
		{Swift: &v1.SwiftStorageSpec{AuthURL: "https://keystone/v3", ContainerName: "c", Password: key}},
		{Filesystem: &v1.FilesystemStorageSpec{ClaimName: "shared", SubPath: "pyroscope"}},
	} {
		pd := base("zone-a")
		pd.Spec.Storage = &s
		for _, z := range mustBuild(t, pd).Zones {
			tmpl := z.Deployment.Spec.Template
			pod := &corev1.Pod{ObjectMeta: *tmpl.ObjectMeta.DeepCopy(), Spec: *tmpl.Spec.DeepCopy()}
			pod.Namespace, pod.Name = "profiling", fmt.Sprintf("storage-%d", i)
			if err := c.Create(ctx, pod, client.DryRunAll); err != nil {
				t.Errorf("%+v: the pod is refused: %v", s, err)
			}
		}
	}
}
