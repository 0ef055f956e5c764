package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/test/testutil/envtestbin"
)

// The envtest suite: one real kube-apiserver + etcd for the whole package and
// one manager running the reconciler, as in a cluster. Tests use their own
// namespaces, so they never see each other's objects.
var (
	testScheme = runtime.NewScheme()
	// k8sClient talks to the API server directly, as a user would; its
	// requests are not counted.
	k8sClient client.Client
	// managerRequests counts every request the manager makes (its cache,
	// its client, its event recorder).
	managerRequests = &requestLog{}
	testReconciler  *PyroscopeDistributorReconciler
	testCtx         context.Context
	testCfg         *rest.Config
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(testScheme))
	utilruntime.Must(v1alpha1.AddToScheme(testScheme))
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(false), zap.Level(zapLevel())))

	assets, err := envtestbin.Dir("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: envtest:", err)
		return 1
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		Scheme:                testScheme,
	}
	// 100 CRs x (3 zone Services + 1 shared) need more ClusterIPs than the
	// default /24 holds.
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.0.0.0/16")
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: starting envtest:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()

	testCfg = cfg
	k8sClient, err = client.New(cfg, client.Options{Scheme: testScheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: client:", err)
		return 1
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testCtx = ctx
	// The manager runs as a user holding only the generated ClusterRole, so
	// every test also checks that the RBAC markers grant enough.
	opCfg, err := operatorConfig(ctx, env, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: operator user:", err)
		return 1
	}
	stopped, err := startManager(ctx, opCfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: manager:", err)
		return 1
	}
	code := m.Run()
	cancel()
	<-stopped
	return code
}

// zapLevel keeps a passing run quiet (errors only); PYRODIST_TEST_VERBOSE=1
// shows the reconciler's log.
func zapLevel() zapcore.Level {
	if os.Getenv("PYRODIST_TEST_VERBOSE") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

// startManager runs the reconciler in a manager whose every request goes
// through managerRequests. It uses the operator binary's client settings.
func startManager(ctx context.Context, base *rest.Config) (<-chan struct{}, error) {
	cfg := rest.CopyConfig(base)
	cfg.QPS, cfg.Burst = DefaultQPS, DefaultBurst
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return &countingTransport{next: rt, log: managerRequests}
	}
	mgr, r, err := newTestManager(cfg, nil, func(r *PyroscopeDistributorReconciler) {
		r.MaxConcurrentReconciles = DefaultConcurrency
		// Distributor pods are faked (ringhealth_test.go): a short interval
		// keeps the tests quick.
		r.RingHealth = &RingHealthPoller{Client: r.Client, HTTP: &http.Client{Transport: fakeRings}, Interval: time.Second}
	})
	if err != nil {
		return nil, err
	}
	testReconciler = r
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return nil, errors.New("cache did not sync")
	}
	return done, nil
}

// newTestManager sets up a manager over cfg as cmd/operator does, caching
// namespaces (nil: all), with a reconciler on facts discovered through
// cfg; tune, if set, adjusts the reconciler before it is set up.
func newTestManager(cfg *rest.Config, namespaces []string, tune func(*PyroscopeDistributorReconciler)) (ctrl.Manager, *PyroscopeDistributorReconciler, error) {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 testScheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  CacheOptions(namespaces),
		Controller:             config.Controller{SkipNameValidation: ptrTo(true)},
	})
	if err != nil {
		return nil, nil, err
	}
	facts, err := DiscoverClusterFacts(cfg, "ghcr.io/pyrodist/pyrodist:test")
	if err != nil {
		return nil, nil, fmt.Errorf("discovery: %w", err)
	}
	r := &PyroscopeDistributorReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
		Recorder: mgr.GetEventRecorder("pyrodist-operator"), Facts: facts,
	}
	if tune != nil {
		tune(r)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, nil, err
	}
	return mgr, r, nil
}

// operatorConfig creates a user bound to config/rbac/role.yaml (generated
// from the +kubebuilder:rbac markers) and returns its client config.
func operatorConfig(ctx context.Context, env *envtest.Environment, admin *rest.Config) (*rest.Config, error) {
	raw, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	if err != nil {
		return nil, err
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(raw, role); err != nil {
		return nil, fmt.Errorf("role.yaml: %w", err)
	}
	const user = "pyrodist-operator-test"
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	for _, obj := range []client.Object{role, binding} {
		if err := k8sClient.Create(ctx, obj); err != nil {
			return nil, err
		}
	}
	u, err := env.AddUser(envtest.User{Name: user}, admin)
	if err != nil {
		return nil, err
	}
	return u.Config(), nil
}

// requestLog records the requests of one client, by method and path.
type requestLog struct {
	mu   sync.Mutex
	reqs []loggedRequest
}

type loggedRequest struct {
	method, path string
}

type countingTransport struct {
	next http.RoundTripper
	log  *requestLog
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.log.mu.Lock()
	t.log.reqs = append(t.log.reqs, loggedRequest{method: req.Method, path: req.URL.Path})
	t.log.mu.Unlock()
	return t.next.RoundTrip(req)
}

// mark returns a position in the log; mutatingSince lists the mutating
// requests (anything but GET, which also carries LIST and WATCH) made after
// it that touch namespace ns.
func (l *requestLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reqs)
}

func (l *requestLog) mutatingSince(mark int, namespaces ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.reqs[mark:] {
		if r.method == http.MethodGet || r.method == http.MethodHead || r.method == http.MethodOptions {
			continue
		}
		for _, ns := range namespaces {
			if strings.Contains(r.path, "/namespaces/"+ns+"/") {
				out = append(out, r.method+" "+r.path)
				break
			}
		}
	}
	return out
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{}
	ns.GenerateName = "t-"
	if err := k8sClient.Create(testCtx, ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// eventually polls cond until it returns nil or timeout passes; it fails the
// test with the last error. Polling waits for the reconciler; it asserts no
// timing.
func eventually(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
