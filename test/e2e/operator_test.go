//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/pyrodist/pyrodist/test/localcluster"
)

const (
	sampleFile = "config/samples/profiling_v1alpha1_pyroscopedistributor.yaml"
	sampleNS   = "pyroscope"
	sampleName = "pyroscope-distributor"
	// Labels the operator puts on every child and on zonal pods.
	ownerLabel = "profiling.pyrodist.dev/distributor"
	zoneLabel  = "profiling.pyrodist.dev/zone"
	// The operator's server-side apply field manager.
	operatorFieldManager = "pyrodist-operator"
)

var pydGVR = schema.GroupVersionResource{Group: "profiling.pyrodist.dev", Version: "v1alpha1", Resource: "pyroscopedistributors"}

// TestOperator installs the chart, runs the operator binary as the chart's
// ServiceAccount, applies the 3-zone autoscaled sample and checks what a user
// relies on, from objects per zone to HPA scaling, helm upgrade and garbage
// collection. The steps share state, so they run in order and stop at the first failure.
func TestOperator(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	opBin := buildOperator(t)

	// 1. helm install: CRDs, RBAC, ServiceAccount, the (fake, kwok-run) operator Deployment.
	out, err := c.Helm(ctx, "install", chartRelease, chartDir(), "--namespace", chartNamespace, "--create-namespace",
		"--wait", "--timeout", "2m")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("helm install:\n%s", firstLines(out, 6))
	eventually(t, 30*time.Second, "CRD established", func(ctx context.Context) error {
		_, err := c.Dynamic.Resource(pydGVR).List(ctx, metav1.ListOptions{Limit: 1})
		return err
	})

	// 2. The operator runs locally with the chart's flags, authorised as the chart's
	// ServiceAccount only: whatever it can do, the chart's RBAC allowed.
	op := startOperator(t, c, opBin, "operator")

	// 3. The secure metrics endpoint authenticates and authorises scrapers through
	// the API server with the chart's metrics-auth role; the metrics-reader role lets one in.
	checkOperatorMetrics(t, c, op.MetricsPort)

	t.Cleanup(func() {
		if t.Failed() {
			for _, args := range [][]string{
				{"-n", sampleNS, "get", "pyroscopedistributors", "-o", "yaml"},
				{"-n", sampleNS, "get", "all,pdb,hpa,endpointslices", "-o", "wide"},
				{"-n", sampleNS, "get", "events", "--sort-by=.lastTimestamp"},
			} {
				out, _ := c.Kubectl(context.Background(), nil, args...)
				t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
			}
		}
	})

	// 4. The sample: three zones, autoscaled.
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sampleNS}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "apply sample", func(ctx context.Context) error {
		_, err := c.Kubectl(ctx, nil, "apply", "-n", sampleNS, "-f", filepath.Join(repoRoot, sampleFile))
		return err
	})
	zones := c.Zones
	minReplicas := 2 // the sample's autoscaling.minReplicas

	eventually(t, 90*time.Second, "per-zone Deployments with Running pods on their zone's node", func(ctx context.Context) error {
		for _, z := range zones {
			if err := zonePodsRunning(ctx, c, z, minReplicas); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("zones %v: %d Running pods each, on their zone's node", zones, minReplicas)

	eventually(t, 30*time.Second, "Services with traffic distribution", func(ctx context.Context) error {
		names := []string{sampleName}
		for _, z := range zones {
			names = append(names, sampleName+"-"+z)
		}
		for _, n := range names {
			svc, err := c.Client.CoreV1().Services(sampleNS).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if n == sampleName && ptr.Deref(svc.Spec.TrafficDistribution, "") == "" {
				return fmt.Errorf("Service %s has no trafficDistribution", n)
			}
		}
		return nil
	})
	eventually(t, 60*time.Second, "EndpointSlices with zone hints", func(ctx context.Context) error {
		slices, err := c.Client.DiscoveryV1().EndpointSlices(sampleNS).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + sampleName})
		if err != nil {
			return err
		}
		hinted := map[string]int{}
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				if ep.Zone == nil || ep.Hints == nil || len(ep.Hints.ForZones) == 0 || ep.Hints.ForZones[0].Name != *ep.Zone {
					return fmt.Errorf("endpoint %v: zone %v hints %v", ep.Addresses, ep.Zone, ep.Hints)
				}
				hinted[*ep.Zone]++
			}
		}
		for _, z := range zones {
			if hinted[z] < minReplicas {
				return fmt.Errorf("hinted endpoints per zone %v", hinted)
			}
		}
		return nil
	})
	eventually(t, 60*time.Second, "PDBs with status", func(ctx context.Context) error {
		for _, z := range zones {
			pdb, err := c.Client.PolicyV1().PodDisruptionBudgets(sampleNS).Get(ctx, sampleName+"-"+z, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if pdb.Status.ExpectedPods != int32(minReplicas) || pdb.Status.CurrentHealthy != int32(minReplicas) || pdb.Status.ObservedGeneration != pdb.Generation {
				return fmt.Errorf("PDB %s status %+v", pdb.Name, pdb.Status)
			}
		}
		return nil
	})
	eventually(t, 60*time.Second, "PyroscopeDistributor Ready", func(ctx context.Context) error {
		return conditionTrue(ctx, c, "Ready")
	})
	checkServiceSelectorDrift(t, c, zones[0])

	// 5. HPAs read metrics (kwok -> metrics-server -> metrics.k8s.io); raising zone-a's
	// simulated CPU makes its HPA scale it, and the operator leaves the new count alone.
	eventually(t, 150*time.Second, "HPAs reading CPU metrics", func(ctx context.Context) error {
		for _, z := range zones {
			h, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers(sampleNS).Get(ctx, sampleName+"-"+z, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if len(h.Status.CurrentMetrics) == 0 || h.Status.CurrentMetrics[0].Resource == nil ||
				h.Status.CurrentMetrics[0].Resource.Current.AverageUtilization == nil {
				return fmt.Errorf("HPA %s has no CPU reading yet (conditions %v)", h.Name, h.Status.Conditions)
			}
		}
		return nil
	})
	hot := zones[0]
	others := zones[1:]
	if _, err := c.Kubectl(ctx, nil, "-n", sampleNS, "annotate", "pods", "--overwrite",
		"-l", zoneLabel+"="+hot, localcluster.KwokCPUAnnotation+"=2"); err != nil {
		t.Fatal(err)
	}
	t.Logf("zone %s pods now use 2 CPUs each (200%% of their request; target 70%%)", hot)
	var scaled int32
	eventually(t, 120*time.Second, "HPA scales the hot zone up", func(ctx context.Context) error {
		d, err := c.Client.AppsV1().Deployments(sampleNS).Get(ctx, sampleName+"-"+hot, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if ptr.Deref(d.Spec.Replicas, 0) <= int32(minReplicas) {
			return fmt.Errorf("zone %s still at %d replicas", hot, ptr.Deref(d.Spec.Replicas, 0))
		}
		scaled = *d.Spec.Replicas
		return nil
	})
	t.Logf("HPA scaled zone %s to %d replicas", hot, scaled)
	eventually(t, 60*time.Second, "scaled pods Running in the hot zone", func(ctx context.Context) error {
		// The HPA may take a further step meanwhile; follow it.
		d, err := c.Client.AppsV1().Deployments(sampleNS).Get(ctx, sampleName+"-"+hot, metav1.GetOptions{})
		if err != nil {
			return err
		}
		scaled = ptr.Deref(d.Spec.Replicas, 0)
		return zonePodsRunning(ctx, c, hot, int(scaled))
	})
	// The operator reconciles on these Deployment changes: once its status
	// reports the scaled zone fully ready it has seen (and applied over) the
	// HPA's count, which must still stand.
	eventually(t, 60*time.Second, "operator status reports the scaled zone", func(ctx context.Context) error {
		z, err := sampleStatusEntry(ctx, c, "zones", "name", hot)
		if err != nil {
			return err
		}
		if r, _ := get(z, "readyReplicas").(int64); r != int64(scaled) {
			return fmt.Errorf("status of zone %s: %v", hot, z)
		}
		return nil
	})
	d, err := c.Client.AppsV1().Deployments(sampleNS).Get(ctx, sampleName+"-"+hot, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ptr.Deref(d.Spec.Replicas, 0); got < scaled {
		t.Fatalf("zone %s went from %d back to %d replicas: the operator undid the HPA", hot, scaled, got)
	}
	for _, mf := range d.ManagedFields {
		if mf.Manager == operatorFieldManager && mf.FieldsV1 != nil && strings.Contains(string(mf.FieldsV1.Raw), `"f:replicas"`) {
			t.Errorf("the operator owns spec.replicas of %s while its HPA is active", d.Name)
		}
	}
	for _, z := range others {
		d, err := c.Client.AppsV1().Deployments(sampleNS).Get(ctx, sampleName+"-"+z, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := ptr.Deref(d.Spec.Replicas, 0); got != int32(minReplicas) {
			t.Errorf("idle zone %s has %d replicas, want %d", z, got, minReplicas)
		}
	}

	// 6. helm upgrade with a new distributor image: the operator's Deployment rolls,
	// the operator (restarted with the new flags) rolls each zone's distributors to
	// the new image, and nothing else changes.
	before := snapshot(t, c)
	newImage := "registry.example/pyrodist:e2e-upgrade"
	if out, err := c.Helm(ctx, "upgrade", chartRelease, chartDir(), "--namespace", chartNamespace, "--reuse-values",
		"--set", "distributorImage="+newImage, "--wait", "--timeout", "2m"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	op.Stop(10 * time.Second)
	op = startOperator(t, c, opBin, "operator-upgraded")
	for _, z := range zones {
		name := sampleName + "-" + z
		eventually(t, 60*time.Second, "zone "+z+" rolled to the new image", func(ctx context.Context) error {
			d, err := c.Client.AppsV1().Deployments(sampleNS).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if img := d.Spec.Template.Spec.Containers[0].Image; img != newImage {
				return fmt.Errorf("%s image %s", name, img)
			}
			return nil
		})
	}
	after := snapshot(t, c)
	for key, rv := range before {
		changed := after[key] != rv
		wantChange := key == "Deployment/"+chartNamespace+"/"+chartRelease || strings.HasPrefix(key, "Deployment/"+sampleNS+"/")
		switch {
		case wantChange && !changed:
			t.Errorf("%s did not roll on helm upgrade", key)
		case !wantChange && changed:
			t.Errorf("%s changed on helm upgrade (generation/spec %s -> %s)", key, rv, after[key])
		}
	}
	if d, err := c.Client.AppsV1().Deployments(sampleNS).Get(ctx, sampleName+"-"+hot, metav1.GetOptions{}); err == nil && ptr.Deref(d.Spec.Replicas, 0) < scaled {
		t.Errorf("the image roll reset zone %s from %d to %d replicas", hot, scaled, ptr.Deref(d.Spec.Replicas, 0))
	}

	// 7. Deleting the CR garbage-collects every child through owner references.
	if err := c.Dynamic.Resource(pydGVR).Namespace(sampleNS).Delete(ctx, sampleName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "children garbage-collected", func(ctx context.Context) error {
		left := children(ctx, t, c)
		if len(left) > 0 {
			return fmt.Errorf("still present: %v", left)
		}
		return nil
	})

	// 8. helm uninstall keeps the CRD (crds.keep defaults to true).
	op.Stop(10 * time.Second)
	if out, err := c.Helm(ctx, "uninstall", chartRelease, "--namespace", chartNamespace, "--wait"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := c.Client.RbacV1().ClusterRoles().Get(ctx, chartRelease+"-manager", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRole survived helm uninstall: %v", err)
	}
	if _, err := c.Dynamic.Resource(pydGVR).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		t.Errorf("CRD gone after helm uninstall despite crds.keep: %v", err)
	}
}

// buildOperator compiles cmd/operator with go's default flags, which the
// unit and envtest runs share: other flags (-trimpath, CGO_ENABLED=0) would
// recompile all of client-go on a fresh cache.
func buildOperator(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "operator")
	goBuild(t, out, "./cmd/operator")
	return out
}

// startOperator runs the operator locally as the chart's ServiceAccount, with the chart's flags.
func startOperator(t *testing.T, c *localcluster.Cluster, bin, name string) *localcluster.LocalOperator {
	t.Helper()
	op, err := c.StartLocalOperator(context.Background(), bin, chartNamespace, chartRelease, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s runs as %s with the chart's flags %v", name, op.ServiceAccount, op.ChartArgs)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log tail:\n%s", name, op.LogTail(40))
		}
	})
	return op
}

func checkOperatorMetrics(t *testing.T, c *localcluster.Cluster, port int) {
	t.Helper()
	ctx := context.Background()
	ns := chartNamespace
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "e2e-scraper", Namespace: ns}}
	if _, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-scraper"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: chartRelease + "-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: ns}},
	}
	if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The operator serves a self-signed certificate; what is checked here is authn/authz.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	url := fmt.Sprintf("https://127.0.0.1:%d/metrics", port)
	get := func(ctx context.Context, token string) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b), nil
	}
	eventually(t, 30*time.Second, "metrics with a reader's token", func(ctx context.Context) error {
		code, body, err := get(ctx, tok.Status.Token)
		if err != nil {
			return err
		}
		if code != http.StatusOK || !strings.Contains(body, "controller_runtime_reconcile_total") {
			return fmt.Errorf("GET /metrics: %d %s", code, firstLines(body, 3))
		}
		return nil
	})
	if code, _, err := get(ctx, ""); err != nil || code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without a token: %d %v, want 401", code, err)
	}
}

// zonePodsRunning checks that zone z's Deployment has want pods, all Running
// and Ready on the node of that zone.
func zonePodsRunning(ctx context.Context, c *localcluster.Cluster, z string, want int) error {
	d, err := c.Client.AppsV1().Deployments(sampleNS).Get(ctx, sampleName+"-"+z, metav1.GetOptions{})
	if err != nil {
		return err
	}
	sel := metav1.FormatLabelSelector(d.Spec.Selector)
	pods, err := c.Client.CoreV1().Pods(sampleNS).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return err
	}
	n := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Spec.NodeName != c.NodeName[z] {
			return fmt.Errorf("pod %s of zone %s is on node %q, want %s", p.Name, z, p.Spec.NodeName, c.NodeName[z])
		}
		if p.Status.Phase != corev1.PodRunning || !podReady(&p) {
			return fmt.Errorf("pod %s is %s", p.Name, p.Status.Phase)
		}
		n++
	}
	if n != want || d.Status.ReadyReplicas != int32(want) {
		return fmt.Errorf("zone %s: %d Running pods, %d ready replicas, want %d", z, n, d.Status.ReadyReplicas, want)
	}
	return nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func conditionTrue(ctx context.Context, c *localcluster.Cluster, typ string) error {
	cond, err := sampleStatusEntry(ctx, c, "conditions", "type", typ)
	if err != nil {
		return err
	}
	if str(cond, "status") != "True" {
		return fmt.Errorf("%s=%s: %s", typ, str(cond, "status"), str(cond, "message"))
	}
	return nil
}

// sampleStatusEntry reads the sample CR and returns the entry of its
// status.<list> whose field key is value.
func sampleStatusEntry(ctx context.Context, c *localcluster.Cluster, list, key, value string) (any, error) {
	u, err := c.Dynamic.Resource(pydGVR).Namespace(sampleNS).Get(ctx, sampleName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	entries, _ := get(u.Object, "status", list).([]any)
	for _, e := range entries {
		if str(e, key) == value {
			return e, nil
		}
	}
	return nil, fmt.Errorf("no status.%s entry with %s %s in %v", list, key, value, entries)
}

// snapshot records, for the objects a helm upgrade could touch, what would
// change if they were rolled or rewritten: generation for workloads,
// resourceVersion for the rest.
func snapshot(t *testing.T, c *localcluster.Cluster) map[string]string {
	t.Helper()
	ctx := context.Background()
	m := map[string]string{}
	deps := func(ns, sel string) {
		l, err := c.Client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range l.Items {
			m["Deployment/"+ns+"/"+d.Name] = strconv.FormatInt(d.Generation, 10) + "/" + d.Spec.Template.Spec.Containers[0].Image + "/" + argsKey(d)
		}
	}
	deps(chartNamespace, "")
	deps(sampleNS, ownerLabel+"="+sampleName)
	owned := metav1.ListOptions{LabelSelector: ownerLabel + "=" + sampleName}
	if l, err := c.Client.CoreV1().Services(sampleNS).List(ctx, owned); err == nil {
		for _, o := range l.Items {
			m["Service/"+o.Name] = o.ResourceVersion
		}
	}
	if l, err := c.Client.CoreV1().ConfigMaps(sampleNS).List(ctx, owned); err == nil {
		for _, o := range l.Items {
			m["ConfigMap/"+o.Name] = o.ResourceVersion
		}
	}
	if l, err := c.Client.PolicyV1().PodDisruptionBudgets(sampleNS).List(ctx, owned); err == nil {
		for _, o := range l.Items {
			m["PDB/"+o.Name] = strconv.FormatInt(o.Generation, 10)
		}
	}
	if l, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers(sampleNS).List(ctx, owned); err == nil {
		for _, o := range l.Items {
			m["HPA/"+o.Name] = strconv.FormatInt(o.Generation, 10)
		}
	}
	for _, n := range []string{chartRelease + "-manager", chartRelease + "-metrics-auth"} {
		if r, err := c.Client.RbacV1().ClusterRoles().Get(ctx, n, metav1.GetOptions{}); err == nil {
			m["ClusterRole/"+n] = r.ResourceVersion
		}
	}
	if s, err := c.Client.CoreV1().Services(chartNamespace).Get(ctx, chartRelease+"-metrics", metav1.GetOptions{}); err == nil {
		m["Service/"+chartNamespace+"/"+s.Name] = s.ResourceVersion
	}
	if u, err := c.Dynamic.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).
		Get(ctx, pydGVR.Resource+"."+pydGVR.Group, metav1.GetOptions{}); err == nil {
		m["CRD/"+u.GetName()] = strconv.FormatInt(u.GetGeneration(), 10)
	}
	return m
}

func argsKey(d appsv1.Deployment) string {
	return strings.Join(d.Spec.Template.Spec.Containers[0].Args, " ")
}

// children lists what is left of the sample's objects.
func children(ctx context.Context, t *testing.T, c *localcluster.Cluster) []string {
	t.Helper()
	owned := metav1.ListOptions{LabelSelector: ownerLabel + "=" + sampleName}
	var left []string
	add := func(kind string, names []string, err error) {
		if err != nil {
			left = append(left, kind+": "+err.Error())
		}
		for _, n := range names {
			left = append(left, kind+"/"+n)
		}
	}
	d, err := c.Client.AppsV1().Deployments(sampleNS).List(ctx, owned)
	add("Deployment", namesOf(d, err), err)
	s, err := c.Client.CoreV1().Services(sampleNS).List(ctx, owned)
	add("Service", namesOf(s, err), err)
	cm, err := c.Client.CoreV1().ConfigMaps(sampleNS).List(ctx, owned)
	add("ConfigMap", namesOf(cm, err), err)
	p, err := c.Client.PolicyV1().PodDisruptionBudgets(sampleNS).List(ctx, owned)
	add("PDB", namesOf(p, err), err)
	h, err := c.Client.AutoscalingV2().HorizontalPodAutoscalers(sampleNS).List(ctx, owned)
	add("HPA", namesOf(h, err), err)
	sa, err := c.Client.CoreV1().ServiceAccounts(sampleNS).List(ctx, owned)
	add("ServiceAccount", namesOf(sa, err), err)
	pods, err := c.Client.CoreV1().Pods(sampleNS).List(ctx, metav1.ListOptions{})
	add("Pod", namesOf(pods, err), err)
	slices.Sort(left)
	return left
}

// namesOf returns the names in any typed list.
func namesOf(list runtime.Object, err error) []string {
	if err != nil {
		return nil
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, o := range items {
		if a, err := meta.Accessor(o); err == nil {
			out = append(out, a.GetName())
		}
	}
	return out
}

func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
