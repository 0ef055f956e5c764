package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pyrodist/pyrodist/test/fakewriter"
)

// TestFaultCampaign runs the faults an operator meets, under load, against
// three fake writers and two distributors with a 64 MiB in-flight budget:
// writers killed one at a time, every writer stalled, and a distributor
// stopped with SIGTERM. After each, every acknowledged push must be in a
// writer's records (acknowledged means stored; duplicates are counted, as a
// client retrying a push that was in fact stored would make them).
// PYRODIST_CAMPAIGN=long stalls the writers for 60 s instead of 8 s and
// kills each writer twice.
func TestFaultCampaign(t *testing.T) {
	requireBinaries(t)
	long := os.Getenv("PYRODIST_CAMPAIGN") == "long"
	dir := t.TempDir()

	var writers []*writerNode
	for k := range 3 {
		ip := fmt.Sprintf("127.0.0.%d", 71+k)
		id := fmt.Sprintf("sw-f-%d", k+1)
		writers = append(writers, &writerNode{id: id, zone: "zone-a", ip: ip,
			grpcPort: freePort(t, ip), httpPort: freePort(t, ip), gossipPort: freePort(t, ip),
			recordFile: filepath.Join(dir, id+".jsonl")})
	}
	seed := []string{writers[0].gossip()}
	startWriter(t, dir, writers[0], nil)
	waitHTTP(t, writers[0].p, writers[0].http()+"/ready", 30*time.Second, nil)
	for _, w := range writers[1:] {
		startWriter(t, dir, w, seed)
	}
	var dists []*distNode
	for k := range 2 {
		ip := fmt.Sprintf("127.0.0.%d", 76+k)
		d := &distNode{id: fmt.Sprintf("dist-f-%d", k+1), zone: "zone-a", ip: ip, httpPort: freePort(t, ip), gossipPort: freePort(t, ip)}
		startDistributor(t, dir, d, seed, "-distributor.max-inflight-bytes="+strconv.Itoa(campaignBudget),
			"-distributor.ingestion-rate-limit-mb=1000", "-distributor.ingestion-burst-size-mb=1000")
		dists = append(dists, d)
	}
	waitRing := func(active int) {
		for _, d := range dists {
			if d.p.exited() {
				continue
			}
			waitHTTP(t, d.p, d.http()+"/metrics", 60*time.Second, func(body string) bool {
				n, _ := metric(body, "pyrodist_segment_writer_ring_instances", `state="ACTIVE"`)
				return int(n) == active
			})
		}
	}
	waitRing(3)

	var report strings.Builder
	fmt.Fprintf(&report, "| fault | pushes | acknowledged | acknowledged, not stored | stored twice or more | refused or failed |\n|---|---|---|---|---|---|\n")
	// check matches a load's acknowledged pushes with every writer's records.
	check := func(fault string, load *loadGen) {
		records := recordedPushes(t, writers)
		var acked, lost, dupes, failed int
		for _, a := range load.attempts {
			n := len(records[a.pushID])
			if n > 1 {
				dupes++
			}
			if !a.acked {
				failed++
				continue
			}
			acked++
			if n == 0 {
				lost++
				if lost <= 5 {
					t.Errorf("%s: push %s (%s via %s) acknowledged but stored by no writer", fault, a.pushID, a.path, a.dist.id)
				}
			}
		}
		fmt.Fprintf(&report, "| %s | %d | %d | %d | %d | %d |\n", fault, len(load.attempts), acked, lost, dupes, failed)
		if acked == 0 {
			t.Errorf("%s: no push was acknowledged", fault)
		}
	}
	newLoad := func(prefix string, ds []*distNode) *loadGen {
		l := &loadGen{dists: ds, heap: recentCorpus(t, "heap"), cpu: recentCorpus(t, "cpu"), pushBudget: 20 * time.Second}
		l.seq.Store(pushIDBase(prefix))
		return l
	}

	// Writers killed one at a time, each restarted before the next goes.
	{
		load := newLoad("kill", dists)
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { load.run(ctx, 0); close(done) }()
		rounds := scale(long, 1, 2)
		for range rounds {
			for _, w := range writers {
				time.Sleep(time.Second)
				w.p.signal(syscall.SIGKILL)
				w.p.wait(t, 10*time.Second)
				time.Sleep(heartbeatTimeout + time.Second) // the ring notices
				startWriter(t, dir, w, []string{writers[(slices.Index(writers, w)+1)%len(writers)].gossip()})
				waitHTTP(t, w.p, w.http()+"/ready", 30*time.Second, nil)
				waitRing(3)
			}
		}
		time.Sleep(time.Second)
		stop()
		<-done
		check(fmt.Sprintf("each of 3 writers killed (SIGKILL) and restarted, %d round(s)", rounds), load)
	}

	// Every writer stalls: pushes wait on them, the budget fills, and the
	// distributors refuse the rest at once with 429 instead of growing (256
	// clients pushing at once hold more than the budget).
	{
		stall := time.Duration(scale(long, 8, 60)) * time.Second
		load := newLoad("stall", dists)
		peak := make([]*rssSampler, len(dists))
		for i, d := range dists {
			peak[i] = sampleRSS(d.p.cmd.Process.Pid)
		}
		for _, w := range writers {
			post(t, w.http()+"/control/latency?duration="+stall.String())
		}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { load.runWith(ctx, 0, 256); close(done) }()
		time.Sleep(stall)
		for _, w := range writers {
			post(t, w.http()+"/control/latency?duration=0s")
		}
		time.Sleep(3 * time.Second)
		stop()
		<-done
		var maxRSS int64
		for _, s := range peak {
			maxRSS = max(maxRSS, s.stop())
		}
		var refusals []time.Duration
		for _, a := range load.attempts {
			if strings.Contains(a.err, "429") || strings.Contains(a.err, "resource_exhausted") {
				refusals = append(refusals, a.took)
			}
		}
		slices.Sort(refusals)
		p99 := time.Duration(0)
		if len(refusals) > 0 {
			p99 = refusals[len(refusals)*99/100]
		}
		check(fmt.Sprintf("all 3 writers stalled %v, then resumed", stall), load)
		fmt.Fprintf(&report, "\nDuring the stall: %d pushes refused with 429, p99 %v to answer; distributor RSS peaked at %s (budget %s).\n",
			len(refusals), p99.Round(time.Millisecond), mib(maxRSS), mib(campaignBudget))
		if maxRSS > campaignBudget+rssAllowance {
			t.Errorf("RSS peaked at %s while writers stalled, over the budget + 100 MB", mib(maxRSS))
		}
		if len(refusals) == 0 {
			t.Error("no push was refused with 429 while every writer stalled")
		}
		if p99 > time.Second {
			t.Errorf("429s took %v at p99; refusals must be fast", p99)
		}
	}

	// A distributor stopped with SIGTERM under load drains what it took.
	{
		load := newLoad("term", dists)
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { load.run(ctx, 0); close(done) }()
		time.Sleep(2 * time.Second)
		dists[1].p.signal(syscall.SIGTERM)
		dists[1].p.wait(t, 60*time.Second)
		if err := dists[1].p.err; err != nil {
			t.Errorf("%s exited with %v after SIGTERM", dists[1].id, err)
		}
		time.Sleep(2 * time.Second)
		stop()
		<-done
		check("one of 2 distributors stopped with SIGTERM", load)
	}
	t.Logf("fault campaign:\n%s", report.String())
}

// pushIDBase keeps each load's push ids apart: the load numbers its pushes
// from here.
func pushIDBase(prefix string) int64 {
	switch prefix {
	case "kill":
		return 100_000
	case "stall":
		return 200_000
	default:
		return 300_000
	}
}

// recordedPushes reads every writer's record file (appended before each
// ack, kept across restarts) and groups the records by push id.
func recordedPushes(t *testing.T, writers []*writerNode) map[string][]fakewriter.Record {
	t.Helper()
	out := map[string][]fakewriter.Record{}
	for _, w := range writers {
		recs, err := fakewriter.ReadRecordFile(w.recordFile)
		if err != nil {
			t.Fatalf("%s record file: %v", w.id, err)
		}
		for _, r := range recs {
			id := labelValue(r.Labels, "push_id")
			out[id] = append(out[id], r)
		}
	}
	return out
}
