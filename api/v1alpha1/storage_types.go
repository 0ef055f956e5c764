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

// StorageSpec is the object storage of the Pyroscope cluster the
// distributors send to: they read the adaptive placement rules from it and
// upload debug info to it. Exactly one backend is set. Credentials come
// from Secrets in the PyroscopeDistributor's namespace, which the pods read
// as environment variables or mount as files: the operator never reads
// them and they never enter the distributor's ConfigMap. A rotated Secret
// reaches running pods only when they restart.
//
// +kubebuilder:validation:XValidation:rule="[has(self.s3), has(self.gcs), has(self.azure), has(self.swift), has(self.filesystem)].filter(b, b).size() == 1",message="storage needs exactly one backend: s3, gcs, azure, swift or filesystem"
type StorageSpec struct {
	// Prefix is put before every object name, as Pyroscope's
	// storage.prefix: the same prefix the Pyroscope cluster uses.
	// Letters, digits, '-', '_' and '.', in segments separated by '/'.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[A-Za-z_.-][A-Za-z0-9_.-]*(/[A-Za-z_.-][A-Za-z0-9_.-]*)*/?$`
	Prefix string `json:"prefix,omitempty"`

	// S3 is Amazon S3 or an S3-compatible store (MinIO, Ceph, ...).
	// +optional
	S3 *S3StorageSpec `json:"s3,omitempty"`

	// GCS is Google Cloud Storage.
	// +optional
	GCS *GCSStorageSpec `json:"gcs,omitempty"`

	// Azure is Azure Blob Storage.
	// +optional
	Azure *AzureStorageSpec `json:"azure,omitempty"`

	// Swift is OpenStack Swift.
	// +optional
	Swift *SwiftStorageSpec `json:"swift,omitempty"`

	// Filesystem is a directory on a shared volume (a ReadWriteMany
	// PersistentVolumeClaim that the Pyroscope components mount too); for
	// test clusters.
	// +optional
	Filesystem *FilesystemStorageSpec `json:"filesystem,omitempty"`
}

// SecretKeyRef is one key of a Secret in the PyroscopeDistributor's namespace.
type SecretKeyRef struct {
	// Name is the Secret's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="name must be a Secret name (a DNS subdomain)"
	Name string `json:"name"`

	// Key is the key in the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// S3StorageSpec is an S3 bucket. Without accessKeyID and secretAccessKey
// the pods authenticate with what the AWS SDKs find: the AWS_* variables
// of spec.podTemplate.env, or the pod's role (IRSA, EKS Pod Identity;
// set nativeAWSAuth for those).
//
// +kubebuilder:validation:XValidation:rule="has(self.accessKeyID) == has(self.secretAccessKey)",message="accessKeyID and secretAccessKey go together"
// +kubebuilder:validation:XValidation:rule="!(has(self.nativeAWSAuth) && self.nativeAWSAuth && has(self.accessKeyID))",message="nativeAWSAuth and accessKeyID exclude each other"
type S3StorageSpec struct {
	// BucketName is the bucket.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	BucketName string `json:"bucketName"`

	// Endpoint is the S3 endpoint as host[:port], without scheme, e.g.
	// s3.eu-west-1.amazonaws.com or minio.storage.svc:9000.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Endpoint string `json:"endpoint"`

	// Region of the bucket; empty to ask the endpoint.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Region string `json:"region,omitempty"`

	// Insecure talks plain HTTP to the endpoint (test setups).
	// +optional
	Insecure bool `json:"insecure,omitempty"`

	// BucketLookupType is how the bucket is addressed: auto (default),
	// path-style or virtual-hosted-style.
	// +optional
	// +kubebuilder:validation:Enum=auto;path-style;virtual-hosted-style
	BucketLookupType string `json:"bucketLookupType,omitempty"`

	// NativeAWSAuth authenticates with the AWS SDK's default chain (web
	// identity tokens of IRSA, EKS Pod Identity, ...).
	// +optional
	NativeAWSAuth bool `json:"nativeAWSAuth,omitempty"`

	// AccessKeyID is the Secret key holding the access key ID.
	// +optional
	AccessKeyID *SecretKeyRef `json:"accessKeyID,omitempty"`

	// SecretAccessKey is the Secret key holding the secret access key.
	// +optional
	SecretAccessKey *SecretKeyRef `json:"secretAccessKey,omitempty"`

	// SSE is server-side encryption of the objects the distributor writes.
	// +optional
	SSE *S3SSESpec `json:"sse,omitempty"`
}

// S3SSESpec is S3 server-side encryption.
//
// +kubebuilder:validation:XValidation:rule="self.type != 'SSE-KMS' || has(self.kmsKeyID)",message="SSE-KMS needs kmsKeyID"
type S3SSESpec struct {
	// Type is SSE-S3 or SSE-KMS.
	// +kubebuilder:validation:Enum=SSE-S3;SSE-KMS
	Type string `json:"type"`

	// KMSKeyID is the KMS key of SSE-KMS.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	KMSKeyID string `json:"kmsKeyID,omitempty"`
}

// GCSStorageSpec is a Google Cloud Storage bucket. Without serviceAccount
// the pods use Google's default credentials (Workload Identity).
type GCSStorageSpec struct {
	// BucketName is the bucket.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=222
	BucketName string `json:"bucketName"`

	// ServiceAccount is the Secret key holding a service account's JSON
	// key. The pods mount it as a file that GOOGLE_APPLICATION_CREDENTIALS
	// names.
	// +optional
	ServiceAccount *SecretKeyRef `json:"serviceAccount,omitempty"`
}

// AzureStorageSpec is an Azure Blob Storage container. It authenticates
// with accountKey, connectionString, a client secret (tenantID, clientID,
// clientSecret) or, with none of them, the pod's managed identity.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.accountKey) && has(self.connectionString))",message="accountKey and connectionString exclude each other"
// +kubebuilder:validation:XValidation:rule="has(self.tenantID) == has(self.clientID) && has(self.clientID) == has(self.clientSecret)",message="tenantID, clientID and clientSecret go together"
// +kubebuilder:validation:XValidation:rule="!has(self.userAssignedID) || !(has(self.accountKey) || has(self.connectionString) || has(self.clientID))",message="userAssignedID excludes accountKey, connectionString and clientID"
type AzureStorageSpec struct {
	// AccountName is the storage account.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	AccountName string `json:"accountName"`

	// ContainerName is the container.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	ContainerName string `json:"containerName"`

	// EndpointSuffix replaces Azure's default endpoint suffix
	// (blob.core.windows.net), e.g. for sovereign clouds.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	EndpointSuffix string `json:"endpointSuffix,omitempty"`

	// AccountKey is the Secret key holding the storage account key.
	// +optional
	AccountKey *SecretKeyRef `json:"accountKey,omitempty"`

	// ConnectionString is the Secret key holding a connection string
	// (e.g. with a SAS token).
	// +optional
	ConnectionString *SecretKeyRef `json:"connectionString,omitempty"`

	// TenantID is the Azure AD tenant of client-secret authentication.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	TenantID string `json:"tenantID,omitempty"`

	// ClientID is the Azure AD application of client-secret authentication.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ClientID string `json:"clientID,omitempty"`

	// ClientSecret is the Secret key holding the application's client secret.
	// +optional
	ClientSecret *SecretKeyRef `json:"clientSecret,omitempty"`

	// UserAssignedID is the user-assigned managed identity to use; empty
	// for the system-assigned one.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	UserAssignedID string `json:"userAssignedID,omitempty"`
}

// SwiftStorageSpec is an OpenStack Swift container.
type SwiftStorageSpec struct {
	// AuthURL is the Keystone authentication URL.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	AuthURL string `json:"authURL"`

	// AuthVersion is the authentication API version; 0 (default) detects it.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3
	AuthVersion int32 `json:"authVersion,omitempty"`

	// ContainerName is the container.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	ContainerName string `json:"containerName"`

	// Username is the OpenStack user name (or set userID).
	// +optional
	// +kubebuilder:validation:MaxLength=255
	Username string `json:"username,omitempty"`

	// UserID is the OpenStack user ID.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	UserID string `json:"userID,omitempty"`

	// UserDomainName is the user's domain name (auth v3).
	// +optional
	// +kubebuilder:validation:MaxLength=255
	UserDomainName string `json:"userDomainName,omitempty"`

	// UserDomainID is the user's domain ID (auth v3).
	// +optional
	// +kubebuilder:validation:MaxLength=255
	UserDomainID string `json:"userDomainID,omitempty"`

	// Password is the Secret key holding the user's password (API key).
	// +optional
	Password *SecretKeyRef `json:"password,omitempty"`

	// ProjectName is the project (tenant) name.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	ProjectName string `json:"projectName,omitempty"`

	// ProjectID is the project (tenant) ID.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	ProjectID string `json:"projectID,omitempty"`

	// ProjectDomainName is the project's domain name when it differs from
	// the user's (auth v3).
	// +optional
	// +kubebuilder:validation:MaxLength=255
	ProjectDomainName string `json:"projectDomainName,omitempty"`

	// ProjectDomainID is the project's domain ID when it differs from the
	// user's (auth v3).
	// +optional
	// +kubebuilder:validation:MaxLength=255
	ProjectDomainID string `json:"projectDomainID,omitempty"`

	// RegionName is the region.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	RegionName string `json:"regionName,omitempty"`
}

// FilesystemStorageSpec is a directory on a PersistentVolumeClaim.
type FilesystemStorageSpec struct {
	// ClaimName is the PersistentVolumeClaim the pods mount; every pod of
	// every zone mounts it, so it must be ReadWriteMany.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ClaimName string `json:"claimName"`

	// SubPath is the directory inside the volume; empty for its root.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && !self.split('/').exists(s, s == '..')",message="subPath must be relative and stay inside the volume"
	SubPath string `json:"subPath,omitempty"`
}
