package v1alpha1_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
)

func TestStorageValidation(t *testing.T) {
	c := startAPIServer(t)
	ctx := context.Background()
	ref := func(name, key string) *v1.SecretKeyRef { return &v1.SecretKeyRef{Name: name, Key: key} }
	s3 := func() *v1.S3StorageSpec {
		return &v1.S3StorageSpec{BucketName: "profiles", Endpoint: "s3.amazonaws.com",
			AccessKeyID: ref("s3", "id"), SecretAccessKey: ref("s3", "secret")}
	}

	accepted := []v1.StorageSpec{
		{Prefix: "pyroscope/v2/", S3: s3()},
		{S3: &v1.S3StorageSpec{BucketName: "b", Endpoint: "e", NativeAWSAuth: true, SSE: &v1.S3SSESpec{Type: "SSE-KMS", KMSKeyID: "k"}}},
		{GCS: &v1.GCSStorageSpec{BucketName: "b", ServiceAccount: ref("gcs", "key.json")}},
		{Azure: &v1.AzureStorageSpec{AccountName: "a", ContainerName: "c", TenantID: "t", ClientID: "i", ClientSecret: ref("az", "s")}},
		{Swift: &v1.SwiftStorageSpec{AuthURL: "https://keystone/v3", ContainerName: "c", Password: ref("swift", "pw")}},
		{Filesystem: &v1.FilesystemStorageSpec{ClaimName: "shared", SubPath: "a/b"}},
	}
	for i, s := range accepted {
		pd := valid(fmt.Sprintf("storage-ok-%d", i))
		pd.Spec.Storage = s.DeepCopy()
		if err := c.Create(ctx, pd); err != nil {
			t.Errorf("%+v refused: %v", s, err)
			continue
		}
		got := &v1.PyroscopeDistributor{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(pd), got); err != nil {
			t.Fatal(err)
		}
		if got.Spec.Storage == nil {
			t.Errorf("storage-ok-%d: spec.storage lost", i)
		}
	}

	for i, tc := range []struct {
		name string
		spec v1.StorageSpec
		want string
	}{
		{"no backend", v1.StorageSpec{Prefix: "p"}, "exactly one backend"},
		{"two backends", v1.StorageSpec{S3: s3(), GCS: &v1.GCSStorageSpec{BucketName: "b"}}, "exactly one backend"},
		{"prefix with a leading slash", v1.StorageSpec{Prefix: "/p", S3: s3()}, "spec.storage.prefix"},
		{"access key alone", v1.StorageSpec{S3: &v1.S3StorageSpec{BucketName: "b", Endpoint: "e", AccessKeyID: ref("s3", "id")}}, "accessKeyID and secretAccessKey go together"},
		{"native auth with keys", v1.StorageSpec{S3: func() *v1.S3StorageSpec { b := s3(); b.NativeAWSAuth = true; return b }()}, "exclude each other"},
		{"unknown lookup", v1.StorageSpec{S3: func() *v1.S3StorageSpec { b := s3(); b.BucketLookupType = "dns"; return b }()}, "bucketLookupType"},
		{"SSE-KMS without key", v1.StorageSpec{S3: func() *v1.S3StorageSpec { b := s3(); b.SSE = &v1.S3SSESpec{Type: "SSE-KMS"}; return b }()}, "SSE-KMS needs kmsKeyID"},
		{"no bucket", v1.StorageSpec{GCS: &v1.GCSStorageSpec{}}, "spec.storage.gcs.bucketName"},
		{"bad secret name", v1.StorageSpec{GCS: &v1.GCSStorageSpec{BucketName: "b", ServiceAccount: ref("GCS_Key", "k")}}, "name must be a Secret name"},
		{"bad secret key", v1.StorageSpec{GCS: &v1.GCSStorageSpec{BucketName: "b", ServiceAccount: ref("gcs", "a/b")}}, "spec.storage.gcs.serviceAccount.key"},
		{"account key and connection string", v1.StorageSpec{Azure: &v1.AzureStorageSpec{AccountName: "a", ContainerName: "c", AccountKey: ref("a", "k"), ConnectionString: ref("a", "s")}}, "accountKey and connectionString exclude each other"},
		{"client secret alone", v1.StorageSpec{Azure: &v1.AzureStorageSpec{AccountName: "a", ContainerName: "c", ClientSecret: ref("a", "s")}}, "tenantID, clientID and clientSecret go together"},
		{"swift without container", v1.StorageSpec{Swift: &v1.SwiftStorageSpec{AuthURL: "u"}}, "spec.storage.swift.containerName"},
		{"subPath leaves the volume", v1.StorageSpec{Filesystem: &v1.FilesystemStorageSpec{ClaimName: "c", SubPath: "a/../../b"}}, "subPath must be relative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pd := valid(fmt.Sprintf("storage-bad-%d", i))
			pd.Spec.Storage = tc.spec.DeepCopy()
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
