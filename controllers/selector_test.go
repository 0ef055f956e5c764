package controllers

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/manifests"
)

// A key added by hand to a Service's selector (an atomic map: the operator
// sets it as a whole) makes the Service select no pod. The next reconcile
// puts back exactly the operator's selector, and a resync then writes nothing.
func TestSelectorKeyAddedByHandIsRemoved(t *testing.T) {
	ns, key := createReconciled(t, "sel", "zone-a")

	for _, name := range []string{"sel-zone-a", "sel"} {
		want := get(t, ns, name, &corev1.Service{}).Spec.Selector
		svc := get(t, ns, name, &corev1.Service{})
		svc.Spec.Selector["extra"] = "by-hand"
		if err := k8sClient.Update(testCtx, svc, client.FieldOwner("kubectl-edit")); err != nil {
			t.Fatal(err)
		}
		eventually(t, waitFor, func() error {
			got := get(t, ns, name, &corev1.Service{}).Spec.Selector
			if !maps.Equal(got, want) {
				return fmt.Errorf("Service %s selector %v, want %v", name, got, want)
			}
			return nil
		})
	}
	assertNoWritesOnResync(t, key)
}

// endpointSlice is the EndpointSlice the EndpointSlice controller keeps for
// Service svc (envtest runs no such controller): the Service's labels, its
// name label, and one endpoint per entry of ready.
func endpointSlice(svc *corev1.Service, ready ...bool) *discoveryv1.EndpointSlice {
	labels := maps.Clone(svc.Labels)
	labels[discoveryv1.LabelServiceName] = svc.Name
	labels[discoveryv1.LabelManagedBy] = "endpointslice-controller.k8s.io"
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name + "-x1", Labels: labels},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for i, r := range ready {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("10.1.0.%d", i+1)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(r)},
		})
	}
	return es
}

// A zone whose Deployment has ready pods while its Service has no ready
// endpoint serves nothing: the object is not Ready and says why.
func TestServiceWithoutReadyEndpointsIsReported(t *testing.T) {
	ns, key := createReconciled(t, "eps", "zone-a", "zone-b")
	markRolledOut(t, ns, "eps-zone-a")
	markRolledOut(t, ns, "eps-zone-b")

	slice := endpointSlice(get(t, ns, "eps-zone-b", &corev1.Service{}), false)
	mustCreate(t, slice)
	eventually(t, waitFor, func() error {
		pd := get(t, ns, "eps", &v1alpha1.PyroscopeDistributor{})
		ready, degraded := condition(pd, v1alpha1.ConditionReady), condition(pd, v1alpha1.ConditionDegraded)
		if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != ReasonServiceSelectsNoPods {
			return fmt.Errorf("ready %+v", ready)
		}
		if degraded == nil || degraded.Status != metav1.ConditionTrue || degraded.Reason != ReasonServiceSelectsNoPods {
			return fmt.Errorf("degraded %+v", degraded)
		}
		if want := manifests.ZonalName("eps", "zone-b"); !strings.Contains(ready.Message, want) || strings.Contains(ready.Message, "eps-zone-a") {
			return fmt.Errorf("ready message %q, want it to name %s only", ready.Message, want)
		}
		return nil
	})
	assertNoWritesOnResync(t, key)

	slice.Endpoints[0].Conditions.Ready = ptrTo(true)
	if err := k8sClient.Update(testCtx, slice); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitFor, func() error {
		pd := get(t, ns, "eps", &v1alpha1.PyroscopeDistributor{})
		if c := condition(pd, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("ready %+v", c)
		}
		if c := condition(pd, v1alpha1.ConditionDegraded); c == nil || c.Status != metav1.ConditionFalse {
			return errors.New("still degraded")
		}
		return nil
	})
}
