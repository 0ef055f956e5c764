package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pyrodist/pyrodist/internal/placementrules"
	"github.com/pyrodist/pyrodist/test/testutil/rulesobject"
)

// Issue 18's done-when, with real processes: a distributor reading a
// filesystem bucket sends a hot dataset to one shard, and once a rules
// object giving that dataset 8 shards is written to the bucket, the
// profiles it sends one poll interval later land on several shards.
func TestPlacementRulesFromBucket(t *testing.T) {
	requireBinaries(t)
	dir := t.TempDir()
	bucketDir := filepath.Join(dir, "bucket")

	var writers []*writerNode
	for k := 1; k <= 2; k++ {
		ip := fmt.Sprintf("127.0.0.%d", 70+k)
		id := fmt.Sprintf("sw-rules-%d", k)
		writers = append(writers, &writerNode{
			id: id, zone: "zone-a", ip: ip,
			grpcPort: freePort(t, ip), httpPort: freePort(t, ip), gossipPort: freePort(t, ip),
			recordFile: filepath.Join(dir, id+".jsonl"),
		})
	}
	startWriter(t, dir, writers[0], nil)
	waitHTTP(t, writers[0].p, writers[0].http()+"/ready", 30*time.Second, nil)
	seeds := []string{writers[0].gossip()}
	startWriter(t, dir, writers[1], seeds)
	waitHTTP(t, writers[1].p, writers[1].http()+"/ready", 30*time.Second, nil)

	const interval = 2 * time.Second
	ip := "127.0.0.73"
	d := &distNode{id: "dist-rules", zone: "zone-a", ip: ip, httpPort: freePort(t, ip), gossipPort: freePort(t, ip)}
	startDistributor(t, dir, d, seeds,
		"-storage.backend=filesystem", "-storage.filesystem.dir="+bucketDir,
		"-adaptive-placement.placement-rules-update-interval="+interval.String(),
		"-adaptive-placement.default-dataset-shards=1")
	waitHTTP(t, d.p, d.http()+"/ready", 60*time.Second, nil)
	waitHTTP(t, d.p, d.http()+"/metrics", 30*time.Second, func(body string) bool {
		active, _ := metric(body, "pyrodist_segment_writer_ring_instances", `state="ACTIVE"`)
		return active == 2
	})

	prof := recentCorpus(t, "heap")
	batch := 0
	// push sends 16 profiles of the hot dataset, one series each, and gives
	// the shards the writers recorded for them.
	push := func(ctx context.Context) (map[uint32]bool, error) {
		batch++
		prefix := fmt.Sprintf("rules-%d-", batch)
		for i := range 16 {
			a := attempt{pushID: fmt.Sprint(prefix, i), tenant: "tenant-a", service: "hot", dist: d}
			if err := pushV1(ctx, a, prof); err != nil {
				return nil, err
			}
		}
		shards := map[uint32]bool{}
		for id, recs := range recordedPushes(t, writers) {
			if len(id) > len(prefix) && id[:len(prefix)] == prefix {
				for _, r := range recs {
					shards[r.Shard] = true
				}
			}
		}
		return shards, nil
	}
	before, err := push(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 1 {
		t.Fatalf("without rules the hot dataset went to shards %v, want one", before)
	}

	// Write the object as the metastore would, in one rename so that no
	// read sees half of it.
	obj := filepath.Join(bucketDir, placementrules.ObjectPath)
	if err := os.MkdirAll(filepath.Dir(obj), 0o755); err != nil {
		t.Fatal(err)
	}
	rules := rulesobject.Encode(time.Now(), rulesobject.Dataset{Tenant: "tenant-a", Name: "hot", DatasetShards: 8, LoadBalancing: 1})
	if err := os.WriteFile(obj+".tmp", rules, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(obj+".tmp", obj); err != nil {
		t.Fatal(err)
	}
	// The next poll, at most one interval after the write, reads the
	// object: a batch sent one interval (and a margin for the read) later
	// is spread, without retrying.
	written := time.Now()
	time.Sleep(interval + interval/2)
	after, err := push(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(after) < 2 {
		t.Fatalf("%v after the rules object was written (poll interval %v), the hot dataset still went to shards %v",
			time.Since(written).Round(time.Millisecond), interval, after)
	}
	body := scrape(t, d.http()+"/metrics")
	if n, _ := metric(body, "pyrodist_placement_rules_datasets"); n != 1 {
		t.Errorf("pyrodist_placement_rules_datasets = %v, want 1", n)
	}
	t.Logf("hot dataset: shards %v before the rules object, %v one poll interval (%v) after it", before, after, interval)
}
