package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/distributor"
	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/test/corpus"
	"github.com/pyrodist/pyrodist/test/fakewriter"
)

const (
	writerHeartbeat  = 500 * time.Millisecond
	heartbeatTimeout = 5 * time.Second // the distributors' -segment-writer.ring.heartbeat-timeout
	datasetShards    = 2               // so the series fingerprint takes part in the shard
	numTenants       = 20
	numServices      = 8
	steadyPushes     = 240
	pushWorkers      = 6
	fallbackMetric   = "pyrodist_segment_writer_zone_fallback_total"
	attemptsMetric   = "pyroscope_segment_writer_client_request_duration_seconds_count"
	circuitMetric    = "pyrodist_segment_writer_client_circuit_open_total"
)

// Load phases, in order.
const (
	phaseSteady   = 1 // every writer up, nothing fails
	phaseFaults   = 2 // two writers refuse a few pushes with retryable codes
	phaseCrash    = 3 // one writer crashed mid-load
	phaseZoneLost = 4 // zone-c lost both its writers
)

var zones = []string{"zone-a", "zone-b", "zone-c"}

type writerNode struct {
	id, zone, ip                   string
	grpcPort, httpPort, gossipPort int
	recordFile                     string
	p                              *proc
}

func (w *writerNode) ringAddr() string { return hostPort(w.ip, w.grpcPort) }
func (w *writerNode) http() string     { return "http://" + hostPort(w.ip, w.httpPort) }
func (w *writerNode) gossip() string   { return hostPort(w.ip, w.gossipPort) }

type distNode struct {
	id, zone, ip         string
	httpPort, gossipPort int
	p                    *proc
	push                 pushv1connect.PusherServiceClient
}

func (d *distNode) http() string { return "http://" + hostPort(d.ip, d.httpPort) }

func startWriter(t *testing.T, dir string, w *writerNode, join []string) {
	t.Helper()
	args := []string{
		"-server.grpc-listen-address=" + w.ip, fmt.Sprintf("-server.grpc-listen-port=%d", w.grpcPort),
		"-server.http-listen-address=" + w.ip, fmt.Sprintf("-server.http-listen-port=%d", w.httpPort),
		"-memberlist.bind-addr=" + w.ip, fmt.Sprintf("-memberlist.bind-port=%d", w.gossipPort),
		fmt.Sprintf("-memberlist.advertise-port=%d", w.gossipPort),
		"-memberlist.nodename=" + w.id, "-memberlist.randomize-node-name=false",
		"-memberlist.leave-timeout=1s", "-memberlist.broadcast-timeout-for-local-updates-on-shutdown=1s",
		"-segment-writer.availability-zone=" + w.zone,
		"-segment-writer.lifecycler.ID=" + w.id,
		"-segment-writer.lifecycler.addr=" + w.ip,
		"-segment-writer.num-tokens=4",
		"-segment-writer.heartbeat-period=" + writerHeartbeat.String(),
		"-fakewriter.record-file=" + w.recordFile,
	}
	for _, j := range join {
		args = append(args, "-memberlist.join="+j)
	}
	w.p = startProc(t, dir, w.id, fakewriterBin, args...)
}

func startDistributor(t *testing.T, dir string, d *distNode, join []string, extra ...string) {
	t.Helper()
	args := []string{
		"-server.http-listen-address=" + d.ip, fmt.Sprintf("-server.http-listen-port=%d", d.httpPort),
		"-shutdown-delay=0s",
		"-memberlist.bind-addr=" + d.ip, fmt.Sprintf("-memberlist.bind-port=%d", d.gossipPort),
		fmt.Sprintf("-memberlist.advertise-port=%d", d.gossipPort),
		"-memberlist.nodename=" + d.id, "-memberlist.randomize-node-name=false",
		"-memberlist.leave-timeout=1s", "-memberlist.broadcast-timeout-for-local-updates-on-shutdown=1s",
		"-distributor.ring.instance-id=" + d.id, "-distributor.ring.instance-addr=" + d.ip,
		"-distributor.ring.heartbeat-period=1s",
		"-distributor.zone=" + d.zone, "-distributor.prefer-same-zone=true",
		"-auth.multitenancy-enabled=true",
		"-segment-writer.ring.heartbeat-timeout=" + heartbeatTimeout.String(),
		fmt.Sprintf("-adaptive-placement.default-dataset-shards=%d", datasetShards),
	}
	for _, j := range join {
		args = append(args, "-memberlist.join="+j)
	}
	args = append(args, extra...)
	d.p = startProc(t, dir, d.id, distributorBin, args...)
	d.push = pushv1connect.NewPusherServiceClient(httpClient, d.http())
}

// attempt is one client push and its outcome.
type attempt struct {
	pushID, tenant, service string
	dist                    *distNode
	path                    string // "push.v1" or "/ingest"
	phase                   int    // the load phase when the push returned
	acked                   bool
	err                     string
	took                    time.Duration
}

type loadGen struct {
	dists      []*distNode
	heap, cpu  []byte
	seq        atomic.Int64
	phase      atomic.Int64
	mu         sync.Mutex
	attempts   []attempt
	pushBudget time.Duration
}

// run pushes until ctx ends or, when limit > 0, limit pushes were made.
func (l *loadGen) run(ctx context.Context, limit int64) {
	l.runWith(ctx, limit, pushWorkers)
}

func (l *loadGen) runWith(ctx context.Context, limit int64, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := l.seq.Add(1) - 1
				if limit > 0 && i >= limit {
					return
				}
				l.one(i)
			}
		}()
	}
	wg.Wait()
}

func (l *loadGen) one(i int64) {
	a := attempt{
		pushID:  fmt.Sprintf("p%06d", i),
		tenant:  fmt.Sprintf("tenant-%02d", i%numTenants),
		service: fmt.Sprintf("svc-%d", (i/numTenants)%numServices),
		dist:    l.dists[i%int64(len(l.dists))],
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.pushBudget)
	defer cancel()
	start := time.Now()
	var err error
	if (i/3)%2 == 0 {
		a.path = "push.v1"
		err = pushV1(ctx, a, l.heap)
	} else {
		a.path = "/ingest"
		err = ingest(ctx, a, l.cpu)
	}
	a.took = time.Since(start)
	a.acked = err == nil
	if err != nil {
		a.err = err.Error()
	}
	a.phase = int(l.phase.Load())
	l.mu.Lock()
	l.attempts = append(l.attempts, a)
	l.mu.Unlock()
}

func pushV1(ctx context.Context, a attempt, prof []byte) error {
	req := connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: "memory"},
			{Name: "service_name", Value: a.service},
			{Name: "push_id", Value: a.pushID},
		},
		Samples: []*pushv1.RawSample{{RawProfile: prof, ID: a.pushID}},
	}}})
	req.Header().Set("X-Scope-OrgID", a.tenant)
	_, err := a.dist.push.Push(ctx, req)
	return err
}

func ingest(ctx context.Context, a attempt, prof []byte) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("profile", "profile.pprof")
	if err != nil {
		return err
	}
	fw.Write(prof)
	mw.Close()
	q := url.Values{
		"name":       {a.service + "{push_id=" + a.pushID + "}"},
		"spyName":    {"gospy"},
		"sampleRate": {"100"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.dist.http()+"/ingest?"+q.Encode(), &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-Scope-OrgID", a.tenant)
	res, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var b bytes.Buffer
		b.ReadFrom(res.Body)
		return fmt.Errorf("/ingest: %s: %s", res.Status, strings.TrimSpace(b.String()))
	}
	return nil
}

// recentCorpus is a corpus profile (runtime/pprof output) recorded now,
// gzipped, so the distributors' ingestion window accepts it.
func recentCorpus(t *testing.T, name string) []byte {
	t.Helper()
	p, ok := corpus.Get(name)
	if !ok {
		t.Fatalf("corpus has no %s profile", name)
	}
	p, err := p.At(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p.Gzipped
}

func TestDataPlane(t *testing.T) {
	requireBinaries(t)
	dir := t.TempDir()

	// 3 zones x 2 writers, one distributor per zone, each on its own IP.
	var writers []*writerNode
	for zi, z := range zones {
		for k := 1; k <= 2; k++ {
			ip := fmt.Sprintf("127.0.0.%d", 41+2*zi+k-1)
			id := fmt.Sprintf("sw-%c-%d", 'a'+zi, k)
			writers = append(writers, &writerNode{
				id: id, zone: z, ip: ip,
				grpcPort: freePort(t, ip), httpPort: freePort(t, ip), gossipPort: freePort(t, ip),
				recordFile: filepath.Join(dir, id+".jsonl"),
			})
		}
	}
	byID := map[string]*writerNode{}
	for _, w := range writers {
		byID[w.id] = w
	}
	var dists []*distNode
	for zi, z := range zones {
		ip := fmt.Sprintf("127.0.0.%d", 51+zi)
		dists = append(dists, &distNode{id: "dist-" + z, zone: z, ip: ip, httpPort: freePort(t, ip), gossipPort: freePort(t, ip)})
	}

	// The first writer seeds the cluster; everyone else joins two seeds, none
	// of which is killed below.
	seeds := []string{byID["sw-a-1"].gossip(), byID["sw-b-1"].gossip()}
	startWriter(t, dir, byID["sw-a-1"], nil)
	waitHTTP(t, byID["sw-a-1"].p, byID["sw-a-1"].http()+"/ready", 30*time.Second, nil)
	for _, w := range writers[1:] {
		join := seeds
		if w.id == "sw-b-1" {
			join = seeds[:1]
		}
		startWriter(t, dir, w, join)
	}
	for _, w := range writers {
		waitHTTP(t, w.p, w.http()+"/ready", 30*time.Second, nil)
	}
	for _, d := range dists {
		startDistributor(t, dir, d, seeds)
	}
	for _, d := range dists {
		waitHTTP(t, d.p, d.http()+"/ready", 60*time.Second, nil)
		waitHTTP(t, d.p, d.http()+"/metrics", 30*time.Second, func(body string) bool {
			active, _ := metric(body, "pyrodist_segment_writer_ring_instances", `state="ACTIVE"`)
			dists, _ := metric(body, "pyrodist_healthy_distributors")
			return active == 6 && dists == 3
		})
	}
	t.Logf("cluster up: %d writers, %d distributors, all seeing 6 ACTIVE writers and 3 distributors", len(writers), len(dists))

	// The ring every distributor sees now, as the placement package builds it.
	var all []placement.Instance
	for _, w := range writers {
		all = append(all, placement.Instance{ID: w.id, Addr: w.ringAddr(), Zone: w.zone, State: placement.Active, Tokens: 4})
	}
	defaults := config.Defaults()
	policy := distributor.PlacementPolicy(&defaults.Limits)
	policy.DatasetShards = datasetShards

	load := &loadGen{dists: dists, heap: recentCorpus(t, "heap"), cpu: recentCorpus(t, "cpu"), pushBudget: 15 * time.Second}

	// Phase 1: steady load, every writer up.
	load.phase.Store(phaseSteady)
	load.run(context.Background(), steadyPushes)

	// Phase 2: two writers refuse some pushes with retryable codes; the
	// distributors must retry the next candidate with the same shard id.
	post(t, byID["sw-a-1"].http()+"/control/fail?code=Unavailable&count=15")
	post(t, byID["sw-b-1"].http()+"/control/fail?code=ResourceExhausted&count=15")
	load.phase.Store(phaseFaults)
	load.run(context.Background(), 2*steadyPushes)
	post(t, byID["sw-a-1"].http()+"/control/fail?code=OK")
	post(t, byID["sw-b-1"].http()+"/control/fail?code=OK")

	// Phase 3: a writer crashes mid-load; phase 4: zone-c loses both writers
	// (one crashes, one shuts down as Pyroscope's does, leaving its entry
	// LEAVING) and its distributor falls back to the other zones.
	ctx, stop := context.WithCancel(context.Background())
	loadDone := make(chan struct{})
	load.phase.Store(phaseCrash)
	go func() { load.run(ctx, 0); close(loadDone) }()
	time.Sleep(time.Second)
	post(t, byID["sw-b-2"].http()+"/control/crash")
	byID["sw-b-2"].p.wait(t, 10*time.Second)
	time.Sleep(heartbeatTimeout + 2*time.Second)
	load.phase.Store(phaseZoneLost)
	byID["sw-c-1"].p.signal(syscall.SIGTERM)
	post(t, byID["sw-c-2"].http()+"/control/crash")
	byID["sw-c-2"].p.wait(t, 10*time.Second)
	byID["sw-c-1"].p.wait(t, 30*time.Second)
	if err := byID["sw-c-1"].p.err; err != nil {
		t.Errorf("sw-c-1 did not shut down cleanly on SIGTERM: %v", err)
	}
	time.Sleep(heartbeatTimeout + 2*time.Second)
	stop()
	<-loadDone

	// Every distributor ends up with the three writers left.
	for _, d := range dists {
		waitHTTP(t, d.p, d.http()+"/metrics", 20*time.Second, func(body string) bool {
			active, _ := metric(body, "pyrodist_segment_writer_ring_instances", `state="ACTIVE"`)
			return active == 3
		})
	}

	// Collect what the writers acknowledged: live ones over HTTP, dead ones
	// from the record file they appended to before each ack.
	recordsByPush := map[string][]fakewriter.Record{}
	totalRecords := 0
	for _, w := range writers {
		var recs []fakewriter.Record
		var err error
		if w.p.exited() {
			recs, err = fakewriter.ReadRecordFile(w.recordFile)
			if err != nil {
				t.Fatalf("%s record file: %v", w.id, err)
			}
		} else {
			var resp fakewriter.ProfilesResponse
			res, err := httpClient.Get(w.http() + "/profiles")
			if err != nil {
				t.Fatal(err)
			}
			err = json.NewDecoder(res.Body).Decode(&resp)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.ID != w.id || resp.Zone != w.zone || resp.Addr != w.ringAddr() {
				t.Fatalf("writer identity %+v, want %s %s %s", resp, w.id, w.zone, w.ringAddr())
			}
			if resp.Dropped != 0 {
				t.Fatalf("%s listed only part of its records (%d dropped)", w.id, resp.Dropped)
			}
			recs = resp.Profiles
		}
		for _, r := range recs {
			id := labelValue(r.Labels, "push_id")
			recordsByPush[id] = append(recordsByPush[id], r)
			totalRecords++
		}
	}

	// Rings that existed during the run: the full one minus any subset of
	// the writers that went away (they drop out once their heartbeat is stale).
	gone := []string{"sw-b-2", "sw-c-1", "sw-c-2"}
	var rings []*placement.Ring
	for mask := range 1 << len(gone) {
		var in []placement.Instance
		for _, i := range all {
			drop := false
			for b, g := range gone {
				if mask&(1<<b) != 0 && i.ID == g {
					drop = true
				}
			}
			if !drop {
				in = append(in, i)
			}
		}
		rings = append(rings, placement.NewRing(in))
	}
	full := rings[0]

	var (
		pushed, acked, lost, unacked, crossZone, fallbackZoneC, wrongShard, wrongWriter, failovers int
		dupes, splitShard, retried                                                                 int
		recordedPushes                                                                             int
	)
	zoneOf := map[string]string{}
	for _, w := range writers {
		zoneOf[w.id] = w.zone
	}
	var idx [6]int32
	for _, a := range load.attempts {
		pushed++
		recs := recordsByPush[a.pushID]
		if len(recs) > 0 {
			recordedPushes++
		}
		if !a.acked {
			unacked++
			if unacked <= 5 {
				t.Errorf("push %s (%s via %s, phase %d) not acknowledged: %s", a.pushID, a.path, a.dist.id, a.phase, a.err)
			}
			continue
		}
		acked++
		if len(recs) == 0 {
			lost++
			if lost <= 5 {
				t.Errorf("push %s (%s via %s, phase %d) acknowledged but recorded by no writer", a.pushID, a.path, a.dist.id, a.phase)
			}
			continue
		}
		byProfile := map[string]uint32{}
		for i, r := range recs {
			if r.Tenant != a.tenant || r.ServiceName != a.service {
				t.Errorf("push %s recorded as tenant %q service %q, sent as %q %q", a.pushID, r.Tenant, r.ServiceName, a.tenant, a.service)
			}
			if i > 0 {
				dupes++
			}
			// Retries of one segment-writer request carry one profile id and
			// must keep its shard.
			if s, ok := byProfile[r.ProfileID]; ok && s != r.Shard {
				splitShard++
				t.Errorf("push %s: profile %s recorded with shards %d and %d", a.pushID, r.ProfileID, s, r.Shard)
			}
			byProfile[r.ProfileID] = r.Shard

			key := placement.NewKey(r.Tenant, r.ServiceName, placement.Fingerprint(pairs(r.Labels)))
			shard, cands := full.Place(key, policy, a.dist.zone, idx[:])
			switch a.phase {
			case phaseSteady:
				// Nothing failed yet: Pyroscope's shard and the first
				// same-zone candidate, exactly.
				if r.Shard != shard {
					wrongShard++
					t.Errorf("push %s: shard %d, placement says %d", a.pushID, r.Shard, shard)
				}
				if want := full.Instance(cands[0]).ID; r.Writer != want {
					wrongWriter++
					t.Errorf("push %s: written by %s, placement's first candidate is %s", a.pushID, r.Writer, want)
				}
			case phaseFaults:
				// Same ring: the shard is exact; a refused push lands on the
				// next candidate, still with the first one's shard.
				if r.Shard != shard {
					wrongShard++
					t.Errorf("push %s: shard %d, placement says %d", a.pushID, r.Shard, shard)
				}
				switch r.Writer {
				case full.Instance(cands[0]).ID:
				case full.Instance(cands[1]).ID:
					retried++
				default:
					wrongWriter++
					t.Errorf("push %s: written by %s, not one of the first two candidates %s, %s", a.pushID, r.Writer, full.Instance(cands[0]).ID, full.Instance(cands[1]).ID)
				}
			default:
				okShard := false
				for _, rg := range rings {
					if s, _ := rg.Place(key, policy, a.dist.zone, idx[:]); s == r.Shard {
						okShard = true
					}
				}
				if !okShard {
					wrongShard++
					t.Errorf("push %s: shard %d matches no ring of the run", a.pushID, r.Shard)
				}
				if r.Writer != full.Instance(cands[0]).ID {
					failovers++
				}
			}
			if zoneOf[r.Writer] != a.dist.zone {
				if a.dist.zone == "zone-c" && a.phase == phaseZoneLost {
					fallbackZoneC++
				} else {
					crossZone++
					t.Errorf("push %s via %s (phase %d) crossed to %s in %s while its zone had writers", a.pushID, a.dist.id, a.phase, r.Writer, zoneOf[r.Writer])
				}
			}
		}
	}

	fallback := map[string]float64{}
	var failedAttempts, circuitOpen float64
	for _, d := range dists {
		body := scrape(t, d.http()+"/metrics")
		v, found := metric(body, fallbackMetric)
		if !found {
			t.Errorf("%s exposes no %s", d.id, fallbackMetric)
		}
		fallback[d.zone] = v
		all, _ := metric(body, attemptsMetric)
		ok, _ := metric(body, attemptsMetric, `status_code="OK"`)
		failedAttempts += all - ok
		c, _ := metric(body, circuitMetric)
		circuitOpen += c
	}

	// A distributor shutting down leaves the distributor ring, so the others
	// divide global rate limits by two from then on.
	leaving := dists[2]
	leaving.p.signal(syscall.SIGTERM)
	leaving.p.wait(t, 40*time.Second)
	if leaving.p.err != nil {
		t.Errorf("%s did not shut down cleanly on SIGTERM: %v", leaving.id, leaving.p.err)
	}
	for _, d := range dists[:2] {
		waitHTTP(t, d.p, d.http()+"/metrics", 20*time.Second, func(body string) bool {
			n, _ := metric(body, "pyrodist_healthy_distributors")
			return n == 2
		})
	}

	t.Logf("pushed=%d acknowledged=%d recorded=%d (records=%d, duplicates=%d) lost=%d unacknowledged=%d",
		pushed, acked, recordedPushes, totalRecords, dupes, lost, unacked)
	t.Logf("cross-zone: %d while the zone had writers, %d from zone-c after it lost its writers", crossZone, fallbackZoneC)
	t.Logf("retries: %d injected refusals went to the next candidate with the first one's shard; failed attempts %v, circuit-open skips %v; after the crash %d profiles were written by another writer than the full ring's first candidate",
		retried, failedAttempts, circuitOpen, failovers)
	t.Logf("wrong shard=%d, writer outside the expected candidates (phases 1-2)=%d, profile ids recorded with two shards=%d", wrongShard, wrongWriter, splitShard)
	t.Logf("fallback metric %s: zone-a=%v zone-b=%v zone-c=%v", fallbackMetric, fallback["zone-a"], fallback["zone-b"], fallback["zone-c"])

	if pushed <= steadyPushes {
		t.Errorf("only %d pushes, the load phases pushed nothing", pushed)
	}
	if retried == 0 {
		t.Error("no refused push was retried on the next candidate")
	}
	if failedAttempts == 0 {
		t.Errorf("%s counts no failed attempt after injected refusals and a crash", attemptsMetric)
	}
	if dupes == 0 && fallback["zone-c"] != float64(fallbackZoneC) {
		t.Errorf("%s on dist-zone-c = %v, but %d of its profiles were written in other zones", fallbackMetric, fallback["zone-c"], fallbackZoneC)
	}
	if fallbackZoneC == 0 {
		t.Error("zone-c lost its writers but no profile was written in another zone")
	}
	if fallback["zone-c"] == 0 {
		t.Errorf("%s on dist-zone-c is 0 after zone-c lost its writers", fallbackMetric)
	}
	if fallback["zone-a"] != 0 || fallback["zone-b"] != 0 {
		t.Errorf("%s is %v in zone-a and %v in zone-b, whose writers never all went away", fallbackMetric, fallback["zone-a"], fallback["zone-b"])
	}
}

func labelValue(ls []fakewriter.Label, name string) string {
	i := slices.IndexFunc(ls, func(l fakewriter.Label) bool { return l.Name == name })
	if i < 0 {
		return ""
	}
	return ls[i].Value
}

func pairs(ls []fakewriter.Label) []*typesv1.LabelPair {
	out := make([]*typesv1.LabelPair, len(ls))
	for i, l := range ls {
		out[i] = &typesv1.LabelPair{Name: l.Name, Value: l.Value}
	}
	return out
}
