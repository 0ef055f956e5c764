package fakewriter_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	segmentwriterv1 "github.com/grafana/pyroscope/api/gen/proto/go/segmentwriter/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/test/corpus"
	"github.com/pyrodist/pyrodist/test/fakewriter"
	"github.com/pyrodist/pyrodist/test/fakewriter/fakewritertest"
)

func newWriter(t *testing.T, opts ...func(*fakewriter.Config)) (*fakewriter.Writer, segmentwriterv1.SegmentWriterServiceClient, *grpc.ClientConn) {
	t.Helper()
	cfg := fakewritertest.Config("sw-test", "zone-a", "127.0.0.1")
	cfg.RecordFile = filepath.Join(t.TempDir(), "records.jsonl")
	for _, o := range opts {
		o(&cfg)
	}
	w := fakewritertest.Start(t, cfg)
	cc, err := grpc.NewClient(w.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return w, segmentwriterv1.NewSegmentWriterServiceClient(cc), cc
}

func request(tenant, service string, shard uint32, id []byte, prof []byte) *segmentwriterv1.PushRequest {
	return &segmentwriterv1.PushRequest{
		TenantId: tenant,
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: "process_cpu"},
			{Name: "service_name", Value: service},
		},
		Profile:   prof,
		ProfileId: id,
		Shard:     shard,
	}
}

func TestPushChecksAndRecords(t *testing.T) {
	w, client, cc := newWriter(t)
	cpu, _ := corpus.Get("cpu")
	id := uuid.New()

	tests := []struct {
		name string
		req  *segmentwriterv1.PushRequest
		want codes.Code
	}{
		{"gzip profile", request("t1", "svc-a", 3, id[:], cpu.Gzipped), codes.OK},
		{"raw profile", request("t1", "svc-a", 3, id[:], cpu.Raw()), codes.OK},
		{"no tenant", request("", "svc-a", 3, id[:], cpu.Gzipped), codes.InvalidArgument},
		{"short id", request("t1", "svc-a", 3, id[:15], cpu.Gzipped), codes.InvalidArgument},
		{"garbage profile", request("t1", "svc-a", 3, id[:], []byte("not a profile")), codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.Push(context.Background(), tt.req)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.want)
			}
		})
	}

	var profiles fakewriter.ProfilesResponse
	getJSON(t, "http://"+w.HTTPAddr()+"/profiles", &profiles)
	if profiles.ID != "sw-test" || profiles.Zone != "zone-a" || profiles.Addr != w.GRPCAddr() {
		t.Fatalf("identity = %+v", profiles)
	}
	if len(profiles.Profiles) != 2 {
		t.Fatalf("recorded %d profiles, want the 2 accepted", len(profiles.Profiles))
	}
	for _, r := range profiles.Profiles {
		if r.ProfileID != id.String() || r.Tenant != "t1" || r.ServiceName != "svc-a" || r.Shard != 3 {
			t.Fatalf("record = %+v", r)
		}
	}
	fromFile, err := fakewriter.ReadRecordFile(w.RecordFile())
	if err != nil || len(fromFile) != 2 || fromFile[0].ProfileID != id.String() || fromFile[1].Writer != "sw-test" {
		t.Fatalf("record file: %v %+v", err, fromFile)
	}
	if l := fromFile[0].Labels; len(l) != 2 || l[1] != (fakewriter.Label{Name: "service_name", Value: "svc-a"}) {
		t.Fatalf("recorded labels = %+v", l)
	}
	var counts fakewriter.CountsResponse
	getJSON(t, "http://"+w.HTTPAddr()+"/counts", &counts)
	if len(counts.Counts) != 1 || counts.Counts[0] != (fakewriter.Count{Tenant: "t1", ServiceName: "svc-a", Shard: 3, Count: 2}) {
		t.Fatalf("counts = %+v", counts.Counts)
	}

	// Health reports SERVING while running.
	hc := healthpb.NewHealthClient(cc)
	res, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: fakewriter.HealthService})
	if err != nil || res.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", res, err)
	}
}

func TestFaultInjection(t *testing.T) {
	w, client, _ := newWriter(t)
	cpu, _ := corpus.Get("cpu")
	base := "http://" + w.HTTPAddr()

	post(t, base+"/control/fail?"+url.Values{"code": {"Unavailable"}, "count": {"2"}}.Encode(), http.StatusNoContent)
	var got []codes.Code
	for range 3 {
		id := uuid.New()
		_, err := client.Push(context.Background(), request("t", "s", 1, id[:], cpu.Gzipped))
		got = append(got, status.Code(err))
	}
	want := []codes.Code{codes.Unavailable, codes.Unavailable, codes.OK}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("codes = %v, want %v", got, want)
		}
	}
	post(t, base+"/control/fail?code=RESOURCE_EXHAUSTED", http.StatusNoContent)
	id := uuid.New()
	if _, err := client.Push(context.Background(), request("t", "s", 1, id[:], cpu.Gzipped)); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("persistent failure: %v", err)
	}
	post(t, base+"/control/fail?code=OK", http.StatusNoContent)
	if _, err := client.Push(context.Background(), request("t", "s", 1, id[:], cpu.Gzipped)); err != nil {
		t.Fatalf("after clearing: %v", err)
	}
	post(t, base+"/control/fail?code=NoSuchCode", http.StatusBadRequest)

	// Latency longer than the caller's deadline surfaces as DeadlineExceeded.
	// pushTimesOut pushes with a deadline shorter than the delay set, then
	// wants n records.
	pushTimesOut := func(what string, n int, why string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := client.Push(ctx, request("t", "s", 1, id[:], cpu.Gzipped)); status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("%s: %v", what, err)
		}
		if got := len(w.Records()); got != n {
			t.Fatalf("%d records, want %d: %s", got, n, why)
		}
	}
	post(t, base+"/control/latency?duration=10s", http.StatusNoContent)
	pushTimesOut("slow push", 2, "a push the caller gave up on during latency is not stored")
	post(t, base+"/control/latency?duration=0s", http.StatusNoContent)

	// An ack delay stores first, as a real writer does before its flush: a
	// caller that gives up still has its profile stored; one that waits
	// gets the ack.
	post(t, base+"/control/ack-delay?duration=10s", http.StatusNoContent)
	pushTimesOut("push behind an ack delay", 3, "the push given up on is stored")
	post(t, base+"/control/ack-delay?duration=50ms", http.StatusNoContent)
	if _, err := client.Push(context.Background(), request("t", "s", 1, id[:], cpu.Gzipped)); err != nil {
		t.Fatalf("push behind a short ack delay: %v", err)
	}
	post(t, base+"/control/ack-delay?duration=0s", http.StatusNoContent)
	post(t, base+"/control/ack-delay?duration=-1s", http.StatusBadRequest)

	crashed := make(chan struct{})
	w.Crash = func() { close(crashed) }
	post(t, base+"/control/crash", http.StatusNoContent)
	<-crashed

	post(t, base+"/control/reset", http.StatusNoContent)
	if n := len(w.Records()); n != 0 {
		t.Fatalf("%d records after reset", n)
	}

	// Stopping: NOT_SERVING semantics for Push.
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Push(context.Background(), request("t", "s", 1, id[:], cpu.Gzipped)); status.Code(err) != codes.Unavailable {
		t.Fatalf("push while stopped: %v", err)
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func post(t *testing.T, u string, want int) {
	t.Helper()
	res, err := http.Post(u, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != want {
		t.Fatalf("POST %s: %s, want %d", u, res.Status, want)
	}
}

// A capped record list still counts every push; load runs can skip the
// profile check.
func TestRecordCapAndSkipCheck(t *testing.T) {
	w, client, _ := newWriter(t, func(c *fakewriter.Config) {
		c.MaxRecords = 2
		c.SkipProfileCheck = true
	})
	for range 5 {
		id := uuid.New()
		if _, err := client.Push(context.Background(), request("t", "s", 7, id[:], []byte("not parsed"))); err != nil {
			t.Fatalf("push with the check skipped: %v", err)
		}
	}
	var profiles fakewriter.ProfilesResponse
	getJSON(t, "http://"+w.HTTPAddr()+"/profiles", &profiles)
	if len(profiles.Profiles) != 2 || profiles.Dropped != 3 {
		t.Fatalf("listed %d, dropped %d; want 2 and 3", len(profiles.Profiles), profiles.Dropped)
	}
	var counts fakewriter.CountsResponse
	getJSON(t, "http://"+w.HTTPAddr()+"/counts", &counts)
	if len(counts.Counts) != 1 || counts.Counts[0].Count != 5 {
		t.Fatalf("counts = %+v, want 5 pushes", counts.Counts)
	}
	if n, err := fakewriter.ReadRecordFile(w.RecordFile()); err != nil || len(n) != 5 {
		t.Fatalf("record file has %d records (%v), want 5", len(n), err)
	}
}

func TestParseCode(t *testing.T) {
	for in, want := range map[string]codes.Code{"Unavailable": codes.Unavailable, "UNAVAILABLE": codes.Unavailable, "unknown": codes.Unknown, "4": codes.DeadlineExceeded, "ok": codes.OK} {
		if got, err := fakewriter.ParseCode(in); err != nil || got != want {
			t.Errorf("ParseCode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := fakewriter.ParseCode("bogus"); err == nil {
		t.Error("bogus code parsed")
	}
}
