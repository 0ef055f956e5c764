package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
)

// Config versions.
//
// config.yaml is static for a pod's life: each distinct one gets its own
// immutable ConfigMap <name>-config-<hash10>, and each zone's pods mount the
// version their Deployment names. So a zone still on the old pod template
// keeps reading the old config while another zone already runs the new one,
// and reverting the spec renders the same bytes, hence the same name: the
// earlier version comes back exactly. overrides.yaml is per-tenant limits the
// distributor re-reads while running (internal/overrides): it lives in one
// mutable ConfigMap <name>-overrides, and changing it rolls nothing.
//
// Both files appear in one directory through a projected volume, so the
// distributor's -config.file and -runtime-config.file paths are unchanged.
// Kubelet refreshes projected ConfigMap sources in place, which keeps the
// overrides live-reloaded.

// versionLen is the number of hex digits of a hash used in names and
// annotations: 40 bits, plenty to tell apart the handful of versions that
// live at once.
const versionLen = 10

// LabelConfigVersion marks a config version ConfigMap with its hash.
const LabelConfigVersion = "profiling.pyrodist.dev/config-version"

// AnnotationVersion on a zone's pod template is the version it runs: a
// hash of the zone-independent pod template (see templateVersion).
const AnnotationVersion = "profiling.pyrodist.dev/version"

// configVolume is the pod volume holding config.yaml and overrides.yaml.
const configVolume = "config"

// ConfigVersionName is the immutable ConfigMap of the config.yaml whose
// sha256 is hash (hex).
func ConfigVersionName(name, hash string) string { return name + "-config-" + shortHash(hash) }

// OverridesConfigMapName is the mutable ConfigMap holding overrides.yaml.
func OverridesConfigMapName(name string) string { return name + "-overrides" }

func shortHash(hash string) string {
	if len(hash) > versionLen {
		return hash[:versionLen]
	}
	return hash
}

// configVersion is the ConfigMap of this spec's config.yaml.
func (b *builder) configVersion() *corev1.ConfigMap {
	labels := commonLabels(b.pd.Name)
	labels[LabelConfigVersion] = shortHash(b.cfg.hash)
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(ConfigVersionName(b.pd.Name, b.cfg.hash), b.pd.Namespace, labels, nil),
		Data:       map[string]string{ConfigFileName: b.cfg.configYAML},
		Immutable:  ptr.To(true),
	}
}

func (b *builder) overrides() *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(OverridesConfigMapName(b.pd.Name), b.pd.Namespace, commonLabels(b.pd.Name), nil),
		Data:       map[string]string{OverridesFile: b.cfg.overridesYAML},
	}
}

// configVolumeSource projects config.yaml from this spec's config version
// and overrides.yaml from the overrides ConfigMap into one directory.
func (b *builder) configVolumeSource() corev1.VolumeSource {
	source := func(cm, key string) corev1.VolumeProjection {
		return corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: cm},
			Items:                []corev1.KeyToPath{{Key: key, Path: key}},
		}}
	}
	return corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		source(ConfigVersionName(b.pd.Name, b.cfg.hash), ConfigFileName),
		source(OverridesConfigMapName(b.pd.Name), OverridesFile),
	}}}
}

// templateVersion is the version every zone's pod template carries: a hash
// of the pod template of a zone with no name, node selector or tolerations,
// so it moves with everything that is the same in all zones (image, args,
// resources, the config version mounted...) and with nothing that belongs to
// one zone only. A zone-only change is not rolled zone by zone: it concerns
// one zone anyway.
func (b *builder) templateVersion() (string, error) {
	tmpl, err := b.podTemplate(v1.Zone{})
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(tmpl)
	if err != nil {
		return "", fmt.Errorf("pod template version: %w", err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:versionLen], nil
}

// TemplateVersion returns the version a pod template runs (its
// AnnotationVersion), "" for one the operator did not version.
func TemplateVersion(t *corev1.PodTemplateSpec) string { return t.Annotations[AnnotationVersion] }

// ConfigMapsOf returns the ConfigMaps a pod template mounts, directly or
// through a projected volume.
func ConfigMapsOf(t *corev1.PodTemplateSpec) []string {
	var out []string
	for _, v := range t.Spec.Volumes {
		if v.ConfigMap != nil {
			out = append(out, v.ConfigMap.Name)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					out = append(out, s.ConfigMap.Name)
				}
			}
		}
	}
	return out
}

// ConfigVersionOf returns the config version ConfigMap a pod template mounts
// ("" when none is found): for status.
func ConfigVersionOf(name string, t *corev1.PodTemplateSpec) string {
	prefix := name + "-config-"
	for _, cm := range ConfigMapsOf(t) {
		if len(cm) > len(prefix) && cm[:len(prefix)] == prefix {
			return cm
		}
	}
	return ""
}
