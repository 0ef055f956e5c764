// Package localcluster runs a real Kubernetes control plane on 127.0.0.1 from
// binaries built from Go modules: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok (fake nodes, one per zone, whose pods become Running and
// report simulated CPU usage) and metrics-server. The e2e tests and `make demo`
// use it; nothing in the data plane imports it.
//
// Every process's PID is recorded under the state directory, so a cluster can
// be stopped by another program (StopPIDs), and logs are kept next to it.
package localcluster

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ZoneLabel is the well-known node label that names a node's zone.
const ZoneLabel = "topology.kubernetes.io/zone"

// Binaries are the programs the control plane runs.
type Binaries struct {
	Etcd, APIServer, ControllerManager, Scheduler, Kubectl string
	Kwok, MetricsServer, Helm                              string
	// KwokSrc is the kwok module's source directory: its stage and metric YAMLs.
	KwokSrc string
}

// ToolBinaries asks hack/build-tools.sh (under repoRoot) where each binary is
// cached. It does not build anything; missing files are reported by Check.
func ToolBinaries(repoRoot string) (Binaries, error) {
	script := filepath.Join(repoRoot, "hack", "build-tools.sh")
	path := func(component string) (string, error) {
		out, err := exec.Command(script, "path", component).Output()
		if err != nil {
			return "", fmt.Errorf("%s path %s: %w", script, component, err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	var b Binaries
	for _, f := range []struct {
		dst  *string
		name string
	}{
		{&b.Etcd, "etcd"}, {&b.APIServer, "kube-apiserver"}, {&b.ControllerManager, "kube-controller-manager"},
		{&b.Scheduler, "kube-scheduler"}, {&b.Kubectl, "kubectl"}, {&b.Kwok, "kwok"},
		{&b.MetricsServer, "metrics-server"}, {&b.Helm, "helm"}, {&b.KwokSrc, "kwok-src"},
	} {
		p, err := path(f.name)
		if err != nil {
			return b, err
		}
		*f.dst = p
	}
	return b, nil
}

func (b Binaries) check(metricsServer bool) error {
	var missing []string
	need := map[string]string{
		"etcd": b.Etcd, "kube-apiserver": b.APIServer, "kube-controller-manager": b.ControllerManager,
		"kube-scheduler": b.Scheduler, "kubectl": b.Kubectl, "kwok": b.Kwok,
	}
	if metricsServer {
		need["metrics-server"] = b.MetricsServer
	}
	for name, p := range need {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			missing = append(missing, name+" ("+p+")")
		}
	}
	if _, err := os.Stat(filepath.Join(b.KwokSrc, "kustomize", "stage")); err != nil {
		missing = append(missing, "kwok stage YAMLs ("+b.KwokSrc+")")
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("missing binaries (run `hack/build-tools.sh k8s etcd kwok metrics-server helm`): %s", strings.Join(missing, ", "))
	}
	return nil
}

// Options configure Start.
type Options struct {
	// Dir holds PKI, kubeconfigs, etcd data, logs and PID files. It must be empty or absent.
	Dir string
	Bin Binaries
	// Zones get one kwok node each, labelled topology.kubernetes.io/zone=<zone>.
	// Default zone-a, zone-b, zone-c, the zones of config/samples.
	Zones []string
	// NoMetricsServer leaves metrics-server out (HPAs then cannot read metrics).
	NoMetricsServer bool
	// Detach starts processes in their own session so they outlive this program.
	Detach bool
	// Progress receives one line per step; nil discards.
	Progress io.Writer
	// PodCIDR is where kwok takes pod IPs from; default 10.244.0.0/16. A
	// range in 127.0.0.0/8 lets processes on this machine listen on the
	// pods' IPs, so a client that dials pod IPs (the operator's ring-health
	// poller) reaches them.
	PodCIDR string
}

// Cluster is a running control plane.
type Cluster struct {
	Dir string
	// Kubeconfig is the admin (system:masters) kubeconfig file.
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface
	Dynamic    dynamic.Interface
	Zones      []string
	// NodeName maps a zone to its kwok node.
	NodeName map[string]string
	Bin      Binaries

	APIServerURL string
	pki          string
	detach       bool
	progress     io.Writer
	start        time.Time
	seq          int
	procs        []*Process
}

// Service network of the local cluster; the apiserver certificate names its first IP.
const (
	serviceCIDR = "10.96.0.0/16"
	podCIDR     = "10.244.0.0/16"
)

var firstServiceIP = net.IPv4(10, 96, 0, 1)

// Start brings up the control plane and returns once every component is
// healthy, the zone nodes are Ready and the default ServiceAccount exists.
// On error everything already started is stopped again.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	if err := o.Bin.check(!o.NoMetricsServer); err != nil {
		return nil, err
	}
	if len(o.Zones) == 0 {
		o.Zones = []string{"zone-a", "zone-b", "zone-c"}
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Dir:        dir,
		Kubeconfig: filepath.Join(dir, "admin.kubeconfig"),
		Zones:      o.Zones,
		NodeName:   map[string]string{},
		Bin:        o.Bin,
		pki:        filepath.Join(dir, "pki"),
		detach:     o.Detach,
		progress:   o.Progress,
		start:      time.Now(),
	}
	for _, sub := range []string{"logs", "pids", "etcd"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if err := writePKI(c.pki, firstServiceIP); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	ports, err := freePorts(7)
	if err != nil {
		return nil, err
	}
	etcdPort, etcdPeer, apiPort, kcmPort, schedPort, kwokPort, msPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6]
	c.APIServerURL = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	for _, u := range []string{"admin", "kcm", "scheduler", "kwok", "metrics-server"} {
		if err := c.writeKubeconfig(u+".kubeconfig", u, ""); err != nil {
			return nil, err
		}
	}
	c.logf("PKI and kubeconfigs written to %s", dir)

	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	etcd, err := c.StartProcess("etcd", nil, o.Bin.Etcd,
		"--name=local", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=local="+peerURL,
		// A throwaway cluster: durability buys nothing and fsync is slow on busy disks.
		"--unsafe-no-fsync", "--quota-backend-bytes=2147483648", "--log-level=warn")
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 60*time.Second, etcd, "etcd", HTTPOK(http.DefaultClient, etcdURL+"/health")); err != nil {
		return nil, err
	}

	p := func(f string) string { return filepath.Join(c.pki, f) }
	api, err := c.StartProcess("kube-apiserver", nil, o.Bin.APIServer,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(apiPort),
		// The endpoint reconciler refuses a loopback advertise address; no pod needs the kubernetes Service.
		"--endpoint-reconciler-type=none",
		"--tls-cert-file="+p("apiserver.crt"), "--tls-private-key-file="+p("apiserver.key"),
		"--client-ca-file="+p("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p("sa.pub"), "--service-account-signing-key-file="+p("sa.key"),
		"--service-cluster-ip-range="+serviceCIDR,
		"--authorization-mode=Node,RBAC", "--allow-privileged=true",
		// The aggregation layer, for metrics.k8s.io.
		"--requestheader-client-ca-file="+p("front-proxy-ca.crt"), "--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+p("front-proxy-client.crt"), "--proxy-client-key-file="+p("front-proxy-client.key"),
		"--cert-dir="+filepath.Join(dir, "apiserver-certs"), "--v=1")
	if err != nil {
		return nil, err
	}
	adminHTTP, err := c.tlsClient("admin")
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 120*time.Second, api, "kube-apiserver", HTTPOK(adminHTTP, c.APIServerURL+"/readyz")); err != nil {
		return nil, err
	}
	c.logf("kube-apiserver ready at %s", c.APIServerURL)
	if err := c.connect(); err != nil {
		return nil, err
	}

	kcmKC := filepath.Join(dir, "kcm.kubeconfig")
	kcm, err := c.StartProcess("kube-controller-manager", nil, o.Bin.ControllerManager,
		"--kubeconfig="+kcmKC, "--authentication-kubeconfig="+kcmKC, "--authorization-kubeconfig="+kcmKC,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(kcmPort), "--leader-elect=false",
		// Every default controller, the garbage collector among them (owner references are tested).
		"--controllers=*",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+p("sa.key"), "--root-ca-file="+p("ca.crt"),
		"--cluster-signing-cert-file="+p("ca.crt"), "--cluster-signing-key-file="+p("ca.key"),
		"--service-cluster-ip-range="+serviceCIDR,
		"--horizontal-pod-autoscaler-sync-period=5s", "--v=1")
	if err != nil {
		return nil, err
	}
	schedKC := filepath.Join(dir, "scheduler.kubeconfig")
	sched, err := c.StartProcess("kube-scheduler", nil, o.Bin.Scheduler,
		"--kubeconfig="+schedKC, "--authentication-kubeconfig="+schedKC, "--authorization-kubeconfig="+schedKC,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(schedPort), "--leader-elect=false", "--v=1")
	if err != nil {
		return nil, err
	}
	kwokCfg := filepath.Join(dir, "kwok.yaml")
	if err := writeKwokConfig(kwokCfg, o.Bin.KwokSrc); err != nil {
		return nil, err
	}
	kwok, err := c.StartProcess("kwok", nil, o.Bin.Kwok,
		"--kubeconfig="+filepath.Join(dir, "kwok.kubeconfig"), "--config="+kwokCfg,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-ip=127.0.0.1", "--node-port="+strconv.Itoa(kwokPort), "--server-address=127.0.0.1:"+strconv.Itoa(kwokPort),
		"--tls-cert-file="+p("kwok-serving.crt"), "--tls-private-key-file="+p("kwok-serving.key"),
		"--cidr="+cmp.Or(o.PodCIDR, podCIDR), "--node-lease-duration-seconds=40")
	if err != nil {
		return nil, err
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, w := range []struct {
		p   *Process
		url string
		c   *http.Client
	}{
		{kcm, fmt.Sprintf("https://127.0.0.1:%d/healthz", kcmPort), insecure},
		{sched, fmt.Sprintf("https://127.0.0.1:%d/healthz", schedPort), insecure},
		{kwok, fmt.Sprintf("http://127.0.0.1:%d/healthz", kwokPort), http.DefaultClient},
	} {
		if err := waitFor(ctx, 90*time.Second, w.p, w.p.Name, HTTPOK(w.c, w.url)); err != nil {
			return nil, err
		}
	}
	c.logf("kube-controller-manager, kube-scheduler and kwok healthy")

	if !o.NoMetricsServer {
		if err := c.startMetricsServer(ctx, msPort, insecure); err != nil {
			return nil, err
		}
	}
	if err := c.createNodes(ctx); err != nil {
		return nil, err
	}
	// The ServiceAccount admission plugin rejects pods until the namespace's default SA exists.
	err = waitFor(ctx, 90*time.Second, kcm, "default ServiceAccount", func(ctx context.Context) error {
		_, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	if err != nil {
		return nil, err
	}
	c.logf("control plane ready: export KUBECONFIG=%s", c.Kubeconfig)
	return c, nil
}

func (c *Cluster) startMetricsServer(ctx context.Context, port int, insecure *http.Client) error {
	kc := filepath.Join(c.Dir, "metrics-server.kubeconfig")
	ms, err := c.StartProcess("metrics-server", nil, c.Bin.MetricsServer,
		"--kubeconfig="+kc, "--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port),
		"--cert-dir="+filepath.Join(c.Dir, "metrics-server-certs"),
		// kwok serves kubelet-style metrics on the node's status port, with a certificate from our CA.
		"--kubelet-use-node-status-port", "--kubelet-preferred-address-types=InternalIP",
		"--kubelet-certificate-authority="+filepath.Join(c.pki, "ca.crt"),
		// 10s is metrics-server's minimum resolution; the request timeout must be shorter.
		"--metric-resolution=10s", "--kubelet-request-timeout=5s")
	if err != nil {
		return err
	}
	// /readyz stays unready until a first scrape; /livez says the server is up.
	if err := waitFor(ctx, 60*time.Second, ms, "metrics-server", HTTPOK(insecure, fmt.Sprintf("https://127.0.0.1:%d/livez", port))); err != nil {
		return err
	}
	// The aggregator resolves an ExternalName Service to <externalName>:<port>;
	// Endpoints may not hold loopback addresses, so this is how it reaches 127.0.0.1.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-server", Namespace: "kube-system"},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: "localhost",
			Ports:        []corev1.ServicePort{{Name: "https", Port: int32(port)}},
		},
	}
	if _, err := c.Client.CoreV1().Services("kube-system").Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("metrics-server Service: %w", err)
	}
	apiSvc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": "v1beta1.metrics.k8s.io"},
		"spec": map[string]any{
			"group": "metrics.k8s.io", "version": "v1beta1",
			"groupPriorityMinimum": int64(100), "versionPriority": int64(100),
			// metrics-server's certificate is self-signed; this is a loopback-only test cluster.
			"insecureSkipTLSVerify": true,
			"service":               map[string]any{"name": "metrics-server", "namespace": "kube-system", "port": int64(port)},
		},
	}}
	gvr := schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	if _, err := c.Dynamic.Resource(gvr).Create(ctx, apiSvc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("metrics APIService: %w", err)
	}
	c.logf("metrics-server live, metrics.k8s.io registered")
	return nil
}

// createNodes registers one kwok-managed node per zone and waits until they are Ready.
func (c *Cluster) createNodes(ctx context.Context) error {
	for _, z := range c.Zones {
		name := "kwok-" + z
		c.NodeName[z] = name
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: name,
				Annotations: map[string]string{
					"kwok.x-k8s.io/node":           "fake",
					"node.alpha.kubernetes.io/ttl": "0",
					// metrics-server scrapes kwok's per-node resource metrics at this path.
					"metrics.k8s.io/resource-metrics-path": "/metrics/nodes/" + name + "/metrics/resource",
				},
				Labels: map[string]string{
					"kubernetes.io/hostname":        name,
					"kubernetes.io/os":              "linux",
					"kubernetes.io/arch":            "amd64",
					"type":                          "kwok",
					ZoneLabel:                       z,
					"topology.kubernetes.io/region": "local",
				},
			},
			Status: corev1.NodeStatus{
				Capacity:    nodeResources(),
				Allocatable: nodeResources(),
			},
		}
		if _, err := c.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("node %s: %w", name, err)
		}
	}
	err := waitFor(ctx, 60*time.Second, nil, "zone nodes Ready", func(ctx context.Context) error {
		for _, name := range c.NodeName {
			n, err := c.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !NodeReady(n) {
				return fmt.Errorf("node %s not Ready", name)
			}
		}
		return nil
	})
	if err == nil {
		c.logf("%d zone nodes Ready (%s)", len(c.Zones), strings.Join(c.Zones, ", "))
	}
	return err
}

func nodeResources() corev1.ResourceList {
	return corev1.ResourceList{
		// Room for the sample's autoscaled pods (1 CPU / 1Gi requests each) at their maximum.
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("128Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
}

// NodeReady reports whether a node's Ready condition is True.
func NodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Stop stops every process this Cluster started, newest first, by PID.
func (c *Cluster) Stop() {
	stopped, err := StopPIDs(c.Dir, 10*time.Second)
	if err != nil {
		c.logf("stop: %v", err)
	}
	for _, p := range c.procs {
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
		}
	}
	c.logf("stopped %d processes", len(stopped))
}

// connect builds the admin clients.
func (c *Cluster) connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 50, 100
	c.Config = cfg
	if c.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	c.Dynamic, err = dynamic.NewForConfig(cfg)
	return err
}

// WriteImpersonatingKubeconfig writes a kubeconfig that authenticates as admin
// and impersonates the ServiceAccount namespace/name, so a process running
// outside the cluster is authorised exactly as that ServiceAccount's pod would be.
func (c *Cluster) WriteImpersonatingKubeconfig(file, namespace, name string) (string, error) {
	as := "system:serviceaccount:" + namespace + ":" + name
	if err := c.writeKubeconfig(file, "admin", as, "system:serviceaccounts", "system:serviceaccounts:"+namespace); err != nil {
		return "", err
	}
	return filepath.Join(c.Dir, file), nil
}

func (c *Cluster) writeKubeconfig(file, cert, as string, groups ...string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: %s\n    certificate-authority: %s\n",
		c.APIServerURL, filepath.Join(c.pki, "ca.crt"))
	fmt.Fprintf(&b, "users:\n- name: user\n  user:\n    client-certificate: %s\n    client-key: %s\n",
		filepath.Join(c.pki, cert+".crt"), filepath.Join(c.pki, cert+".key"))
	if as != "" {
		fmt.Fprintf(&b, "    as: %q\n", as)
		if len(groups) > 0 {
			b.WriteString("    as-groups:\n")
			for _, g := range groups {
				fmt.Fprintf(&b, "    - %q\n", g)
			}
		}
	}
	b.WriteString("contexts:\n- name: local\n  context:\n    cluster: local\n    user: user\ncurrent-context: local\n")
	return os.WriteFile(filepath.Join(c.Dir, file), []byte(b.String()), 0o600)
}

func (c *Cluster) tlsClient(cert string) (*http.Client, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(c.pki, cert+".crt"), filepath.Join(c.pki, cert+".key"))
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(filepath.Join(c.pki, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12,
	}}}, nil
}

// Kubectl runs the cluster's kubectl with the admin kubeconfig and returns its combined output.
func (c *Cluster) Kubectl(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.Bin.Kubectl, append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Helm runs helm against the cluster with its state kept under the cluster's directory.
func (c *Cluster) Helm(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.Bin.Helm, append(args, "--kubeconfig="+c.Kubeconfig)...)
	cmd.Env = append(os.Environ(), HelmEnv(filepath.Join(c.Dir, "helm"))...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// HelmEnv keeps helm's cache, config and data under dir, away from the user's.
func HelmEnv(dir string) []string {
	return []string{
		"HELM_CACHE_HOME=" + filepath.Join(dir, "cache"),
		"HELM_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"HELM_DATA_HOME=" + filepath.Join(dir, "data"),
	}
}

func (c *Cluster) logf(format string, args ...any) {
	if c.progress == nil {
		return
	}
	fmt.Fprintf(c.progress, "[cluster %5.1fs] %s\n", time.Since(c.start).Seconds(), fmt.Sprintf(format, args...))
}

// HTTPOK is a check for poll.Until: GET url answers 200.
func HTTPOK(client *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}
