package rules

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/test/testutil/rulesobject"
)

// msg builds a message from (field, value) pairs: a uint64 is a varint,
// a string or []byte a length-delimited field.
func msg(kv ...any) []byte {
	var b []byte
	for i := 0; i < len(kv); i += 2 {
		num := protowire.Number(kv[i].(int))
		switch v := kv[i+1].(type) {
		case uint64:
			b = protowire.AppendTag(b, num, protowire.VarintType)
			b = protowire.AppendVarint(b, v)
		case string:
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendString(b, v)
		case []byte:
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendBytes(b, v)
		}
	}
	return b
}

func TestParse(t *testing.T) {
	tenant := func(id string) []byte { return msg(1, id) }
	for _, tc := range []struct {
		name    string
		in      []byte
		lookup  [2]string
		want    placement.Policy
		found   bool
		created int64
	}{
		{
			name:   "fields as the proto numbers them",
			in:     msg(1, tenant("t"), 2, msg(1, uint64(0), 2, "svc", 3, uint64(6), 4, uint64(3), 5, uint64(2)), 3, uint64(1e18)),
			lookup: [2]string{"t", "svc"}, found: true, created: 1e18,
			want: placement.Policy{TenantShards: 6, DatasetShards: 3, Pick: placement.PickRoundRobin},
		},
		{
			name:   "another tenant's dataset of the same name is not found",
			in:     msg(1, tenant("t"), 2, msg(1, uint64(0), 2, "svc", 4, uint64(3))),
			lookup: [2]string{"u", "svc"},
		},
		{
			name:   "unknown fields are skipped, and an unknown load balancing is fingerprint",
			in:     msg(9, "x", 1, msg(1, "t", 7, uint64(1)), 2, msg(2, "svc", 4, uint64(2), 5, uint64(9), 8, "y")),
			lookup: [2]string{"t", "svc"}, found: true,
			want: placement.Policy{DatasetShards: 2},
		},
		{
			name:   "a load balancing beyond 32 bits is truncated as Pyroscope's decoder does",
			in:     msg(1, tenant("t"), 2, msg(2, "svc", 5, uint64(1<<32|2))),
			lookup: [2]string{"t", "svc"}, found: true,
			want: placement.Policy{Pick: placement.PickRoundRobin},
		},
		{
			name:   "the later rule of a dataset wins",
			in:     msg(1, tenant("t"), 2, msg(2, "svc", 4, uint64(2)), 2, msg(2, "svc", 4, uint64(5))),
			lookup: [2]string{"t", "svc"}, found: true,
			want: placement.Policy{DatasetShards: 5},
		},
		{
			name:   "empty object",
			in:     nil,
			lookup: [2]string{"t", "svc"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := r.Lookup(tc.lookup[0], tc.lookup[1])
			if ok != tc.found || got != tc.want {
				t.Fatalf("Lookup = %+v, %v; want %+v, %v", got, ok, tc.want, tc.found)
			}
			if r.CreatedAt().UnixNano() != tc.created {
				t.Fatalf("CreatedAt = %d, want %d", r.CreatedAt().UnixNano(), tc.created)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	valid := msg(1, msg(1, "t"), 2, msg(1, uint64(0), 2, "svc"))
	for _, tc := range []struct {
		name, in, err string
	}{
		{"truncated", string(valid[:len(valid)-2]), "unexpected EOF"},
		{"tenant index out of range", string(msg(1, msg(1, "t"), 2, msg(1, uint64(1), 2, "svc"))), "out of range"},
		{"dataset without tenants", string(msg(2, msg(2, "svc"))), "out of range"},
		{"wrong wire type", string(msg(3, "not a varint")), "wrong wire type"},
		{"limit as a string", string(msg(1, msg(1, "t"), 2, msg(4, "3"))), "wrong wire type"},
		{"end group", string(protowire.AppendTag(nil, 5, protowire.EndGroupType)), "end group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Parse = %v, %v; want an error containing %q", r, err, tc.err)
			}
		})
	}
}

func TestNilAndEmptyRules(t *testing.T) {
	var none *Rules
	if _, ok := none.Lookup("t", "svc"); ok || none.Len() != 0 || !none.CreatedAt().IsZero() {
		t.Fatal("nil rules have entries")
	}
	at := time.Unix(1700000000, 5)
	if e := Empty(at); e.Len() != 0 || !e.CreatedAt().Equal(at) {
		t.Fatalf("Empty(%v): %d entries, created %v", at, e.Len(), e.CreatedAt())
	}
	l := config.Defaults().Limits
	if got := none.Policy("t", "svc", &l); got != (placement.Policy{DatasetShards: 1}) {
		t.Fatalf("default policy %+v", got)
	}
}

// ingestion_tenant_shard_size raises the tenant's shards and never lowers
// them (Overrides.PlacementLimits at 3fe6a45); a rule ignores both.
func TestStatic(t *testing.T) {
	for _, tc := range []struct {
		tenantShards, shardSize int
		lb                      config.LoadBalancing
		want                    placement.Policy
	}{
		{0, 0, config.LoadBalancingDynamic, placement.Policy{DatasetShards: 2}},
		{4, 8, config.LoadBalancingFingerprint, placement.Policy{TenantShards: 8, DatasetShards: 2}},
		{10, 6, config.LoadBalancingRoundRobin, placement.Policy{TenantShards: 10, DatasetShards: 2, Pick: placement.PickRoundRobin}},
		{0, 5, config.LoadBalancingDynamic, placement.Policy{TenantShards: 5, DatasetShards: 2}},
	} {
		l := config.Defaults().Limits
		l.Placement.TenantShards, l.IngestionTenantShardSize, l.Placement.LoadBalancing = tc.tenantShards, tc.shardSize, tc.lb
		l.Placement.DefaultDatasetShards = 2
		if got := Static(&l); got != tc.want {
			t.Errorf("Static(tenant_shards=%d, shard_size=%d, %s) = %+v, want %+v", tc.tenantShards, tc.shardSize, tc.lb, got, tc.want)
		}
		r, err := Parse(msg(1, msg(1, "t"), 2, msg(2, "svc", 4, uint64(3))))
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Policy("t", "svc", &l); got != (placement.Policy{DatasetShards: 3}) {
			t.Errorf("rule with limits %+v: %+v", tc, got)
		}
	}
	if got := Static(nil); got != (placement.Policy{DatasetShards: 1}) {
		t.Errorf("Static(nil) = %+v", got)
	}
}

// Looking a policy up allocates nothing: the route does it per profile.
func TestPolicyDoesNotAllocate(t *testing.T) {
	r, err := Parse(msg(1, msg(1, "t"), 2, msg(2, "svc", 4, uint64(3))))
	if err != nil {
		t.Fatal(err)
	}
	l := config.Defaults().Limits
	tenant, hit, miss := "t", "svc", "other"
	if n := testing.AllocsPerRun(100, func() {
		_ = r.Policy(tenant, hit, &l)
		_ = r.Policy(tenant, miss, &l)
	}); n != 0 {
		t.Fatalf("%v allocations per lookup", n)
	}
}

// The tests' writer of rules objects reads back as it was meant.
func TestRulesObjectRoundTrip(t *testing.T) {
	at := time.Unix(1800000000, 0)
	r, err := Parse(rulesobject.Encode(at,
		rulesobject.Dataset{Tenant: "a", Name: "x", TenantShards: 4, DatasetShards: 2},
		rulesobject.Dataset{Tenant: "b", Name: "x", DatasetShards: 3, LoadBalancing: 2},
		rulesobject.Dataset{Tenant: "a", Name: "y", DatasetShards: 5, LoadBalancing: 1},
	))
	if err != nil {
		t.Fatal(err)
	}
	if !r.CreatedAt().Equal(at) || r.Len() != 3 {
		t.Fatalf("created %v, %d rules", r.CreatedAt(), r.Len())
	}
	for _, tc := range []struct {
		tenant, dataset string
		want            placement.Policy
	}{
		{"a", "x", placement.Policy{TenantShards: 4, DatasetShards: 2}},
		{"b", "x", placement.Policy{DatasetShards: 3, Pick: placement.PickRoundRobin}},
		{"a", "y", placement.Policy{DatasetShards: 5}},
	} {
		if got, ok := r.Lookup(tc.tenant, tc.dataset); !ok || got != tc.want {
			t.Errorf("%s/%s: %+v %v, want %+v", tc.tenant, tc.dataset, got, ok, tc.want)
		}
	}
}
