package controllers

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/pyrodist/pyrodist/internal/manifests"
)

func TestUpToDate(t *testing.T) {
	desired := func() *appsv1.Deployment {
		return &appsv1.Deployment{
			TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns",
				Labels:      map[string]string{"a": "1"},
				Annotations: map[string]string{appliedHashAnnotation: "h1"}},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptrTo[int32](0),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "c", Image: "img:1",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceMemory: resource.MustParse("512Mi")}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
						HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}}},
				}}}},
			},
		}
	}
	// live is what the API server returns: defaults filled in, server metadata,
	// status, and a label somebody else added.
	live := func() *appsv1.Deployment {
		d := desired()
		d.TypeMeta = metav1.TypeMeta{}
		d.ResourceVersion, d.UID, d.Generation = "42", "uid", 3
		d.CreationTimestamp = metav1.Now()
		d.Labels["other"] = "x"
		d.Spec.RevisionHistoryLimit = ptrTo[int32](10)
		c := &d.Spec.Template.Spec.Containers[0]
		c.TerminationMessagePath = "/dev/termination-log"
		c.Resources.Requests[corev1.ResourceMemory] = resource.MustParse("0.5Gi")
		c.ReadinessProbe.TimeoutSeconds, c.ReadinessProbe.PeriodSeconds = 1, 10
		d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		d.Status.Replicas = 5
		return d
	}

	cases := []struct {
		name string
		edit func(d, l *appsv1.Deployment)
		want bool
	}{
		{"defaults and extra fields are ignored", func(d, l *appsv1.Deployment) {}, true},
		{"hash differs", func(d, l *appsv1.Deployment) { l.Annotations[appliedHashAnnotation] = "old" }, false},
		{"image edited by hand", func(d, l *appsv1.Deployment) { l.Spec.Template.Spec.Containers[0].Image = "img:2" }, false},
		{"explicit zero replicas scaled up", func(d, l *appsv1.Deployment) { l.Spec.Replicas = ptrTo[int32](3) }, false},
		{"replicas left to an HPA", func(d, l *appsv1.Deployment) {
			d.Spec.Replicas = nil
			l.Spec.Replicas = ptrTo[int32](7)
		}, true},
		{"our label removed by hand", func(d, l *appsv1.Deployment) { delete(l.Labels, "a") }, false},
		{"memory request changed", func(d, l *appsv1.Deployment) {
			l.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("1Gi")
		}, false},
		{"container removed", func(d, l *appsv1.Deployment) { l.Spec.Template.Spec.Containers = nil }, false},
		{"probe port changed", func(d, l *appsv1.Deployment) {
			l.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Port = intstr.FromInt32(4040)
		}, false},
		{"empty-string annotation is a value", func(d, l *appsv1.Deployment) {
			d.Annotations["note"] = ""
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, l := desired(), live()
			tc.edit(d, l)
			if got := upToDate(d, l); got != tc.want {
				t.Fatalf("upToDate = %v, want %v", got, tc.want)
			}
		})
	}
}

// Fields that server-side apply treats as one value (atomic maps, lists and
// structs: a Service's selector, a LabelSelector, container args) belong to
// the operator as a whole once it sets them: an extra key or item in live is
// drift, which a forced apply removes. Extra items in granular lists and maps
// (another manager's label, container, port) stay someone else's.
func TestUpToDateAtomicFields(t *testing.T) {
	deploy := func() *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "d", Labels: map[string]string{"a": "1"},
				Annotations: map[string]string{appliedHashAnnotation: "h"}},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
					Spec: corev1.PodSpec{
						NodeSelector: map[string]string{"zone": "a"},
						Containers: []corev1.Container{{Name: "c", Image: "img", Args: []string{"-a"},
							Env: []corev1.EnvVar{{Name: "POD", ValueFrom: &corev1.EnvVarSource{
								FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
						}},
					},
				},
			},
		}
	}
	service := func() *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "s", Annotations: map[string]string{appliedHashAnnotation: "h"}},
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeClusterIP,
				Selector: map[string]string{"app": "x", "zone": "a"},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 4040, TargetPort: intstr.FromString("http")}},
			},
		}
	}
	// What the API server fills in: defaults, also inside atomic structs
	// (fieldRef.apiVersion), which must not count as drift.
	serverDefaults := func(o any) {
		switch o := o.(type) {
		case *appsv1.Deployment:
			o.Spec.Template.Spec.Containers[0].Env[0].ValueFrom.FieldRef.APIVersion = "v1"
			o.Spec.Template.Spec.DNSPolicy = corev1.DNSClusterFirst
		case *corev1.Service:
			o.Spec.ClusterIP, o.Spec.ClusterIPs = "10.0.0.9", []string{"10.0.0.9"}
			o.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
			o.Spec.SessionAffinity = corev1.ServiceAffinityNone
			o.Spec.Ports[0].Protocol = corev1.ProtocolTCP
		}
	}
	cases := []struct {
		name string
		edit func(d *appsv1.Deployment, s *corev1.Service)
		want bool
	}{
		{"server defaults", func(d *appsv1.Deployment, s *corev1.Service) {}, true},
		{"Service selector gains a key", func(d *appsv1.Deployment, s *corev1.Service) { s.Spec.Selector["extra"] = "x" }, false},
		{"LabelSelector gains a key", func(d *appsv1.Deployment, s *corev1.Service) { d.Spec.Selector.MatchLabels["extra"] = "x" }, false},
		{"LabelSelector gains an expression", func(d *appsv1.Deployment, s *corev1.Service) {
			d.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "k", Operator: metav1.LabelSelectorOpExists}}
		}, false},
		{"nodeSelector gains a key", func(d *appsv1.Deployment, s *corev1.Service) {
			d.Spec.Template.Spec.NodeSelector["disk"] = "ssd"
		}, false},
		{"arg appended", func(d *appsv1.Deployment, s *corev1.Service) {
			c := &d.Spec.Template.Spec.Containers[0]
			c.Args = append(c.Args, "-b")
		}, false},
		{"pod label added by another manager", func(d *appsv1.Deployment, s *corev1.Service) {
			d.Spec.Template.Labels["team"] = "x"
		}, true},
		{"container added by another manager", func(d *appsv1.Deployment, s *corev1.Service) {
			d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: "sidecar"})
		}, true},
		{"toleration on a field the operator leaves unset", func(d *appsv1.Deployment, s *corev1.Service) {
			d.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}}
		}, true},
		{"port added by another manager", func(d *appsv1.Deployment, s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "x", Port: 1})
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dd, ld, ds, ls := deploy(), deploy(), service(), service()
			serverDefaults(ld)
			serverDefaults(ls)
			tc.edit(ld, ls)
			if got := upToDate(dd, ld) && upToDate(ds, ls); got != tc.want {
				t.Fatalf("upToDate = %v, want %v", got, tc.want)
			}
		})
	}
}

// Every kind the operator applies has its apply schema known, so atomic
// values are recognised in each (an unknown kind would quietly fall back to
// treating every map and list as granular).
func TestSchemaOfEveryChildKind(t *testing.T) {
	for _, list := range manifests.OwnedObjectLists() {
		obj, err := itemOf(list)
		if err != nil {
			t.Fatal(err)
		}
		if n := schemaOf(obj); n.s == nil {
			t.Errorf("%T: no server-side apply schema", obj)
		} else if a, ok := n.atom(); !ok || a.Map == nil {
			t.Errorf("%T: schema root %+v is not a struct", obj, a)
		}
	}
}
