package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Storage backends, as Pyroscope names them (pkg/objstore/client/config.go
// at 3fe6a45). StorageNone is the empty backend: no object storage.
const (
	StorageNone       = ""
	StorageS3         = "s3"
	StorageGCS        = "gcs"
	StorageAzure      = "azure"
	StorageSwift      = "swift"
	StorageCOS        = "cos"
	StorageFilesystem = "filesystem"
)

// StorageBackends are the values storage.backend takes besides empty, in
// Pyroscope's order.
var StorageBackends = []string{StorageS3, StorageGCS, StorageAzure, StorageSwift, StorageFilesystem, StorageCOS}

// Storage is Pyroscope's `storage` block: the object store the placement
// rules are read from and debug info is uploaded to. Its YAML keys, flags
// and defaults are Pyroscope's (pkg/objstore/client/config.go and
// pkg/objstore/providers/*/config.go at 3fe6a45, registered under
// "storage." by StorageConfig in pkg/pyroscope/pyroscope.go), with one
// difference: -storage.backend defaults to empty, no object storage,
// where Pyroscope's defaults to filesystem (docs/compatibility.md). A
// distributor's local directory is shared with no other component, so a
// filesystem default would only hide that no bucket was configured.
//
// The credential fields (S3.SecretAccessKey, Azure.AccountKey, ...) are
// plain strings: the operator renders them as ${VAR} references that
// -config.expand-env resolves from Secret-backed env, never their values.
// Anything that prints a loaded config must mask them.
type Storage struct {
	Backend    string            `yaml:"backend"`
	S3         S3Storage         `yaml:"s3"`
	GCS        GCSStorage        `yaml:"gcs"`
	Azure      AzureStorage      `yaml:"azure"`
	Swift      SwiftStorage      `yaml:"swift"`
	COS        COSStorage        `yaml:"cos"`
	Filesystem FilesystemStorage `yaml:"filesystem"`
	// Prefix is prepended to every object name.
	Prefix string `yaml:"prefix"`
	// DeprecatedPrefix is Pyroscope's older name of Prefix; setting both is an error.
	DeprecatedPrefix string `yaml:"storage_prefix"`
}

// RegisterFlags registers the -storage.* flags with Pyroscope's defaults.
func (c *Storage) RegisterFlags(f *flag.FlagSet) {
	const p = "storage."
	c.S3.RegisterFlagsWithPrefix(p, f)
	c.GCS.RegisterFlagsWithPrefix(p, f)
	c.Azure.RegisterFlagsWithPrefix(p, f)
	c.Swift.RegisterFlagsWithPrefix(p, f)
	// Pyroscope's default directory for the storage block.
	f.StringVar(&c.Filesystem.Dir, p+"filesystem.dir", "./data/v2/shared", "Directory of the filesystem backend; every component that uses the bucket must see the same directory.")
	c.COS.RegisterFlagsWithPrefix(p, f)
	f.StringVar(&c.Backend, p+"backend", StorageNone, "Object storage backend: "+strings.Join(StorageBackends, ", ")+", or empty for none (then the placement rules stay the static ones and debug info uploads are off).")
	f.StringVar(&c.Prefix, p+"prefix", "", "Prefix of every object name in the bucket: letters, digits, '-', '_', '.' and '/' between path segments.")
	f.StringVar(&c.DeprecatedPrefix, p+"storage-prefix", "", "Deprecated: use -storage.prefix.")
}

// Enabled reports whether a backend is configured.
func (c *Storage) Enabled() bool { return c.Backend != StorageNone }

// EffectivePrefix is the prefix applied to object names.
func (c *Storage) EffectivePrefix() string {
	if c.Prefix != "" {
		return c.Prefix
	}
	return c.DeprecatedPrefix
}

// Validate reports, naming the YAML key, what would keep the bucket from
// being built. An empty backend is valid whatever the other keys hold, as
// in Pyroscope. Beyond Pyroscope's own checks it refuses what the objstore
// providers would refuse when the bucket is built (a missing bucket or
// container name, credentials that go in pairs), so the mistake stops the
// process at load instead of surfacing as a storage that never works.
func (c *Storage) Validate() error {
	if c.Backend == StorageNone {
		return nil
	}
	if !slices.Contains(StorageBackends, c.Backend) {
		return fmt.Errorf("storage.backend: unsupported backend %q (one of %s, or empty for none)", c.Backend, strings.Join(StorageBackends, ", "))
	}
	if c.Prefix != "" && c.DeprecatedPrefix != "" {
		return errors.New("storage.prefix and storage.storage_prefix are both set: use storage.prefix only")
	}
	if err := validStoragePrefix(c.EffectivePrefix()); err != nil {
		return fmt.Errorf("storage.prefix %q: %w", c.EffectivePrefix(), err)
	}
	var err error
	switch c.Backend {
	case StorageS3:
		err = c.S3.Validate()
	case StorageGCS:
		err = c.GCS.Validate()
	case StorageAzure:
		err = c.Azure.Validate()
	case StorageSwift:
		err = c.Swift.Validate()
	case StorageCOS:
		err = c.COS.Validate()
	case StorageFilesystem:
		if c.Filesystem.Dir == "" {
			err = errors.New("dir is required")
		}
	}
	if err != nil {
		return fmt.Errorf("storage.%s: %w", c.Backend, err)
	}
	return nil
}

// validStoragePrefix applies Pyroscope's prefix rule: segments of letters,
// digits, '-', '_' and '.', not starting with a digit, never "." or "..",
// no leading slash and no empty segment (one trailing slash is allowed).
func validStoragePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	parts := strings.Split(prefix, "/")
	for i, part := range parts {
		switch {
		case part == "" && i == 0:
			return errors.New("must not start with a slash")
		case part == "" && i == len(parts)-1:
			continue
		case part == "":
			return errors.New("has an empty path segment")
		case part == "." || part == "..":
			return errors.New("has a '.' or '..' segment")
		}
		for j, r := range part {
			letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
			digit := r >= '0' && r <= '9'
			if !letter && r != '-' && r != '_' && r != '.' && (!digit || j == 0) {
				return errors.New("may hold letters, digits, '-', '_' and '.' only, a segment not starting with a digit")
			}
		}
	}
	return nil
}

// FilesystemStorage is storage.filesystem.
type FilesystemStorage struct {
	Dir string `yaml:"dir"`
}

// StorageHTTP is the HTTP transport block of the s3 and cos backends
// (keys as Pyroscope's s3.HTTPConfig and cos.HTTPConfig).
type StorageHTTP struct {
	IdleConnTimeout       time.Duration `yaml:"idle_conn_timeout"`
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	InsecureSkipVerify    bool          `yaml:"insecure_skip_verify"`
	TLSHandshakeTimeout   time.Duration `yaml:"tls_handshake_timeout"`
	ExpectContinueTimeout time.Duration `yaml:"expect_continue_timeout"`
	MaxIdleConns          int           `yaml:"max_idle_connections"`
	MaxIdleConnsPerHost   int           `yaml:"max_idle_connections_per_host"`
	MaxConnsPerHost       int           `yaml:"max_connections_per_host"`
}

// GCSHTTP is the gcs backend's HTTP block: the same settings under
// Pyroscope's shorter keys for gcs (max_idle_conns, ...).
type GCSHTTP struct {
	IdleConnTimeout       time.Duration `yaml:"idle_conn_timeout"`
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	InsecureSkipVerify    bool          `yaml:"insecure_skip_verify"`
	TLSHandshakeTimeout   time.Duration `yaml:"tls_handshake_timeout"`
	ExpectContinueTimeout time.Duration `yaml:"expect_continue_timeout"`
	MaxIdleConns          int           `yaml:"max_idle_conns"`
	MaxIdleConnsPerHost   int           `yaml:"max_idle_conns_per_host"`
	MaxConnsPerHost       int           `yaml:"max_conns_per_host"`
}

// registerFlags registers one backend's HTTP flags (prefix "storage.s3."
// and so on); the flag names are the same for every backend, only the
// default of max-idle-connections differs.
func (c *StorageHTTP) registerFlags(f *flag.FlagSet, prefix, what string, maxIdle int) {
	f.DurationVar(&c.IdleConnTimeout, prefix+"http.idle-conn-timeout", 90*time.Second, "How long an idle connection to "+what+" stays open.")
	f.DurationVar(&c.ResponseHeaderTimeout, prefix+"http.response-header-timeout", 2*time.Minute, "How long to wait for "+what+"'s response headers.")
	f.BoolVar(&c.InsecureSkipVerify, prefix+"http.insecure-skip-verify", false, "Accept any certificate and host name from "+what+" over HTTPS.")
	f.DurationVar(&c.TLSHandshakeTimeout, prefix+"tls-handshake-timeout", 10*time.Second, "Longest TLS handshake with "+what+"; 0 for no limit.")
	f.DurationVar(&c.ExpectContinueTimeout, prefix+"expect-continue-timeout", time.Second, "How long to wait for "+what+"'s first response headers after sending headers with Expect: 100-continue; 0 sends the body at once.")
	f.IntVar(&c.MaxIdleConns, prefix+"max-idle-connections", maxIdle, "Most idle (keep-alive) connections over all hosts; 0 for no limit.")
	f.IntVar(&c.MaxIdleConnsPerHost, prefix+"max-idle-connections-per-host", 100, "Most idle (keep-alive) connections per host; 0 for Go's default.")
	f.IntVar(&c.MaxConnsPerHost, prefix+"max-connections-per-host", 0, "Most connections per host; 0 for no limit.")
}

// S3 bucket lookup styles and signature versions Pyroscope accepts.
const (
	S3LookupAuto          = "auto"
	S3LookupPathStyle     = "path-style"
	S3LookupVirtualHosted = "virtual-hosted-style"
	S3SignatureV4         = "v4"
	S3SignatureV2         = "v2"
	S3SSEKMS              = "SSE-KMS"
	S3SSES3               = "SSE-S3"
)

// S3Storage is storage.s3. Credentials left empty come from the AWS
// environment (AWS_ACCESS_KEY_ID, ...), the AWS files or the instance's
// role, as minio's credential chain finds them.
type S3Storage struct {
	Endpoint             string      `yaml:"endpoint"`
	Region               string      `yaml:"region"`
	BucketName           string      `yaml:"bucket_name"`
	SecretAccessKey      string      `yaml:"secret_access_key"`
	AccessKeyID          string      `yaml:"access_key_id"`
	Insecure             bool        `yaml:"insecure"`
	SignatureVersion     string      `yaml:"signature_version"`
	ForcePathStyle       bool        `yaml:"force_path_style"`
	BucketLookupType     string      `yaml:"bucket_lookup_type"`
	NativeAWSAuthEnabled bool        `yaml:"native_aws_auth_enabled"`
	SSE                  S3SSE       `yaml:"sse"`
	HTTP                 StorageHTTP `yaml:"http"`
}

// S3SSE is storage.s3.sse, server-side encryption.
type S3SSE struct {
	Type                 string `yaml:"type"`
	KMSKeyID             string `yaml:"kms_key_id"`
	KMSEncryptionContext string `yaml:"kms_encryption_context"`
}

func (c *S3Storage) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	p := prefix + "s3."
	f.StringVar(&c.AccessKeyID, p+"access-key-id", "", "S3 access key ID; empty to take credentials from the AWS environment, files or instance role.")
	f.StringVar(&c.SecretAccessKey, p+"secret-access-key", "", "S3 secret access key.")
	f.StringVar(&c.BucketName, p+"bucket-name", "", "S3 bucket name.")
	f.StringVar(&c.Region, p+"region", "", "S3 region; empty to ask the endpoint (GetBucketLocation).")
	f.StringVar(&c.Endpoint, p+"endpoint", "", "S3 endpoint as host[:port], e.g. s3.eu-west-1.amazonaws.com or an S3-compatible server.")
	f.BoolVar(&c.Insecure, p+"insecure", false, "Talk plain http:// to the S3 endpoint (test setups such as MinIO).")
	f.BoolVar(&c.ForcePathStyle, p+"force-path-style", false, "Deprecated: use -storage.s3.bucket-lookup-type=path-style.")
	f.StringVar(&c.BucketLookupType, p+"bucket-lookup-type", S3LookupAuto, "How the bucket is addressed: auto, path-style or virtual-hosted-style.")
	f.StringVar(&c.SignatureVersion, p+"signature-version", S3SignatureV4, "Request signature version: v4 or v2.")
	f.BoolVar(&c.NativeAWSAuthEnabled, p+"native-aws-auth-enabled", false, "Authenticate with the AWS SDK's default chain (environment, config files, roles) instead of minio's.")
	f.StringVar(&c.SSE.Type, p+"sse.type", "", "Server-side encryption: SSE-KMS or SSE-S3; empty for none.")
	f.StringVar(&c.SSE.KMSKeyID, p+"sse.kms-key-id", "", "KMS key ID for SSE-KMS.")
	f.StringVar(&c.SSE.KMSEncryptionContext, p+"sse.kms-encryption-context", "", "KMS encryption context for SSE-KMS, a JSON object of strings.")
	c.HTTP.registerFlags(f, p, "S3", 0)
}

// Validate applies Pyroscope's S3 checks and the objstore provider's.
func (c *S3Storage) Validate() error {
	switch {
	case c.BucketName == "":
		return errors.New("bucket_name is required")
	case c.Endpoint == "":
		return errors.New("endpoint is required")
	case c.SignatureVersion != S3SignatureV4 && c.SignatureVersion != S3SignatureV2:
		return fmt.Errorf("signature_version %q: use v4 or v2", c.SignatureVersion)
	case !slices.Contains([]string{S3LookupAuto, S3LookupPathStyle, S3LookupVirtualHosted}, c.BucketLookupType):
		return fmt.Errorf("bucket_lookup_type %q: use auto, path-style or virtual-hosted-style", c.BucketLookupType)
	case c.ForcePathStyle && c.BucketLookupType == S3LookupVirtualHosted:
		return errors.New("force_path_style and bucket_lookup_type virtual-hosted-style contradict each other")
	case (c.AccessKeyID == "") != (c.SecretAccessKey == ""):
		return errors.New("access_key_id and secret_access_key go together (leave both empty to use the AWS environment or role)")
	case c.NativeAWSAuthEnabled && c.AccessKeyID != "":
		return errors.New("native_aws_auth_enabled and access_key_id exclude each other")
	case c.SSE.Type != "" && c.SSE.Type != S3SSEKMS && c.SSE.Type != S3SSES3:
		return fmt.Errorf("sse.type %q: use SSE-KMS or SSE-S3", c.SSE.Type)
	case c.SSE.Type == S3SSEKMS && c.SSE.KMSKeyID == "":
		return errors.New("sse.kms_key_id is required with SSE-KMS")
	}
	if _, err := c.SSE.EncryptionContext(); err != nil {
		return err
	}
	return nil
}

// EncryptionContext parses kms_encryption_context; nil when empty.
func (c *S3SSE) EncryptionContext() (map[string]string, error) {
	if c.KMSEncryptionContext == "" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(c.KMSEncryptionContext), &m); err != nil {
		return nil, fmt.Errorf("sse.kms_encryption_context is not a JSON object of strings: %w", err)
	}
	return m, nil
}

// GCSStorage is storage.gcs. Without service_account the Google default
// credentials apply (GOOGLE_APPLICATION_CREDENTIALS names a key file, or
// the workload's identity).
type GCSStorage struct {
	BucketName     string  `yaml:"bucket_name"`
	ServiceAccount string  `yaml:"service_account"`
	HTTP           GCSHTTP `yaml:"http"`
}

func (c *GCSStorage) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	p := prefix + "gcs."
	f.StringVar(&c.BucketName, p+"bucket-name", "", "GCS bucket name.")
	f.StringVar(&c.ServiceAccount, p+"service-account", "", "GCS service account key, the JSON itself (not a path); empty for Google's default credentials (GOOGLE_APPLICATION_CREDENTIALS, workload identity).")
	(*StorageHTTP)(&c.HTTP).registerFlags(f, p, "GCS", 0)
}

// Validate checks what the GCS client needs before it can be built.
func (c *GCSStorage) Validate() error {
	if c.BucketName == "" {
		return errors.New("bucket_name is required")
	}
	if c.ServiceAccount != "" && !json.Valid([]byte(c.ServiceAccount)) {
		return errors.New("service_account must be the key's JSON, not a path (use GOOGLE_APPLICATION_CREDENTIALS for a file)")
	}
	return nil
}

// AzureStorage is storage.azure. Without account_key or connection_string
// the client authenticates with a client secret (az_tenant_id, client_id,
// client_secret) or a managed identity.
type AzureStorage struct {
	TenantID         string `yaml:"az_tenant_id"`
	ClientID         string `yaml:"client_id"`
	ClientSecret     string `yaml:"client_secret"`
	AccountName      string `yaml:"account_name"`
	AccountKey       string `yaml:"account_key"`
	ConnectionString string `yaml:"connection_string"`
	ContainerName    string `yaml:"container_name"`
	EndpointSuffix   string `yaml:"endpoint_suffix"`
	MaxRetries       int    `yaml:"max_retries"`
	UserAssignedID   string `yaml:"user_assigned_id"`
}

func (c *AzureStorage) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	p := prefix + "azure."
	f.StringVar(&c.TenantID, p+"az-tenant-id", "", "Azure Active Directory tenant ID; with client-id and client-secret, authenticate with a client secret.")
	f.StringVar(&c.ClientID, p+"client-id", "", "Azure Active Directory client ID, for client-secret authentication.")
	f.StringVar(&c.ClientSecret, p+"client-secret", "", "Azure Active Directory client secret, for client-secret authentication.")
	f.StringVar(&c.AccountName, p+"account-name", "", "Azure storage account name.")
	f.StringVar(&c.AccountKey, p+"account-key", "", "Azure storage account key; empty to use a managed identity.")
	f.StringVar(&c.ConnectionString, p+"connection-string", "", "Azure storage connection string, e.g. for SAS tokens or the Azurite emulator; endpoint-suffix is then ignored.")
	f.StringVar(&c.ContainerName, p+"container-name", "", "Azure storage container name.")
	f.StringVar(&c.EndpointSuffix, p+"endpoint-suffix", "", "Azure storage endpoint suffix without scheme, after the account name; empty for Azure's default.")
	f.IntVar(&c.MaxRetries, p+"max-retries", 3, "Retries of a request that failed with a recoverable error.")
	f.StringVar(&c.UserAssignedID, p+"user-assigned-id", "", "User-assigned managed identity; empty for the system-assigned one.")
}

// Validate applies the objstore Azure provider's checks.
func (c *AzureStorage) Validate() error {
	clientAuth := []string{c.TenantID, c.ClientID, c.ClientSecret}
	switch {
	case c.AccountName == "":
		return errors.New("account_name is required")
	case c.ContainerName == "":
		return errors.New("container_name is required")
	case c.AccountKey != "" && c.ConnectionString != "":
		return errors.New("account_key and connection_string exclude each other")
	case slices.Contains(clientAuth, "") && slices.ContainsFunc(clientAuth, func(s string) bool { return s != "" }):
		return errors.New("az_tenant_id, client_id and client_secret go together")
	case c.UserAssignedID != "" && (c.AccountKey != "" || c.ConnectionString != "" || c.ClientID != ""):
		return errors.New("user_assigned_id excludes account_key, connection_string and client_id")
	case c.MaxRetries < 0:
		return fmt.Errorf("max_retries must not be negative, got %d", c.MaxRetries)
	}
	return nil
}

// SwiftStorage is storage.swift (OpenStack).
type SwiftStorage struct {
	AuthVersion       int           `yaml:"auth_version"`
	AuthURL           string        `yaml:"auth_url"`
	Username          string        `yaml:"username"`
	UserDomainName    string        `yaml:"user_domain_name"`
	UserDomainID      string        `yaml:"user_domain_id"`
	UserID            string        `yaml:"user_id"`
	Password          string        `yaml:"password"`
	DomainID          string        `yaml:"domain_id"`
	DomainName        string        `yaml:"domain_name"`
	ProjectID         string        `yaml:"project_id"`
	ProjectName       string        `yaml:"project_name"`
	ProjectDomainID   string        `yaml:"project_domain_id"`
	ProjectDomainName string        `yaml:"project_domain_name"`
	RegionName        string        `yaml:"region_name"`
	ContainerName     string        `yaml:"container_name"`
	MaxRetries        int           `yaml:"max_retries"`
	ConnectTimeout    time.Duration `yaml:"connect_timeout"`
	RequestTimeout    time.Duration `yaml:"request_timeout"`
}

func (c *SwiftStorage) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	p := prefix + "swift."
	f.IntVar(&c.AuthVersion, p+"auth-version", 0, "OpenStack authentication API version; 0 to detect it.")
	f.StringVar(&c.AuthURL, p+"auth-url", "", "OpenStack authentication URL.")
	f.StringVar(&c.Username, p+"username", "", "OpenStack user name.")
	f.StringVar(&c.UserDomainName, p+"user-domain-name", "", "Domain name of the OpenStack user.")
	f.StringVar(&c.UserDomainID, p+"user-domain-id", "", "Domain ID of the OpenStack user.")
	f.StringVar(&c.UserID, p+"user-id", "", "OpenStack user ID.")
	f.StringVar(&c.Password, p+"password", "", "OpenStack API key (password).")
	f.StringVar(&c.DomainID, p+"domain-id", "", "Domain ID of the OpenStack user.")
	f.StringVar(&c.DomainName, p+"domain-name", "", "Domain name of the OpenStack user.")
	f.StringVar(&c.ProjectID, p+"project-id", "", "OpenStack project ID (auth v2 and v3).")
	f.StringVar(&c.ProjectName, p+"project-name", "", "OpenStack project name (auth v2 and v3).")
	f.StringVar(&c.ProjectDomainID, p+"project-domain-id", "", "Domain ID of the OpenStack project when it differs from the user's (auth v3).")
	f.StringVar(&c.ProjectDomainName, p+"project-domain-name", "", "Domain name of the OpenStack project when it differs from the user's (auth v3).")
	f.StringVar(&c.RegionName, p+"region-name", "", "OpenStack region (auth v2 and v3).")
	f.StringVar(&c.ContainerName, p+"container-name", "", "Swift container name.")
	f.IntVar(&c.MaxRetries, p+"max-retries", 3, "Retries of a failed request.")
	f.DurationVar(&c.ConnectTimeout, p+"connect-timeout", 10*time.Second, "How long a connection attempt may take.")
	f.DurationVar(&c.RequestTimeout, p+"request-timeout", 5*time.Second, "How long a request may go without receiving data before it is aborted.")
}

// Validate checks what the Swift client needs before it can authenticate.
func (c *SwiftStorage) Validate() error {
	switch {
	case c.AuthURL == "":
		return errors.New("auth_url is required")
	case c.ContainerName == "":
		return errors.New("container_name is required")
	case c.MaxRetries < 0:
		return fmt.Errorf("max_retries must not be negative, got %d", c.MaxRetries)
	}
	return nil
}

// COSStorage is storage.cos (Tencent Cloud).
type COSStorage struct {
	Bucket    string      `yaml:"bucket"`
	Region    string      `yaml:"region"`
	AppID     string      `yaml:"app_id"`
	Endpoint  string      `yaml:"endpoint"`
	SecretKey string      `yaml:"secret_key"`
	SecretID  string      `yaml:"secret_id"`
	HTTP      StorageHTTP `yaml:"http"`
}

func (c *COSStorage) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	p := prefix + "cos."
	f.StringVar(&c.Bucket, p+"bucket", "", "COS bucket name.")
	f.StringVar(&c.Region, p+"region", "", "COS region.")
	f.StringVar(&c.AppID, p+"app-id", "", "COS app ID.")
	f.StringVar(&c.Endpoint, p+"endpoint", "", "COS endpoint URL; when set, bucket, region and app ID are not needed.")
	f.StringVar(&c.SecretID, p+"secret-id", "", "COS secret ID.")
	f.StringVar(&c.SecretKey, p+"secret-key", "", "COS secret key.")
	c.HTTP.registerFlags(f, p, "COS", 100)
}

// Validate applies Pyroscope's COS checks: with an endpoint only the
// credentials are needed, without one every field is.
func (c *COSStorage) Validate() error {
	if c.Endpoint != "" {
		if c.SecretID == "" || c.SecretKey == "" {
			return errors.New("secret_id and secret_key are required")
		}
		return nil
	}
	if c.Bucket == "" || c.AppID == "" || c.Region == "" || c.SecretID == "" || c.SecretKey == "" {
		return errors.New("bucket, app_id, region, secret_id and secret_key are required without an endpoint")
	}
	return nil
}
