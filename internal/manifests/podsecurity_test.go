package manifests

import (
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
)

const (
	podSC = "spec.podTemplate.securityContext"
	ctrSC = "spec.podTemplate.containerSecurityContext"
)

func withPodSC(sc corev1.PodSecurityContext) func(*v1.PyroscopeDistributor) {
	return func(pd *v1.PyroscopeDistributor) { pd.Spec.PodTemplate.SecurityContext = &sc }
}

func withCtrSC(sc corev1.SecurityContext) func(*v1.PyroscopeDistributor) {
	return func(pd *v1.PyroscopeDistributor) { pd.Spec.PodTemplate.ContainerSecurityContext = &sc }
}

func fields(vs []PodSecurityViolation) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Field
	}
	return out
}

// Each override that weakens the pods is refused, naming the field that asked
// for it, and builds (with a warning naming it) once the operator allows it.
func TestPodSecurityRefusesWeakeningOverrides(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*v1.PyroscopeDistributor)
		want   []string // fields refused, in order
		// built checks the allowed pod carries what was asked for.
		built func(p corev1.PodSpec) bool
	}{
		{"privileged", withCtrSC(corev1.SecurityContext{Privileged: ptr.To(true)}),
			[]string{ctrSC + ".privileged"},
			func(p corev1.PodSpec) bool {
				sc := p.Containers[0].SecurityContext
				// The API server refuses privileged with allowPrivilegeEscalation=false.
				return *sc.Privileged && sc.AllowPrivilegeEscalation == nil
			}},
		{"privilege escalation", withCtrSC(corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(true)}),
			[]string{ctrSC + ".allowPrivilegeEscalation"},
			func(p corev1.PodSpec) bool { return *p.Containers[0].SecurityContext.AllowPrivilegeEscalation }},
		{"added capability", withCtrSC(corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}}),
			[]string{ctrSC + ".capabilities.add"},
			func(p corev1.PodSpec) bool {
				c := p.Containers[0].SecurityContext.Capabilities
				return slices.Equal(c.Add, []corev1.Capability{"NET_ADMIN"}) && slices.Equal(c.Drop, []corev1.Capability{"ALL"})
			}},
		// The distributor binds no port below 1024, so even this one is refused.
		{"NET_BIND_SERVICE", withCtrSC(corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE"}}}),
			[]string{ctrSC + ".capabilities.add"},
			func(p corev1.PodSpec) bool { return len(p.Containers[0].SecurityContext.Capabilities.Add) == 1 }},
		{"CAP_SYS_ADMIN", withCtrSC(corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"CAP_SYS_ADMIN"}}}),
			[]string{ctrSC + ".capabilities.add"},
			func(p corev1.PodSpec) bool { return p.Containers[0].SecurityContext.AllowPrivilegeEscalation == nil }},
		{"capabilities kept", withCtrSC(corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"NET_RAW"}}}),
			[]string{ctrSC + ".capabilities.drop"},
			func(p corev1.PodSpec) bool {
				return slices.Equal(p.Containers[0].SecurityContext.Capabilities.Drop, []corev1.Capability{"NET_RAW"})
			}},
		{"pod as root", withPodSC(corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0)}),
			[]string{podSC + ".runAsUser"},
			func(p corev1.PodSpec) bool { return *p.SecurityContext.RunAsUser == 0 }},
		{"pod may run as root", withPodSC(corev1.PodSecurityContext{RunAsNonRoot: ptr.To(false)}),
			[]string{podSC + ".runAsNonRoot"},
			func(p corev1.PodSpec) bool { return !*p.SecurityContext.RunAsNonRoot }},
		{"container as root", withCtrSC(corev1.SecurityContext{RunAsUser: ptr.To[int64](0)}),
			[]string{ctrSC + ".runAsUser"},
			func(p corev1.PodSpec) bool { return *p.Containers[0].SecurityContext.RunAsUser == 0 }},
		{"container may run as root", withCtrSC(corev1.SecurityContext{RunAsNonRoot: ptr.To(false)}),
			[]string{ctrSC + ".runAsNonRoot"},
			func(p corev1.PodSpec) bool { return !*p.Containers[0].SecurityContext.RunAsNonRoot }},
		{"writable root file system", withCtrSC(corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(false)}),
			[]string{ctrSC + ".readOnlyRootFilesystem"},
			func(p corev1.PodSpec) bool { return !*p.Containers[0].SecurityContext.ReadOnlyRootFilesystem }},
		{"pod without seccomp", withPodSC(corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}}),
			[]string{podSC + ".seccompProfile.type"},
			func(p corev1.PodSpec) bool {
				return p.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined
			}},
		{"container without seccomp", withCtrSC(corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}}),
			[]string{ctrSC + ".seccompProfile.type"},
			func(p corev1.PodSpec) bool {
				return p.Containers[0].SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined
			}},
		{"without AppArmor", withCtrSC(corev1.SecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}}),
			[]string{ctrSC + ".appArmorProfile.type"},
			func(p corev1.PodSpec) bool { return p.Containers[0].SecurityContext.AppArmorProfile != nil }},
		{"unmasked /proc", withCtrSC(corev1.SecurityContext{ProcMount: ptr.To(corev1.UnmaskedProcMount)}),
			[]string{ctrSC + ".procMount"},
			func(p corev1.PodSpec) bool {
				return *p.Containers[0].SecurityContext.ProcMount == corev1.UnmaskedProcMount
			}},
		{"SELinux super-privileged", withPodSC(corev1.PodSecurityContext{SELinuxOptions: &corev1.SELinuxOptions{Type: "spc_t", User: "system_u"}}),
			[]string{podSC + ".seLinuxOptions.type", podSC + ".seLinuxOptions.user"},
			func(p corev1.PodSpec) bool { return p.SecurityContext.SELinuxOptions.Type == "spc_t" }},
		{"Windows host process", withCtrSC(corev1.SecurityContext{WindowsOptions: &corev1.WindowsSecurityContextOptions{HostProcess: ptr.To(true)}}),
			[]string{ctrSC + ".windowsOptions.hostProcess"},
			func(p corev1.PodSpec) bool { return *p.Containers[0].SecurityContext.WindowsOptions.HostProcess }},
		{"several at once", func(pd *v1.PyroscopeDistributor) {
			withPodSC(corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0), RunAsNonRoot: ptr.To(false)})(pd)
			withCtrSC(corev1.SecurityContext{Privileged: ptr.To(true), ReadOnlyRootFilesystem: ptr.To(false), RunAsNonRoot: ptr.To(false)})(pd)
		}, []string{podSC + ".runAsUser", podSC + ".runAsNonRoot", ctrSC + ".privileged", ctrSC + ".runAsNonRoot", ctrSC + ".readOnlyRootFilesystem"},
			func(p corev1.PodSpec) bool { return *p.Containers[0].SecurityContext.Privileged }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pd := base("zone-a", "zone-b")
			tc.mutate(pd)

			_, err := Build(pd, testFacts)
			var pse *PodSecurityError
			if !errors.As(err, &pse) {
				t.Fatalf("Build = %v, want a *PodSecurityError", err)
			}
			if got := fields(pse.Violations); !slices.Equal(got, tc.want) {
				t.Errorf("refused fields = %q, want %q (each once, not once per zone)", got, tc.want)
			}
			for _, f := range tc.want {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
			if !strings.Contains(err.Error(), "--allow-privileged-pods") {
				t.Errorf("error %q does not name the flag that allows it", err)
			}

			allowed := testFacts
			allowed.AllowPrivilegedPods = true
			d, err := Build(pd, allowed)
			if err != nil {
				t.Fatalf("Build with AllowPrivilegedPods: %v", err)
			}
			for _, z := range d.Zones {
				if !tc.built(z.Deployment.Spec.Template.Spec) {
					t.Errorf("zone %s: the allowed pod lacks the requested setting: %+v %+v", z.Name,
						z.Deployment.Spec.Template.Spec.SecurityContext, z.Deployment.Spec.Template.Spec.Containers[0].SecurityContext)
				}
			}
			warned := strings.Join(d.Warnings, "\n")
			for _, f := range tc.want {
				if !strings.Contains(warned, f) || !strings.Contains(warned, "--allow-privileged-pods") {
					t.Errorf("warnings %q do not say %s was allowed by the flag", d.Warnings, f)
				}
			}
		})
	}
}

// Overrides that keep the isolation build without the flag and without warnings.
func TestPodSecurityAcceptsHardeningOverrides(t *testing.T) {
	cases := map[string]func(*v1.PyroscopeDistributor){
		"another non-root uid": func(pd *v1.PyroscopeDistributor) {
			withPodSC(corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), RunAsNonRoot: ptr.To(true), FSGroup: ptr.To[int64](1000)})(pd)
			withCtrSC(corev1.SecurityContext{RunAsUser: ptr.To[int64](1001), RunAsGroup: ptr.To[int64](0)})(pd)
		},
		"defaults restated": withCtrSC(corev1.SecurityContext{
			Privileged: ptr.To(false), AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
			RunAsNonRoot: ptr.To(true), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		}),
		"more dropped": withCtrSC(corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL", "NET_RAW"}}}),
		"local seccomp and AppArmor profiles": withCtrSC(corev1.SecurityContext{
			SeccompProfile:  &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("profiles/pyrodist.json")},
			AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault},
		}),
		"SELinux level": withPodSC(corev1.PodSecurityContext{SELinuxOptions: &corev1.SELinuxOptions{Type: "container_t", Level: "s0:c123,c456"}}),
		"default /proc": withCtrSC(corev1.SecurityContext{ProcMount: ptr.To(corev1.DefaultProcMount)}),
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			pd := base("zone-a")
			mutate(pd)
			d, err := Build(pd, testFacts)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if len(d.Warnings) != 0 {
				t.Errorf("warnings %q", d.Warnings)
			}
		})
	}
}

// The operator's own pods are within the policy in every scenario, so a
// refusal can only ever blame the user's override.
func TestPodSecurityDefaultsPass(t *testing.T) {
	for _, sc := range scenarios {
		d := mustBuild(t, sc.pd())
		for _, z := range d.Zones {
			if v := podSecurityViolations(&z.Deployment.Spec.Template.Spec); len(v) != 0 {
				t.Errorf("%s/%s: the operator's own pod has %v", sc.name, z.Name, v)
			}
		}
	}
}

// The check reads the built pod, so settings the CRD cannot express (host
// namespaces, host paths and ports, other containers) are caught too, should
// a builder ever produce them.
func TestPodSecurityViolationsOfBuiltPods(t *testing.T) {
	p := mustBuild(t, base("zone-a")).Zones[0].Deployment.Spec.Template.Spec
	p.HostNetwork, p.HostPID, p.HostIPC = true, true, true
	p.Volumes = append(p.Volumes, corev1.Volume{Name: "node", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
	p.Containers[0].Ports[0].HostPort = 4040
	p.InitContainers = []corev1.Container{{Name: "init"}}
	got := fields(podSecurityViolations(&p))
	want := []string{
		"spec.template.spec.hostNetwork", "spec.template.spec.hostPID", "spec.template.spec.hostIPC",
		"spec.template.spec.volumes[node].hostPath",
		"spec.template.spec.containers[init].securityContext",
		"spec.template.spec.containers[distributor].ports[http].hostPort",
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations = %q, want %q", got, want)
	}
}
