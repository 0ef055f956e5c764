package distributor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/pprof/profile"
	segmentwriterv1 "github.com/grafana/pyroscope/api/gen/proto/go/segmentwriter/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/internal/segmentwriter"
)

type routeRing struct{ r *placement.Ring }

func (s routeRing) Ring() *placement.Ring { return s.r }

// limitedRouter sends every profile with the same tenant limits, as if the
// pipeline had resolved them.
type limitedRouter struct {
	*Router
	l *config.Limits
}

func (r limitedRouter) Send(ctx context.Context, p *Profile) error {
	p.Limits = r.l
	return r.Router.Send(ctx, p)
}

func newTestRouter(ring RingSource, l *config.Limits, push Pusher, cfg RouterConfig) (limitedRouter, error) {
	r, err := NewRouter(ring, push, cfg)
	return limitedRouter{r, l}, err
}

func routePlacementLimits(tenantShards, datasetShards int, lb config.LoadBalancing) *config.Limits {
	l := config.Defaults().Limits
	l.Placement.TenantShards = tenantShards
	l.Placement.DefaultDatasetShards = datasetShards
	l.Placement.LoadBalancing = lb
	return &l
}

// routePusher records what the Router asked for.
type routePusher struct {
	mu    sync.Mutex
	reqs  []*segmentwriterv1.PushRequest
	cands [][]string
	zones [][]string
}

func (p *routePusher) Push(_ context.Context, req *segmentwriterv1.PushRequest, cands []*placement.Instance) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = append(p.reqs, req.CloneVT())
	var ids, zones []string
	for _, c := range cands {
		ids = append(ids, c.ID)
		zones = append(zones, c.Zone)
	}
	p.cands = append(p.cands, ids)
	p.zones = append(p.zones, zones)
	return nil
}

// routeVectorRings are the six-writer rings of the placement vectors.
func routeVectorRings() map[string]*placement.Ring {
	return map[string]*placement.Ring{
		"six-writers-4-tokens":    placement.NewRing(routeSixWriters(-1)),
		"six-writers-one-leaving": placement.NewRing(routeSixWriters(2)),
	}
}

// routeVectorLines reads a JSONL file of vectors.
func routeVectorLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, slices.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func routeSixWriters(leaving int) []placement.Instance {
	zones := []string{"zone-a", "zone-b", "zone-c"}
	var in []placement.Instance
	for i := range 6 {
		st := placement.Active
		if i == leaving {
			st = placement.Leaving
		}
		in = append(in, placement.Instance{ID: fmt.Sprintf("segment-writer-%d", i), Addr: fmt.Sprintf("10.0.0.%d:9095", i), Zone: zones[i%3], State: st, Tokens: 4})
	}
	return in
}

func routeProfile(tenant string, labels [][2]string) *Profile {
	p := &Profile{Tenant: tenant, Pprof: []byte("pprof bytes"), ID: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}
	for _, l := range labels {
		p.Labels = append(p.Labels, &typesv1.LabelPair{Name: l[0], Value: l[1]})
		if l[0] == "service_name" && p.Service == "" {
			p.Service = l[1]
		}
	}
	p.Fingerprint = placement.Fingerprint(p.Labels)
	return p
}

// The Router sends what Pyroscope's distributor computes: every vector of
// the six-writer rings gives the expected shard and candidate order.
func TestRouterMatchesPyroscopeVectors(t *testing.T) {
	rings := routeVectorRings()
	checked := 0
	for _, line := range routeVectorLines(t, "../placement/testdata/placement-vectors.jsonl") {
		var v struct {
			Ring          string     `json:"ring"`
			TenantShards  int        `json:"tenant_shards"`
			DatasetShards int        `json:"dataset_shards"`
			Tenant        string     `json:"tenant"`
			Labels        [][]string `json:"labels"`
			Fingerprint   string     `json:"fingerprint"`
			Shard         uint32     `json:"shard"`
			Candidates    []string   `json:"active_candidates"`
		}
		if err := json.Unmarshal(line, &v); err != nil {
			t.Fatal(err)
		}
		ring := rings[v.Ring]
		if ring == nil {
			continue
		}
		var labels [][2]string
		for _, l := range v.Labels {
			labels = append(labels, [2]string{l[0], l[1]})
		}
		p := routeProfile(v.Tenant, labels)
		if strconv.FormatUint(p.Fingerprint, 10) != v.Fingerprint {
			t.Fatalf("fingerprint %d, want %s", p.Fingerprint, v.Fingerprint)
		}
		pusher := &routePusher{}
		r, err := newTestRouter(routeRing{ring}, routePlacementLimits(v.TenantShards, v.DatasetShards, config.LoadBalancingDynamic), pusher, RouterConfig{Zone: "zone-b"})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Send(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		req := pusher.reqs[0]
		if req.Shard != v.Shard {
			t.Errorf("%v: shard %d, want %d", v.Labels, req.Shard, v.Shard)
		}
		want := v.Candidates[:min(len(v.Candidates), segmentwriter.MaxAttempts)]
		if !slices.Equal(pusher.cands[0], want) {
			t.Errorf("%v: candidates %v, want %v", v.Labels, pusher.cands[0], want)
		}
		if req.TenantId != v.Tenant || !bytes.Equal(req.ProfileId, p.ID[:]) || len(req.ProfileId) != 16 ||
			!bytes.Equal(req.Profile, p.Pprof) || len(req.Labels) != len(p.Labels) {
			t.Errorf("request %v does not carry the profile", req)
		}
		checked++
	}
	if checked < 300 {
		t.Fatalf("checked %d vectors", checked)
	}
}

func TestRouterEmptyRing(t *testing.T) {
	for _, ring := range []*placement.Ring{nil, placement.NewRing(nil)} {
		pusher := &routePusher{}
		r, _ := newTestRouter(routeRing{ring}, nil, pusher, RouterConfig{})
		err := r.Send(context.Background(), routeProfile("t", [][2]string{{"service_name", "s"}}))
		if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "service is unavailable" {
			t.Fatalf("err = %v", err)
		}
		if len(pusher.reqs) != 0 {
			t.Fatal("pushed with no ring")
		}
	}
}

func TestRouterSameZone(t *testing.T) {
	ring := placement.NewRing(routeSixWriters(-1))
	for i := range 50 {
		p := routeProfile(fmt.Sprintf("tenant-%d", i%5), [][2]string{{"__name__", "cpu"}, {"service_name", fmt.Sprintf("svc-%d", i)}})
		off, on := &routePusher{}, &routePusher{}
		lim := routePlacementLimits(0, 1, config.LoadBalancingFingerprint)
		r1, _ := newTestRouter(routeRing{ring}, lim, off, RouterConfig{Zone: "zone-c"})
		r2, _ := newTestRouter(routeRing{ring}, lim, on, RouterConfig{Zone: "zone-c", PreferSameZone: true})
		_ = r1.Send(context.Background(), p)
		_ = r2.Send(context.Background(), p)
		if off.reqs[0].Shard != on.reqs[0].Shard {
			t.Fatalf("same-zone preference changed the shard: %d vs %d", off.reqs[0].Shard, on.reqs[0].Shard)
		}
		if !slices.Equal(on.zones[0][:2], []string{"zone-c", "zone-c"}) {
			t.Fatalf("zone-c writers not first: %v %v", on.cands[0], on.zones[0])
		}
		// The others follow in Pyroscope's order.
		var rest []string
		for _, id := range off.cands[0] {
			if id != on.cands[0][0] && id != on.cands[0][1] {
				rest = append(rest, id)
			}
		}
		if !slices.Equal(on.cands[0][2:], rest) {
			t.Fatalf("other zones reordered: %v, Pyroscope's %v", on.cands[0], off.cands[0])
		}
	}
}

// swapRing is a ring source whose snapshot the test replaces.
type swapRing struct {
	r atomic.Pointer[placement.Ring]
}

func (s *swapRing) Ring() *placement.Ring { return s.r.Load() }

// The Router resolves its zone once per ring: when the ring changes and
// the zone's index in it with it, the preference follows the name.
func TestRouterSameZoneAcrossRingChange(t *testing.T) {
	first := placement.NewRing(routeSixWriters(-1))
	rotated := routeSixWriters(-1)
	next := map[string]string{"zone-a": "zone-c", "zone-b": "zone-a", "zone-c": "zone-b"}
	for i := range rotated {
		rotated[i].Zone = next[rotated[i].Zone]
	}
	second := placement.NewRing(rotated)
	if first.Zone("zone-c") == second.Zone("zone-c") {
		t.Fatal("test rings must place zone-c at different indices")
	}
	src := &swapRing{}
	pusher := &routePusher{}
	r, _ := newTestRouter(src, routePlacementLimits(0, 1, config.LoadBalancingFingerprint), pusher, RouterConfig{Zone: "zone-c", PreferSameZone: true})
	for i, ring := range []*placement.Ring{first, second, first} {
		src.r.Store(ring)
		for j := range 20 {
			p := routeProfile(fmt.Sprintf("tenant-%d", j%3), [][2]string{{"service_name", fmt.Sprintf("svc-%d", j)}})
			if err := r.Send(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			last := pusher.zones[len(pusher.zones)-1]
			if !slices.Equal(last[:2], []string{"zone-c", "zone-c"}) {
				t.Fatalf("ring %d profile %d: zones %v, want zone-c first", i, j, last)
			}
		}
	}
}

// Per-tenant limits drive the policy: with 4 dataset shards and
// round-robin, one series spreads over exactly the dataset's 4 shards.
func TestRouterTenantPolicy(t *testing.T) {
	ring := placement.NewRing(routeSixWriters(-1))
	p := routeProfile("tenant-x", [][2]string{{"__name__", "cpu"}, {"service_name", "checkout"}})
	datasetShards := map[uint32]bool{}
	for off := range 4 {
		k := placement.NewKey(p.Tenant, p.Service, uint64(off))
		s, _ := ring.Place(k, placement.Policy{TenantShards: 8, DatasetShards: 4}, "", nil)
		datasetShards[s] = true
	}
	pusher := &routePusher{}
	r, _ := newTestRouter(routeRing{ring}, routePlacementLimits(8, 4, config.LoadBalancingRoundRobin), pusher, RouterConfig{})
	seen := map[uint32]bool{}
	for range 200 {
		if err := r.Send(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	for _, req := range pusher.reqs {
		if !datasetShards[req.Shard] {
			t.Fatalf("shard %d outside the dataset's shards %v", req.Shard, datasetShards)
		}
		seen[req.Shard] = true
	}
	if len(seen) != 4 {
		t.Fatalf("round-robin used shards %v, want all of %v", seen, datasetShards)
	}
	// Fingerprint mode keeps the series on one shard.
	pusher = &routePusher{}
	r, _ = newTestRouter(routeRing{ring}, routePlacementLimits(8, 4, config.LoadBalancingFingerprint), pusher, RouterConfig{})
	for range 20 {
		_ = r.Send(context.Background(), p)
	}
	for _, req := range pusher.reqs {
		if req.Shard != pusher.reqs[0].Shard {
			t.Fatal("fingerprint mode moved a series")
		}
	}
}

// routeWriter is a segment-writer test double on 127.0.0.1.
type routeWriter struct {
	segmentwriterv1.UnimplementedSegmentWriterServiceServer
	addr string
	fail codes.Code
	mu   sync.Mutex
	got  []*segmentwriterv1.PushRequest
}

func (w *routeWriter) Push(_ context.Context, req *segmentwriterv1.PushRequest) (*segmentwriterv1.PushResponse, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, req.CloneVT())
	// (the test reads got and sets fail only between sends)
	if w.fail != codes.OK {
		return nil, status.Error(w.fail, "failing")
	}
	return &segmentwriterv1.PushResponse{}, nil
}

// startRouteWriters serves one routeWriter per zone entry on 127.0.0.1 and
// returns them with their ring instances (IDs w0, w1, ...).
func startRouteWriters(t *testing.T, zones ...string) ([]*routeWriter, []placement.Instance) {
	t.Helper()
	var writers []*routeWriter
	var in []placement.Instance
	for i, zone := range zones {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		w := &routeWriter{addr: lis.Addr().String()}
		s := grpc.NewServer()
		segmentwriterv1.RegisterSegmentWriterServiceServer(s, w)
		go func() { _ = s.Serve(lis) }()
		t.Cleanup(s.Stop)
		writers = append(writers, w)
		in = append(in, placement.Instance{ID: fmt.Sprintf("w%d", i), Addr: w.addr, Zone: zone, Tokens: 4})
	}
	return writers, in
}

// requests returns a copy of what the writer received so far.
func (w *routeWriter) requests() []*segmentwriterv1.PushRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

func (w *routeWriter) setFail(c codes.Code) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail = c
}

// End to end over real gRPC: the first candidate is down, the next one
// gets the same shard id and a profile that google/pprof accepts.
func TestRouterFailoverOverGRPC(t *testing.T) {
	writers, in := startRouteWriters(t, "z", "z", "z")
	ring := placement.NewRing(in)
	client, err := segmentwriter.New(segmentwriter.Config{SegmentWriter: config.Defaults().SegmentWriter}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.SetAddresses([]string{writers[0].addr, writers[1].addr, writers[2].addr})

	var buf bytes.Buffer
	prof := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10000000,
		Function:   []*profile.Function{{ID: 1, Name: "main"}},
	}
	prof.Location = []*profile.Location{{ID: 1, Line: []profile.Line{{Function: prof.Function[0], Line: 1}}}}
	prof.Sample = []*profile.Sample{{Location: prof.Location, Value: []int64{42}}}
	if err := prof.WriteUncompressed(&buf); err != nil {
		t.Fatal(err)
	}
	p := routeProfile("tenant-a", [][2]string{{"__name__", "process_cpu"}, {"service_name", "checkout"}})
	p.Pprof = buf.Bytes()

	var idx [6]int32
	shard, cands := ring.Place(placement.NewKey(p.Tenant, p.Service, p.Fingerprint), placement.Policy{DatasetShards: 1}, "", idx[:])
	byAddr := map[string]*routeWriter{}
	for _, w := range writers {
		byAddr[w.addr] = w
	}
	first, second := byAddr[ring.Instance(cands[0]).Addr], byAddr[ring.Instance(cands[1]).Addr]
	first.setFail(codes.Unavailable)

	r, _ := newTestRouter(routeRing{ring}, routePlacementLimits(0, 1, config.LoadBalancingDynamic), client, RouterConfig{})
	if err := r.Send(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if got := first.requests(); len(got) != 1 || got[0].Shard != shard {
		t.Fatalf("first candidate got %d requests", len(got))
	}
	secondGot := second.requests()
	if len(secondGot) != 1 || secondGot[0].Shard != shard {
		t.Fatalf("second candidate got %v, want one request on shard %d", secondGot, shard)
	}
	got, err := profile.ParseData(secondGot[0].Profile)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.CheckValid(); err != nil {
		t.Fatal(err)
	}
}

// Pyroscope's keys and defaults reach the policy; bad values are refused
// when the file is read.
func TestPlacementPolicyFromLimits(t *testing.T) {
	def := config.Defaults().Limits
	if got := PlacementPolicy(&def); got != (placement.Policy{TenantShards: 0, DatasetShards: 1, Pick: placement.PickFingerprint}) {
		t.Fatalf("default policy %+v", got)
	}
	if p := def.Placement; p.LoadBalancing != config.LoadBalancingDynamic {
		t.Fatalf("defaults %+v", p)
	}
	for _, tc := range []struct {
		yaml string
		want placement.Policy
		err  bool
	}{
		{"adaptive_placement_tenant_shards: 8\nadaptive_placement_default_dataset_shards: 3\n", placement.Policy{TenantShards: 8, DatasetShards: 3}, false},
		{"adaptive_placement_load_balancing: round-robin\n", placement.Policy{DatasetShards: 1, Pick: placement.PickRoundRobin}, false},
		{"adaptive_placement_load_balancing: fingerprint\n", placement.Policy{DatasetShards: 1}, false},
		{"adaptive_placement_load_balancing: dynamic\n", placement.Policy{DatasetShards: 1}, false},
		{"adaptive_placement_load_balancing: random\n", placement.Policy{}, true},
	} {
		l := config.Defaults().Limits
		err := yaml.Unmarshal([]byte(tc.yaml), &l)
		if tc.err {
			if err == nil {
				t.Errorf("%q: accepted", tc.yaml)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if err := l.Placement.Validate(); err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if got := PlacementPolicy(&l); got != tc.want {
			t.Errorf("%q: policy %+v, want %+v", tc.yaml, got, tc.want)
		}
	}
	if PlacementPolicy(nil) != (placement.Policy{DatasetShards: 1}) {
		t.Error("nil limits do not give the default policy")
	}
}

func BenchmarkRouterSend(b *testing.B) {
	var in []placement.Instance
	for i := range 30 {
		in = append(in, placement.Instance{ID: fmt.Sprintf("sw-%02d", i), Addr: fmt.Sprint(i), Zone: fmt.Sprint("zone-", i%3), Tokens: 4})
	}
	r, _ := newTestRouter(routeRing{placement.NewRing(in)}, routePlacementLimits(0, 1, config.LoadBalancingDynamic), routeNop{}, RouterConfig{Zone: "zone-1", PreferSameZone: true})
	p := routeProfile("tenant-a", [][2]string{{"__name__", "process_cpu"}, {"service_name", "checkout"}})
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Send(context.Background(), p); err != nil {
			b.Fatal(err)
		}
	}
}

type routeNop struct{}

func (routeNop) Push(context.Context, *segmentwriterv1.PushRequest, []*placement.Instance) error {
	return nil
}

// Same-zone preference over real gRPC: profiles stay in the zone while it
// has writers; when they all fail, the other zone takes them with the same
// shard id and the fallback counter says so.
func TestRouterZoneFallbackOverGRPC(t *testing.T) {
	writers, in := startRouteWriters(t, "zone-a", "zone-b", "zone-a", "zone-b")
	ring := placement.NewRing(in)
	reg := prometheus.NewRegistry()
	client, err := segmentwriter.New(segmentwriter.Config{SegmentWriter: config.Defaults().SegmentWriter, Zone: "zone-a", PreferSameZone: true}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	r, _ := newTestRouter(routeRing{ring}, routePlacementLimits(0, 1, config.LoadBalancingDynamic), client, RouterConfig{Zone: "zone-a", PreferSameZone: true})

	zoneOf := map[*routeWriter]string{}
	for i, w := range writers {
		zoneOf[w] = in[i].Zone
	}
	send := func(i int) uint32 {
		p := routeProfile("tenant", [][2]string{{"__name__", "cpu"}, {"service_name", fmt.Sprint("svc-", i)}})
		if err := r.Send(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		s, _ := ring.Place(placement.NewKey(p.Tenant, p.Service, p.Fingerprint), placement.Policy{DatasetShards: 1}, "", nil)
		return s
	}
	for i := range 20 {
		send(i)
	}
	for _, w := range writers {
		if zoneOf[w] != "zone-a" && len(w.requests()) > 0 {
			t.Fatalf("a profile crossed zones while zone-a had writers")
		}
	}
	if got := routeCounter(t, reg, "pyrodist_segment_writer_zone_fallback_total"); got != 0 {
		t.Fatalf("fallback counter = %v before any fallback", got)
	}
	for _, w := range writers {
		if zoneOf[w] == "zone-a" {
			w.setFail(codes.Unavailable)
		}
	}
	for i := range 10 {
		before := map[*routeWriter]int{}
		for _, w := range writers {
			before[w] = len(w.requests())
		}
		shard := send(100 + i)
		acked := 0
		for _, w := range writers {
			if got := w.requests(); zoneOf[w] == "zone-b" && len(got) > before[w] {
				acked++
				if got := got[len(got)-1].Shard; got != shard {
					t.Fatalf("fallback push on shard %d, want %d", got, shard)
				}
			}
		}
		if acked != 1 {
			t.Fatalf("%d zone-b writers got the fallback push, want 1", acked)
		}
	}
	if got := routeCounter(t, reg, "pyrodist_segment_writer_zone_fallback_total"); got != 10 {
		t.Fatalf("fallback counter = %v, want 10", got)
	}
}

func routeCounter(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
