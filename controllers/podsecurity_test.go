package controllers

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/test/testutil/envtestbin"
)

func privileged(pd *v1alpha1.PyroscopeDistributor) {
	pd.Spec.PodTemplate.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptrTo[int64](0)}
	pd.Spec.PodTemplate.ContainerSecurityContext = &corev1.SecurityContext{Privileged: ptrTo(true)}
}

// refusedFields are what privileged() asks for, as a refusal names them.
var refusedFields = []string{
	"spec.podTemplate.securityContext.runAsUser",
	"spec.podTemplate.containerSecurityContext.privileged",
}

// checkRefused reports whether pd carries the pod-security refusal for its
// current generation, naming every field of refusedFields.
func checkRefused(pd *v1alpha1.PyroscopeDistributor) error {
	deg, ready := condition(pd, v1alpha1.ConditionDegraded), condition(pd, v1alpha1.ConditionReady)
	switch {
	case deg == nil || deg.Status != metav1.ConditionTrue || deg.Reason != ReasonPodSecurityRefused:
		return fmt.Errorf("degraded %+v", deg)
	case deg.ObservedGeneration != pd.Generation:
		return fmt.Errorf("degraded is for generation %d, the object is at %d", deg.ObservedGeneration, pd.Generation)
	case ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != ReasonPodSecurityRefused:
		return fmt.Errorf("ready %+v", ready)
	}
	for _, f := range slices.Concat(refusedFields, []string{"--allow-privileged-pods"}) {
		if !strings.Contains(deg.Message, f) {
			return fmt.Errorf("degraded message %q does not name %s", deg.Message, f)
		}
	}
	return nil
}

// Without --allow-privileged-pods, a spec asking for privileged or root pods
// is refused with a condition that names the fields, and nothing but the
// status and an Event is written: the running Deployment stays as it was.
func TestPodSecurityRefusedLeavesChildrenAlone(t *testing.T) {
	ns := newNamespace(t)
	key := types.NamespacedName{Namespace: ns, Name: "psec"}
	mustCreate(t, newPD(ns, "psec", "zone-a"))
	before := reconciled(t, key)
	dep := zoneDeployment(t, ns, "psec", "zone-a")

	mark := managerRequests.mark()
	updatePD(t, key, privileged)
	eventually(t, waitFor, func() error {
		return checkRefused(get(t, ns, "psec", &v1alpha1.PyroscopeDistributor{}))
	})
	expectEvents(t, ns, "psec", EventPodSecurityRefused)
	pd := get(t, ns, "psec", &v1alpha1.PyroscopeDistributor{})
	if pd.Status.ObservedGeneration != before.Generation {
		t.Errorf("observedGeneration %d moved for a refused generation (was %d)", pd.Status.ObservedGeneration, before.Generation)
	}
	if now := zoneDeployment(t, ns, "psec", "zone-a"); now.ResourceVersion != dep.ResourceVersion {
		t.Errorf("the Deployment changed (resourceVersion %s -> %s)", dep.ResourceVersion, now.ResourceVersion)
	}
	for _, w := range managerRequests.mutatingSince(mark, ns) {
		if !strings.Contains(w, "/pyroscopedistributors/psec/status") && !strings.Contains(w, "/events") {
			t.Errorf("a refused spec made the operator write %s", w)
		}
	}

	// A new object asking for it gets no children at all.
	bad := newPD(ns, "psec-new", "zone-a")
	privileged(bad)
	mustCreate(t, bad)
	eventually(t, waitFor, func() error {
		return checkRefused(get(t, ns, "psec-new", &v1alpha1.PyroscopeDistributor{}))
	})
	if err := absent(ns, "psec-new-zone-a", &appsv1.Deployment{}); err != nil {
		t.Error(err)
	}

	// Dropping the overrides heals it.
	updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) {
		pd.Spec.PodTemplate.SecurityContext, pd.Spec.PodTemplate.ContainerSecurityContext = nil, nil
	})
	pd = reconciled(t, key)
	if c := condition(pd, v1alpha1.ConditionDegraded); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("degraded after the fix: %+v", c)
	}
}

// Restarting the operator with --allow-privileged-pods (AllowPrivilegedPods)
// applies the spec it refused before: the pods get exactly what was asked for
// and a warning Event records that the flag allowed it. It runs on a control
// plane of its own, since the suite's operator, without the flag, would keep
// refusing the same object.
func TestAllowPrivilegedPodsAppliesTheSpec(t *testing.T) {
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                testScheme,
	}
	c := envtestbin.Start(t, "..", env, testScheme)
	cfg := env.Config
	const ns, name = "privileged-pods", "priv"
	key := types.NamespacedName{Namespace: ns, Name: name}
	if err := c.Create(testCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	read := func() *v1alpha1.PyroscopeDistributor {
		pd := &v1alpha1.PyroscopeDistributor{}
		if err := c.Get(testCtx, key, pd); err != nil {
			t.Fatal(err)
		}
		return pd
	}

	stop := runOperator(t, cfg, false)
	pd := newPD(ns, name, "zone-a")
	privileged(pd)
	if err := c.Create(testCtx, pd); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitFor, func() error { return checkRefused(read()) })
	if err := c.Get(testCtx, types.NamespacedName{Namespace: ns, Name: name + "-zone-a"}, &appsv1.Deployment{}); err == nil {
		t.Fatal("a Deployment was created for a refused spec")
	}
	stop()

	stop = runOperator(t, cfg, true)
	defer stop()
	eventually(t, waitFor, func() error {
		pd := read()
		if pd.Status.ObservedGeneration != pd.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", pd.Status.ObservedGeneration, pd.Generation)
		}
		if d := condition(pd, v1alpha1.ConditionDegraded); d == nil || d.Status != metav1.ConditionFalse {
			return fmt.Errorf("degraded %+v", d)
		}
		return nil
	})
	d := &appsv1.Deployment{}
	if err := c.Get(testCtx, types.NamespacedName{Namespace: ns, Name: name + "-zone-a"}, d); err != nil {
		t.Fatal(err)
	}
	spec := d.Spec.Template.Spec
	if sc := spec.Containers[0].SecurityContext; sc.Privileged == nil || !*sc.Privileged || spec.SecurityContext.RunAsUser == nil || *spec.SecurityContext.RunAsUser != 0 {
		t.Errorf("the allowed pod is not what was asked for: pod %+v, container %+v", spec.SecurityContext, sc)
	}
	eventually(t, waitFor, func() error {
		var list eventsv1.EventList
		if err := c.List(testCtx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		var notes []string
		for _, e := range list.Items {
			if e.Reason == EventSpecWarning && e.Regarding.Name == name {
				notes = append(notes, e.Note)
			}
		}
		all := strings.Join(notes, "\n")
		for _, f := range refusedFields {
			if !strings.Contains(all, f) || !strings.Contains(all, "--allow-privileged-pods") {
				return fmt.Errorf("no warning that the flag allowed %s (warnings %q)", f, notes)
			}
		}
		return nil
	})
}

// runOperator runs a manager with the reconciler as cmd/operator sets it up,
// with or without AllowPrivilegedPods; the returned func stops it.
func runOperator(t *testing.T, cfg *rest.Config, allowPrivileged bool) (stop func()) {
	t.Helper()
	mgr, _, err := newTestManager(cfg, nil, func(r *PyroscopeDistributorReconciler) {
		r.Facts.AllowPrivilegedPods = allowPrivileged
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("operator: %v", err)
			}
		case <-time.After(waitFor):
			t.Error("the operator did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}
