package debuginfo

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	debuginfov1alpha1 "github.com/grafana/pyroscope/api/gen/proto/go/debuginfo/v1alpha1"
	"github.com/thanos-io/objstore"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/ingest"
)

// testNow is the fixed clock of the tests.
var testNow = time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)

const testID = "2d6912fd3dd64542f6f6294f4bf9cb6c265b3085"

func testConfig() config.DebugInfo { return config.Defaults().DebugInfo }

func newTestService(t *testing.T, bucket objstore.Bucket, mod func(*Options)) *Service {
	t.Helper()
	opts := Options{
		Config: testConfig(),
		Bucket: bucket,
		Tenant: func(h http.Header) (string, error) { return ingest.ResolveTenant(true, h) },
		Now:    func() time.Time { return testNow },
	}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func withTenant[T any](msg *T, tenant string) *connect.Request[T] {
	req := connect.NewRequest(msg)
	if tenant != "" {
		req.Header().Set(ingest.OrgIDHeader, tenant)
	}
	return req
}

func fileOf(id string) *debuginfov1alpha1.FileMetadata {
	return &debuginfov1alpha1.FileMetadata{GnuBuildId: id, Name: "app", Type: debuginfov1alpha1.FileMetadata_TYPE_EXECUTABLE_FULL}
}

// The state machine of ShouldInitiateUpload, from the metadata found to the
// answer and the metadata left behind.
func TestShouldInitiateUploadStates(t *testing.T) {
	cfg := testConfig()
	stale := cfg.StaleAfter()
	uploading := func(started time.Time) *debuginfov1alpha1.ObjectMetadata {
		return &debuginfov1alpha1.ObjectMetadata{File: fileOf(testID), State: debuginfov1alpha1.ObjectMetadata_STATE_UPLOADING, StartedAt: timestamppb.New(started)}
	}
	uploaded := &debuginfov1alpha1.ObjectMetadata{
		File: fileOf(testID), State: debuginfov1alpha1.ObjectMetadata_STATE_UPLOADED,
		StartedAt: timestamppb.New(testNow.Add(-time.Hour)), FinishedAt: timestamppb.New(testNow.Add(-time.Hour)), SizeBytes: 42,
	}
	for _, tc := range []struct {
		name     string
		stored   *debuginfov1alpha1.ObjectMetadata
		disabled bool
		noBucket bool
		file     *debuginfov1alpha1.FileMetadata
		upload   bool
		reason   string
		code     connect.Code // of the error; 0: none
		// left is the metadata stored afterwards; nil: none.
		left *debuginfov1alpha1.ObjectMetadata
	}{
		{name: "first upload", upload: true, reason: ReasonFirstTimeSeen, left: uploading(testNow)},
		{name: "repeated while in progress", stored: uploading(testNow.Add(-time.Minute)), reason: ReasonUploadInProgress, left: uploading(testNow.Add(-time.Minute))},
		{name: "in progress up to the stale threshold", stored: uploading(testNow.Add(-stale)), reason: ReasonUploadInProgress, left: uploading(testNow.Add(-stale))},
		{name: "stale in progress is taken over", stored: uploading(testNow.Add(-stale - time.Second)), upload: true, reason: ReasonUploadStale, left: uploading(testNow)},
		{name: "finished", stored: uploaded, reason: ReasonDebuginfoAlreadyExists, left: uploaded},
		{name: "disabled by config", disabled: true, reason: ReasonDisabled},
		{name: "no storage backend", noBucket: true, reason: ReasonDisabled},
		{name: "empty build ID", file: &debuginfov1alpha1.FileMetadata{Type: debuginfov1alpha1.FileMetadata_TYPE_EXECUTABLE_FULL}, reason: ReasonEmptyBuildID},
		{name: "not hex", file: fileOf("not-a-build-id"), code: connect.CodeInvalidArgument},
		{name: "too long", file: fileOf(testID + "00"), code: connect.CodeInvalidArgument},
		{name: "unspecified type", file: &debuginfov1alpha1.FileMetadata{GnuBuildId: testID}, code: connect.CodeInvalidArgument},
		{name: "no file", file: nil, code: connect.CodeInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket := objstore.NewInMemBucket()
			ctx := context.Background()
			s := newTestService(t, bucket, func(o *Options) {
				o.Config.Enabled = !tc.disabled
				if tc.noBucket {
					o.Bucket = nil
				}
			})
			if tc.stored != nil {
				if err := s.writeMetadata(ctx, "t1", testID, tc.stored); err != nil {
					t.Fatal(err)
				}
			}
			file := tc.file
			if file == nil && tc.code == 0 {
				file = fileOf(testID)
			}
			resp, err := s.ShouldInitiateUpload(ctx, withTenant(&debuginfov1alpha1.ShouldInitiateUploadRequest{File: file}, "t1"))
			if tc.code != 0 {
				if connect.CodeOf(err) != tc.code {
					t.Fatalf("error %v, want code %v", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Msg.ShouldInitiateUpload != tc.upload || resp.Msg.Reason != tc.reason {
				t.Fatalf("answer %v %q, want %v %q", resp.Msg.ShouldInitiateUpload, resp.Msg.Reason, tc.upload, tc.reason)
			}
			if tc.noBucket {
				return
			}
			left, err := s.readMetadata(ctx, "t1", testID)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(left, tc.left) {
				t.Fatalf("metadata left: %v, want %v", left, tc.left)
			}
		})
	}
}

// UploadFinished needs an upload in progress and its object.
func TestUploadFinishedStates(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stored *debuginfov1alpha1.ObjectMetadata
		object bool
		id     string
		code   connect.Code
	}{
		{name: "in progress with its object", stored: &debuginfov1alpha1.ObjectMetadata{File: fileOf(testID), StartedAt: timestamppb.New(testNow)}, object: true},
		{name: "never initiated", code: connect.CodeNotFound},
		{name: "object missing", stored: &debuginfov1alpha1.ObjectMetadata{File: fileOf(testID), StartedAt: timestamppb.New(testNow)}, code: connect.CodeFailedPrecondition},
		{name: "already finished", stored: &debuginfov1alpha1.ObjectMetadata{File: fileOf(testID), State: debuginfov1alpha1.ObjectMetadata_STATE_UPLOADED}, object: true, code: connect.CodeFailedPrecondition},
		{name: "invalid build ID", id: "../x", code: connect.CodeInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			bucket := objstore.NewInMemBucket()
			s := newTestService(t, bucket, nil)
			if tc.stored != nil {
				if err := s.writeMetadata(ctx, "t1", testID, tc.stored); err != nil {
					t.Fatal(err)
				}
			}
			if tc.object {
				if err := bucket.Upload(ctx, ObjectPath("t1", testID), bytes.NewReader(make([]byte, 42))); err != nil {
					t.Fatal(err)
				}
			}
			id := tc.id
			if id == "" {
				id = testID
			}
			_, err := s.UploadFinished(ctx, withTenant(&debuginfov1alpha1.UploadFinishedRequest{GnuBuildId: id}, "t1"))
			if connect.CodeOf(err) != tc.code && (err != nil || tc.code != 0) {
				t.Fatalf("error %v, want code %v", err, tc.code)
			}
			if tc.code != 0 {
				return
			}
			md, err := s.readMetadata(ctx, "t1", testID)
			if err != nil {
				t.Fatal(err)
			}
			if md.State != debuginfov1alpha1.ObjectMetadata_STATE_UPLOADED || md.SizeBytes != 42 || !md.FinishedAt.AsTime().Equal(testNow) {
				t.Fatalf("metadata after UploadFinished: %v", md)
			}
		})
	}
}

// The declared size reaches the bucket client, so S3 does not buffer parts
// sized for the largest object; an undeclared one is reported unknown.
func TestUploadDeclaresSize(t *testing.T) {
	body := &uploadBody{r: bytes.NewReader(nil), size: 1234}
	if n, err := objstore.TryToGetSize(body); err != nil || n != 1234 {
		t.Fatalf("declared size: %d, %v", n, err)
	}
	body.size = -1
	if _, err := objstore.TryToGetSize(body); !errors.Is(err, errUnknownSize) {
		t.Fatalf("undeclared size: %v", err)
	}
}
