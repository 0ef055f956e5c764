//go:build tools

// Package tools pins the Kubernetes control-plane binaries that tests and the
// demo build from source (there are no prebuilt downloads here).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
