// Package manifests turns a PyroscopeDistributor (plus a few facts about the
// cluster) into the Kubernetes objects it wants. It is pure: no client, no
// clock, no randomness; the same input always gives the same objects, which
// golden files pin down.
//
// The API the controller codes against:
//
//	desired, err := manifests.Build(pd, manifests.ClusterFacts{
//		ServerMinor:  34,                       // manifests.ServerMinor(discoveryInfo)
//		DefaultImage: "ghcr.io/pyrodist/pyrodist:v0.1.0",
//	})
//	desired.Objects() []client.Object  // every child, in apply order, TypeMeta set,
//	                                   // labels set, no owner references
//	desired.Zones []ZoneObjects        // per zone: Deployment, Service, PDB, HPA (nil when
//	                                   // not autoscaled or disabled), Autoscaled, Replicas
//	desired.Zone(name) *ZoneObjects
//	desired.Wants(obj) bool            // false for an owned child the spec no longer wants (prune it)
//	desired.TrafficDistribution        // the shared Service's mode, or "None": for status
//	desired.ConfigHash                 // sha256 of config.yaml, also on every pod template
//	desired.Version                    // the target version every zone's pod template carries
//	manifests.PlanRollout(...)         // which zones roll now and which keep their template
//	desired.HoldZone(zone, liveTmpl)   // keep a zone on its live pod template
//	desired.Warnings                   // human-readable notes worth an Event
//	manifests.OwnedObjectLists()       // the list types to search when pruning
//	manifests.OwnerLabels(name)        // labels every child carries (list selector for pruning)
//
// Replicas: when ZoneObjects.Autoscaled is true the Deployment's spec.replicas
// is nil and the zone's HPA owns it; the controller must not apply replicas
// then (except once, with the live count, when handing over). Otherwise
// ZoneObjects.Replicas is the count to apply (0 for a disabled zone).
//
// Config: config.yaml (static) lives in an immutable ConfigMap per version,
// <name>-config-<hash10>, which the pod template names, so a change rolls
// pods (zone by zone, rollout.go); overrides.yaml (per-tenant limits; the
// distributor reloads it, so changing it rolls nothing) lives in the mutable
// <name>-overrides. Both are rendered from internal/config types so the
// operator and the distributor can never disagree on keys (configversion.go).
package manifests
