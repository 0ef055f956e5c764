package controllers

import (
	"fmt"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/pyrodist/pyrodist/internal/manifests"
)

// Client defaults of the operator binary (and of the envtests, which measure
// with them). controller-runtime's own default of 20 QPS makes a cold start
// over many PyroscopeDistributors needlessly slow; a no-op resync sends
// nothing, so a higher ceiling costs nothing in steady state.
const (
	DefaultQPS         = 50
	DefaultBurst       = 100
	DefaultConcurrency = 4
)

// DiscoverClusterFacts asks the API server for its version once, at start:
// the builders pick the shared Service's trafficDistribution from it.
func DiscoverClusterFacts(cfg *rest.Config, defaultImage string) (manifests.ClusterFacts, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return manifests.ClusterFacts{}, fmt.Errorf("discovery client: %w", err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return manifests.ClusterFacts{}, fmt.Errorf("server version: %w", err)
	}
	return manifests.ClusterFacts{ServerMinor: manifests.ServerMinor(v), DefaultImage: defaultImage}, nil
}
