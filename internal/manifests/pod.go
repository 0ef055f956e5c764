package manifests

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/config"
)

// gcHeadroom: GOMEMLIMIT is this share of the memory limit, leaving room for
// memory the Go runtime does not account (stacks in flight, cgo, page cache).
const gcHeadroom = 0.9

// graceMargin is added to the distributor's shutdown delay and drain timeout:
// leaving memberlist and closing writer connections take a few seconds more.
const graceMargin = 15 * time.Second

// DefaultResources mirror the CRD default; used when a spec reaches the
// builder without API-server defaulting (e.g. in tests, or a nil field).
func DefaultResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("500m"),
			corev1.ResourceMemory: resource.MustParse("512Mi"),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceMemory: resource.MustParse("1Gi"),
		},
	}
}

func podSecurityContext(extra *corev1.PodSecurityContext) (*corev1.PodSecurityContext, error) {
	base := &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To[int64](nonRootID),
		RunAsGroup:     ptr.To[int64](nonRootID),
		FSGroup:        ptr.To[int64](nonRootID),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if extra == nil {
		return base, nil
	}
	out := &corev1.PodSecurityContext{}
	return out, overlay(base, extra, out)
}

func containerSecurityContext(extra *corev1.SecurityContext) (*corev1.SecurityContext, error) {
	base := &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if extra == nil {
		return base, nil
	}
	if extra.AllowPrivilegeEscalation == nil && escalationImplied(extra) {
		base.AllowPrivilegeEscalation = nil
	}
	out := &corev1.SecurityContext{}
	return out, overlay(base, extra, out)
}

// overlay writes into out the JSON of base with every field set in extra
// replacing base's (objects merged recursively, everything else replaced).
func overlay(base, extra, out any) error {
	var b, e map[string]any
	if err := roundTrip(base, &b); err != nil {
		return err
	}
	if err := roundTrip(extra, &e); err != nil {
		return err
	}
	merged := mergeMaps(b, e)
	raw, err := json.Marshal(merged)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

func roundTrip(in, out any) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

func mergeMaps(base, extra map[string]any) map[string]any {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range extra {
		bm, bok := out[k].(map[string]any)
		em, eok := v.(map[string]any)
		if bok && eok {
			out[k] = mergeMaps(bm, em)
			continue
		}
		out[k] = v
	}
	return out
}

// terminationGrace outlasts the distributor's own shutdown: /ready fails for
// the shutdown delay, then in-flight requests drain, then it leaves memberlist.
// Flags override the config file, so server flags among extraArgs (say
// -shutdown-delay=2m) count too.
func terminationGrace(c config.Config, extraArgs []string) (int64, error) {
	srv := c.Server
	fs := flag.NewFlagSet("extraArgs", flag.ContinueOnError)
	scratch := config.Server{}
	scratch.RegisterFlags(fs) // only for the flag names; values are set on srv
	for i := 0; i < len(extraArgs); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(extraArgs[i], "-"), "=")
		var dst *time.Duration
		switch fs.Lookup(name) {
		case nil:
			continue
		case fs.Lookup("shutdown-delay"):
			dst = &srv.ShutdownDelay
		case fs.Lookup("server.graceful-shutdown-timeout"):
			dst = &srv.GracefulTimeout
		default:
			if b, ok := fs.Lookup(name).Value.(interface{ IsBoolFlag() bool }); !hasValue && !(ok && b.IsBoolFlag()) {
				i++ // "-flag value": skip the value; a boolean flag takes none
			}
			continue
		}
		if !hasValue {
			if i+1 >= len(extraArgs) {
				return 0, fmt.Errorf("spec.podTemplate.extraArgs: -%s needs a value", name)
			}
			i++
			value = extraArgs[i]
		}
		d, err := time.ParseDuration(value)
		if err != nil {
			return 0, fmt.Errorf("spec.podTemplate.extraArgs: -%s: %w", name, err)
		}
		*dst = d
	}
	d := srv.ShutdownDelay + srv.GracefulTimeout + graceMargin
	return int64((d + time.Second - 1) / time.Second), nil
}

func containerEnv(res corev1.ResourceRequirements, extra []corev1.EnvVar) []corev1.EnvVar {
	var env []corev1.EnvVar
	if lim, ok := res.Limits[corev1.ResourceMemory]; ok && lim.Sign() > 0 {
		env = append(env, corev1.EnvVar{
			Name:  "GOMEMLIMIT",
			Value: strconv.FormatInt(int64(float64(lim.Value())*gcHeadroom), 10),
		})
	}
	for _, e := range extra {
		e = *e.DeepCopy()
		replaced := false
		for i := range env {
			if env[i].Name == e.Name {
				env[i] = e
				replaced = true
			}
		}
		if !replaced {
			env = append(env, e)
		}
	}
	return env
}

func probe(path string, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path:   path,
			Port:   intstr.FromString(HTTPPortName),
			Scheme: corev1.URISchemeHTTP,
		}},
		TimeoutSeconds:   2,
		PeriodSeconds:    period,
		SuccessThreshold: 1,
		FailureThreshold: failures,
	}
}

func deepCopyTolerations(in []corev1.Toleration) []corev1.Toleration {
	if in == nil {
		return nil
	}
	out := make([]corev1.Toleration, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
	}
	return out
}

// podTemplate is the pod of one zone.
func (b *builder) podTemplate(z v1.Zone) (corev1.PodTemplateSpec, error) {
	s := &b.pd.Spec
	name := b.pd.Name

	podSC, err := podSecurityContext(s.PodTemplate.SecurityContext)
	if err != nil {
		return corev1.PodTemplateSpec{}, fmt.Errorf("spec.podTemplate.securityContext: %w", err)
	}
	ctrSC, err := containerSecurityContext(s.PodTemplate.ContainerSecurityContext)
	if err != nil {
		return corev1.PodTemplateSpec{}, fmt.Errorf("spec.podTemplate.containerSecurityContext: %w", err)
	}

	labels := maps.Clone(s.PodTemplate.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, zonalLabels(name, z.Name))

	annotations := maps.Clone(s.PodTemplate.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationConfigHash] = b.cfg.hash
	annotations["kubectl.kubernetes.io/default-container"] = ContainerName

	grace, err := terminationGrace(b.cfg.cfg, s.PodTemplate.ExtraArgs)
	if err != nil {
		return corev1.PodTemplateSpec{}, err
	}

	args := []string{
		"-config.file=" + configMountPath + "/" + ConfigFileName,
		"-runtime-config.file=" + configMountPath + "/" + OverridesFile,
		"-distributor.zone=" + z.Name,
	}
	args = append(args, storageArgs(s.Storage)...)
	args = append(args, s.PodTemplate.ExtraArgs...)

	pull := s.ImagePullPolicy
	if pull == "" {
		pull = corev1.PullIfNotPresent
	}

	spec := corev1.PodSpec{
		ServiceAccountName:            name,
		AutomountServiceAccountToken:  ptr.To(false), // the distributor never talks to the API server
		EnableServiceLinks:            ptr.To(false),
		PriorityClassName:             s.PodTemplate.PriorityClassName,
		SecurityContext:               podSC,
		TerminationGracePeriodSeconds: ptr.To(grace),
		ImagePullSecrets:              slices.Clone(s.PodTemplate.ImagePullSecrets),
		Tolerations:                   deepCopyTolerations(z.Tolerations),
		TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
			// Zones are pinned per Deployment; inside one, spread over nodes.
			MaxSkew:           1,
			TopologyKey:       "kubernetes.io/hostname",
			WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: zoneSelectorLabels(name, z.Name)},
			MatchLabelKeys:    []string{"pod-template-hash"},
		}},
		Containers: []corev1.Container{{
			Name:            ContainerName,
			Image:           b.image,
			ImagePullPolicy: pull,
			Command:         []string{DistributorCommand},
			Args:            args,
			Ports: []corev1.ContainerPort{
				{Name: HTTPPortName, ContainerPort: HTTPPort, Protocol: corev1.ProtocolTCP},
				{Name: GossipPortName, ContainerPort: int32(b.cfg.cfg.Memberlist.BindPort), Protocol: corev1.ProtocolTCP},
			},
			Env:                      containerEnv(b.resources, s.PodTemplate.Env),
			Resources:                b.resources,
			ReadinessProbe:           probe("/ready", 5, 3),
			LivenessProbe:            probe("/healthz", 10, 6),
			SecurityContext:          ctrSC,
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			VolumeMounts: []corev1.VolumeMount{
				{Name: configVolume, MountPath: configMountPath, ReadOnly: true},
				{Name: "tmp", MountPath: tmpMountPath},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: configVolume, VolumeSource: b.configVolumeSource()},
			{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
				SizeLimit: ptr.To(resource.MustParse("64Mi")),
			}}},
		},
	}
	addTLS(&spec, s.TLS)
	addStorage(&spec, s.Storage)
	if len(z.NodeSelector) > 0 {
		spec.NodeSelector = maps.Clone(z.NodeSelector)
	} else {
		spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{
						Key:      b.zoneLabelKey,
						Operator: corev1.NodeSelectorOpIn,
						Values:   []string{z.Name},
					}},
				}},
			},
		}}
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: objectMeta("", "", labels, annotations),
		Spec:       spec,
	}, nil
}
