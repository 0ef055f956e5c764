package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/pyrodist/pyrodist/internal/manifests"
	"github.com/pyrodist/pyrodist/test/localcluster"
	"github.com/pyrodist/pyrodist/test/testutil/poll"
)

const (
	chartRelease   = "pyrodist"
	chartNamespace = "pyrodist-system"
	sampleFile     = "config/samples/profiling_v1alpha1_pyroscopedistributor.yaml"
	sampleNS       = "pyroscope"
	sampleName     = "pyroscope-distributor"
	zoneLabel      = "profiling.pyrodist.dev/zone"
)

type demo struct {
	dir            string
	root           string
	bin            string
	writersPerZone int
	start          time.Time
	c              *localcluster.Cluster
	writers        []*writer
	dists          []*distributor
}

type writer struct {
	id, zone                       string
	grpcPort, httpPort, gossipPort int
}

type distributor struct {
	zone                 string
	httpPort, gossipPort int
}

func (w *writer) http() string      { return "http://127.0.0.1:" + strconv.Itoa(w.httpPort) }
func (d *distributor) http() string { return "http://127.0.0.1:" + strconv.Itoa(d.httpPort) }

func (d *demo) step(format string, args ...any) {
	fmt.Printf("==> [%5.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) up() error {
	ctx := context.Background()
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	d.root = root
	if _, err := os.Stat(filepath.Join(d.dir, "cluster", "pids")); err == nil {
		if entries, _ := os.ReadDir(filepath.Join(d.dir, "cluster", "pids")); len(entries) > 0 {
			return errors.New("a demo is already running: `make demo-down` first")
		}
	}
	_ = os.RemoveAll(d.dir)
	for _, b := range []string{"operator", "distributor", "fakewriter"} {
		if _, err := os.Stat(filepath.Join(d.bin, b)); err != nil {
			return fmt.Errorf("%s is missing: run `make build`", filepath.Join(d.bin, b))
		}
	}
	bins, err := localcluster.ToolBinaries(root)
	if err != nil {
		return err
	}

	d.step("starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok, metrics-server)")
	c, err := localcluster.Start(ctx, localcluster.Options{
		Dir:      filepath.Join(d.dir, "cluster"),
		Bin:      bins,
		Detach:   true, // keeps running after this program returns, until `make demo-down`
		Progress: os.Stdout,
	})
	if err != nil {
		return err
	}
	d.c = c

	d.step("helm install %s charts/pyrodist (CRD, RBAC, ServiceAccount, operator Deployment)", chartRelease)
	if out, err := c.Helm(ctx, "install", chartRelease, filepath.Join(root, "charts", "pyrodist"),
		"--namespace", chartNamespace, "--create-namespace", "--wait", "--timeout", "2m"); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}

	d.step("running bin/operator locally as the chart's ServiceAccount, with the chart's flags")
	op, err := c.StartLocalOperator(ctx, filepath.Join(d.bin, "operator"), chartNamespace, chartRelease, "operator")
	if err != nil {
		return err
	}
	fmt.Printf("    operator flags: %s\n", strings.Join(op.ChartArgs, " "))

	d.step("kubectl apply -n %s -f %s", sampleNS, sampleFile)
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sampleNS}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := retry(ctx, 30*time.Second, func(ctx context.Context) error {
		_, err := c.Kubectl(ctx, nil, "apply", "-n", sampleNS, "-f", filepath.Join(root, sampleFile))
		return err
	}); err != nil {
		return err
	}
	if err := retry(ctx, 90*time.Second, func(ctx context.Context) error {
		for _, z := range c.Zones {
			dep, err := c.Client.AppsV1().Deployments(sampleNS).Get(ctx, sampleName+"-"+z, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if dep.Status.ReadyReplicas == 0 || dep.Status.ReadyReplicas != dep.Status.Replicas {
				return fmt.Errorf("zone %s: %d/%d ready", z, dep.Status.ReadyReplicas, dep.Status.Replicas)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	d.step("the operator's objects, per zone (pods are kwok's: scheduled and Running, no containers)")
	for _, z := range c.Zones {
		out, err := c.Kubectl(ctx, nil, "-n", sampleNS, "get", "deployments,services,pdb,hpa,pods", "-l", zoneLabel+"="+z, "-o", "wide")
		if err != nil {
			return err
		}
		fmt.Printf("\n--- zone %s ---\n%s", z, out)
	}
	out, err := c.Kubectl(ctx, nil, "-n", sampleNS, "get", "pyroscopedistributors,services,configmaps", "-l", "app.kubernetes.io/managed-by!=Helm")
	if err != nil {
		return err
	}
	fmt.Printf("\n--- shared ---\n%s\n", out)

	if err := d.startDataPlane(ctx); err != nil {
		return err
	}
	if err := d.pushSamples(ctx); err != nil {
		return err
	}
	if err := d.printRouting(ctx); err != nil {
		return err
	}
	if err := d.showRollout(ctx); err != nil {
		return err
	}
	if err := d.printRingHealth(ctx); err != nil {
		return err
	}
	return d.instructions()
}

// startDataPlane runs the fake segment-writers and one distributor per zone.
func (d *demo) startDataPlane(ctx context.Context) error {
	c := d.c
	configYAML, cfgMap, overridesYAML, err := d.configFromCluster(ctx, c.Zones[0])
	if err != nil {
		return err
	}
	ports, err := freePorts(3*len(c.Zones)*d.writersPerZone + 2*len(c.Zones))
	if err != nil {
		return err
	}
	next := func() int { p := ports[0]; ports = ports[1:]; return p }
	for _, z := range c.Zones {
		for i := 1; i <= d.writersPerZone; i++ {
			d.writers = append(d.writers, &writer{id: fmt.Sprintf("writer-%s-%d", z, i), zone: z, grpcPort: next(), httpPort: next(), gossipPort: next()})
		}
	}
	seed := "127.0.0.1:" + strconv.Itoa(d.writers[0].gossipPort)

	d.step("starting %d fake segment-writers (%d per zone), joined over memberlist", len(d.writers), d.writersPerZone)
	for i, w := range d.writers {
		args := []string{
			"-server.grpc-listen-address=127.0.0.1", "-server.grpc-listen-port=" + strconv.Itoa(w.grpcPort),
			"-server.http-listen-address=127.0.0.1", "-server.http-listen-port=" + strconv.Itoa(w.httpPort),
			"-memberlist.bind-addr=127.0.0.1", "-memberlist.bind-port=" + strconv.Itoa(w.gossipPort),
			"-memberlist.advertise-port=" + strconv.Itoa(w.gossipPort),
			"-memberlist.nodename=" + w.id, "-memberlist.randomize-node-name=false",
			"-memberlist.leave-timeout=1s",
			"-segment-writer.availability-zone=" + w.zone,
			"-segment-writer.lifecycler.ID=" + w.id,
			"-segment-writer.lifecycler.addr=127.0.0.1",
		}
		if cl := clusterLabel(configYAML); cl != "" {
			args = append(args, "-memberlist.cluster-label="+cl)
		}
		if i > 0 {
			args = append(args, "-memberlist.join="+seed)
		}
		if _, err := c.StartProcess(w.id, nil, filepath.Join(d.bin, "fakewriter"), args...); err != nil {
			return err
		}
	}
	for _, w := range d.writers {
		if err := retry(ctx, 60*time.Second, localcluster.HTTPOK(http.DefaultClient, w.http()+"/ready")); err != nil {
			return fmt.Errorf("%s: %w", w.id, err)
		}
	}

	// The operator's config, with only the gossip seeds changed: in-cluster
	// DNS names mean nothing on this machine.
	cfg, err := localizeConfig(configYAML, []string{seed})
	if err != nil {
		return err
	}
	cfgDir := filepath.Join(d.dir, "config")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		return err
	}
	cfgPath, ovPath := filepath.Join(cfgDir, "config.yaml"), filepath.Join(cfgDir, "overrides.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(ovPath, []byte(overridesYAML), 0o644); err != nil {
		return err
	}
	d.step("config the operator rendered (ConfigMaps %s/%s and %s), as the distributors read it from %s:", sampleNS, cfgMap,
		manifests.OverridesConfigMapName(sampleName), cfgDir)
	fmt.Printf("%s\n--- overrides.yaml ---\n%s\n", indent(string(cfg)), indent(overridesYAML))

	d.step("starting one distributor per zone with its Deployment's arguments")
	for _, z := range c.Zones {
		dep, err := c.Client.AppsV1().Deployments(sampleNS).Get(ctx, sampleName+"-"+z, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ctr := dep.Spec.Template.Spec.Containers[0]
		dist := &distributor{zone: z, httpPort: next(), gossipPort: next()}
		id := "distributor-" + z
		var args []string
		for _, a := range ctr.Args {
			switch {
			case strings.HasPrefix(a, "-config.file="):
				a = "-config.file=" + cfgPath
			case strings.HasPrefix(a, "-runtime-config.file="):
				a = "-runtime-config.file=" + ovPath
			}
			args = append(args, a)
		}
		// What a pod gets from its network namespace and hostname.
		args = append(args,
			"-server.http-listen-address=127.0.0.1", "-server.http-listen-port="+strconv.Itoa(dist.httpPort),
			"-memberlist.bind-addr=127.0.0.1", "-memberlist.bind-port="+strconv.Itoa(dist.gossipPort),
			"-memberlist.advertise-port="+strconv.Itoa(dist.gossipPort),
			"-memberlist.nodename="+id, "-memberlist.randomize-node-name=false",
			"-distributor.ring.instance-id="+id, "-distributor.ring.instance-addr=127.0.0.1",
			// The demo suggests profiling the distributor itself.
			"-server.enable-pprof",
		)
		var env []string
		for _, e := range ctr.Env {
			if e.ValueFrom == nil {
				env = append(env, e.Name+"="+e.Value)
			}
		}
		if _, err := c.StartProcess(id, env, filepath.Join(d.bin, "distributor"), args...); err != nil {
			return err
		}
		fmt.Printf("    %s on %s: %s\n", id, dist.http(), strings.Join(ctr.Args, " "))
		d.dists = append(d.dists, dist)
	}
	// Ready means "can place profiles"; wait until every distributor's ring
	// view holds every writer, or the first pushes would all land on the
	// writers that gossip reached first.
	for _, dist := range d.dists {
		if err := retry(ctx, 60*time.Second, localcluster.HTTPOK(http.DefaultClient, dist.http()+"/ready")); err != nil {
			return fmt.Errorf("distributor %s: %w", dist.zone, err)
		}
		err := retry(ctx, 60*time.Second, func(ctx context.Context) error {
			n, err := metricValue(ctx, dist.http()+"/metrics", `pyrodist_segment_writer_ring_instances{state="ACTIVE"}`)
			if err != nil {
				return err
			}
			if int(n) != len(d.writers) {
				return fmt.Errorf("distributor %s sees %v of %d writers ACTIVE", dist.zone, n, len(d.writers))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	fmt.Printf("    every distributor sees all %d writers ACTIVE in the segment-writer ring\n", len(d.writers))
	return nil
}

// metricValue reads one sample of a Prometheus text exposition.
func metricValue(ctx context.Context, url, series string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", url, series)
}

// localizeConfig replaces memberlist.join_members in the rendered config.yaml.
func localizeConfig(rendered string, join []string) ([]byte, error) {
	var m map[string]any
	if err := yaml.Unmarshal([]byte(rendered), &m); err != nil {
		return nil, fmt.Errorf("rendered config.yaml: %w", err)
	}
	ml, _ := m["memberlist"].(map[string]any)
	if ml == nil {
		ml = map[string]any{}
		m["memberlist"] = ml
	}
	ml["join_members"] = join
	return yaml.Marshal(m)
}

func clusterLabel(rendered string) string {
	var m struct {
		Memberlist struct {
			ClusterLabel string `json:"cluster_label"`
		} `json:"memberlist"`
	}
	_ = yaml.Unmarshal([]byte(rendered), &m)
	return m.Memberlist.ClusterLabel
}

func retry(ctx context.Context, timeout time.Duration, f func(context.Context) error) error {
	if err := poll.Until(ctx, timeout, 10*time.Second, 300*time.Millisecond, f); err != nil {
		return fmt.Errorf("not within %s: %w", timeout, err)
	}
	return nil
}

func freePorts(n int) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for len(out) < n {
		p, err := localcluster.FreePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
