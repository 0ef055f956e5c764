package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	collectorv1 "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	profilesv1 "go.opentelemetry.io/proto/otlp/profiles/v1development"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // the compressor collectors use
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/distributor"
	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/test/fakewriter"
	"github.com/pyrodist/pyrodist/test/testutil/otlpexport"
)

// TestOTLPClients pushes OTLP profiles to a distributor process the way
// OpenTelemetry clients do, and checks what its segment-writer recorded: an
// OTel collector's gRPC export (the otlp module's generated client, gzip,
// h2c, a node's worth of eBPF-profiler resources), an OTLP/HTTP JSON export
// gzipped, and an OTLP/HTTP protobuf export with one profile that does not
// convert (partial success).
func TestOTLPClients(t *testing.T) {
	requireBinaries(t)
	dir := t.TempDir()
	const wip, dip, tenant = "127.0.0.81", "127.0.0.82", "otel-team"
	w := &writerNode{id: "sw-o", zone: "zone-a", ip: wip, grpcPort: freePort(t, wip), httpPort: freePort(t, wip),
		gossipPort: freePort(t, wip), recordFile: filepath.Join(dir, "sw-o.jsonl")}
	startWriter(t, dir, w, nil)
	waitHTTP(t, w.p, w.http()+"/ready", 30*time.Second, nil)
	d := &distNode{id: "dist-o", zone: "zone-a", ip: dip, httpPort: freePort(t, dip), gossipPort: freePort(t, dip)}
	startDistributor(t, dir, d, []string{w.gossip()},
		"-distributor.ingestion-rate-limit-mb=1000", "-distributor.ingestion-burst-size-mb=1000")
	waitHTTP(t, d.p, d.http()+"/ready", 60*time.Second, nil)

	// An OTel collector's export over gRPC.
	const processes = 120
	cc, err := grpc.NewClient(hostPort(dip, d.httpPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "X-Scope-OrgID", tenant), 30*time.Second)
	defer cancel()
	resp, err := collectorv1.NewProfilesServiceClient(cc).Export(ctx,
		otlpexport.EBPF(otlpexport.EBPFOptions{Processes: processes, Stacks: 30, Seed: 11, Time: time.Now()}),
		grpc.UseCompressor("gzip"))
	if err != nil {
		t.Fatalf("gRPC export: %v", err)
	}
	if resp.GetPartialSuccess() != nil {
		t.Fatalf("gRPC export: partial success %v", resp.GetPartialSuccess())
	}

	// OTLP/HTTP: JSON, gzipped; then protobuf with one profile that does
	// not convert.
	b, profiles := smallOTLPExport(3)
	body, _ := protojson.Marshal(b.Req)
	if r := postOTLP(t, d.http(), tenant, "application/json", gzipBytes(body)); r.GetPartialSuccess() != nil {
		t.Fatalf("JSON export: partial success %v", r.GetPartialSuccess())
	}
	profiles[1].Samples[0].StackIndex = 1000
	body, _ = proto.Marshal(b.Req)
	if r := postOTLP(t, d.http(), tenant, "application/x-protobuf", body); r.GetPartialSuccess().GetRejectedProfiles() != 1 {
		t.Fatalf("protobuf export with a broken profile: partial success %v, want 1 rejected", r.GetPartialSuccess())
	}

	// What the writer acknowledged: one profile per process and per good
	// OTLP/HTTP profile, labelled as Pyroscope labels them, on Pyroscope's
	// shard.
	res, err := httpClient.Get(w.http() + "/profiles")
	if err != nil {
		t.Fatal(err)
	}
	var recs fakewriter.ProfilesResponse
	err = json.NewDecoder(res.Body).Decode(&recs)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	ring := placement.NewRing([]placement.Instance{{ID: w.id, Addr: w.ringAddr(), Zone: w.zone, State: placement.Active, Tokens: 4}})
	defaults := config.Defaults()
	policy := distributor.PlacementPolicy(&defaults.Limits)
	policy.DatasetShards = datasetShards
	var idx [4]int32
	n := 0
	for _, r := range recs.Profiles {
		if r.Tenant != tenant {
			continue
		}
		n++
		if labelValue(r.Labels, "__otel__") != "true" || labelValue(r.Labels, "__delta__") != "false" ||
			labelValue(r.Labels, "__name__") != "process_cpu" || labelValue(r.Labels, "service_name") != r.ServiceName {
			t.Errorf("record labels %v (service %q)", r.Labels, r.ServiceName)
		}
		key := placement.NewKey(r.Tenant, r.ServiceName, placement.Fingerprint(pairs(r.Labels)))
		if shard, _ := ring.Place(key, policy, "zone-a", idx[:]); r.Shard != shard {
			t.Errorf("shard %d, placement says %d", r.Shard, shard)
		}
	}
	if want := processes + 3 + 2; n != want {
		t.Fatalf("the writer recorded %d OTLP profiles, want %d", n, want)
	}
}

// smallOTLPExport is n resources with one CPU profile each.
func smallOTLPExport(n int) (*otlpexport.Builder, []*profilesv1.Profile) {
	b := otlpexport.New()
	m := b.Mapping("/bin/app", 0x400000, 0x800000, "")
	stack := b.Stack(
		b.Location(m, 0x401000, otlpexport.Line{Function: b.Function("work", "main.go"), Line: 7}),
		b.Location(m, 0x402000, otlpexport.Line{Function: b.Function("main", "main.go"), Line: 3}),
	)
	var ps []*profilesv1.Profile
	for i := range n {
		sp := b.Resource("it", otlpexport.KV("service.name", otlpexport.String(fmt.Sprintf("otlp-http-%d", i))))
		p := b.Profile(sp, "samples", "count", "cpu", "nanoseconds", 10_000_000, time.Now(), 10*time.Second)
		p.Samples = []*profilesv1.Sample{{StackIndex: stack, Values: []int64{int64(i + 1)}}}
		ps = append(ps, p)
	}
	return b, ps
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// postOTLP posts an OTLP/HTTP export and decodes the 200 answer, encoded
// like the request.
func postOTLP(t *testing.T, base, tenant, contentType string, body []byte) *collectorv1.ExportProfilesServiceResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1development/profiles", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Scope-OrgID", tenant)
	if contentType == "application/json" {
		req.Header.Set("Content-Encoding", "gzip")
	}
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != contentType {
		t.Fatalf("%s: status %d, Content-Type %q: %q", contentType, res.StatusCode, res.Header.Get("Content-Type"), data)
	}
	var out collectorv1.ExportProfilesServiceResponse
	unmarshal := proto.Unmarshal
	if contentType == "application/json" {
		unmarshal = protojson.Unmarshal
	}
	if err := unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}
