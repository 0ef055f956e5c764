// Package debuginfo serves Pyroscope's debuginfo.v1alpha1.DebuginfoService
// over an object storage bucket: eBPF profilers ask whether to upload the
// symbols of an executable (ShouldInitiateUpload), stream them to
// /debuginfo.v1alpha1.DebuginfoService/Upload/{gnu_build_id} and confirm
// (UploadFinished). Objects and their metadata are written where and as
// Pyroscope writes them (pkg/debuginfo/store.go at 3fe6a45), so Pyroscope's
// symbolizer finds them; uploads stream to the bucket and are never held
// whole in memory (docs/compatibility.md#debuginfo-uploads).
package debuginfo

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/pyroscope/api/gen/proto/go/debuginfo/v1alpha1/debuginfov1alpha1connect"
	"github.com/thanos-io/objstore"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/inflight"
	"github.com/pyrodist/pyrodist/internal/ingest"
)

// Options configure a Service.
type Options struct {
	Config config.DebugInfo
	// Bucket is where uploads go; nil (no storage backend) disables the
	// service: ShouldInitiateUpload says so, the other calls are
	// Unimplemented.
	Bucket objstore.Bucket
	// Tenant resolves the tenant of a request from its headers.
	Tenant func(http.Header) (string, error)
	// Budget is the process's in-flight budget; each upload holds
	// min(its size, UploadBuffer) of it while it streams. nil: no charge.
	Budget *inflight.Budget
	// UploadBuffer is what the bucket client may hold in memory for one
	// upload; 0: DefaultUploadBuffer.
	UploadBuffer int64
	Logger       log.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// DefaultUploadBuffer is what one upload is assumed to hold in memory
// while it streams: objstore's S3 client buffers up to a part of 64 MiB
// (its default part_size) for an upload of known size, GCS a 16 MiB
// chunk, the filesystem nothing. It is also how much of an S3 upload of
// unknown length is read ahead to learn its size (sizeForS3).
const DefaultUploadBuffer = 64 << 20

// Service is the debuginfo service. Safe for concurrent use.
type Service struct {
	cfg    config.DebugInfo
	bucket objstore.Bucket
	tenant func(http.Header) (string, error)
	budget *inflight.Budget
	buffer int64
	logger log.Logger
	now    func() time.Time
}

// New builds the service.
func New(opts Options) (*Service, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if opts.Tenant == nil {
		return nil, errors.New("debuginfo: Tenant is required")
	}
	s := &Service{
		cfg:    opts.Config,
		bucket: opts.Bucket,
		tenant: opts.Tenant,
		budget: opts.Budget,
		buffer: opts.UploadBuffer,
		logger: opts.Logger,
		now:    opts.Now,
	}
	if s.buffer <= 0 {
		s.buffer = DefaultUploadBuffer
	}
	if s.logger == nil {
		s.logger = log.NewNopLogger()
	}
	s.logger = log.With(s.logger, "component", "debuginfo")
	if s.now == nil {
		s.now = time.Now
	}
	if s.cfg.Enabled && s.bucket == nil {
		level.Info(s.logger).Log("msg", "debuginfo uploads are off: no storage backend is configured")
	}
	return s, nil
}

// maxMessage bounds the unary calls' messages, as Pyroscope does
// (pkg/api/connect_options.go at 3fe6a45).
const maxMessage = 5 << 20

// Routes are the service's handlers for the HTTP port: the four unary
// calls over Connect, gRPC and gRPC-Web, and the upload path.
func (s *Service) Routes() []ingest.Route {
	_, h := debuginfov1alpha1connect.NewDebuginfoServiceHandler(s, connect.WithReadMaxBytes(maxMessage))
	route := func(procedure string) ingest.Route {
		return ingest.Route{Pattern: procedure, Name: routeName(procedure), Handler: h}
	}
	return []ingest.Route{
		route(debuginfov1alpha1connect.DebuginfoServiceShouldInitiateUploadProcedure),
		route(debuginfov1alpha1connect.DebuginfoServiceUploadFinishedProcedure),
		route(debuginfov1alpha1connect.DebuginfoServiceListDebuginfoProcedure),
		route(debuginfov1alpha1connect.DebuginfoServiceDeleteDebuginfoProcedure),
		{Pattern: "POST " + UploadPathPrefix + "{gnu_build_id}", Name: routeName(UploadPathPrefix), Handler: http.HandlerFunc(s.upload)},
	}
}

// Handler serves the routes on their own (tests, embedding).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	return mux
}

// UploadPathPrefix is the upload path less the build ID, as Pyroscope
// registers it (pkg/api/api.go at 3fe6a45).
const UploadPathPrefix = "/" + debuginfov1alpha1connect.DebuginfoServiceName + "/Upload/"

var routeChars = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// routeName labels a path in the request metrics as the push route is
// labelled ("push_v1_PusherService_Push").
func routeName(p string) string {
	return strings.Trim(routeChars.ReplaceAllString(p, "_"), "_")
}

// errDisabled answers every call but ShouldInitiateUpload when there is no
// bucket.
var errDisabled = errors.New("debuginfo uploads are disabled: the distributor has no storage backend configured")

// buildIDPattern is what Pyroscope accepts as a GNU build ID: 2 to 40 hex
// digits (pkg/debuginfo/store.go at 3fe6a45).
var buildIDPattern = regexp.MustCompile(`^[a-fA-F0-9]{2,40}$`)

// buildID is a validated GNU build ID, safe to use in an object path.
type buildID string

func parseBuildID(s string) (buildID, error) {
	if !buildIDPattern.MatchString(s) {
		return "", fmt.Errorf("invalid gnuBuildID %q", s)
	}
	return buildID(s), nil
}

// bucketPrefix is Pyroscope's folder for debuginfo in its storage bucket.
const bucketPrefix = "debug-info"

// ObjectPath is where the executable of id is stored for tenant:
// debug-info/<tenant>/<gnu_build_id>/exe.
func ObjectPath(tenant string, id buildID) string {
	return path.Join(bucketPrefix, tenant, string(id), "exe")
}

// MetadataPath is where its metadata (ObjectMetadata in protojson) is stored:
// debug-info/<tenant>/<gnu_build_id>/metadata.
func MetadataPath(tenant string, id buildID) string {
	return path.Join(bucketPrefix, tenant, string(id), "metadata")
}

// tenantDir is the folder that holds a tenant's build IDs.
func tenantDir(tenant string) string { return bucketPrefix + "/" + tenant + "/" }
