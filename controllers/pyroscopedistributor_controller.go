// Package controllers holds the reconciler of PyroscopeDistributor objects:
// it builds the desired children with the pure builders of internal/manifests,
// applies those that differ from the live ones with server-side apply, prunes
// those no longer wanted, and reports status. A resync of an unchanged object
// sends no mutating request at all.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/manifests"
)

// Event reasons (docs/operator.md lists them all, with what each means).
const (
	EventZoneAdded     = "ZoneAdded"
	EventZoneRemoved   = "ZoneRemoved"
	EventConfigRolled  = "ConfigRolled"
	EventHPAHandover   = "HPAHandover"
	EventReplicasTaken = "ReplicasTakenBack"
	EventApplyFailed   = "ApplyFailed"
	EventInvalidSpec   = "InvalidSpec"
	EventSpecWarning   = "SpecWarning"
	// EventChildReplaced: a child edited into a state apply cannot merge
	// with was deleted and created afresh.
	EventChildReplaced = "ChildReplaced"
	// EventChildRecreated: the Deployment of a zone the operator already
	// ran was missing (deleted by hand) and was created again.
	EventChildRecreated = "ChildRecreated"
	// EventScaleRestored: a Deployment scaled outside the operator (kubectl
	// scale, an edit) was set back to the spec's replicas.
	EventScaleRestored = "ScaleRestored"
)

// EventPodSecurityRefused names the spec fields that would weaken the pods.
const EventPodSecurityRefused = "PodSecurityRefused"

// PyroscopeDistributorReconciler reconciles PyroscopeDistributor objects.
type PyroscopeDistributorReconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads straight from the API server; used only where a stale
	// cache could make the operator undo an autoscaler's replica count.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  recorder.EventRecorder
	// Facts are what the builders need to know about the cluster (server
	// version, default image), discovered once at start.
	Facts manifests.ClusterFacts
	// MaxConcurrentReconciles bounds parallel reconciles (default 1).
	MaxConcurrentReconciles int
	// RingHealth, when set, polls the distributors' ring reports (run by
	// the manager) for the WritersInZone condition.
	RingHealth *RingHealthPoller

	rollouts rolloutMemory // rollout.go
}

// +kubebuilder:rbac:groups=profiling.pyrodist.dev,resources=pyroscopedistributors,verbs=get;list;watch
// +kubebuilder:rbac:groups=profiling.pyrodist.dev,resources=pyroscopedistributors/status,verbs=patch
// +kubebuilder:rbac:groups=profiling.pyrodist.dev,resources=pyroscopedistributors/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=services;configmaps;serviceaccounts,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=list;watch

// Reconcile brings one PyroscopeDistributor's children to its spec.
func (r *PyroscopeDistributorReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	defer r.rollouts.lock(req.NamespacedName)()
	pd := &v1alpha1.PyroscopeDistributor{}
	if err := r.Client.Get(ctx, req.NamespacedName, pd); err != nil {
		if apierrors.IsNotFound(err) {
			// Children go with their owner through garbage collection.
			forgetMetrics(req.Namespace, req.Name)
			r.rollouts.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !pd.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	before := pd.Status.DeepCopy()

	if pd.Spec.Paused {
		obs, err := r.observe(ctx, pd)
		if err != nil {
			return ctrl.Result{}, err
		}
		computeStatus(pd, obs, nil, "")
		zoneVersions(pd, obs)
		meta.SetStatusCondition(&pd.Status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionProgressing, Status: metav1.ConditionFalse, Reason: ReasonPaused,
			Message: "spec.paused is true: children are left as they are.", ObservedGeneration: pd.Generation,
		})
		return ctrl.Result{}, r.writeStatus(ctx, pd, before)
	}

	desired, err := manifests.Build(pd, r.Facts)
	if err != nil {
		// The spec passed CEL but the builders refuse it: retrying cannot help
		// until the spec changes (or the operator restarts with other flags,
		// which reconciles every object again).
		reason, event := ReasonInvalidSpec, EventInvalidSpec
		if pse := (*manifests.PodSecurityError)(nil); errors.As(err, &pse) {
			reason, event = ReasonPodSecurityRefused, EventPodSecurityRefused
		}
		r.Recorder.Eventf(pd, nil, corev1.EventTypeWarning, event, "Build", "%v", err)
		return r.fail(ctx, pd, before, observed{}, reason, reconcile.TerminalError(err))
	}

	if pd.Status.ObservedGeneration != pd.Generation && len(desired.Warnings) > 0 {
		// Once per generation, so resyncs stay silent. One Event for all:
		// the recorder folds Events of one reason about one object into a
		// series that keeps only the first one's note.
		r.Recorder.Eventf(pd, nil, corev1.EventTypeWarning, EventSpecWarning, "Build", "%s", strings.Join(desired.Warnings, "; "))
	}
	plan, err := r.planRollout(ctx, pd, desired)
	if err != nil {
		return r.fail(ctx, pd, before, observed{}, ReasonApplyFailed, err)
	}
	obs, err := r.sync(ctx, pd, desired)
	if err != nil {
		r.Recorder.Eventf(pd, nil, corev1.EventTypeWarning, EventApplyFailed, "Apply", "%v", err)
		return r.fail(ctx, pd, before, obs, ReasonApplyFailed, err)
	}
	r.rolloutEvents(pd, desired, plan)
	computeStatus(pd, obs, nil, "")
	rolloutStatus(pd, before.Conditions, obs, plan)
	pd.Status.ObservedGeneration = pd.Generation
	// The step is taken (the children are applied) whether or not its status
	// is written: the next plan starts from it.
	r.rollouts.put(pd)
	if err := r.writeStatus(ctx, pd, before); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: plan.RequeueAfter}, nil
}

// fail records a failed reconcile in status (without moving
// observedGeneration) and returns err for a retry with backoff.
func (r *PyroscopeDistributorReconciler) fail(ctx context.Context, pd *v1alpha1.PyroscopeDistributor,
	before *v1alpha1.PyroscopeDistributorStatus, obs observed, reason string, err error) (ctrl.Result, error) {
	if obs.deployments == nil {
		if o, oerr := r.observe(ctx, pd); oerr == nil {
			obs = o
		}
	}
	computeStatus(pd, obs, err, reason)
	zoneVersions(pd, obs)
	if serr := r.writeStatus(ctx, pd, before); serr != nil {
		return ctrl.Result{}, errors.Join(err, serr)
	}
	return ctrl.Result{}, err
}

// writeStatus applies the status (server-side apply on the status
// subresource) only when it changed, so a no-op resync writes nothing, and
// keeps the ready gauge in step.
func (r *PyroscopeDistributorReconciler) writeStatus(ctx context.Context, pd *v1alpha1.PyroscopeDistributor,
	before *v1alpha1.PyroscopeDistributorStatus) error {
	r.ringStatus(pd, before)
	ready := 0.0
	if meta.IsStatusConditionTrue(pd.Status.Conditions, v1alpha1.ConditionReady) {
		ready = 1
	}
	readyGauge.WithLabelValues(pd.Namespace, pd.Name).Set(ready)
	setRolloutMetrics(pd)
	if equality.Semantic.DeepEqual(*before, pd.Status) {
		return nil
	}
	body, err := statusApplyConfig(pd)
	if err != nil {
		return err
	}
	if err := r.Client.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(body),
		client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("apply status: %w", err)
	}
	return nil
}

// sync applies the desired children that differ from the live ones, hands
// replicas over to HPAs when needed, prunes children no longer desired, and
// returns what it observed for status.
func (r *PyroscopeDistributorReconciler) sync(ctx context.Context, pd *v1alpha1.PyroscopeDistributor,
	desired *manifests.Desired) (observed, error) {
	a := &applier{c: r.Client, reader: r.APIReader, scheme: r.Scheme}
	obs := observed{
		deployments: map[string]*appsv1.Deployment{},
		hpas:        map[string]*autoscalingv2.HorizontalPodAutoscaler{},
	}
	hpaFor := map[string]*autoscalingv2.HorizontalPodAutoscaler{} // by Deployment name
	for _, z := range desired.Zones {
		if z.Autoscaled && z.HPA != nil {
			hpaFor[z.Deployment.Name] = z.HPA
		}
	}

	// Prune first: an HPA that is going away (autoscaling off, zone
	// disabled) must not scale the Deployment again after we set its replicas.
	deleted, err := a.prune(ctx, pd, client.MatchingLabels(manifests.OwnerLabels(pd.Name)), desired.Wants)
	for _, obj := range deleted {
		if d, ok := obj.(*appsv1.Deployment); ok {
			r.Recorder.Eventf(pd, d, corev1.EventTypeNormal, EventZoneRemoved, "Prune",
				"Zone removed from the spec: deleted Deployment %s and its Service, PodDisruptionBudget and HPA", d.Name)
		}
	}
	if err != nil {
		return obs, err
	}

	for _, built := range desired.Objects() {
		obj, err := a.prepare(pd, built)
		if err != nil {
			return obs, err
		}
		live, err := a.getOwned(ctx, obj, pd)
		if err != nil {
			return obs, err
		}
		result := live
		switch d := obj.(type) {
		case *appsv1.Deployment:
			var liveD *appsv1.Deployment
			if live != nil {
				liveD = live.(*appsv1.Deployment)
			}
			result, err = r.syncDeployment(ctx, a, pd, d, liveD, hpaFor[d.Name])
		default:
			if live == nil || !upToDate(obj, live) {
				var recreated bool
				result, recreated, err = a.applyOrRecreate(ctx, obj, live)
				r.recreatedEvent(pd, obj, recreated)
				if live != nil {
					log.FromContext(ctx).Info("applied a changed child", "kind", obj.GetObjectKind().GroupVersionKind().Kind,
						"name", obj.GetName())
				}
			}
		}
		if err != nil {
			return obs, err
		}
		switch v := result.(type) {
		case *appsv1.Deployment:
			obs.deployments[v.Name] = v
		case *autoscalingv2.HorizontalPodAutoscaler:
			obs.hpas[v.Name] = v
		case *corev1.Service:
			if v.Name == pd.Name && v.Spec.TrafficDistribution != nil {
				obs.traffic = *v.Spec.TrafficDistribution
			}
		}
	}
	if obs.readyEndpoints, err = r.readyEndpoints(ctx, pd); err != nil {
		return obs, err
	}
	return obs, r.syncPodMonitor(ctx, a, pd)
}

// readyEndpoints counts the ready endpoints of pd's Services over their
// EndpointSlices (from the cache: the EndpointSlice controller copies a
// Service's labels, ours included, onto its slices). A Service without any
// slice is absent from the map.
func (r *PyroscopeDistributorReconciler) readyEndpoints(ctx context.Context, pd *v1alpha1.PyroscopeDistributor) (map[string]int32, error) {
	var list discoveryv1.EndpointSliceList
	if err := r.Client.List(ctx, &list, client.InNamespace(pd.Namespace),
		client.MatchingLabels(manifests.OwnerLabels(pd.Name))); err != nil {
		return nil, fmt.Errorf("list EndpointSlices: %w", err)
	}
	out := map[string]int32{}
	for i := range list.Items {
		svc := list.Items[i].Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		out[svc] += readyIn(&list.Items[i])
	}
	return out, nil
}

// readyIn counts a slice's ready endpoints; an unknown readiness counts as
// ready, as the EndpointSlice API says consumers should take it.
func readyIn(es *discoveryv1.EndpointSlice) int32 {
	var n int32
	for _, ep := range es.Endpoints {
		if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
			n++
		}
	}
	return n
}

// syncDeployment applies one zone's Deployment. An autoscaled zone (hpa set)
// goes through syncAutoscaledDeployment, which leaves replicas to the HPA.
func (r *PyroscopeDistributorReconciler) syncDeployment(ctx context.Context, a *applier, pd *v1alpha1.PyroscopeDistributor,
	desired, live *appsv1.Deployment, hpa *autoscalingv2.HorizontalPodAutoscaler) (client.Object, error) {
	if hpa != nil {
		return r.syncAutoscaledDeployment(ctx, a, pd, desired, live, hpa)
	}
	if live != nil && upToDate(desired, live) {
		return live, nil
	}
	out, recreated, err := a.applyOrRecreate(ctx, desired, live)
	if err != nil {
		return nil, err
	}
	r.recreatedEvent(pd, desired, recreated)
	r.deploymentEvents(pd, desired, live)
	return out, nil
}

func (r *PyroscopeDistributorReconciler) recreatedEvent(pd *v1alpha1.PyroscopeDistributor, obj client.Object, recreated bool) {
	if recreated {
		r.Recorder.Eventf(pd, obj, corev1.EventTypeWarning, EventChildReplaced, "Recreate",
			"%s %s was edited into a state server-side apply cannot repair; recreated it",
			obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName())
	}
}

// deploymentEvents records the notable changes an apply of a zone's
// Deployment makes: a new zone or a deleted Deployment created again, a config
// roll, replicas taken back from an HPA or from a hand scale. pd.Status is
// still the one of the previous reconcile: it tells which zones the operator
// already ran, and which of them an HPA sized.
func (r *PyroscopeDistributorReconciler) deploymentEvents(pd *v1alpha1.PyroscopeDistributor, desired, live *appsv1.Deployment) {
	zone := desired.Labels[manifests.LabelZone]
	prev := zoneStatus(pd.Status.Zones, zone)
	if live == nil {
		// The zone ran before if the last status saw pods wanted there, or
		// lists it for a generation that was applied in full (a zone added
		// by a reconcile that failed before its Deployment is listed too,
		// but for a generation not yet observed).
		ran := prev != nil && (prev.DesiredReplicas > 0 || prev.ReadyReplicas > 0 ||
			pd.Status.ObservedGeneration == pd.Generation)
		if ran {
			r.Recorder.Eventf(pd, desired, corev1.EventTypeWarning, EventChildRecreated, "Create",
				"Deployment %s of zone %s was missing; created it again", desired.Name, zone)
			return
		}
		r.Recorder.Eventf(pd, desired, corev1.EventTypeNormal, EventZoneAdded, "Create",
			"Created Deployment %s", desired.Name)
		return
	}
	key := manifests.AnnotationConfigHash
	// A zone at 0 replicas (disabled) gets the new template too, but no pod
	// rolls there.
	drained := desired.Spec.Replicas != nil && *desired.Spec.Replicas == 0
	if old, now := live.Spec.Template.Annotations[key], desired.Spec.Template.Annotations[key]; old != "" && old != now && !drained {
		r.Recorder.Eventf(pd, desired, corev1.EventTypeNormal, EventConfigRolled, "Roll",
			"config.yaml changed: rolling Deployment %s", desired.Name)
	}
	if takesReplicasBack(desired, live) {
		if prev != nil && prev.Autoscaled {
			r.Recorder.Eventf(pd, desired, corev1.EventTypeNormal, EventReplicasTaken, "TakeReplicas",
				"Autoscaling is off for zone %s: the operator sets the replicas of Deployment %s again: %d",
				zone, desired.Name, *desired.Spec.Replicas)
			return
		}
		was := "unset"
		if live.Spec.Replicas != nil {
			was = fmt.Sprint(*live.Spec.Replicas)
		}
		r.Recorder.Eventf(pd, desired, corev1.EventTypeWarning, EventScaleRestored, "Scale",
			"Deployment %s was scaled to %s outside the operator; restored the spec's %d replicas",
			desired.Name, was, *desired.Spec.Replicas)
	}
}

// zoneStatus returns the status of zone in zones, nil when absent.
func zoneStatus(zones []v1alpha1.ZoneStatus, zone string) *v1alpha1.ZoneStatus {
	for i := range zones {
		if zones[i].Name == zone {
			return &zones[i]
		}
	}
	return nil
}

func ptrTo[T any](v T) *T { return &v }

// controlledByName returns the items that owner controls, by name.
func controlledByName[T any, PT interface {
	*T
	metav1.Object
}](items []T, owner metav1.Object) map[string]*T {
	m := map[string]*T{}
	for i := range items {
		if o := PT(&items[i]); metav1.IsControlledBy(o, owner) {
			m[o.GetName()] = &items[i]
		}
	}
	return m
}

// observe reads the live children that status is computed from, without
// changing anything (used when paused or when building failed).
func (r *PyroscopeDistributorReconciler) observe(ctx context.Context, pd *v1alpha1.PyroscopeDistributor) (observed, error) {
	var obs observed
	sel := client.MatchingLabels(manifests.OwnerLabels(pd.Name))
	var ds appsv1.DeploymentList
	var hs autoscalingv2.HorizontalPodAutoscalerList
	for _, list := range []client.ObjectList{&ds, &hs} {
		if err := r.Client.List(ctx, list, client.InNamespace(pd.Namespace), sel); err != nil {
			return obs, err
		}
	}
	obs.deployments = controlledByName(ds.Items, pd)
	obs.hpas = controlledByName(hs.Items, pd)
	svc := &corev1.Service{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: pd.Namespace, Name: pd.Name}, svc); err == nil &&
		metav1.IsControlledBy(svc, pd) && svc.Spec.TrafficDistribution != nil {
		obs.traffic = *svc.Spec.TrafficDistribution
	}
	var err error
	obs.readyEndpoints, err = r.readyEndpoints(ctx, pd)
	return obs, err
}

// SetupWithManager registers the reconciler and its watches.
func (r *PyroscopeDistributorReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.MaxConcurrentReconciles < 1 {
		r.MaxConcurrentReconciles = 1
	}
	b := ctrl.NewControllerManagedBy(mgr)
	if r.RingHealth != nil {
		if err := mgr.Add(r.RingHealth); err != nil {
			return err
		}
		b = b.WatchesRawSource(source.Channel(r.RingHealth.Events(), &handler.EnqueueRequestForObject{}))
	}
	return b.
		// Our own status writes change neither generation, labels nor
		// annotations: they do not trigger another reconcile.
		For(&v1alpha1.PyroscopeDistributor{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.ServiceAccount{}).
		// A Service's slices tell whether it selects ready pods; only a
		// change of that verdict is worth a reconcile.
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(sliceOwner),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
				o, ok1 := e.ObjectOld.(*discoveryv1.EndpointSlice)
				n, ok2 := e.ObjectNew.(*discoveryv1.EndpointSlice)
				return !ok1 || !ok2 || (readyIn(o) == 0) != (readyIn(n) == 0)
			}})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Named("pyroscopedistributor").
		Complete(r)
}

// sliceOwner maps an EndpointSlice of one of our Services to the
// PyroscopeDistributor named by the owner label it copied from the Service.
func sliceOwner(_ context.Context, obj client.Object) []reconcile.Request {
	owner := obj.GetLabels()[manifests.LabelOwner]
	if owner == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: owner}}}
}
