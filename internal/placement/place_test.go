package placement

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

func TestPermutationVectors(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []int
	}{
		{4, []int{3, 1, 0, 2}},
		{8, []int{3, 6, 0, 5, 7, 4, 1, 2}},
		{12, []int{11, 6, 0, 5, 7, 8, 9, 2, 4, 1, 3, 10}},
	} {
		if got := Permutation(tc.n); !slices.Equal(got, tc.want) {
			t.Errorf("Permutation(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

// A ring larger than the precomputed step table regrows it from the same
// seed: its prefix is the small table and it is still a permutation.
func TestPermutationBeyondPrecomputed(t *testing.T) {
	n := precomputedSteps + 1000
	big := genSteps(n)
	if !slices.Equal(big[:precomputedSteps], stepTable(precomputedSteps)) {
		t.Fatal("regrown step table does not extend the precomputed one")
	}
	p := Permutation(n)
	seen := make([]bool, n)
	for _, v := range p {
		if v < 0 || v >= n || seen[v] {
			t.Fatalf("not a permutation: %d repeated or out of range", v)
		}
		seen[v] = true
	}
}

func abcRing() *Ring {
	return NewRing([]Instance{
		{ID: "c", Addr: "c:9095", Tokens: 4},
		{ID: "a", Addr: "a:9095", Tokens: 4},
		{ID: "b", Addr: "b:9095", Tokens: 4},
	})
}

func TestSpecInstanceOrder(t *testing.T) {
	r := abcRing()
	var table []int32
	for k := range r.Len() {
		table = append(table, r.ShardOwner(uint32(k+1)))
	}
	if want := []int32{2, 1, 0, 1, 1, 2, 2, 0, 1, 0, 0, 2}; !slices.Equal(table, want) {
		t.Fatalf("shard->instance = %v, want %v", table, want)
	}
	const h = 14046587775414411003
	if Jump(h, 12) != 8 || Jump(h, 8) != 6 {
		t.Fatalf("jump(h,12)=%d jump(h,8)=%d, want 8 and 6", Jump(h, 12), Jump(h, 8))
	}
	// Offsets 0..3 are chosen through the fingerprint (mod DatasetShards=4).
	for _, tc := range []struct {
		offset uint64
		shard  uint32
		first5 string
	}{
		{0, 3, "abbaa"},
		{1, 4, "bbaaa"},
		{2, 9, "baaba"},
		{3, 10, "aabba"},
	} {
		k := Key{Tenant: h, Dataset: h, Fingerprint: tc.offset}
		pos, shard := walkAll(r, k, Policy{TenantShards: 8, DatasetShards: 4})
		if shard != tc.shard {
			t.Errorf("offset %d: shard %d, want %d", tc.offset, shard, tc.shard)
		}
		var got string
		for _, p := range pos[:5] {
			got += r.Instance(r.ShardOwner(uint32(p + 1))).ID
		}
		if got != tc.first5 {
			t.Errorf("offset %d: first candidates %q, want %q", tc.offset, got, tc.first5)
		}
		if tc.offset == 2 {
			var all string
			for _, p := range pos {
				all += r.Instance(r.ShardOwner(uint32(p + 1))).ID
			}
			if all != "baabaccbbcca" {
				t.Errorf("all candidates %q, want baabaccbbcca", all)
			}
			want := []int{8, 9, 2, 3, 10, 11, 0, 1, 4, 5, 6, 7}
			if !slices.Equal(pos, want) {
				t.Errorf("visit order %v, want %v", pos, want)
			}
		}
	}
	// With the ACTIVE filter the distinct candidates for offset 2 are b, a, c.
	var buf [6]int32
	_, c := r.Place(Key{Tenant: h, Dataset: h, Fingerprint: 2}, Policy{TenantShards: 8, DatasetShards: 4}, "", buf[:])
	if got := ids(r, c); !slices.Equal(got, []string{"b", "a", "c"}) {
		t.Errorf("active candidates %v", got)
	}
}

// walkAll records every shard position Place visits, in order, by using a
// ring whose instances are all distinct (one token each) but keeping the
// original table: it replays the walk on a copy with a per-position owner.
func walkAll(r *Ring, k Key, p Policy) (positions []int, shard uint32) {
	n := r.Len()
	inst := make([]Instance, n)
	table := make([]int32, n)
	for i := range inst {
		inst[i] = Instance{ID: fmt.Sprintf("p%04d", i), Tokens: 1}
		table[i] = int32(i)
	}
	probe := newRing(inst, table)
	buf := make([]int32, n)
	shard, c := probe.Place(k, p, "", buf)
	for _, i := range c {
		positions = append(positions, int(i))
	}
	return positions, shard
}

func ids(r *Ring, c []int32) []string {
	out := make([]string, len(c))
	for i, x := range c {
		out[i] = r.Instance(x).ID
	}
	return out
}

type vector struct {
	Ring          string     `json:"ring"`
	TenantShards  int        `json:"tenant_shards"`
	DatasetShards int        `json:"dataset_shards"`
	Tenant        string     `json:"tenant"`
	Labels        [][]string `json:"labels"`
	TenantHash    string     `json:"tenant_hash"`
	DatasetHash   string     `json:"dataset_hash"`
	Fingerprint   string     `json:"fingerprint"`
	Shard         uint32     `json:"shard"`
	Candidates    []string   `json:"active_candidates"`
}

func vectorRings() map[string][]Instance {
	six := make([]Instance, 6)
	zones := []string{"zone-a", "zone-b", "zone-c"}
	for i := range six {
		six[i] = Instance{ID: fmt.Sprintf("segment-writer-%d", i), Addr: fmt.Sprintf("10.0.0.%d:9095", i), Zone: zones[i%3], Tokens: 4}
	}
	leaving := slices.Clone(six)
	leaving[2].State = Leaving
	var five []Instance
	for i, id := range []string{"sw-a", "sw-b", "sw-c", "sw-d", "sw-e"} {
		five = append(five, Instance{ID: id, Addr: id + ":9095", Tokens: 3 + i})
	}
	return map[string][]Instance{
		"six-writers-4-tokens":       six,
		"six-writers-one-leaving":    leaving,
		"five-writers-uneven-tokens": five,
	}
}

func TestPlacementVectors(t *testing.T) {
	f, err := os.Open("testdata/placement-vectors.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rings := map[string]*Ring{}
	for name, in := range vectorRings() {
		rings[name] = NewRing(in)
	}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		var v vector
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %d: %v", line, err)
		}
		r := rings[v.Ring]
		if r == nil {
			t.Fatalf("line %d: unknown ring %q", line, v.Ring)
		}
		var labels []*typesv1.LabelPair
		service := ""
		for _, l := range v.Labels {
			labels = append(labels, &typesv1.LabelPair{Name: l[0], Value: l[1]})
			if l[0] == "service_name" && service == "" {
				service = l[1]
			}
		}
		k := NewKey(v.Tenant, service, Fingerprint(labels))
		for _, h := range []struct {
			name string
			got  uint64
			want string
		}{{"tenant_hash", k.Tenant, v.TenantHash}, {"dataset_hash", k.Dataset, v.DatasetHash}, {"fingerprint", k.Fingerprint, v.Fingerprint}} {
			if strconv.FormatUint(h.got, 10) != h.want {
				t.Errorf("line %d: %s = %d, want %s", line, h.name, h.got, h.want)
			}
		}
		buf := make([]int32, len(r.Instances()))
		shard, c := r.Place(k, Policy{TenantShards: v.TenantShards, DatasetShards: v.DatasetShards}, "", buf)
		if shard != v.Shard {
			t.Errorf("line %d: shard %d, want %d", line, shard, v.Shard)
		}
		if got := ids(r, c); !slices.Equal(got, v.Candidates) {
			t.Errorf("line %d: candidates %v, want %v", line, got, v.Candidates)
		}
		// A shorter buffer gets the prefix of the same order.
		short := make([]int32, 2)
		if s2, c2 := r.Place(k, Policy{TenantShards: v.TenantShards, DatasetShards: v.DatasetShards}, "", short); s2 != shard || !slices.Equal(ids(r, c2), v.Candidates[:2]) {
			t.Errorf("line %d: 2-candidate prefix %v, want %v", line, ids(r, c2), v.Candidates[:2])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if line != 540 {
		t.Fatalf("read %d vectors, want 540", line)
	}
}

// The jump memo answers exactly what Jump does: on a miss, on a hit, for
// keys that share an entry, for one key at two bucket counts (a tenant's
// size inside the ring and the whole ring), and under concurrent use (run
// with -race).
func TestJumpMemo(t *testing.T) {
	var m jumpMemo
	const shared = 0xabc << 52 // the memo indexes by the top bits
	keys := []uint64{shared | 1, shared | 2, shared | 3, 0x0123456789abcdef, 42}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := keys[(i+g)%len(keys)]
				for _, buckets := range []int{1, 16, 120, 4096 + g} {
					if got, want := m.jump(k, buckets), Jump(k, buckets); got != want {
						t.Errorf("jump(%#x, %d) = %d, want %d", k, buckets, got, want)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	// A key seen once is then answered from the memo.
	m = jumpMemo{}
	m.jump(7, 100)
	if e := &m[7>>54]; e.key.Load() != 7 || e.val.Load() != 100<<32|uint64(Jump(7, 100)) {
		t.Fatalf("memo entry not filled: key %d val %#x", e.key.Load(), e.val.Load())
	}
}
