package debuginfo

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/grafana/dskit/services"
	debuginfov1alpha1 "github.com/grafana/pyroscope/api/gen/proto/go/debuginfo/v1alpha1"
	"github.com/grafana/pyroscope/api/gen/proto/go/debuginfo/v1alpha1/debuginfov1alpha1connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/inflight"
	"github.com/pyrodist/pyrodist/internal/ingest"
)

type noPusher struct{}

func (noPusher) Push(context.Context, string, *pushv1.PushRequest) error { return nil }

type defaultLimits struct{}

func (defaultLimits) ForTenant(string) *config.Limits {
	l := config.Defaults().Limits
	return &l
}

// served is the ingest server with the debuginfo routes, on 127.0.0.1.
type served struct {
	url    string
	client *http.Client // h2c, as eBPF agents' gRPC and Connect clients speak
	dir    string       // the filesystem bucket's root
}

// serve starts the distributor's HTTP server (multitenancy on) with the
// service over a filesystem bucket; mod adjusts the service's options,
// server the server's.
func serve(t *testing.T, mod func(*Options), server ...func(*ingest.Options)) *served {
	t.Helper()
	dir := t.TempDir()
	bucket, err := filesystem.NewBucket(dir)
	if err != nil {
		t.Fatal(err)
	}
	svc := newTestService(t, bucket, mod)
	opts := ingest.Options{
		Pusher:              noPusher{},
		Limits:              defaultLimits{},
		MultitenancyEnabled: true,
		ListenAddress:       "127.0.0.1:0",
		GracefulTimeout:     5 * time.Second,
		ReadTimeout:         30 * time.Second,
		WriteTimeout:        30 * time.Second,
		Routes:              svc.Routes(),
	}
	for _, m := range server {
		m(&opts)
	}
	srv, err := ingest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := services.StartAndAwaitRunning(context.Background(), srv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = services.StopAndAwaitTerminated(context.Background(), srv) })
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &p}}
	t.Cleanup(client.CloseIdleConnections)
	return &served{url: "http://" + srv.Addr(), client: client, dir: dir}
}

func (s *served) rpc(opts ...connect.ClientOption) debuginfov1alpha1connect.DebuginfoServiceClient {
	return debuginfov1alpha1connect.NewDebuginfoServiceClient(s.client, s.url, opts...)
}

// upload posts body for id as tenant; size -1 sends it without a length.
func (s *served) upload(t *testing.T, tenant, id string, body io.Reader, size int64) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+UploadPathPrefix+id, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	if size < 0 {
		req.Body = io.NopCloser(body) // no length known to the transport
	}
	if tenant != "" {
		req.Header.Set(ingest.OrgIDHeader, tenant)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(text))
}

func initiate(t *testing.T, c debuginfov1alpha1connect.DebuginfoServiceClient, tenant, id string) *debuginfov1alpha1.ShouldInitiateUploadResponse {
	t.Helper()
	file := fileOf(id)
	file.GoBuildId = "go-build-id"
	resp, err := c.ShouldInitiateUpload(context.Background(), withTenant(&debuginfov1alpha1.ShouldInitiateUploadRequest{File: file}, tenant))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Msg
}

func list(t *testing.T, c debuginfov1alpha1connect.DebuginfoServiceClient, tenant string) []*debuginfov1alpha1.ObjectMetadata {
	t.Helper()
	resp, err := c.ListDebuginfo(context.Background(), withTenant(&debuginfov1alpha1.ListDebuginfoRequest{}, tenant))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Msg.Object
}

// An upload through the server lands at Pyroscope's paths with Pyroscope's
// metadata; tenants are kept apart; list and delete work.
func TestUploadLandsWherePyroscopePutsIt(t *testing.T) {
	s := serve(t, nil)
	ctx := context.Background()
	c := s.rpc()
	payload := []byte("\x7fELF symbols")

	if got := initiate(t, c, "tenant-a", testID); !got.ShouldInitiateUpload || got.Reason != ReasonFirstTimeSeen {
		t.Fatalf("first ShouldInitiateUpload: %v", got)
	}
	// The same over gRPC, as the eBPF profilers call it: now in progress.
	if got := initiate(t, s.rpc(connect.WithGRPC()), "tenant-a", testID); got.ShouldInitiateUpload || got.Reason != ReasonUploadInProgress {
		t.Fatalf("repeated ShouldInitiateUpload over gRPC: %v", got)
	}
	if code, text := s.upload(t, "tenant-a", testID, bytes.NewReader(payload), int64(len(payload))); code != http.StatusOK {
		t.Fatalf("upload: %d %q", code, text)
	}
	if _, err := c.UploadFinished(ctx, withTenant(&debuginfov1alpha1.UploadFinishedRequest{GnuBuildId: testID}, "tenant-a")); err != nil {
		t.Fatal(err)
	}

	exe, err := os.ReadFile(filepath.Join(s.dir, "debug-info", "tenant-a", testID, "exe"))
	if err != nil || !bytes.Equal(exe, payload) {
		t.Fatalf("debug-info/tenant-a/%s/exe: %q, %v", testID, exe, err)
	}
	// protojson may space its output differently from binary to binary;
	// compacted, it is the bytes Pyroscope writes.
	md, err := os.ReadFile(filepath.Join(s.dir, "debug-info", "tenant-a", testID, "metadata"))
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, md); err != nil {
		t.Fatalf("metadata is not JSON: %q: %v", md, err)
	}
	want := `{"file":{"gnuBuildId":"` + testID + `","goBuildId":"go-build-id","name":"app","type":"TYPE_EXECUTABLE_FULL"},` +
		`"state":"STATE_UPLOADED","startedAt":"2026-12-04T18:00:00Z","finishedAt":"2026-12-04T18:00:00Z","sizeBytes":"12"}`
	if compact.String() != want {
		t.Fatalf("metadata:\n got %s\nwant %s", compact.String(), want)
	}
	if got := initiate(t, c, "tenant-a", testID); got.ShouldInitiateUpload || got.Reason != ReasonDebuginfoAlreadyExists {
		t.Fatalf("ShouldInitiateUpload after the upload: %v", got)
	}

	// Another tenant has its own build IDs.
	if got := initiate(t, c, "tenant-b", testID); !got.ShouldInitiateUpload {
		t.Fatalf("tenant-b sees tenant-a's upload: %v", got)
	}
	const otherID = "abcdef01"
	if code, text := s.upload(t, "tenant-b", otherID, strings.NewReader("x"), 1); code != http.StatusPreconditionFailed {
		t.Fatalf("upload never initiated: %d %q", code, text)
	}
	a, b := list(t, c, "tenant-a"), list(t, c, "tenant-b")
	if len(a) != 1 || a[0].State != debuginfov1alpha1.ObjectMetadata_STATE_UPLOADED || a[0].SizeBytes != int64(len(payload)) {
		t.Fatalf("tenant-a's list: %v", a)
	}
	if len(b) != 1 || b[0].State != debuginfov1alpha1.ObjectMetadata_STATE_UPLOADING || b[0].File.GnuBuildId != testID {
		t.Fatalf("tenant-b's list: %v", b)
	}

	if _, err := c.DeleteDebuginfo(ctx, withTenant(&debuginfov1alpha1.DeleteDebuginfoRequest{GnuBuildId: testID}, "tenant-a")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "debug-info", "tenant-a", testID, "exe")); !os.IsNotExist(err) {
		t.Fatalf("exe after delete: %v", err)
	}
	if a := list(t, c, "tenant-a"); len(a) != 0 {
		t.Fatalf("tenant-a's list after delete: %v", a)
	}
	if b := list(t, c, "tenant-b"); len(b) != 1 {
		t.Fatalf("tenant-b's list after tenant-a's delete: %v", b)
	}
	// Deleting what is gone is not an error.
	if _, err := c.DeleteDebuginfo(ctx, withTenant(&debuginfov1alpha1.DeleteDebuginfoRequest{GnuBuildId: testID}, "tenant-a")); err != nil {
		t.Fatal(err)
	}
}

// Requests the service refuses, with Pyroscope's status codes.
func TestUploadRefusals(t *testing.T) {
	const limit = 1 << 10
	s := serve(t, func(o *Options) { o.Config.MaxUploadSize = limit })
	c := s.rpc()
	if got := initiate(t, c, "t1", testID); !got.ShouldInitiateUpload {
		t.Fatalf("ShouldInitiateUpload: %v", got)
	}
	big := bytes.Repeat([]byte{1}, 2*limit)
	exe := filepath.Join(s.dir, "debug-info", "t1", testID, "exe")

	for _, tc := range []struct {
		name   string
		tenant string
		id     string
		body   io.Reader
		size   int64
		code   int
		text   string
	}{
		{name: "oversize, declared", tenant: "t1", id: testID, body: bytes.NewReader(big), size: int64(len(big)), code: http.StatusInternalServerError, text: tooLarge(limit)},
		{name: "oversize, streamed without a length", tenant: "t1", id: testID, body: bytes.NewReader(big), size: -1, code: http.StatusInternalServerError, text: tooLarge(limit)},
		{name: "no tenant", id: testID, body: strings.NewReader("x"), size: 1, code: http.StatusUnauthorized, text: "no org id"},
		{name: "invalid build ID", tenant: "t1", id: "xyz", body: strings.NewReader("x"), size: 1, code: http.StatusBadRequest, text: `invalid gnu_build_id: invalid gnuBuildID "xyz"`},
		{name: "not initiated", tenant: "t1", id: "abcd", body: strings.NewReader("x"), size: 1, code: http.StatusPreconditionFailed, text: "no pending upload for this build ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, text := s.upload(t, tc.tenant, tc.id, tc.body, tc.size)
			if code != tc.code || text != tc.text {
				t.Fatalf("answer %d %q, want %d %q", code, text, tc.code, tc.text)
			}
			if _, err := os.Stat(exe); !os.IsNotExist(err) {
				t.Fatalf("a refused upload left %s: %v", exe, err)
			}
		})
	}
	// Nothing was stored, so the upload cannot be marked finished.
	_, err := c.UploadFinished(context.Background(), withTenant(&debuginfov1alpha1.UploadFinishedRequest{GnuBuildId: testID}, "t1"))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("UploadFinished after refused uploads: %v", err)
	}
	// Only POST uploads.
	resp, err := s.client.Get(s.url + UploadPathPrefix + testID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET upload path: %d", resp.StatusCode)
	}
	// The calls need a tenant too.
	_, err = c.ListDebuginfo(context.Background(), connect.NewRequest(&debuginfov1alpha1.ListDebuginfoRequest{}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("ListDebuginfo without a tenant: %v", err)
	}
}

// Without a storage backend agents are told uploads are disabled and the
// other calls say why they cannot be served.
func TestNoBucketDisables(t *testing.T) {
	s := serve(t, func(o *Options) { o.Bucket = nil })
	c := s.rpc()
	if got := initiate(t, c, "t1", testID); got.ShouldInitiateUpload || got.Reason != ReasonDisabled {
		t.Fatalf("ShouldInitiateUpload: %v", got)
	}
	_, err := c.ListDebuginfo(context.Background(), withTenant(&debuginfov1alpha1.ListDebuginfoRequest{}, "t1"))
	if connect.CodeOf(err) != connect.CodeUnimplemented || !strings.Contains(err.Error(), "no storage backend") {
		t.Fatalf("ListDebuginfo: %v", err)
	}
	_, err = c.UploadFinished(context.Background(), withTenant(&debuginfov1alpha1.UploadFinishedRequest{GnuBuildId: testID}, "t1"))
	if connect.CodeOf(err) != connect.CodeUnimplemented {
		t.Fatalf("UploadFinished: %v", err)
	}
	if code, text := s.upload(t, "t1", testID, strings.NewReader("x"), 1); code != http.StatusNotImplemented || text != errDisabled.Error() {
		t.Fatalf("upload: %d %q", code, text)
	}
}

// An upload holds the bucket client's buffer of the in-flight budget, not
// its own size, for as long as it runs; past the budget it is refused.
func TestUploadChargesBudget(t *testing.T) {
	budget := inflight.New(1 << 20)
	s := serve(t, func(o *Options) {
		o.Budget = budget
		o.UploadBuffer = 512 << 10
	})
	c := s.rpc()
	initiate(t, c, "t1", testID)
	// 4 MiB through a 1 MiB budget: charged 512 KiB, the buffer.
	if code, text := s.upload(t, "t1", testID, bytes.NewReader(make([]byte, 4<<20)), 4<<20); code != http.StatusOK {
		t.Fatalf("upload: %d %q", code, text)
	}
	if budget.InUse() != 0 {
		t.Fatalf("budget held after the upload: %d", budget.InUse())
	}
	// With the budget taken, an upload is refused at once.
	held := budget.Charge()
	if err := held.Reserve(768 << 10); err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	code, text := s.upload(t, "t1", testID, bytes.NewReader(make([]byte, 4<<20)), 4<<20)
	if code != http.StatusTooManyRequests || !strings.Contains(text, "in flight") {
		t.Fatalf("upload past the budget: %d %q", code, text)
	}
	// A small upload is charged its size, and fits.
	if code, text := s.upload(t, "t1", testID, bytes.NewReader(make([]byte, 100<<10)), 100<<10); code != http.StatusOK {
		t.Fatalf("small upload: %d %q", code, text)
	}
}

// slowBody sends its bytes in parts with a pause before each.
type slowBody struct {
	parts [][]byte
	pause time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	if len(b.parts) == 0 {
		return 0, io.EOF
	}
	time.Sleep(b.pause)
	n := copy(p, b.parts[0])
	b.parts[0] = b.parts[0][n:]
	if len(b.parts[0]) == 0 {
		b.parts = b.parts[1:]
	}
	return n, nil
}

// An upload may take longer than the server's read and write timeouts:
// debug-info.upload-timeout replaces them for it, as in Pyroscope. Without
// it the server's timeout ends the upload.
func TestUploadOutlastsServerTimeouts(t *testing.T) {
	const serverTimeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name    string
		http1   bool
		timeout time.Duration
		ok      bool
	}{
		{name: "upload timeout, h2c", timeout: time.Minute, ok: true},
		{name: "upload timeout, HTTP/1.1", http1: true, timeout: time.Minute, ok: true},
		{name: "server timeouts only, h2c", timeout: 0, ok: false},
		{name: "server timeouts only, HTTP/1.1", http1: true, timeout: 0, ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := serve(t, func(o *Options) { o.Config.UploadTimeout = tc.timeout }, func(o *ingest.Options) {
				o.ReadTimeout, o.WriteTimeout = serverTimeout, serverTimeout
			})
			initiate(t, s.rpc(), "t1", testID)
			// Four parts, each after a pause of half the server's timeout.
			body := &slowBody{pause: serverTimeout / 2, parts: [][]byte{[]byte("aa"), []byte("bb"), []byte("cc"), []byte("dd")}}
			req, err := http.NewRequest(http.MethodPost, s.url+UploadPathPrefix+testID, body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = 8
			req.Header.Set(ingest.OrgIDHeader, "t1")
			client := s.client
			if tc.http1 {
				client = &http.Client{Transport: &http.Transport{}}
				defer client.CloseIdleConnections()
			}
			resp, err := client.Do(req)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				resp.Body.Close()
			}
			if ok != tc.ok {
				t.Fatalf("upload slower than the server's timeouts: ok=%v (%v), want ok=%v", ok, err, tc.ok)
			}
			exe, err := os.ReadFile(filepath.Join(s.dir, "debug-info", "t1", testID, "exe"))
			if tc.ok && (err != nil || string(exe) != "aabbccdd") {
				t.Fatalf("stored %q, %v", exe, err)
			}
		})
	}
}

// zeros is an endless reader of zero bytes that allocates nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// An upload streams to the bucket: 64 MiB through the server allocate a
// small fraction of that (io.ReadAll would allocate more than the whole).
func TestUploadStreamsInBoundedMemory(t *testing.T) {
	const size = 64 << 20
	s := serve(t, nil)
	initiate(t, s.rpc(), "t1", testID)
	// A connection made and warmed up before measuring.
	if code, text := s.upload(t, "t1", "abcd", strings.NewReader("x"), 1); code != http.StatusPreconditionFailed {
		t.Fatalf("warm-up: %d %q", code, text)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	code, text := s.upload(t, "t1", testID, io.LimitReader(zeros{}, size), size)
	runtime.ReadMemStats(&after)
	if code != http.StatusOK {
		t.Fatalf("upload: %d %q", code, text)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d MiB upload allocated %.1f MiB (client, server and bucket together)", size>>20, float64(allocated)/(1<<20))
	if allocated > 16<<20 {
		t.Fatalf("a %d MiB upload allocated %d bytes: it is buffered, not streamed", size>>20, allocated)
	}
	st, err := os.Stat(filepath.Join(s.dir, "debug-info", "t1", testID, "exe"))
	if err != nil || st.Size() != size {
		t.Fatalf("stored object: %v, %v", st, err)
	}
}

// s3Like is a bucket that says it is S3 and notes the size objstore's S3
// client would read from each executable's reader (-1: unknown).
type s3Like struct {
	objstore.Bucket
	sizes []int64
}

func (b *s3Like) Provider() objstore.ObjProvider { return objstore.S3 }

func (b *s3Like) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	if strings.HasSuffix(name, "/exe") {
		n, err := objstore.TryToGetSize(r)
		if err != nil {
			n = -1
		}
		b.sizes = append(b.sizes, n)
	}
	return b.Bucket.Upload(ctx, name, r, opts...)
}

// An S3 upload without a declared length would make the S3 client allocate
// a 528 MiB part: one that fits in the upload buffer is read first and
// uploaded with its size; a longer one is charged that part, and refused
// when the budget cannot take it.
func TestS3UploadOfUnknownLength(t *testing.T) {
	const buffer = 64 << 10
	for _, tc := range []struct {
		name   string
		size   int
		budget *inflight.Budget
		code   int
		seen   int64 // the size the bucket client sees
	}{
		{name: "fits the buffer", size: buffer, budget: inflight.New(1 << 20), code: http.StatusOK, seen: buffer},
		{name: "longer, budget too small", size: buffer + 1, budget: inflight.New(1 << 20), code: http.StatusTooManyRequests},
		{name: "longer, no budget", size: 3 * buffer, code: http.StatusOK, seen: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket := &s3Like{Bucket: objstore.NewInMemBucket()}
			s := serve(t, func(o *Options) { o.Bucket, o.Budget, o.UploadBuffer = bucket, tc.budget, buffer })
			initiate(t, s.rpc(), "t1", testID)
			payload := bytes.Repeat([]byte{7}, tc.size)
			if code, text := s.upload(t, "t1", testID, bytes.NewReader(payload), -1); code != tc.code {
				t.Fatalf("upload: %d %q, want %d", code, text, tc.code)
			}
			if tc.budget != nil && tc.budget.InUse() != 0 {
				t.Fatalf("budget held after the upload: %d", tc.budget.InUse())
			}
			stored, err := bucket.Get(context.Background(), ObjectPath("t1", testID))
			if tc.code != http.StatusOK {
				if !bucket.IsObjNotFoundErr(err) || len(bucket.sizes) != 0 {
					t.Fatalf("a refused upload reached the bucket: %v, sizes %v", err, bucket.sizes)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(stored)
			if !bytes.Equal(got, payload) || len(bucket.sizes) != 1 || bucket.sizes[0] != tc.seen {
				t.Fatalf("stored %d bytes (want %d), sizes seen %v (want %d)", len(got), len(payload), bucket.sizes, tc.seen)
			}
		})
	}
}
