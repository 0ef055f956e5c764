package manifests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/grafana/dskit/tenant"
	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"

	v1 "github.com/pyrodist/pyrodist/api/v1alpha1"
	"github.com/pyrodist/pyrodist/internal/config"
)

const mib = 1 << 20

// Defaults the operator applies where the CRD has no marker (replicas and
// autoscaling are exclusive, so neither can carry a default).
const (
	defaultReplicasPerZone  = 2
	defaultAutoscalingMin   = 2
	defaultCPUTargetPercent = 70
)

// renderedConfig is what goes into the ConfigMap.
type renderedConfig struct {
	cfg           config.Config
	configYAML    string
	overridesYAML string
	hash          string // sha256 of configYAML
}

// distributorConfig maps the spec onto the distributor's config type,
// starting from the distributor's own flag defaults.
func distributorConfig(pd *v1.PyroscopeDistributor, facts ClusterFacts) (config.Config, error) {
	s := &pd.Spec
	c := config.Defaults()
	c.Server.HTTPListenPort = HTTPPort

	port := s.Memberlist.Port
	if port == 0 {
		port = 7946
	}
	c.Memberlist.BindPort = int(port)
	c.Memberlist.ClusterLabel = s.Memberlist.ClusterLabel
	// Our own headless Service first: distributors find each other even when
	// the Pyroscope members listed after it are briefly unreachable.
	c.Memberlist.JoinMembers = append([]string{
		fmt.Sprintf("dns+%s:%d", serviceHost(MemberlistServiceName(pd.Name), pd.Namespace, facts.ClusterDomain), port),
	}, s.Memberlist.Join...)

	if err := applyTLS(&c, s.TLS); err != nil {
		return c, err
	}
	if err := applyStorage(&c, s.Storage); err != nil {
		return c, err
	}

	c.Distributor.PreferSameZone = s.Placement.PreferSameZone == nil || *s.Placement.PreferSameZone
	c.MultitenancyEnabled = s.Multitenancy
	c.RuntimeConfig.File = configMountPath + "/" + OverridesFile

	if s.Placement.TenantShards != nil {
		c.Limits.Placement.TenantShards = int(*s.Placement.TenantShards)
	}
	if s.Placement.DatasetShards != nil {
		c.Limits.Placement.DefaultDatasetShards = int(*s.Placement.DatasetShards)
	}
	if s.Placement.LoadBalancing != "" {
		if err := setLoadBalancing(&c.Limits, s.Placement.LoadBalancing); err != nil {
			return c, fmt.Errorf("spec.placement.loadBalancing: %w", err)
		}
	}
	d := s.Limits.Defaults
	if d.TenantShards != nil || d.DatasetShards != nil || d.LoadBalancing != "" {
		return c, fmt.Errorf("spec.limits.defaults: shard settings belong in spec.placement")
	}
	if d.Usage != nil {
		return c, fmt.Errorf("spec.limits.defaults: usage limits are per tenant (spec.limits.overrides)")
	}
	if err := applyRates(&c.Limits, d, "spec.limits.defaults"); err != nil {
		return c, err
	}
	if err := applyIngestion(&c.Limits, d.IngestionLimits, "spec.limits.defaults"); err != nil {
		return c, err
	}
	return c, nil
}

// tenantOverrides computes each tenant's effective limits: the configured
// defaults with the fields the spec names replaced.
func tenantOverrides(pd *v1.PyroscopeDistributor, defaults config.Limits) (config.Overrides, error) {
	out := config.Overrides{Overrides: map[string]config.Limits{}}
	for _, id := range slices.Sorted(maps.Keys(pd.Spec.Limits.Overrides)) {
		if err := tenant.ValidTenantID(id); id == "" || err != nil {
			return out, fmt.Errorf("spec.limits.overrides: invalid tenant ID %q", id)
		}
		o := pd.Spec.Limits.Overrides[id]
		l := defaults
		field := fmt.Sprintf("spec.limits.overrides[%s]", id)
		if err := applyRates(&l, o, field); err != nil {
			return out, err
		}
		if err := applyIngestion(&l, o.IngestionLimits, field); err != nil {
			return out, err
		}
		if err := applyUsage(&l, o.Usage, field); err != nil {
			return out, err
		}
		if o.TenantShards != nil {
			l.Placement.TenantShards = int(*o.TenantShards)
		}
		if o.DatasetShards != nil {
			l.Placement.DefaultDatasetShards = int(*o.DatasetShards)
		}
		if o.LoadBalancing != "" {
			if err := setLoadBalancing(&l, o.LoadBalancing); err != nil {
				return out, fmt.Errorf("%s.loadBalancing: %w", field, err)
			}
		}
		out.Overrides[id] = l
	}
	return out, nil
}

func applyRates(l *config.Limits, t v1.TenantLimits, field string) error {
	if t.IngestionRate != nil {
		v, err := mibOf(*t.IngestionRate, field+".ingestionRate")
		if err != nil {
			return err
		}
		l.IngestionRateMB = v
	}
	if t.IngestionBurstSize != nil {
		v, err := mibOf(*t.IngestionBurstSize, field+".ingestionBurstSize")
		if err != nil {
			return err
		}
		l.IngestionBurstSizeMB = v
	}
	return nil
}

// mibOf converts a byte quantity to the MiB the distributor's limits use.
func mibOf(q resource.Quantity, field string) (float64, error) {
	if q.Sign() <= 0 {
		return 0, fmt.Errorf("%s must be positive, got %s", field, q.String())
	}
	return q.AsApproximateFloat64() / mib, nil
}

// setLoadBalancing maps the CRD enum (the same three words) onto the config
// type, which validates it once more.
func setLoadBalancing(l *config.Limits, lb v1.LoadBalancing) error {
	return l.Placement.LoadBalancing.Set(string(lb))
}

func serviceHost(svc, ns, clusterDomain string) string {
	if clusterDomain == "" {
		// Resolved through the pod's DNS search path; works for any cluster domain.
		return svc + "." + ns + ".svc"
	}
	return svc + "." + ns + ".svc." + clusterDomain
}

func renderConfig(pd *v1.PyroscopeDistributor, facts ClusterFacts) (*renderedConfig, error) {
	c, err := distributorConfig(pd, facts)
	if err != nil {
		return nil, err
	}
	ov, err := tenantOverrides(pd, c.Limits)
	if err != nil {
		return nil, err
	}
	// Refuse what the distributor would refuse at start (or on reload), so a
	// bad spec shows up as a condition, not as crash-looping pods.
	if err := c.Limits.Placement.Validate(); err != nil {
		return nil, fmt.Errorf("spec.placement: %w", err)
	}
	for _, tenant := range slices.Sorted(maps.Keys(ov.Overrides)) {
		l := ov.Overrides[tenant]
		if err := l.Placement.Validate(); err != nil {
			return nil, fmt.Errorf("spec.limits.overrides[%s]: %w", tenant, err)
		}
	}
	cy, err := marshalConfig(c)
	if err != nil {
		return nil, err
	}
	if err := checkExpandable(cy, pd.Spec.Storage); err != nil {
		return nil, err
	}
	oy, err := marshalOverrides(ov, c.Limits)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(cy)
	return &renderedConfig{
		cfg:        c,
		configYAML: string(cy), overridesYAML: string(oy),
		hash: hex.EncodeToString(sum[:]),
	}, nil
}

// marshalConfig writes config.yaml with only the settings that differ from
// the distributor's flag defaults: the distributor starts from those defaults
// and reads the file over them (dskit style). The file stays short and its
// hash, which rolls pods, moves only when a setting the operator owns does.
//
// distributor.zone is left out: one file serves every zone and each
// Deployment passes its zone as -distributor.zone.
func marshalConfig(c config.Config) ([]byte, error) {
	c.Distributor.Zone = ""
	doc, err := toNode(c)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", ConfigFileName, err)
	}
	def, err := defaultsNode()
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", ConfigFileName, err)
	}
	dropDefaults(doc, def)
	return encodeNode(doc, ConfigFileName)
}

// marshalOverrides writes overrides.yaml with, per tenant, only the limits
// that differ from the configured defaults: a tenant's entry starts from the
// defaults in config.yaml, so later changes to the defaults reach every tenant
// that did not override them.
func marshalOverrides(ov config.Overrides, defaults config.Limits) ([]byte, error) {
	def, err := toNode(defaults)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", OverridesFile, err)
	}
	tenants := &yaml.Node{Kind: yaml.MappingNode}
	for _, tenant := range slices.Sorted(maps.Keys(ov.Overrides)) {
		n, err := toNode(ov.Overrides[tenant])
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", OverridesFile, err)
		}
		dropDefaults(n, def)
		tenants.Content = append(tenants.Content, scalar(tenant), n)
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{scalar("overrides"), tenants}}
	return encodeNode(root, OverridesFile)
}

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// toNode encodes v through its yaml tags into a node tree.
func toNode(v any) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%T does not encode to a YAML mapping", v)
	}
	return &n, nil
}

// defaultsNode is config.Defaults() as a node tree; the flag defaults are
// fixed for the life of the process, so it is built once.
var defaultsNode = sync.OnceValues(func() (*yaml.Node, error) { return toNode(config.Defaults()) })

func encodeNode(n *yaml.Node, file string) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("render %s: %w", file, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render %s: %w", file, err)
	}
	return buf.Bytes(), nil
}

// dropDefaults removes from mapping n every key whose value equals the one in
// def, recursing into nested mappings and dropping those left empty.
func dropDefaults(n, def *yaml.Node) {
	if n.Kind != yaml.MappingNode || def == nil || def.Kind != yaml.MappingNode {
		return
	}
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		d := mappingValue(def, k.Value)
		if d != nil {
			if v.Kind == yaml.MappingNode && d.Kind == yaml.MappingNode {
				dropDefaults(v, d)
				if len(v.Content) == 0 {
					continue
				}
			} else if sameNode(v, d) {
				continue
			}
		}
		kept = append(kept, k, v)
	}
	n.Content = kept
}

func sameNode(a, b *yaml.Node) bool {
	if a.Kind != b.Kind || len(a.Content) != len(b.Content) {
		return false
	}
	if a.Kind == yaml.ScalarNode {
		return a.Value == b.Value && a.ShortTag() == b.ShortTag()
	}
	for i := range a.Content {
		if !sameNode(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}

func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
