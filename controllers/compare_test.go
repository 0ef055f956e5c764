package controllers

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
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
