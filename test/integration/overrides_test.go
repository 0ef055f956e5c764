package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/test/fakewriter"
)

// TestOverridesFromPyroscopeDocs: the distributor loads an overrides file
// whose rules are copied from Pyroscope's docs, and those rules change what
// the writer records; a later file with other components' keys and a typo
// is applied, not refused.
func TestOverridesFromPyroscopeDocs(t *testing.T) {
	requireBinaries(t)
	dir := t.TempDir()
	docs, err := os.ReadFile(filepath.Join("..", "..", "internal", "overrides", "testdata", "pyroscope-docs-overrides.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "overrides.yaml")
	writeAtomically(t, file, string(docs))

	const wip, dip = "127.0.0.91", "127.0.0.92"
	w := &writerNode{id: "sw-ov", zone: "zone-a", ip: wip, grpcPort: freePort(t, wip), httpPort: freePort(t, wip),
		gossipPort: freePort(t, wip), recordFile: filepath.Join(dir, "sw-ov.jsonl")}
	startWriter(t, dir, w, nil)
	waitHTTP(t, w.p, w.http()+"/ready", 30*time.Second, nil)
	d := &distNode{id: "dist-ov", zone: "zone-a", ip: dip, httpPort: freePort(t, dip), gossipPort: freePort(t, dip)}
	startDistributor(t, dir, d, []string{w.gossip()},
		"-distributor.ingestion-rate-limit-mb=1000", "-distributor.ingestion-burst-size-mb=1000",
		"-runtime-config.file="+file, "-runtime-config.reload-period=100ms")
	waitHTTP(t, d.p, d.http()+"/ready", 60*time.Second, nil)

	cpu, heap := recentCorpus(t, "cpu"), recentCorpus(t, "heap")
	push := func(tenant, id string, prof []byte, labels ...string) {
		t.Helper()
		ls := []*typesv1.LabelPair{{Name: "push_id", Value: id}}
		for i := 0; i+1 < len(labels); i += 2 {
			ls = append(ls, &typesv1.LabelPair{Name: labels[i], Value: labels[i+1]})
		}
		req := connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
			Labels: ls, Samples: []*pushv1.RawSample{{RawProfile: prof}},
		}}})
		req.Header().Set("X-Scope-OrgID", tenant)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := d.push.Push(ctx, req); err != nil {
			t.Fatalf("push %s: %v", id, err)
		}
	}
	push("docs-ingestion", "secret", cpu, "__name__", "process_cpu", "service_name", "svc", "environment", "secret")
	push("docs-ingestion", "prod", cpu, "__name__", "process_cpu", "service_name", "svc", "environment", "prod")
	push("other-tenant", "secret-elsewhere", cpu, "__name__", "process_cpu", "service_name", "svc", "environment", "secret")
	push("docs-sample-types", "cpu", cpu, "__name__", "process_cpu", "service_name", "svc")
	push("docs-sample-types", "heap", heap, "__name__", "memory", "service_name", "svc")
	push("docs-ebpf", "ebpf", cpu, "__name__", "process_cpu", "process.executable.name", "nginx")

	recs := map[string]fakewriter.Record{}
	for _, r := range writerRecords(t, w) {
		recs[labelValue(r.Labels, "push_id")] = r
	}
	if _, ok := recs["secret"]; ok {
		t.Error("the docs' drop rule did not drop environment=secret")
	}
	if r, ok := recs["prod"]; !ok || labelValue(r.Labels, "powered_by") != "grafana-labs" {
		t.Errorf("environment=prod: recorded %v with labels %v, want powered_by=grafana-labs", ok, r.Labels)
	}
	if r, ok := recs["secret-elsewhere"]; !ok || labelValue(r.Labels, "powered_by") != "" {
		t.Errorf("a tenant without rules: recorded %v, labels %v", ok, r.Labels)
	}
	// keep cpu|wall: the CPU profile keeps its cpu type and loses samples/count;
	// the heap profile has neither, so nothing of it is left to record.
	if r, ok := recs["cpu"]; !ok || r.Bytes >= recs["secret-elsewhere"].Bytes {
		t.Errorf("sample type rules: cpu recorded %v, %d bytes (unfiltered %d)", ok, r.Bytes, recs["secret-elsewhere"].Bytes)
	}
	if _, ok := recs["heap"]; ok {
		t.Error("a heap profile with every sample type dropped was recorded")
	}
	if r, ok := recs["ebpf"]; !ok || r.ServiceName != "nginx" || labelValue(r.Labels, "service_name") != "nginx" {
		t.Errorf("labelmap: recorded %v as service %q, labels %v", ok, r.ServiceName, r.Labels)
	}
	if v, _ := metric(scrape(t, d.http()+"/metrics"), "pyroscope_discarded_samples_total", `reason="dropped_by_relabel_rules"`, `tenant="docs-ingestion"`); v != 1 {
		t.Errorf("dropped_by_relabel_rules profiles: %v, want 1", v)
	}

	// A Pyroscope file with other components' keys and a typo: applied (the
	// typo ignored, counted), not refused.
	writeAtomically(t, file, string(docs)+`
  docs-foreign:
    compactor_blocks_retention_period: 30d
    max_query_lookback: 7d
    ingestion_relabeling_rules: [{action: replace, target_label: via, replacement: foreign}]
    ingestion_rate_mbb: 3
`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		push("docs-foreign", "foreign", cpu, "__name__", "process_cpu", "service_name", "svc")
		var via string
		for _, r := range writerRecords(t, w) {
			if labelValue(r.Labels, "push_id") == "foreign" {
				via = labelValue(r.Labels, "via")
			}
		}
		if via == "foreign" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the file with foreign keys and a typo was not applied")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if v, _ := metric(scrape(t, d.http()+"/metrics"), "pyrodist_overrides_unknown_keys_total"); v != 1 {
		t.Errorf("pyrodist_overrides_unknown_keys_total %v, want 1", v)
	}
	if d.p.exited() {
		t.Fatal("the distributor exited")
	}
}

func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func writerRecords(t *testing.T, w *writerNode) []fakewriter.Record {
	t.Helper()
	res, err := httpClient.Get(w.http() + "/profiles")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var recs fakewriter.ProfilesResponse
	if err := json.NewDecoder(res.Body).Decode(&recs); err != nil {
		t.Fatal(err)
	}
	return recs.Profiles
}
