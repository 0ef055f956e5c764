package controllers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/manifests"
	"github.com/pyrodist/pyrodist/internal/ringhealth"
)

func init() {
	utilruntime.Must(apiextensionsv1.AddToScheme(testScheme))
}

// fakeRings answers the poller's GETs in place of distributor pods (envtest
// runs no pods): by pod IP, the report that pod serves; other IPs refuse.
var fakeRings = &ringServer{reports: map[string]ringhealth.Report{}}

type ringServer struct {
	mu      sync.Mutex
	reports map[string]ringhealth.Report
}

func (s *ringServer) set(ip string, rep ringhealth.Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports[ip] = rep
}

func (s *ringServer) RoundTrip(req *http.Request) (*http.Response, error) {
	s.mu.Lock()
	rep, ok := s.reports[req.URL.Hostname()]
	s.mu.Unlock()
	if !ok || req.URL.Path != ringhealth.Path || req.URL.Port() != "4040" {
		return nil, errors.New("connection refused")
	}
	body, err := json.Marshal(rep)
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Header: http.Header{},
		Body: io.NopCloser(bytes.NewReader(body)), Request: req}, nil
}

// distributorPod creates a running, ready pod of one zone with ip, as the
// zone's Deployment would have (labels included).
func distributorPod(t *testing.T, ns, pd, zone, ip string) {
	t.Helper()
	labels := manifests.ZonePodSelector(pd, zone)
	labels[manifests.LabelOwner] = pd
	labels[manifests.LabelManagedBy] = manifests.ManagedBy
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: pd + "-" + zone + "-0", Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "distributor", Image: "example.com/d"}}},
	}
	mustCreate(t, pod)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	if err := k8sClient.Status().Update(testCtx, pod); err != nil {
		t.Fatalf("pod status: %v", err)
	}
}

func writersInZone(key types.NamespacedName) (*v1alpha1.PyroscopeDistributor, *metav1.Condition, error) {
	pd := &v1alpha1.PyroscopeDistributor{}
	if err := k8sClient.Get(testCtx, key, pd); err != nil {
		return nil, nil, err
	}
	c := meta.FindStatusCondition(pd.Status.Conditions, v1alpha1.ConditionWritersInZone)
	if c == nil {
		return pd, nil, errors.New("no WritersInZone condition")
	}
	return pd, c, nil
}

// The WritersInZone condition follows what one pod per zone reports: Unknown
// before any pod answers, True with the per-zone counts once every zone has
// writers of its own, False (with an Event) naming the zone whose writers are
// gone, and True again when they are back.
func TestWritersInZoneFollowsRingReports(t *testing.T) {
	ns := newNamespace(t)
	key := types.NamespacedName{Namespace: ns, Name: "ring"}
	mustCreate(t, newPD(ns, "ring", "zone-a", "zone-b"))
	expect := func(status metav1.ConditionStatus, reason, inMessage string) {
		t.Helper()
		eventually(t, waitFor, func() error {
			_, c, err := writersInZone(key)
			if err != nil {
				return err
			}
			if c.Status != status || c.Reason != reason || !strings.Contains(c.Message, inMessage) {
				return fmt.Errorf("WritersInZone %s %s %q, want %s %s containing %q", c.Status, c.Reason, c.Message, status, reason, inMessage)
			}
			return nil
		})
	}
	expect(metav1.ConditionUnknown, ReasonNoRingReport, "zone-a, zone-b")

	// Unique IPs per run, so nothing else in the suite answers for them.
	ipA, ipB := "10.251.0.1", "10.251.0.2"
	report := func(zone string, inZone, all int) ringhealth.Report {
		return ringhealth.Report{Zone: zone, ActiveInZone: inZone, Active: all, FallingBack: inZone == 0}
	}
	fakeRings.set(ipA, report("zone-a", 2, 4))
	fakeRings.set(ipB, report("zone-b", 2, 4))
	distributorPod(t, ns, "ring", "zone-a", ipA)
	expect(metav1.ConditionUnknown, ReasonNoRingReport, "zone-b")
	distributorPod(t, ns, "ring", "zone-b", ipB)
	expect(metav1.ConditionTrue, ReasonWritersInEveryZone, "")
	pd, _, err := writersInZone(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range pd.Status.Zones {
		if z.WritersActiveInZone == nil || *z.WritersActiveInZone != 2 || z.WritersActive == nil || *z.WritersActive != 4 {
			t.Errorf("zone %s: writersActiveInZone %v writersActive %v, want 2 and 4", z.Name, z.WritersActiveInZone, z.WritersActive)
		}
	}

	// zone-b's writers stop: its distributor reports none of its own.
	fakeRings.set(ipB, report("zone-b", 0, 2))
	expect(metav1.ConditionFalse, ReasonNoWritersInZone, "zones zone-b:")
	expectEvents(t, ns, "ring", EventNoWritersInZone)
	pd, _, _ = writersInZone(key)
	for _, z := range pd.Status.Zones {
		if z.Name == "zone-b" && (z.WritersActiveInZone == nil || *z.WritersActiveInZone != 0) {
			t.Errorf("zone-b: writersActiveInZone %v, want 0", z.WritersActiveInZone)
		}
	}
	for zone, want := range map[string]float64{"zone-a": 2, "zone-b": 0} {
		if got := testutil.ToFloat64(writersGauge.WithLabelValues(ns, "ring", zone)); got != want {
			t.Errorf("pyrodist_distributor_zone_writers_active{zone=%q} = %v, want %v", zone, got, want)
		}
	}

	fakeRings.set(ipB, report("zone-b", 1, 3))
	expect(metav1.ConditionTrue, ReasonWritersInEveryZone, "")
	expectEvents(t, ns, "ring", EventWritersInZone)

	// A pod answering for another zone does not count (a hand-edited pod).
	fakeRings.set(ipB, report("zone-a", 2, 4))
	expect(metav1.ConditionUnknown, ReasonNoRingReport, "zone-b")

	// Disabling a zone leaves it out.
	fakeRings.set(ipB, report("zone-b", 0, 2))
	expect(metav1.ConditionFalse, ReasonNoWritersInZone, "zone-b")
	updatePD(t, key, func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Zones[1].Disabled = true })
	expect(metav1.ConditionTrue, ReasonWritersInEveryZone, "")
}

// Port 4040 is read over TLS when it serves TLS, and not at all when it
// requires client certificates (the operator holds none).
func TestRingReportScheme(t *testing.T) {
	for _, tc := range []struct {
		tls    *v1alpha1.ServerTLSSpec
		scheme string
		ok     bool
	}{
		{nil, "http", true},
		{&v1alpha1.ServerTLSSpec{SecretName: "s"}, "https", true},
		{&v1alpha1.ServerTLSSpec{SecretName: "s", ClientAuth: v1alpha1.ClientAuthVerifyIfGiven}, "https", true},
		{&v1alpha1.ServerTLSSpec{SecretName: "s", ClientAuth: v1alpha1.ClientAuthRequireAndVerify}, "", false},
		{&v1alpha1.ServerTLSSpec{SecretName: "s", ClientAuth: v1alpha1.ClientAuthRequireAny}, "", false},
	} {
		pd := &v1alpha1.PyroscopeDistributor{}
		pd.Spec.TLS.Server = tc.tls
		if scheme, ok := tlsFor(pd); scheme != tc.scheme || ok != tc.ok {
			t.Errorf("%+v: %q %v, want %q %v", tc.tls, scheme, ok, tc.scheme, tc.ok)
		}
	}
}

// spec.monitoring.podMonitor without the Prometheus Operator's CRD: the
// object reconciles to Ready and an Event says why there is no PodMonitor.
// Once the CRD is installed (while the operator runs), the PodMonitor is
// applied; turning monitoring off deletes it.
func TestPodMonitorWithAndWithoutCRD(t *testing.T) {
	ns := newNamespace(t)
	key := types.NamespacedName{Namespace: ns, Name: "mon"}
	pd := newPD(ns, "mon", "zone-a")
	pd.Spec.Monitoring.PodMonitor = v1alpha1.PodMonitorSpec{Enabled: true, Interval: "15s", Labels: map[string]string{"release": "prom"}}
	mustCreate(t, pd)
	expectEvents(t, ns, "mon", EventPodMonitorUnavailable)
	eventually(t, waitFor, func() error {
		got := &v1alpha1.PyroscopeDistributor{}
		if err := k8sClient.Get(testCtx, key, got); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionDegraded); c == nil || c.Status != metav1.ConditionFalse {
			return fmt.Errorf("Degraded: %+v", c)
		}
		return nil
	})

	raw, err := os.ReadFile(filepath.Join("testdata", "podmonitor-crd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(raw, crd); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(testCtx, crd); err != nil {
		t.Fatalf("install the PodMonitor CRD: %v", err)
	}
	pm := &unstructured.Unstructured{}
	pm.SetGroupVersionKind(manifests.PodMonitorGVK)
	// Any change makes the operator look again; a new generation is one.
	poke := func(mutate func(*v1alpha1.PyroscopeDistributor)) {
		updatePD(t, key, mutate)
	}
	poke(func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Monitoring.PodMonitor.Interval = "20s" })
	eventually(t, waitFor, func() error {
		if err := k8sClient.Get(testCtx, key, pm); err != nil {
			poke(func(pd *v1alpha1.PyroscopeDistributor) {
				pd.Annotations = map[string]string{"poke": fmt.Sprint(len(pd.Annotations["poke"]) + 1)}
			})
			return err
		}
		return nil
	})
	eps, _, _ := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
	if len(eps) != 1 || pm.GetLabels()["release"] != "prom" || !metav1.IsControlledBy(pm, mustGetPD(t, key)) {
		t.Fatalf("PodMonitor %v", pm.Object)
	}
	if ep := eps[0].(map[string]any); ep["port"] != "http" || ep["interval"] != "20s" || ep["path"] != "/metrics" {
		t.Errorf("endpoint %v", ep)
	}

	poke(func(pd *v1alpha1.PyroscopeDistributor) { pd.Spec.Monitoring.PodMonitor.Enabled = false })
	eventually(t, waitFor, func() error {
		err := k8sClient.Get(testCtx, key, pm)
		if err == nil {
			return errors.New("PodMonitor still there")
		}
		return client.IgnoreNotFound(err)
	})
}

func mustGetPD(t *testing.T, key types.NamespacedName) *v1alpha1.PyroscopeDistributor {
	t.Helper()
	pd := &v1alpha1.PyroscopeDistributor{}
	if err := k8sClient.Get(testCtx, key, pd); err != nil {
		t.Fatal(err)
	}
	return pd
}

// Until its first poll the poller knows nothing: the ring part of status
// stays as it was (an operator restart does not flap WritersInZone).
func TestRingStatusKeptUntilFirstPoll(t *testing.T) {
	pd := &v1alpha1.PyroscopeDistributor{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pd", Generation: 2}}
	pd.Spec.Zones = []v1alpha1.Zone{{Name: "a"}}
	before := v1alpha1.PyroscopeDistributorStatus{
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionWritersInZone, Status: metav1.ConditionTrue,
			Reason: ReasonWritersInEveryZone, ObservedGeneration: 1}},
		Zones: []v1alpha1.ZoneStatus{{Name: "a", WritersActiveInZone: ptrTo[int32](2), WritersActive: ptrTo[int32](5)}},
	}
	pd.Status.Zones = []v1alpha1.ZoneStatus{{Name: "a"}} // as computeStatus rebuilds it
	r := &PyroscopeDistributorReconciler{RingHealth: &RingHealthPoller{}}
	r.ringStatus(pd, &before)
	c := meta.FindStatusCondition(pd.Status.Conditions, v1alpha1.ConditionWritersInZone)
	if c == nil || c.Status != metav1.ConditionTrue || *pd.Status.Zones[0].WritersActiveInZone != 2 || *pd.Status.Zones[0].WritersActive != 5 {
		t.Errorf("before the first poll: condition %+v, zone %+v", c, pd.Status.Zones[0])
	}

	r.RingHealth.polled.Store(true)
	r.ringStatus(pd, &before)
	c = meta.FindStatusCondition(pd.Status.Conditions, v1alpha1.ConditionWritersInZone)
	if c == nil || c.Status != metav1.ConditionUnknown || pd.Status.Zones[0].WritersActiveInZone != nil {
		t.Errorf("after a poll without a report: condition %+v, zone %+v", c, pd.Status.Zones[0])
	}
}
