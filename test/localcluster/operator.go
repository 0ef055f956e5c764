package localcluster

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LocalOperator is an operator binary running on this machine in place of the
// pod of an installed chart.
type LocalOperator struct {
	*Process
	// Args are the flags of the chart's Deployment, as given to the process.
	ChartArgs   []string
	MetricsPort int
	ProbePort   int
	// ServiceAccount is "namespace/name" of the identity the process has.
	ServiceAccount string
}

// StartLocalOperator runs bin with the flags of the Deployment namespace/name
// (the chart's operator), moving only its listen addresses to free local ports.
// It authenticates as admin and impersonates the Deployment's ServiceAccount,
// so the chart's RBAC is exactly what the process may do. It returns once the
// operator's /readyz answers.
func (c *Cluster) StartLocalOperator(ctx context.Context, bin, namespace, name, procName string) (*LocalOperator, error) {
	dep, err := c.Client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if len(dep.Spec.Template.Spec.Containers) == 0 {
		return nil, fmt.Errorf("deployment %s/%s has no container", namespace, name)
	}
	ctr := dep.Spec.Template.Spec.Containers[0]
	sa := dep.Spec.Template.Spec.ServiceAccountName
	kc, err := c.WriteImpersonatingKubeconfig(procName+".kubeconfig", namespace, sa)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	lo := &LocalOperator{ChartArgs: ctr.Args, MetricsPort: ports[0], ProbePort: ports[1], ServiceAccount: namespace + "/" + sa}
	args := make([]string, 0, len(ctr.Args))
	for _, a := range ctr.Args {
		switch {
		case strings.HasPrefix(a, "--metrics-bind-address=") && a != "--metrics-bind-address=0":
			a = "--metrics-bind-address=127.0.0.1:" + strconv.Itoa(lo.MetricsPort)
		case strings.HasPrefix(a, "--health-probe-bind-address="):
			a = "--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(lo.ProbePort)
		}
		args = append(args, a)
	}
	// controller-runtime reads KUBECONFIG; in a pod it would use the mounted token instead.
	env := []string{"POD_NAMESPACE=" + namespace, "KUBECONFIG=" + kc}
	p, err := c.StartProcess(procName, env, bin, args...)
	if err != nil {
		return nil, err
	}
	lo.Process = p
	probe := fmt.Sprintf("http://127.0.0.1:%d/readyz", lo.ProbePort)
	if err := waitFor(ctx, 90*time.Second, p, procName, HTTPOK(http.DefaultClient, probe)); err != nil {
		return nil, err
	}
	c.logf("%s running as system:serviceaccount:%s:%s", procName, namespace, sa)
	return lo, nil
}

// Stop ends the operator: SIGTERM, then SIGKILL after grace.
func (o *LocalOperator) Stop(grace time.Duration) {
	stopPID(o.Cmd.Process.Pid, grace)
	select {
	case <-o.exited:
	case <-time.After(5 * time.Second):
	}
}
