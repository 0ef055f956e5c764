package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestStorageDefaults: Pyroscope's defaults, except the backend, which is
// empty (no object storage) where Pyroscope's is filesystem.
func TestStorageDefaults(t *testing.T) {
	s := Defaults().Storage
	if s.Enabled() || s.Backend != "" {
		t.Errorf("backend %q by default, want none", s.Backend)
	}
	checks := map[string][2]any{
		"filesystem.dir":                   {s.Filesystem.Dir, "./data/v2/shared"},
		"s3.signature_version":             {s.S3.SignatureVersion, "v4"},
		"s3.bucket_lookup_type":            {s.S3.BucketLookupType, "auto"},
		"s3.http.idle_conn_timeout":        {s.S3.HTTP.IdleConnTimeout, 90 * time.Second},
		"s3.http.max_idle_connections":     {s.S3.HTTP.MaxIdleConns, 0},
		"s3.http.response_header_timeout":  {s.S3.HTTP.ResponseHeaderTimeout, 2 * time.Minute},
		"gcs.http.max_idle_conns_per_host": {s.GCS.HTTP.MaxIdleConnsPerHost, 100},
		"cos.http.max_idle_connections":    {s.COS.HTTP.MaxIdleConns, 100},
		"azure.max_retries":                {s.Azure.MaxRetries, 3},
		"swift.max_retries":                {s.Swift.MaxRetries, 3},
		"swift.connect_timeout":            {s.Swift.ConnectTimeout, 10 * time.Second},
		"swift.request_timeout":            {s.Swift.RequestTimeout, 5 * time.Second},
	}
	for key, c := range checks {
		if c[0] != c[1] {
			t.Errorf("storage.%s = %v by default, want %v", key, c[0], c[1])
		}
	}
	// Without a backend nothing else is checked, as in Pyroscope.
	if err := s.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestStorageYAMLAndFlags: each backend's block as a Pyroscope config file
// writes it, and the same settings as -storage.* flags, load the same.
func TestStorageYAMLAndFlags(t *testing.T) {
	cases := []struct {
		backend string
		yaml    string
		flags   []string
		want    func(s *Storage) any
		value   any
	}{
		{"s3", `
storage:
  backend: s3
  prefix: tenant-a/blocks
  s3:
    endpoint: s3.eu-west-1.amazonaws.com
    region: eu-west-1
    bucket_name: profiles
    access_key_id: AKIA1
    secret_access_key: s3cr3t
    insecure: true
    bucket_lookup_type: path-style
    signature_version: v2
    sse:
      type: SSE-KMS
      kms_key_id: key-1
      kms_encryption_context: '{"team":"perf"}'
    http:
      idle_conn_timeout: 1m
      max_idle_connections: 7
      max_connections_per_host: 9
`, []string{
			"-storage.backend=s3", "-storage.prefix=tenant-a/blocks",
			"-storage.s3.endpoint=s3.eu-west-1.amazonaws.com", "-storage.s3.region=eu-west-1", "-storage.s3.bucket-name=profiles",
			"-storage.s3.access-key-id=AKIA1", "-storage.s3.secret-access-key=s3cr3t", "-storage.s3.insecure",
			"-storage.s3.bucket-lookup-type=path-style", "-storage.s3.signature-version=v2",
			"-storage.s3.sse.type=SSE-KMS", "-storage.s3.sse.kms-key-id=key-1", `-storage.s3.sse.kms-encryption-context={"team":"perf"}`,
			"-storage.s3.http.idle-conn-timeout=1m", "-storage.s3.max-idle-connections=7", "-storage.s3.max-connections-per-host=9",
		}, func(s *Storage) any { return []any{s.Prefix, s.S3} }, []any{"tenant-a/blocks", S3Storage{
			Endpoint: "s3.eu-west-1.amazonaws.com", Region: "eu-west-1", BucketName: "profiles",
			AccessKeyID: "AKIA1", SecretAccessKey: "s3cr3t", Insecure: true,
			BucketLookupType: "path-style", SignatureVersion: "v2",
			SSE: S3SSE{Type: "SSE-KMS", KMSKeyID: "key-1", KMSEncryptionContext: `{"team":"perf"}`},
			HTTP: StorageHTTP{IdleConnTimeout: time.Minute, ResponseHeaderTimeout: 2 * time.Minute, TLSHandshakeTimeout: 10 * time.Second,
				ExpectContinueTimeout: time.Second, MaxIdleConns: 7, MaxIdleConnsPerHost: 100, MaxConnsPerHost: 9},
		}}},
		{"gcs", `
storage:
  backend: gcs
  gcs:
    bucket_name: profiles
    service_account: '{"type":"service_account"}'
    http:
      max_idle_conns: 3
      max_conns_per_host: 4
`, []string{
			"-storage.backend=gcs", "-storage.gcs.bucket-name=profiles", `-storage.gcs.service-account={"type":"service_account"}`,
			"-storage.gcs.max-idle-connections=3", "-storage.gcs.max-connections-per-host=4",
		}, func(s *Storage) any {
			return []any{s.GCS.BucketName, s.GCS.ServiceAccount, s.GCS.HTTP.MaxIdleConns, s.GCS.HTTP.MaxConnsPerHost}
		},
			[]any{"profiles", `{"type":"service_account"}`, 3, 4}},
		{"azure", `
storage:
  backend: azure
  azure:
    account_name: acct
    account_key: a2V5
    container_name: profiles
    endpoint_suffix: blob.core.chinacloudapi.cn
    max_retries: 5
`, []string{
			"-storage.backend=azure", "-storage.azure.account-name=acct", "-storage.azure.account-key=a2V5",
			"-storage.azure.container-name=profiles", "-storage.azure.endpoint-suffix=blob.core.chinacloudapi.cn", "-storage.azure.max-retries=5",
		}, func(s *Storage) any { return s.Azure }, AzureStorage{
			AccountName: "acct", AccountKey: "a2V5", ContainerName: "profiles", EndpointSuffix: "blob.core.chinacloudapi.cn", MaxRetries: 5,
		}},
		{"swift", `
storage:
  backend: swift
  swift:
    auth_version: 3
    auth_url: https://keystone:5000/v3
    username: pyro
    password: pw
    user_domain_name: Default
    project_name: profiling
    region_name: RegionOne
    container_name: profiles
    request_timeout: 30s
`, []string{
			"-storage.backend=swift", "-storage.swift.auth-version=3", "-storage.swift.auth-url=https://keystone:5000/v3",
			"-storage.swift.username=pyro", "-storage.swift.password=pw", "-storage.swift.user-domain-name=Default",
			"-storage.swift.project-name=profiling", "-storage.swift.region-name=RegionOne",
			"-storage.swift.container-name=profiles", "-storage.swift.request-timeout=30s",
		}, func(s *Storage) any { return s.Swift }, SwiftStorage{
			AuthVersion: 3, AuthURL: "https://keystone:5000/v3", Username: "pyro", Password: "pw", UserDomainName: "Default",
			ProjectName: "profiling", RegionName: "RegionOne", ContainerName: "profiles",
			MaxRetries: 3, ConnectTimeout: 10 * time.Second, RequestTimeout: 30 * time.Second,
		}},
		{"cos", `
storage:
  backend: cos
  cos:
    bucket: profiles
    region: ap-beijing
    app_id: "1250000000"
    secret_id: id
    secret_key: key
`, []string{
			"-storage.backend=cos", "-storage.cos.bucket=profiles", "-storage.cos.region=ap-beijing",
			"-storage.cos.app-id=1250000000", "-storage.cos.secret-id=id", "-storage.cos.secret-key=key",
		}, func(s *Storage) any {
			return []any{s.COS.Bucket, s.COS.Region, s.COS.AppID, s.COS.SecretID, s.COS.SecretKey}
		},
			[]any{"profiles", "ap-beijing", "1250000000", "id", "key"}},
		{"filesystem", `
storage:
  backend: filesystem
  storage_prefix: old-style
  filesystem:
    dir: /var/pyroscope/shared
`, []string{"-storage.backend=filesystem", "-storage.storage-prefix=old-style", "-storage.filesystem.dir=/var/pyroscope/shared"},
			func(s *Storage) any { return []any{s.Filesystem.Dir, s.EffectivePrefix()} }, []any{"/var/pyroscope/shared", "old-style"}},
	}
	for _, tc := range cases {
		t.Run(tc.backend, func(t *testing.T) {
			file := writeFile(t, t.TempDir(), "config.yaml", tc.yaml)
			for how, args := range map[string][]string{"yaml": {"-config.file", file}, "flags": tc.flags} {
				c, err := load(t, args...)
				if err != nil {
					t.Fatalf("%s: %v", how, err)
				}
				if c.Storage.Backend != tc.backend {
					t.Errorf("%s: backend %q", how, c.Storage.Backend)
				}
				if got := tc.want(&c.Storage); !reflect.DeepEqual(got, tc.value) {
					t.Errorf("%s:\n got %+v\nwant %+v", how, got, tc.value)
				}
			}
		})
	}
}

// TestStorageInvalid: a config that names a backend it cannot use fails at
// load, and the message names the key.
func TestStorageInvalid(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-storage.backend=s4"}, `storage.backend: unsupported backend "s4"`},
		{[]string{"-storage.backend=filesystem", "-storage.prefix=/abs"}, `storage.prefix "/abs": must not start with a slash`},
		{[]string{"-storage.backend=filesystem", "-storage.prefix=a//b"}, "empty path segment"},
		{[]string{"-storage.backend=filesystem", "-storage.prefix=a/../b"}, "'.' or '..' segment"},
		{[]string{"-storage.backend=filesystem", "-storage.prefix=a b"}, "letters, digits"},
		{[]string{"-storage.backend=filesystem", "-storage.prefix=1st"}, "not starting with a digit"},
		{[]string{"-storage.backend=filesystem", "-storage.prefix=a", "-storage.storage-prefix=b"}, "storage.prefix and storage.storage_prefix are both set"},
		{[]string{"-storage.backend=filesystem", "-storage.filesystem.dir="}, "storage.filesystem: dir is required"},
		{[]string{"-storage.backend=s3", "-storage.s3.endpoint=e"}, "storage.s3: bucket_name is required"},
		{[]string{"-storage.backend=s3", "-storage.s3.bucket-name=b"}, "storage.s3: endpoint is required"},
		{[]string{"-storage.backend=s3", "-storage.s3.bucket-name=b", "-storage.s3.endpoint=e", "-storage.s3.access-key-id=k"}, "access_key_id and secret_access_key go together"},
		{[]string{"-storage.backend=s3", "-storage.s3.bucket-name=b", "-storage.s3.endpoint=e", "-storage.s3.signature-version=v3"}, `signature_version "v3"`},
		{[]string{"-storage.backend=s3", "-storage.s3.bucket-name=b", "-storage.s3.endpoint=e", "-storage.s3.bucket-lookup-type=dns"}, `bucket_lookup_type "dns"`},
		{[]string{"-storage.backend=s3", "-storage.s3.bucket-name=b", "-storage.s3.endpoint=e", "-storage.s3.force-path-style", "-storage.s3.bucket-lookup-type=virtual-hosted-style"}, "contradict"},
		{[]string{"-storage.backend=s3", "-storage.s3.bucket-name=b", "-storage.s3.endpoint=e", "-storage.s3.sse.type=SSE-C"}, `sse.type "SSE-C"`},
		{[]string{"-storage.backend=s3", "-storage.s3.bucket-name=b", "-storage.s3.endpoint=e", "-storage.s3.sse.type=SSE-KMS"}, "sse.kms_key_id is required"},
		{[]string{"-storage.backend=s3", "-storage.s3.bucket-name=b", "-storage.s3.endpoint=e", "-storage.s3.sse.kms-encryption-context=nope"}, "kms_encryption_context is not a JSON object"},
		{[]string{"-storage.backend=gcs"}, "storage.gcs: bucket_name is required"},
		{[]string{"-storage.backend=gcs", "-storage.gcs.bucket-name=b", "-storage.gcs.service-account=/var/run/key.json"}, "not a path"},
		{[]string{"-storage.backend=azure", "-storage.azure.container-name=c"}, "storage.azure: account_name is required"},
		{[]string{"-storage.backend=azure", "-storage.azure.account-name=a"}, "container_name is required"},
		{[]string{"-storage.backend=azure", "-storage.azure.account-name=a", "-storage.azure.container-name=c", "-storage.azure.client-id=x"}, "az_tenant_id, client_id and client_secret go together"},
		{[]string{"-storage.backend=azure", "-storage.azure.account-name=a", "-storage.azure.container-name=c", "-storage.azure.account-key=k", "-storage.azure.connection-string=s"}, "exclude each other"},
		{[]string{"-storage.backend=swift", "-storage.swift.container-name=c"}, "storage.swift: auth_url is required"},
		{[]string{"-storage.backend=cos", "-storage.cos.bucket=b"}, "storage.cos: bucket, app_id, region, secret_id and secret_key are required"},
		{[]string{"-storage.backend=cos", "-storage.cos.endpoint=https://b.cos.example"}, "secret_id and secret_key are required"},
	}
	for _, tc := range cases {
		_, err := load(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want it to contain %q", tc.args, err, tc.want)
		}
	}
}

// TestStorageExpandEnv: credentials written as ${VAR} in the file come
// from the environment with -config.expand-env, as the operator renders
// them from Secret-backed env.
func TestStorageExpandEnv(t *testing.T) {
	t.Setenv("PYRODIST_STORAGE_S3_SECRET_ACCESS_KEY", "from-secret")
	file := writeFile(t, t.TempDir(), "config.yaml", `
storage:
  backend: s3
  s3:
    endpoint: minio:9000
    bucket_name: profiles
    access_key_id: pyro
    secret_access_key: ${PYRODIST_STORAGE_S3_SECRET_ACCESS_KEY}
`)
	c, err := load(t, "-config.file", file, "-config.expand-env")
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.S3.SecretAccessKey != "from-secret" {
		t.Errorf("secret_access_key %q", c.Storage.S3.SecretAccessKey)
	}
}
