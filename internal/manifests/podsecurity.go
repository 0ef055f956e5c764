package manifests

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// AllowPrivilegedPodsFlag is the operator flag that sets
// ClusterFacts.AllowPrivilegedPods; refusals name it so users know the way out.
const AllowPrivilegedPodsFlag = "allow-privileged-pods"

// Where the settings of a built pod come from in a PyroscopeDistributor. The
// operator's own security contexts are restricted, so a weakened setting in
// the pod can only have come from the user's override of the same field.
const (
	podSecurityContextField       = "spec.podTemplate.securityContext"
	containerSecurityContextField = "spec.podTemplate.containerSecurityContext"
	// podField prefixes pod settings the CRD has no field for: they can only
	// come from the builders themselves, so the refusal names the pod's field.
	podField = "spec.template.spec"
)

// SELinux types a container may run with without gaining privileges; others
// (spc_t above all) lift the confinement.
var confinedSELinuxTypes = []string{"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}

// PodSecurityViolation is one setting of the distributor pods that weakens
// their isolation.
type PodSecurityViolation struct {
	// Field is the field that asks for it, e.g.
	// spec.podTemplate.containerSecurityContext.privileged.
	Field string
	// Value is the value it asks for.
	Value string
	// Risk says what the setting gives away.
	Risk string
}

func (v PodSecurityViolation) String() string {
	return fmt.Sprintf("%s=%s (%s)", v.Field, v.Value, v.Risk)
}

// PodSecurityError is Build's answer to a spec whose pods would run
// privileged, as root, in host namespaces, with added capabilities or with a
// writable root file system, while ClusterFacts.AllowPrivilegedPods is false.
type PodSecurityError struct {
	Violations []PodSecurityViolation
}

func (e *PodSecurityError) Error() string {
	return fmt.Sprintf("pod security: refused %s; the operator allows these only when it runs with --%s",
		violationList(e.Violations), AllowPrivilegedPodsFlag)
}

func violationList(vs []PodSecurityViolation) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, ", ")
}

// checkPodSecurity inspects the pods that were built (not the spec), so a
// setting that reaches a pod through any field is seen. Refused unless the
// operator allows it; allowed settings become warnings, so each generation
// that runs weakened pods leaves an Event saying so.
func (b *builder) checkPodSecurity(d *Desired) error {
	var all []PodSecurityViolation
	for _, z := range d.Zones {
		for _, v := range podSecurityViolations(&z.Deployment.Spec.Template.Spec) {
			if !slices.Contains(all, v) { // every zone has the same pod security
				all = append(all, v)
			}
		}
	}
	if len(all) == 0 {
		return nil
	}
	if !b.facts.AllowPrivilegedPods {
		return &PodSecurityError{Violations: all}
	}
	d.Warnings = append(d.Warnings, fmt.Sprintf("pod security: %s allowed because the operator runs with --%s",
		violationList(all), AllowPrivilegedPodsFlag))
	return nil
}

// podSecurityViolations lists the settings of p that go beyond the operator's
// restricted defaults: the host's namespaces, ports or files, privileged or
// root containers, added or kept capabilities, privilege escalation, a
// writable root file system, and switched-off seccomp, AppArmor or SELinux
// confinement. Settings that keep the isolation (another non-root uid, a
// Localhost seccomp profile, more capabilities dropped) are not listed.
func podSecurityViolations(p *corev1.PodSpec) []PodSecurityViolation {
	var out []PodSecurityViolation
	add := func(field, value, risk string) {
		out = append(out, PodSecurityViolation{Field: field, Value: value, Risk: risk})
	}
	for _, h := range []struct {
		name string
		on   bool
	}{{"hostNetwork", p.HostNetwork}, {"hostPID", p.HostPID}, {"hostIPC", p.HostIPC}} {
		if h.on {
			add(podField+"."+h.name, "true", "shares a namespace of the node")
		}
	}
	for _, v := range p.Volumes {
		if v.HostPath != nil {
			add(podField+".volumes["+v.Name+"].hostPath", v.HostPath.Path, "mounts a path of the node")
		}
	}
	if sc := p.SecurityContext; sc != nil {
		f := podSecurityContextField
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			add(f+".runAsUser", "0", "runs as root")
		}
		if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
			add(f+".runAsNonRoot", "false", "lets the image run as root")
		}
		confinement(add, f, sc.SeccompProfile, sc.AppArmorProfile, sc.SELinuxOptions, sc.WindowsOptions)
	}
	for _, cs := range [][]corev1.Container{p.InitContainers, p.Containers} {
		for i := range cs {
			containerViolations(add, &cs[i])
		}
	}
	return out
}

func containerViolations(add func(field, value, risk string), c *corev1.Container) {
	// The distributor container's security context is the user's override
	// laid over the operator's; other containers would be the builders' own.
	f := podField + ".containers[" + c.Name + "].securityContext"
	if c.Name == ContainerName {
		f = containerSecurityContextField
	}
	for _, port := range c.Ports {
		if port.HostPort != 0 {
			add(podField+".containers["+c.Name+"].ports["+port.Name+"].hostPort",
				strconv.Itoa(int(port.HostPort)), "listens on the node's address")
		}
	}
	sc := c.SecurityContext
	if sc == nil {
		add(f, "null", "no hardening: root, privilege escalation and a writable root file system are possible")
		return
	}
	if sc.Privileged != nil && *sc.Privileged {
		add(f+".privileged", "true", "privileged container: every device and capability of the node")
	}
	// Unset only where escalationImplied lifted the operator's false; the
	// privileged or CAP_SYS_ADMIN entry then says why.
	if ape := sc.AllowPrivilegeEscalation; (ape != nil && *ape) || (ape == nil && !escalationImplied(sc)) {
		add(f+".allowPrivilegeEscalation", boolString(ape), "setuid binaries can gain privileges")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		var drop []corev1.Capability
		if sc.Capabilities != nil {
			drop = sc.Capabilities.Drop
		}
		add(f+".capabilities.drop", capList(drop), "keeps the runtime's default capabilities; drop ALL")
	}
	// The distributor listens on unprivileged ports only (4040 and a
	// memberlist port of 1024 or more), so it needs no capability at all,
	// not even NET_BIND_SERVICE.
	if sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
		add(f+".capabilities.add", capList(sc.Capabilities.Add), "adds capabilities")
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		add(f+".runAsUser", "0", "runs as root")
	}
	if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
		add(f+".runAsNonRoot", "false", "lets the image run as root")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		add(f+".readOnlyRootFilesystem", boolString(sc.ReadOnlyRootFilesystem), "writable root file system")
	}
	if sc.ProcMount != nil && *sc.ProcMount == corev1.UnmaskedProcMount {
		add(f+".procMount", string(*sc.ProcMount), "exposes the node's /proc")
	}
	confinement(add, f, sc.SeccompProfile, sc.AppArmorProfile, sc.SELinuxOptions, sc.WindowsOptions)
}

// escalationImplied reports whether sc asks for what implies privilege
// escalation: a privileged container or CAP_SYS_ADMIN. The API server refuses
// either together with allowPrivilegeEscalation=false, so when a user's
// override asks for one and leaves allowPrivilegeEscalation unset, the
// operator does not impose its false (checkPodSecurity still refuses the
// override unless the operator allows it).
func escalationImplied(sc *corev1.SecurityContext) bool {
	if sc == nil {
		return false
	}
	if sc.Privileged != nil && *sc.Privileged {
		return true
	}
	return sc.Capabilities != nil && slices.Contains(sc.Capabilities.Add, "CAP_SYS_ADMIN")
}

// confinement lists the kernel confinement a pod or container switches off.
func confinement(add func(field, value, risk string), f string, seccomp *corev1.SeccompProfile,
	apparmor *corev1.AppArmorProfile, selinux *corev1.SELinuxOptions, windows *corev1.WindowsSecurityContextOptions) {
	if seccomp != nil && seccomp.Type == corev1.SeccompProfileTypeUnconfined {
		add(f+".seccompProfile.type", string(seccomp.Type), "no seccomp filter")
	}
	if apparmor != nil && apparmor.Type == corev1.AppArmorProfileTypeUnconfined {
		add(f+".appArmorProfile.type", string(apparmor.Type), "no AppArmor profile")
	}
	if selinux != nil {
		if !slices.Contains(confinedSELinuxTypes, selinux.Type) {
			add(f+".seLinuxOptions.type", selinux.Type, "leaves the container SELinux confinement")
		}
		if selinux.User != "" {
			add(f+".seLinuxOptions.user", selinux.User, "custom SELinux user")
		}
		if selinux.Role != "" {
			add(f+".seLinuxOptions.role", selinux.Role, "custom SELinux role")
		}
	}
	if windows != nil && windows.HostProcess != nil && *windows.HostProcess {
		add(f+".windowsOptions.hostProcess", "true", "runs as a process of the node")
	}
}

func boolString(b *bool) string {
	if b == nil {
		return "unset"
	}
	return strconv.FormatBool(*b)
}

func capList(cs []corev1.Capability) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return "[" + strings.Join(s, ",") + "]"
}
