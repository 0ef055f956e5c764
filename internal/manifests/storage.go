package manifests

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/config"
)

// Where the storage volumes are mounted: the GCS key's Secret, and the
// filesystem backend's claim.
const (
	storageSecretsDir = "/etc/pyrodist-storage"
	storageDataDir    = "/var/pyrodist/storage"
	gcsKeyFile        = "service-account.json"
	gcsVolume         = "storage-gcs"
	filesystemVolume  = "storage-data"
)

// Environment variables the pods read credentials into from their Secrets.
// config.yaml names them as ${VAR} and the distributor, started with
// -config.expand-env, resolves them: so the ConfigMap holds no secret and
// the operator reads none.
const (
	envS3AccessKeyID         = "PYRODIST_STORAGE_S3_ACCESS_KEY_ID"
	envS3SecretAccessKey     = "PYRODIST_STORAGE_S3_SECRET_ACCESS_KEY"
	envAzureAccountKey       = "PYRODIST_STORAGE_AZURE_ACCOUNT_KEY"
	envAzureConnectionString = "PYRODIST_STORAGE_AZURE_CONNECTION_STRING"
	envAzureClientSecret     = "PYRODIST_STORAGE_AZURE_CLIENT_SECRET"
	envSwiftPassword         = "PYRODIST_STORAGE_SWIFT_PASSWORD"
	// Google's client libraries read the key file this names.
	envGoogleCredentials = "GOOGLE_APPLICATION_CREDENTIALS"
)

// secretEnv is one credential the pod reads from a Secret into env.
type secretEnv struct {
	name string
	ref  *v1.SecretKeyRef
}

// storageSecretEnv lists the credentials of s that reach the pod as env,
// in a fixed order.
func storageSecretEnv(s *v1.StorageSpec) []secretEnv {
	if s == nil {
		return nil
	}
	var all []secretEnv
	if b := s.S3; b != nil {
		all = append(all, secretEnv{envS3AccessKeyID, b.AccessKeyID}, secretEnv{envS3SecretAccessKey, b.SecretAccessKey})
	}
	if b := s.Azure; b != nil {
		all = append(all, secretEnv{envAzureAccountKey, b.AccountKey}, secretEnv{envAzureConnectionString, b.ConnectionString}, secretEnv{envAzureClientSecret, b.ClientSecret})
	}
	if b := s.Swift; b != nil {
		all = append(all, secretEnv{envSwiftPassword, b.Password})
	}
	var set []secretEnv
	for _, e := range all {
		if e.ref != nil {
			set = append(set, e)
		}
	}
	return set
}

// fromEnv is the config value that stands for a credential: ${VAR} when it
// comes from a Secret, empty otherwise.
func fromEnv(name string, ref *v1.SecretKeyRef) string {
	if ref == nil {
		return ""
	}
	return "${" + name + "}"
}

// applyStorage maps spec.storage onto the distributor's storage block and
// refuses what the distributor would refuse at load.
func applyStorage(c *config.Config, s *v1.StorageSpec) error {
	if s == nil {
		return nil
	}
	st := &c.Storage
	st.Prefix = s.Prefix
	switch {
	case s.S3 != nil:
		b := s.S3
		st.Backend = config.StorageS3
		st.S3.BucketName, st.S3.Endpoint, st.S3.Region, st.S3.Insecure = b.BucketName, b.Endpoint, b.Region, b.Insecure
		if b.BucketLookupType != "" {
			st.S3.BucketLookupType = b.BucketLookupType
		}
		st.S3.NativeAWSAuthEnabled = b.NativeAWSAuth
		st.S3.AccessKeyID = fromEnv(envS3AccessKeyID, b.AccessKeyID)
		st.S3.SecretAccessKey = fromEnv(envS3SecretAccessKey, b.SecretAccessKey)
		if b.SSE != nil {
			st.S3.SSE.Type, st.S3.SSE.KMSKeyID = b.SSE.Type, b.SSE.KMSKeyID
		}
	case s.GCS != nil:
		// The key is a mounted file named by GOOGLE_APPLICATION_CREDENTIALS;
		// service_account stays empty so the client reads it.
		st.Backend = config.StorageGCS
		st.GCS.BucketName = s.GCS.BucketName
	case s.Azure != nil:
		b := s.Azure
		st.Backend = config.StorageAzure
		st.Azure.AccountName, st.Azure.ContainerName, st.Azure.EndpointSuffix = b.AccountName, b.ContainerName, b.EndpointSuffix
		st.Azure.TenantID, st.Azure.ClientID, st.Azure.UserAssignedID = b.TenantID, b.ClientID, b.UserAssignedID
		st.Azure.AccountKey = fromEnv(envAzureAccountKey, b.AccountKey)
		st.Azure.ConnectionString = fromEnv(envAzureConnectionString, b.ConnectionString)
		st.Azure.ClientSecret = fromEnv(envAzureClientSecret, b.ClientSecret)
	case s.Swift != nil:
		b := s.Swift
		w := &st.Swift
		st.Backend = config.StorageSwift
		w.AuthURL, w.AuthVersion, w.ContainerName = b.AuthURL, int(b.AuthVersion), b.ContainerName
		w.Username, w.UserID, w.UserDomainName, w.UserDomainID = b.Username, b.UserID, b.UserDomainName, b.UserDomainID
		w.ProjectName, w.ProjectID, w.ProjectDomainName, w.ProjectDomainID = b.ProjectName, b.ProjectID, b.ProjectDomainName, b.ProjectDomainID
		w.RegionName = b.RegionName
		w.Password = fromEnv(envSwiftPassword, b.Password)
	case s.Filesystem != nil:
		st.Backend = config.StorageFilesystem
		st.Filesystem.Dir = storageDataDir
	default:
		return fmt.Errorf("spec.storage: set one backend: s3, gcs, azure, swift or filesystem")
	}
	if err := st.Validate(); err != nil {
		return fmt.Errorf("spec.storage: %w", err)
	}
	return nil
}

// storageArgs are the distributor flags spec.storage needs: the ${VAR}
// expansion of config.yaml when a credential comes from a Secret.
func storageArgs(s *v1.StorageSpec) []string {
	if len(storageSecretEnv(s)) == 0 {
		return nil
	}
	return []string{"-" + config.ExpandEnvFlag + "=true"}
}

// checkExpandable: with -config.expand-env every '$' in config.yaml is
// expanded, so the only ones allowed are the credentials' ${VAR}.
// (A '$' in another value, say a memberlist address, would silently change.)
func checkExpandable(configYAML []byte, s *v1.StorageSpec) error {
	envs := storageSecretEnv(s)
	if len(envs) == 0 {
		return nil
	}
	rest := string(configYAML)
	for _, e := range envs {
		rest = strings.ReplaceAll(rest, fromEnv(e.name, e.ref), "")
	}
	if strings.Contains(rest, "$") {
		return fmt.Errorf("spec: a value holds '$', which the distributor would expand as an environment variable once spec.storage takes credentials from Secrets")
	}
	return nil
}

// addStorage gives the pod what spec.storage needs: the credentials as env
// from their Secrets, the GCS key file, the filesystem backend's claim.
func addStorage(spec *corev1.PodSpec, s *v1.StorageSpec) {
	if s == nil {
		return
	}
	ctr := &spec.Containers[0]
	for _, e := range storageSecretEnv(s) {
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: e.name, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: e.ref.Name}, Key: e.ref.Key},
		}})
	}
	if g := s.GCS; g != nil && g.ServiceAccount != nil {
		dir := path.Join(storageSecretsDir, "gcs")
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: gcsVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  g.ServiceAccount.Name,
			Items:       []corev1.KeyToPath{{Key: g.ServiceAccount.Key, Path: gcsKeyFile}},
			DefaultMode: ptr.To[int32](0o440),
		}}})
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: gcsVolume, MountPath: dir, ReadOnly: true})
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: envGoogleCredentials, Value: path.Join(dir, gcsKeyFile)})
	}
	if f := s.Filesystem; f != nil {
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: filesystemVolume, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: f.ClaimName},
		}})
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: filesystemVolume, MountPath: storageDataDir, SubPath: f.SubPath})
	}
}
