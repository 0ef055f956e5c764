package controllers

import (
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

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

// CacheOptions limits the manager's cache to what the operator needs: the
// given namespaces (all when empty) and, for the child kinds, only objects
// carrying the managed-by label every child has. Without the label filter
// the operator would hold every Deployment, Service and ConfigMap of the
// cluster in memory. A child whose label was removed by hand drops out of the
// cache, looks missing, and is applied again, which restores the label.
func CacheOptions(namespaces []string) cache.Options {
	var o cache.Options
	if len(namespaces) > 0 {
		o.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			o.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	managed := labels.SelectorFromSet(labels.Set{manifests.LabelManagedBy: manifests.ManagedBy})
	o.ByObject = map[client.Object]cache.ByObject{}
	for _, list := range manifests.OwnedObjectLists() {
		obj, err := itemOf(list)
		if err != nil {
			panic(err) // a programming error in OwnedObjectLists
		}
		o.ByObject[obj] = cache.ByObject{Label: managed}
	}
	// The slices of our Services carry the Services' labels.
	o.ByObject[&discoveryv1.EndpointSlice{}] = cache.ByObject{Label: managed}
	// The ring-health poller lists distributor pods; only those.
	o.ByObject[&corev1.Pod{}] = cache.ByObject{Label: managed}
	return o
}

// itemOf returns an empty object of the kind a typed list holds.
func itemOf(list client.ObjectList) (client.Object, error) {
	v := reflect.ValueOf(list).Elem().FieldByName("Items")
	if !v.IsValid() || v.Kind() != reflect.Slice {
		return nil, fmt.Errorf("%T has no Items slice", list)
	}
	obj, ok := reflect.New(v.Type().Elem()).Interface().(client.Object)
	if !ok {
		return nil, fmt.Errorf("%T items are not client.Objects", list)
	}
	return obj, nil
}
