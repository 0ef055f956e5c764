package controllers

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/manifests"
	"github.com/pyrodist/pyrodist/internal/ringhealth"
)

// Reasons of the WritersInZone condition, and its Events.
const (
	ReasonWritersInEveryZone = "WritersInEveryZone"
	ReasonNoWritersInZone    = "NoWritersInZone"
	ReasonNoRingReport       = "NoRingReport"
	EventNoWritersInZone     = "NoWritersInZone"
	EventWritersInZone       = "WritersInZone"
)

// Defaults of the RingHealthPoller.
const (
	DefaultRingHealthInterval    = 30 * time.Second
	DefaultRingHealthTimeout     = 3 * time.Second
	DefaultRingHealthConcurrency = 8
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch

// RingHealthPoller reads, off the reconcile path, how each zone's
// distributors see the segment-writer ring: every Interval, for each
// PyroscopeDistributor and enabled zone, it GETs ringhealth.Path from one
// ready pod of the zone, keeps the answer in memory and asks for a reconcile
// of the object when what status shows of it changed. The reconcile reads
// the kept answers (Zone) into status; it never waits on a pod.
//
// It is a manager.Runnable, so it runs only on the elected leader.
type RingHealthPoller struct {
	// Client reads PyroscopeDistributors and pods, from the manager's cache.
	Client client.Reader
	// HTTP does the GETs (tests inject a fake transport); nil makes one
	// that never follows redirects and skips certificate verification
	// (see tlsFor).
	HTTP *http.Client
	// Interval between polls; Timeout bounds each GET; Concurrency bounds
	// the GETs in flight. Zero values take the defaults.
	Interval    time.Duration
	Timeout     time.Duration
	Concurrency int

	once    sync.Once
	polled  atomic.Bool // a first poll has completed
	events  chan event.GenericEvent
	mu      sync.Mutex
	results map[types.NamespacedName]map[string]ZoneRing
}

// ZoneRing is what status shows of one zone's ring report.
type ZoneRing struct {
	// Known is false until a distributor of the zone answered, and again
	// when none can be read (no pod with an IP, an error).
	Known        bool
	ActiveInZone int32
	Active       int32
}

func (p *RingHealthPoller) init() {
	p.once.Do(func() {
		p.events = make(chan event.GenericEvent, 64)
		p.results = map[types.NamespacedName]map[string]ZoneRing{}
		if p.Interval <= 0 {
			p.Interval = DefaultRingHealthInterval
		}
		if p.Timeout <= 0 {
			p.Timeout = DefaultRingHealthTimeout
		}
		if p.Concurrency <= 0 {
			p.Concurrency = DefaultRingHealthConcurrency
		}
		if p.HTTP == nil {
			p.HTTP = &http.Client{
				Transport: &http.Transport{
					// The report is health data, not a secret; the operator
					// has no access to the distributors' CA (it reads no
					// Secret), as the kubelet's HTTPS probes do not verify.
					TLSClientConfig:     &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // see above
					DialContext:         (&net.Dialer{Timeout: p.Timeout}).DialContext,
					MaxIdleConnsPerHost: 1,
					IdleConnTimeout:     2 * p.Interval,
				},
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
		}
	})
}

// Events are the reconcile requests the poller makes (a channel source).
func (p *RingHealthPoller) Events() <-chan event.GenericEvent {
	p.init()
	return p.events
}

// Zone returns the last report kept for one zone of key.
func (p *RingHealthPoller) Zone(key types.NamespacedName, zone string) ZoneRing {
	p.init()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.results[key][zone]
}

// Start polls until ctx ends.
func (p *RingHealthPoller) Start(ctx context.Context) error {
	p.init()
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		p.Poll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type zoneTarget struct {
	pd   *v1alpha1.PyroscopeDistributor
	zone string
	pods []*corev1.Pod // ready pods first
}

// Poll reads every enabled zone of every PyroscopeDistributor once, and
// sends a reconcile request for each object whose kept reports changed.
func (p *RingHealthPoller) Poll(ctx context.Context) {
	p.init()
	logger := log.FromContext(ctx).WithName("ring-health")
	var list v1alpha1.PyroscopeDistributorList
	if err := p.Client.List(ctx, &list); err != nil {
		logger.Error(err, "list PyroscopeDistributors")
		return
	}
	var targets []zoneTarget
	alive := map[types.NamespacedName]bool{}
	for i := range list.Items {
		pd := &list.Items[i]
		alive[client.ObjectKeyFromObject(pd)] = true
		if !pd.DeletionTimestamp.IsZero() {
			continue
		}
		for _, z := range pd.Spec.Zones {
			if z.Disabled {
				continue
			}
			pods, err := p.candidates(ctx, pd, z.Name)
			if err != nil {
				logger.Error(err, "list pods", "namespace", pd.Namespace, "name", pd.Name, "zone", z.Name)
			}
			targets = append(targets, zoneTarget{pd: pd, zone: z.Name, pods: pods})
		}
	}

	got := make([]ZoneRing, len(targets))
	sem := make(chan struct{}, p.Concurrency)
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			got[i] = p.read(ctx, tg)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}

	fresh := map[types.NamespacedName]map[string]ZoneRing{}
	for i, tg := range targets {
		key := client.ObjectKeyFromObject(tg.pd)
		if fresh[key] == nil {
			fresh[key] = map[string]ZoneRing{}
		}
		fresh[key][tg.zone] = got[i]
	}
	var changed []*v1alpha1.PyroscopeDistributor
	p.mu.Lock()
	for key := range p.results {
		if !alive[key] {
			delete(p.results, key)
		}
	}
	seen := map[types.NamespacedName]bool{}
	for _, tg := range targets {
		key := client.ObjectKeyFromObject(tg.pd)
		if seen[key] {
			continue
		}
		seen[key] = true
		if !sameZones(p.results[key], fresh[key]) {
			changed = append(changed, tg.pd)
		}
		p.results[key] = fresh[key]
	}
	p.mu.Unlock()
	p.polled.Store(true)
	for _, pd := range changed {
		select {
		case p.events <- event.GenericEvent{Object: pd}:
		case <-ctx.Done():
			return
		}
	}
}

// sameZones compares kept reports; a zone missing counts as unknown.
func sameZones(a, b map[string]ZoneRing) bool {
	for z, r := range a {
		if b[z] != r {
			return false
		}
	}
	for z, r := range b {
		if a[z] != r {
			return false
		}
	}
	return true
}

// candidates are the zone's pods with an IP, ready ones first (by name, so
// the same pod answers poll after poll). A running but unready pod is asked
// too: a distributor that knows no writer at all is not ready, and its
// report is what tells the zone has none.
func (p *RingHealthPoller) candidates(ctx context.Context, pd *v1alpha1.PyroscopeDistributor, zone string) ([]*corev1.Pod, error) {
	var pods corev1.PodList
	if err := p.Client.List(ctx, &pods, client.InNamespace(pd.Namespace),
		client.MatchingLabels(manifests.ZonePodSelector(pd.Name, zone))); err != nil {
		return nil, err
	}
	var ready, running []*corev1.Pod
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.Status.PodIP == "" || pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning ||
			!ownedByZone(pod, pd, zone) {
			continue
		}
		if podReady(pod) {
			ready = append(ready, pod)
		} else {
			running = append(running, pod)
		}
	}
	byName := func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(ready, byName)
	slices.SortFunc(running, byName)
	return append(ready, running...), nil
}

// ownedByZone double-checks the labels the pods were selected by: a pod
// someone labelled by hand must not speak for a zone.
func ownedByZone(pod *corev1.Pod, pd *v1alpha1.PyroscopeDistributor, zone string) bool {
	return pod.Labels[manifests.LabelZone] == zone && pod.Labels[manifests.LabelOwner] == pd.Name
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// maxTriesPerZone bounds the pods asked per zone and poll: the first that
// answers speaks for the zone.
const maxTriesPerZone = 2

func (p *RingHealthPoller) read(ctx context.Context, tg zoneTarget) ZoneRing {
	scheme, ok := tlsFor(tg.pd)
	if !ok {
		return ZoneRing{}
	}
	for i, pod := range tg.pods {
		if i == maxTriesPerZone {
			break
		}
		rep, err := p.get(ctx, scheme+"://"+net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(manifests.HTTPPort)))
		if err != nil {
			log.FromContext(ctx).V(1).Info("ring report unavailable", "namespace", pod.Namespace, "pod", pod.Name, "error", err.Error())
			continue
		}
		if rep.Zone != tg.zone {
			// A distributor of another zone (a hand-edited pod) cannot
			// speak for this one.
			continue
		}
		return ZoneRing{Known: true, ActiveInZone: clamp32(rep.ActiveInZone), Active: clamp32(rep.Active)}
	}
	return ZoneRing{}
}

// tlsFor is the scheme to reach port 4040 with. A port that requires client
// certificates cannot be read: the operator holds none.
func tlsFor(pd *v1alpha1.PyroscopeDistributor) (scheme string, ok bool) {
	s := pd.Spec.TLS.Server
	if s == nil {
		return "http", true
	}
	switch s.ClientAuth {
	case v1alpha1.ClientAuthRequireAny, v1alpha1.ClientAuthRequireAndVerify:
		return "", false
	}
	return "https", true
}

func (p *RingHealthPoller) get(ctx context.Context, base string) (*ringhealth.Report, error) {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	return ringhealth.Get(ctx, p.HTTP, base)
}

func clamp32(n int) int32 { return int32(min(max(n, 0), 1<<31-1)) }

// ringStatus puts the kept ring reports into pd's status: per-zone writer
// counts and the WritersInZone condition. It records an Event when the
// condition turns False, and when it turns True again.
func (r *PyroscopeDistributorReconciler) ringStatus(pd *v1alpha1.PyroscopeDistributor, before *v1alpha1.PyroscopeDistributorStatus) {
	if r.RingHealth == nil {
		return
	}
	if !r.RingHealth.polled.Load() {
		// The operator just started: keep what status said until the first
		// poll, rather than flap to Unknown and back.
		keepRingStatus(pd, before)
		return
	}
	key := client.ObjectKeyFromObject(pd)
	writersGauge.DeletePartialMatch(prometheus.Labels{"namespace": pd.Namespace, "name": pd.Name})
	var missing, unknown []string
	enabled := 0
	for i := range pd.Status.Zones {
		zs := &pd.Status.Zones[i]
		zs.WritersActiveInZone, zs.WritersActive = nil, nil
		if zs.Disabled || !slices.ContainsFunc(pd.Spec.Zones, func(z v1alpha1.Zone) bool { return z.Name == zs.Name }) {
			continue
		}
		enabled++
		got := r.RingHealth.Zone(key, zs.Name)
		if !got.Known {
			unknown = append(unknown, zs.Name)
			continue
		}
		zs.WritersActiveInZone, zs.WritersActive = ptrTo(got.ActiveInZone), ptrTo(got.Active)
		writersGauge.WithLabelValues(pd.Namespace, pd.Name, zs.Name).Set(float64(got.ActiveInZone))
		if got.ActiveInZone == 0 {
			missing = append(missing, zs.Name)
		}
	}
	sort.Strings(missing)
	sort.Strings(unknown)
	cond := metav1.Condition{Type: v1alpha1.ConditionWritersInZone, ObservedGeneration: pd.Generation}
	switch {
	case len(missing) > 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, ReasonNoWritersInZone
		cond.Message = "No ACTIVE segment-writer in zones " + strings.Join(missing, ", ") +
			": their distributors send every profile to other zones."
	case enabled == 0:
		cond.Status, cond.Reason = metav1.ConditionUnknown, ReasonNoEnabledZones
		cond.Message = "Every zone is disabled."
	case len(unknown) > 0:
		cond.Status, cond.Reason = metav1.ConditionUnknown, ReasonNoRingReport
		cond.Message = "No ring report from a distributor of zones " + strings.Join(unknown, ", ") +
			" yet (read every 30s from port 4040 of one ready pod per zone)."
	default:
		cond.Status, cond.Reason = metav1.ConditionTrue, ReasonWritersInEveryZone
		cond.Message = "Every enabled zone has ACTIVE segment-writers of its own."
	}
	meta.SetStatusCondition(&pd.Status.Conditions, cond)

	was := meta.FindStatusCondition(before.Conditions, v1alpha1.ConditionWritersInZone)
	switch {
	case cond.Status == metav1.ConditionFalse && (was == nil || was.Message != cond.Message):
		r.Recorder.Eventf(pd, nil, corev1.EventTypeWarning, EventNoWritersInZone, "RingHealth", "%s", cond.Message)
	case cond.Status == metav1.ConditionTrue && was != nil && was.Status == metav1.ConditionFalse:
		r.Recorder.Eventf(pd, nil, corev1.EventTypeNormal, EventWritersInZone, "RingHealth", "%s", cond.Message)
	}
}

// keepRingStatus carries the ring part of status over from before.
func keepRingStatus(pd *v1alpha1.PyroscopeDistributor, before *v1alpha1.PyroscopeDistributorStatus) {
	if c := meta.FindStatusCondition(before.Conditions, v1alpha1.ConditionWritersInZone); c != nil {
		meta.SetStatusCondition(&pd.Status.Conditions, *c)
	}
	for i := range pd.Status.Zones {
		zs := &pd.Status.Zones[i]
		for _, old := range before.Zones {
			if old.Name == zs.Name {
				zs.WritersActiveInZone, zs.WritersActive = old.WritersActiveInZone, old.WritersActive
			}
		}
	}
}
