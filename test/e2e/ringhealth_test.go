//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/pyrodist/pyrodist/internal/manifests"
	"github.com/pyrodist/pyrodist/internal/ringhealth"
	"github.com/pyrodist/pyrodist/test/localcluster"
	"github.com/pyrodist/pyrodist/test/metricnames"
)

// ringPodCIDR puts kwok's pod IPs on this machine's loopback, so the
// distributors started here listen on their pods' IPs and the operator's
// ring-health poller reaches them as it would in a cluster.
const ringPodCIDR = "127.77.0.0/16"

// TestRingHealth runs the operator binary (the chart's flags and RBAC) on its
// own control plane whose pod IPs are local, a PyroscopeDistributor with one
// pod per zone in two zones, a real distributor process listening on each
// pod's IP and one fake segment-writer per zone. WritersInZone turns True;
// once zone-b's writer stops it turns False, naming zone-b, within a minute.
// Then every metric the chart's dashboard and alerts query must be on the
// distributors' or the operator's /metrics.
func TestRingHealth(t *testing.T) {
	bin := t.TempDir()
	for name, pkg := range map[string]string{"operator": "./cmd/operator", "distributor": "./cmd/distributor", "fakewriter": "./test/cmd/fakewriter"} {
		goBuild(t, filepath.Join(bin, name), pkg)
	}
	tb := tools(t)
	dir, err := os.MkdirTemp("", "pyrodist-ring-")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	zones := []string{"zone-a", "zone-b"}
	c, err := localcluster.Start(startCtx, localcluster.Options{Dir: dir, Bin: tb, Zones: zones, NoMetricsServer: true, PodCIDR: ringPodCIDR})
	if err != nil {
		t.Fatalf("control plane: %v", err)
	}
	t.Cleanup(func() {
		c.Stop()
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("state and logs kept in %s", dir)
		}
	})

	if out, err := c.Helm(ctx, "install", chartRelease, chartDir(), "--namespace", chartNamespace, "--create-namespace",
		"--set", "metrics.secure=false", "--wait", "--timeout", "2m"); err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	eventually(t, 30*time.Second, "CRD established", func(ctx context.Context) error {
		_, err := c.Dynamic.Resource(pydGVR).List(ctx, metav1.ListOptions{Limit: 1})
		return err
	})
	op := startOperator(t, c, filepath.Join(bin, "operator"), "operator")

	const ns, name = "ring", "ring"
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "profiling.pyrodist.dev/v1alpha1", "kind": "PyroscopeDistributor",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"replicas": int64(1),
			"zones":    []any{map[string]any{"name": "zone-a"}, map[string]any{"name": "zone-b"}},
		},
	}}
	if _, err := c.Dynamic.Resource(pydGVR).Namespace(ns).Create(ctx, pd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// One fake segment-writer per zone, on 127.0.0.1.
	writers := map[string]*localcluster.Process{}
	var seed string
	for _, z := range zones {
		ports := ports(t, "127.0.0.1", 3)
		id := "writer-" + z
		args := []string{
			"-server.grpc-listen-address=127.0.0.1", "-server.grpc-listen-port=" + strconv.Itoa(ports[0]),
			"-server.http-listen-address=127.0.0.1", "-server.http-listen-port=" + strconv.Itoa(ports[1]),
			"-memberlist.bind-addr=127.0.0.1", "-memberlist.bind-port=" + strconv.Itoa(ports[2]),
			"-memberlist.advertise-port=" + strconv.Itoa(ports[2]),
			"-memberlist.nodename=" + id, "-memberlist.randomize-node-name=false", "-memberlist.leave-timeout=1s",
			"-segment-writer.availability-zone=" + z, "-segment-writer.lifecycler.ID=" + id,
			"-segment-writer.lifecycler.addr=127.0.0.1",
		}
		if seed != "" {
			args = append(args, "-memberlist.join="+seed)
		} else {
			seed = "127.0.0.1:" + strconv.Itoa(ports[2])
		}
		p, err := c.StartProcess(id, nil, filepath.Join(bin, "fakewriter"), args...)
		if err != nil {
			t.Fatal(err)
		}
		writers[z] = p
		eventually(t, 60*time.Second, id+" ready", localcluster.HTTPOK(http.DefaultClient, "http://127.0.0.1:"+strconv.Itoa(ports[1])+"/ready"))
	}

	// A distributor per pod, on the pod's IP, with its Deployment's arguments
	// and the config the operator rendered (gossip seeds made local).
	dists := map[string]string{} // zone -> http://podIP:4040
	for _, z := range zones {
		var pod *corev1.Pod
		eventually(t, 90*time.Second, "a running pod with an IP in "+z, func(ctx context.Context) error {
			pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "profiling.pyrodist.dev/zone=" + z})
			if err != nil {
				return err
			}
			for i := range pods.Items {
				if p := &pods.Items[i]; p.Status.PodIP != "" && p.DeletionTimestamp == nil {
					pod = p
					return nil
				}
			}
			return fmt.Errorf("%d pods, none with an IP", len(pods.Items))
		})
		ip := pod.Status.PodIP
		if !net.ParseIP(ip).IsLoopback() {
			t.Fatalf("pod IP %s is not in %s: kwok did not take the pod CIDR", ip, ringPodCIDR)
		}
		dists[z] = "http://" + net.JoinHostPort(ip, "4040")
		startDistributor(t, c, bin, dir, ns, pod, seed)
	}
	for z, base := range dists {
		eventually(t, 60*time.Second, "distributor "+z+" sees both writers", func(ctx context.Context) error {
			rep, err := ringhealth.Get(ctx, http.DefaultClient, base)
			if err != nil {
				return err
			}
			if rep.Active != 2 || rep.ActiveInZone != 1 {
				return fmt.Errorf("report %+v", rep)
			}
			return nil
		})
	}

	eventually(t, 90*time.Second, "WritersInZone True", writersInZone(c, ns, name, "True", ""))
	// Traffic, so that every series the dashboard reads exists: a push and
	// one the distributor discards.
	pushBoth(t, dists["zone-a"])

	// zone-b's writer stops (it leaves the ring): zone-b's distributor falls
	// back to zone-a, and the operator says so within a minute.
	if err := writers["zone-b"].Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	eventually(t, 60*time.Second, "WritersInZone False for zone-b", writersInZone(c, ns, name, "False", "zone-b"))
	t.Logf("WritersInZone turned False %s after zone-b's writer stopped", time.Since(stopped).Round(time.Second))
	got, err := c.Kubectl(ctx, nil, "-n", ns, "get", "pyd", name)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl get pyd:\n%s", got)
	if !strings.Contains(got, "WRITERS-IN-ZONE") || !strings.Contains(got, "False") {
		t.Errorf("kubectl get pyd shows no WRITERS-IN-ZONE False:\n%s", got)
	}

	// Every metric name of the chart's dashboard and alerts is exposed.
	exposed := metricnames.Exposed{}
	for z, base := range dists {
		scrapeInto(t, exposed, base+"/metrics", "distributor "+z)
	}
	scrapeInto(t, exposed, fmt.Sprintf("http://127.0.0.1:%d/metrics", op.MetricsPort), "operator")
	qs, err := metricnames.ChartQueries(filepath.Join(chartDir(), "monitoring"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range exposed.Missing(qs) {
		t.Errorf("the chart queries a metric neither the distributors nor the operator expose: %s", m)
	}
	names := map[string]bool{}
	for _, q := range qs {
		for _, n := range metricnames.FromPromQL(q.Expr) {
			names[n] = true
		}
	}
	t.Logf("%d queries of the chart's dashboard and alerts name %d metrics; %d families scraped", len(qs), len(names), len(exposed))
}

// ports reserves n free TCP ports on ip.
func ports(t *testing.T, ip string, n int) []int {
	t.Helper()
	var out []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// startDistributor runs the distributor of pod on the pod's IP.
func startDistributor(t *testing.T, c *localcluster.Cluster, bin, dir, ns string, pod *corev1.Pod, seed string) {
	t.Helper()
	ctx := context.Background()
	// The pod mounts config.yaml from its config version and overrides.yaml
	// from the live overrides ConfigMap: gather the files of every
	// ConfigMap its template mounts.
	files := map[string]string{}
	for _, name := range manifests.ConfigMapsOf(&corev1.PodTemplateSpec{Spec: pod.Spec}) {
		cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("config of pod %s: %v", pod.Name, err)
		}
		maps.Copy(files, cm.Data)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(files["config.yaml"]), &cfg); err != nil {
		t.Fatal(err)
	}
	ml, _ := cfg["memberlist"].(map[string]any)
	if ml == nil {
		ml = map[string]any{}
		cfg["memberlist"] = ml
	}
	ml["join_members"] = []string{seed}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath, ovPath := filepath.Join(dir, pod.Name+"-config.yaml"), filepath.Join(dir, pod.Name+"-overrides.yaml")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ovPath, []byte(files["overrides.yaml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	ip := pod.Status.PodIP
	gossip := ports(t, ip, 1)[0]
	var args []string
	for _, a := range pod.Spec.Containers[0].Args {
		switch {
		case strings.HasPrefix(a, "-config.file="):
			a = "-config.file=" + cfgPath
		case strings.HasPrefix(a, "-runtime-config.file="):
			a = "-runtime-config.file=" + ovPath
		}
		args = append(args, a)
	}
	args = append(args,
		"-server.http-listen-address="+ip, "-server.http-listen-port=4040",
		"-memberlist.bind-addr="+ip, "-memberlist.bind-port="+strconv.Itoa(gossip), "-memberlist.advertise-port="+strconv.Itoa(gossip),
		"-memberlist.nodename="+pod.Name, "-memberlist.randomize-node-name=false",
		"-distributor.ring.instance-id="+pod.Name, "-distributor.ring.instance-addr="+ip)
	if _, err := c.StartProcess("distributor-"+pod.Name, nil, filepath.Join(bin, "distributor"), args...); err != nil {
		t.Fatal(err)
	}
}

// writersInZone checks the WritersInZone condition's status and that its
// message names zone.
func writersInZone(c *localcluster.Cluster, ns, name, status, zone string) func(context.Context) error {
	return func(ctx context.Context) error {
		u, err := c.Dynamic.Resource(pydGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, cd := range conds {
			m, _ := cd.(map[string]any)
			if m["type"] != "WritersInZone" {
				continue
			}
			if m["status"] != status || !strings.Contains(fmt.Sprint(m["message"]), zone) {
				return fmt.Errorf("WritersInZone %v: %v", m["status"], m["message"])
			}
			return nil
		}
		return fmt.Errorf("no WritersInZone condition yet")
	}
}

// pushBoth pushes one good profile and one the distributor must discard.
func pushBoth(t *testing.T, base string) {
	t.Helper()
	var heap bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&heap, 0); err != nil {
		t.Fatal(err)
	}
	client := pushv1connect.NewPusherServiceClient(http.DefaultClient, base)
	push := func(raw []byte) error {
		_, err := client.Push(context.Background(), connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
			Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "memory"}, {Name: "service_name", Value: "ring-e2e"}},
			Samples: []*pushv1.RawSample{{RawProfile: raw}},
		}}}))
		return err
	}
	if err := push(heap.Bytes()); err != nil {
		t.Fatalf("push: %v", err)
	}
	if err := push([]byte("not a profile")); err == nil {
		t.Fatal("a push of garbage was accepted")
	}
}

func scrapeInto(t *testing.T, e metricnames.Exposed, url, what string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", what, resp.Status)
	}
	if err := e.Add(resp.Body); err != nil {
		t.Fatalf("scrape %s: %v", what, err)
	}
}
