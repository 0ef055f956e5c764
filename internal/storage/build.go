package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/common/model"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/exthttp"
	"github.com/thanos-io/objstore/providers/azure"
	"github.com/thanos-io/objstore/providers/cos"
	"github.com/thanos-io/objstore/providers/filesystem"
	"github.com/thanos-io/objstore/providers/gcs"
	"github.com/thanos-io/objstore/providers/s3"
	"github.com/thanos-io/objstore/providers/swift"

	"github.com/pyrodist/pyrodist/internal/config"
)

// component names the distributor to the objstore providers (user agents, logs).
const component = "distributor"

// newBackend builds the provider's client from the storage block, mapping
// each key as Pyroscope's pkg/objstore/providers/*/bucket_client.go do at
// 3fe6a45. Only Swift talks to the service here (it authenticates); the
// others only build a client.
func newBackend(ctx context.Context, cfg config.Storage, logger log.Logger) (objstore.Bucket, error) {
	switch cfg.Backend {
	case config.StorageS3:
		return newS3(cfg.S3, logger)
	case config.StorageGCS:
		c := gcs.DefaultConfig
		c.Bucket = cfg.GCS.BucketName
		c.ServiceAccount = cfg.GCS.ServiceAccount
		c.HTTPConfig = transport(config.StorageHTTP(cfg.GCS.HTTP))
		return gcs.NewBucketWithConfig(ctx, logger, c, component, nil)
	case config.StorageAzure:
		a := cfg.Azure
		c := azure.DefaultConfig
		c.AzTenantID, c.ClientID, c.ClientSecret = a.TenantID, a.ClientID, a.ClientSecret
		c.StorageAccountName, c.StorageAccountKey, c.StorageConnectionString = a.AccountName, a.AccountKey, a.ConnectionString
		c.ContainerName, c.MaxRetries, c.UserAssignedID = a.ContainerName, a.MaxRetries, a.UserAssignedID
		if a.EndpointSuffix != "" {
			c.Endpoint = a.EndpointSuffix
		}
		// As Pyroscope: retry at once; the retries cover dropped connections.
		c.PipelineConfig.RetryDelay = -1
		// The container belongs to the Pyroscope cluster: the distributor
		// neither creates it nor needs the right to (Pyroscope would).
		c.StorageCreateContainer = false
		return azure.NewBucketWithConfig(logger, c, component, nil)
	case config.StorageSwift:
		s := cfg.Swift
		c := swift.DefaultConfig
		c.AuthVersion, c.AuthUrl = s.AuthVersion, s.AuthURL
		c.Username, c.UserDomainName, c.UserDomainID, c.UserId, c.Password = s.Username, s.UserDomainName, s.UserDomainID, s.UserID, s.Password
		c.DomainId, c.DomainName = s.DomainID, s.DomainName
		c.ProjectID, c.ProjectName, c.ProjectDomainID, c.ProjectDomainName = s.ProjectID, s.ProjectName, s.ProjectDomainID, s.ProjectDomainName
		c.RegionName, c.ContainerName = s.RegionName, s.ContainerName
		c.Retries, c.ConnectTimeout, c.Timeout = s.MaxRetries, model.Duration(s.ConnectTimeout), model.Duration(s.RequestTimeout)
		// The container must exist: the distributor never creates it.
		return swift.NewContainerFromConfig(logger, &c, false, nil)
	case config.StorageCOS:
		k := cfg.COS
		return cos.NewBucketWithConfig(logger, cos.Config{
			Bucket: k.Bucket, Region: k.Region, AppId: k.AppID, Endpoint: k.Endpoint,
			SecretKey: k.SecretKey, SecretId: k.SecretID,
			HTTPConfig: transport(k.HTTP),
		}, component, nil)
	case config.StorageFilesystem:
		return filesystem.NewBucket(cfg.Filesystem.Dir)
	}
	return nil, fmt.Errorf("unsupported storage backend %q", cfg.Backend)
}

func newS3(c config.S3Storage, logger log.Logger) (objstore.Bucket, error) {
	sse := s3.SSEConfig{}
	switch c.SSE.Type {
	case config.S3SSEKMS:
		ctx, err := c.SSE.EncryptionContext()
		if err != nil {
			return nil, err
		}
		sse = s3.SSEConfig{Type: s3.SSEKMS, KMSKeyID: c.SSE.KMSKeyID, KMSEncryptionContext: ctx}
	case config.S3SSES3:
		sse = s3.SSEConfig{Type: s3.SSES3}
	}
	lookup := s3.AutoLookup
	switch {
	case c.ForcePathStyle || c.BucketLookupType == config.S3LookupPathStyle:
		lookup = s3.PathLookup
	case c.BucketLookupType == config.S3LookupVirtualHosted:
		lookup = s3.VirtualHostLookup
	}
	// Built from the zero value, not s3.DefaultConfig, as Pyroscope does:
	// minio then picks the part size and skips Content-MD5.
	return s3.NewBucketWithConfig(logger, s3.Config{
		Bucket:           c.BucketName,
		Endpoint:         c.Endpoint,
		Region:           c.Region,
		AccessKey:        c.AccessKeyID,
		SecretKey:        c.SecretAccessKey,
		Insecure:         c.Insecure,
		SSEConfig:        sse,
		BucketLookupType: lookup,
		AWSSDKAuth:       c.NativeAWSAuthEnabled,
		SignatureV2:      c.SignatureVersion == config.S3SignatureV2,
		HTTPConfig:       transport(c.HTTP),
	}, component, nil)
}

func transport(h config.StorageHTTP) exthttp.HTTPConfig {
	d := func(v time.Duration) model.Duration { return model.Duration(v) }
	return exthttp.HTTPConfig{
		IdleConnTimeout:       d(h.IdleConnTimeout),
		ResponseHeaderTimeout: d(h.ResponseHeaderTimeout),
		InsecureSkipVerify:    h.InsecureSkipVerify,
		TLSHandshakeTimeout:   d(h.TLSHandshakeTimeout),
		ExpectContinueTimeout: d(h.ExpectContinueTimeout),
		MaxIdleConns:          h.MaxIdleConns,
		MaxIdleConnsPerHost:   h.MaxIdleConnsPerHost,
		MaxConnsPerHost:       h.MaxConnsPerHost,
	}
}

// providers names each backend's objstore provider, for Provider() before
// the bucket is built.
var providers = map[string]objstore.ObjProvider{
	config.StorageS3:         objstore.S3,
	config.StorageGCS:        objstore.GCS,
	config.StorageAzure:      objstore.AZURE,
	config.StorageSwift:      objstore.SWIFT,
	config.StorageCOS:        objstore.COS,
	config.StorageFilesystem: objstore.FILESYSTEM,
}
