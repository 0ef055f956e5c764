// Command operator is pyrodist's controller manager: it reconciles
// PyroscopeDistributor objects into zone-aware distributor Deployments,
// Services, HPAs and PodDisruptionBudgets.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/controllers"
	"github.com/pyrodist/pyrodist/internal/manifests"
)

// defaultImage is the distributor image used when a PyroscopeDistributor sets
// none. Release builds set it with -ldflags "-X main.defaultImage=...".
var defaultImage = "ghcr.io/pyrodist/pyrodist:dev"

func main() {
	// flag.CommandLine also carries controller-runtime's --kubeconfig.
	o, zapOpts := registerFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(zapOpts)))
	if err := run(*o); err != nil {
		ctrl.Log.WithName("setup").Error(err, "operator failed")
		os.Exit(1)
	}
}

type runOptions struct {
	metricsAddr          string
	secureMetrics        bool
	enableHTTP2          bool
	probeAddr            string
	leaderElect          bool
	leaderElectNamespace string
	watchNamespaces      string
	image                string
	qps                  float64
	burst                int
	concurrency          int
	allowPrivilegedPods  bool
}

// registerFlags defines the operator's command line on fs.
func registerFlags(fs *flag.FlagSet) (*runOptions, *zap.Options) {
	o := &runOptions{}
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", "0",
		"Address the metrics endpoint binds to, e.g. :8443 (HTTPS) or :8080 (HTTP); 0 turns it off.")
	fs.BoolVar(&o.secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, to callers authenticated and authorized through the API server.")
	fs.BoolVar(&o.enableHTTP2, "enable-http2", false,
		"Allow HTTP/2 on the metrics server (off: HTTP/2 stream-reset and rapid-reset CVEs).")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false,
		"Elect a leader, so only one of several operator replicas reconciles at a time.")
	fs.StringVar(&o.leaderElectNamespace, "leader-election-namespace", "",
		"Namespace of the leader election Lease; empty means the operator pod's own namespace.")
	fs.StringVar(&o.watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces to watch; empty watches all. With a list the operator needs Roles in those namespaces only.")
	fs.StringVar(&o.image, "distributor-image", defaultImage,
		"Distributor image for PyroscopeDistributors that set no spec.image.")
	fs.Float64Var(&o.qps, "kube-api-qps", controllers.DefaultQPS, "Sustained requests per second to the API server.")
	fs.IntVar(&o.burst, "kube-api-burst", controllers.DefaultBurst, "Burst of requests to the API server.")
	fs.IntVar(&o.concurrency, "max-concurrent-reconciles", controllers.DefaultConcurrency,
		"PyroscopeDistributors reconciled in parallel.")
	fs.BoolVar(&o.allowPrivilegedPods, manifests.AllowPrivilegedPodsFlag, false,
		"Let spec.podTemplate weaken the distributor pods' restricted security contexts (root, privileged, "+
			"privilege escalation, added capabilities, a writable root file system...). Off, such a "+
			"PyroscopeDistributor is refused with reason PodSecurityRefused and nothing is applied.")
	zapOpts := &zap.Options{}
	zapOpts.BindFlags(fs)
	return o, zapOpts
}

func run(o runOptions) error {
	log := ctrl.Log.WithName("setup")
	namespaces := splitList(o.watchNamespaces)
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	cfg.UserAgent = "pyrodist-operator"

	facts, err := controllers.DiscoverClusterFacts(cfg, o.image)
	if err != nil {
		return err
	}
	facts.AllowPrivilegedPods = o.allowPrivilegedPods
	log.Info("cluster facts", "facts", fmt.Sprintf("%+v", facts))

	var tlsOpts []func(*tls.Config)
	if !o.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{
		BindAddress:   o.metricsAddr,
		SecureServing: o.secureMetrics,
		TLSOpts:       tlsOpts,
	}
	if o.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              "pyrodist-operator.pyrodist.dev",
		LeaderElectionNamespace:       o.leaderElectNamespace,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         controllers.CacheOptions(namespaces),
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	r := &controllers.PyroscopeDistributorReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Scheme:                  mgr.GetScheme(),
		Recorder:                mgr.GetEventRecorder("pyrodist-operator"),
		Facts:                   facts,
		MaxConcurrentReconciles: o.concurrency,
		RingHealth:              &controllers.RingHealthPoller{Client: mgr.GetClient()},
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	log.Info("starting manager", "namespaces", namespaces, "leaderElect", o.leaderElect)
	return mgr.Start(ctrl.SetupSignalHandler())
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
