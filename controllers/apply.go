package controllers

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/pyrodist/pyrodist/internal/manifests"
)

// FieldManager is the field manager of every server-side apply the operator
// sends: to its children and to the status of a PyroscopeDistributor. One
// fixed name keeps ownership stable across restarts and replicas.
const FieldManager = "pyrodist-operator"

// applier applies desired children with server-side apply and one field
// manager, skipping those already up to date. It knows nothing about the
// PyroscopeDistributor type: objects in, API calls out.
type applier struct {
	c client.Client
	// reader reads from the API server, bypassing the cache.
	reader client.Reader
	scheme *runtime.Scheme
}

// prepare returns the object to apply for desired: a copy of it in owner's
// namespace, controlled by owner (for garbage collection), and carrying the
// applied-hash annotation that upToDate compares. desired is not changed, so
// what Build returned means the same on every read.
func (a *applier) prepare(owner, desired client.Object) (client.Object, error) {
	obj, ok := desired.DeepCopyObject().(client.Object)
	if !ok {
		return nil, fmt.Errorf("%T is not a client.Object", desired)
	}
	obj.SetNamespace(owner.GetNamespace())
	if err := controllerutil.SetControllerReference(owner, obj, a.scheme); err != nil {
		return nil, err
	}
	ann := obj.GetAnnotations()
	delete(ann, appliedHashAnnotation) // a stale one must not feed the hash
	hash, err := desiredHash(obj)
	if err != nil {
		return nil, err
	}
	if ann == nil {
		ann = map[string]string{}
	}
	ann[appliedHashAnnotation] = hash
	obj.SetAnnotations(ann)
	return obj, nil
}

// errForeign is returned for a child name already taken by an object this
// PyroscopeDistributor does not control.
var errForeign = errors.New("exists and is not controlled by this PyroscopeDistributor; rename or delete it")

// getOwned reads the live copy of obj: from the cache, and from the API
// server when the cache has none (the cache only holds labelled children, and
// may lag). It refuses to hand back an object controlled by anyone else (a
// user's object, or another PyroscopeDistributor's child whose name collides),
// so the operator never takes over an object it did not create.
func (a *applier) getOwned(ctx context.Context, obj client.Object, owner metav1.Object) (client.Object, error) {
	live, err := read(ctx, a.c, obj)
	if err == nil && live == nil {
		live, err = read(ctx, a.reader, obj)
	}
	if err != nil || live == nil {
		return nil, err
	}
	if !ours(live, owner) {
		return nil, fmt.Errorf("%s %s/%s %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetNamespace(), obj.GetName(), errForeign)
	}
	return live, nil
}

// ours reports whether live belongs to owner: controlled by it, or without
// any controller but labelled as its child (its owner reference was removed
// by hand; applying puts it back).
func ours(live client.Object, owner metav1.Object) bool {
	if ref := metav1.GetControllerOf(live); ref != nil {
		return ref.UID == owner.GetUID()
	}
	return live.GetLabels()[manifests.LabelOwner] == owner.GetName() &&
		live.GetLabels()[manifests.LabelManagedBy] == manifests.ManagedBy
}

// read reads the live copy of obj through r; nil when it does not exist.
func read(ctx context.Context, r client.Reader, obj client.Object) (client.Object, error) {
	live, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return nil, fmt.Errorf("%T is not a client.Object", obj)
	}
	if err := r.Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return live, nil
}

// apply sends obj as a server-side apply of manager, forcing ownership (the
// operator is the source of truth for every field it sets), and returns the
// object as the server stored it.
func (a *applier) apply(ctx context.Context, obj client.Object, manager string) (client.Object, error) {
	u, err := a.toApplyConfig(obj)
	if err != nil {
		return nil, err
	}
	if err := a.c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(manager), client.ForceOwnership); err != nil {
		return nil, fmt.Errorf("apply %s %s/%s: %w", u.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	out, ok := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
	if !ok {
		return nil, fmt.Errorf("%T is not a client.Object", obj)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return nil, fmt.Errorf("decode applied %s %s/%s: %w", u.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	return out, nil
}

// applyOrRecreate applies obj; when the API server rejects the result as
// invalid although our object alone is valid, a hand edit has left the live
// object in a state apply cannot merge with (typically a list item whose key
// was changed, such as a Service port: ours would duplicate its name). The
// object is then deleted and created afresh. A Deployment is deleted with its
// ReplicaSets orphaned, so the new one adopts them and no pod restarts.
func (a *applier) applyOrRecreate(ctx context.Context, obj, live client.Object) (client.Object, bool, error) {
	out, err := a.apply(ctx, obj, FieldManager)
	if err == nil || live == nil || !apierrors.IsInvalid(err) {
		return out, false, err
	}
	policy := metav1.DeletePropagationBackground
	if _, ok := obj.(*appsv1.Deployment); ok {
		policy = metav1.DeletePropagationOrphan
	}
	uid := live.GetUID()
	if derr := a.c.Delete(ctx, live, client.Preconditions{UID: &uid}, client.PropagationPolicy(policy)); derr != nil &&
		!apierrors.IsNotFound(derr) {
		return nil, false, fmt.Errorf("%w; recreating it failed: %v", err, derr)
	}
	out, err = a.apply(ctx, obj, FieldManager)
	return out, err == nil, err
}

// toApplyConfig turns a typed object into the apply body: apiVersion and kind
// set, no status and no server-owned metadata.
func (a *applier) toApplyConfig(obj client.Object) (*unstructured.Unstructured, error) {
	gvk, err := apiutil.GVKForObject(obj, a.scheme)
	if err != nil {
		return nil, err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	delete(u.Object, "status")
	for _, f := range []string{"creationTimestamp", "resourceVersion", "uid", "generation", "managedFields"} {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

// prune deletes the children in owner's namespace that carry owner's
// controller reference and match selector but are not wanted. It returns what
// it deleted.
func (a *applier) prune(ctx context.Context, owner client.Object, selector client.MatchingLabels,
	wants func(client.Object) bool) ([]client.Object, error) {
	var deleted []client.Object
	for _, list := range manifests.OwnedObjectLists() {
		if err := a.c.List(ctx, list, client.InNamespace(owner.GetNamespace()), selector); err != nil {
			return deleted, err
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return deleted, err
		}
		for _, item := range items {
			obj, ok := item.(client.Object)
			if !ok {
				continue
			}
			ref := metav1.GetControllerOf(obj)
			if ref == nil || ref.UID != owner.GetUID() {
				continue
			}
			if wants(obj) {
				continue
			}
			// Preconditions: never delete an object that was replaced meanwhile.
			uid := obj.GetUID()
			if err := a.c.Delete(ctx, obj, client.Preconditions{UID: &uid},
				client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
				return deleted, fmt.Errorf("prune %T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err)
			}
			deleted = append(deleted, obj)
		}
	}
	return deleted, nil
}
