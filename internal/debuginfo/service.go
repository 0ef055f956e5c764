package debuginfo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"connectrpc.com/connect"
	"github.com/go-kit/log/level"
	debuginfov1alpha1 "github.com/grafana/pyroscope/api/gen/proto/go/debuginfo/v1alpha1"
	"github.com/thanos-io/objstore"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The reasons ShouldInitiateUpload gives, word for word Pyroscope's
// (pkg/debuginfo/store.go at 3fe6a45): agents log them.
const (
	ReasonFirstTimeSeen          = "First time we see this Build ID, therefore please upload!"
	ReasonUploadStale            = "A previous upload was started but not finished and is now stale, so it can be retried."
	ReasonUploadInProgress       = "A previous upload is still in-progress and not stale yet (only stale uploads can be retried)."
	ReasonDebuginfoAlreadyExists = "Debuginfo already exists and is not marked as invalid, therefore no new upload is needed."
	ReasonDisabled               = "DebugInfo upload disabled"
	ReasonEmptyBuildID           = "Empty GNU build ID, therefore no upload is needed."
)

// decide is the state machine of ShouldInitiateUpload: md is the metadata
// stored for the build ID, nil when there is none.
func (s *Service) decide(md *debuginfov1alpha1.ObjectMetadata) (*debuginfov1alpha1.ShouldInitiateUploadResponse, error) {
	answer := func(upload bool, reason string) (*debuginfov1alpha1.ShouldInitiateUploadResponse, error) {
		return &debuginfov1alpha1.ShouldInitiateUploadResponse{ShouldInitiateUpload: upload, Reason: reason}, nil
	}
	if md == nil {
		return answer(true, ReasonFirstTimeSeen)
	}
	switch md.State {
	case debuginfov1alpha1.ObjectMetadata_STATE_UPLOADING:
		// An upload that did not finish in time may be taken over; one
		// still within its time is left alone.
		if md.StartedAt.AsTime().Add(s.cfg.StaleAfter()).Before(s.now()) {
			return answer(true, ReasonUploadStale)
		}
		return answer(false, ReasonUploadInProgress)
	case debuginfov1alpha1.ObjectMetadata_STATE_UPLOADED:
		return answer(false, ReasonDebuginfoAlreadyExists)
	default:
		return nil, fmt.Errorf("metadata inconsistency: unknown upload state %d", md.State)
	}
}

// ShouldInitiateUpload tells an agent whether to upload a build ID's
// symbols, and marks the upload in progress when it should.
func (s *Service) ShouldInitiateUpload(ctx context.Context, req *connect.Request[debuginfov1alpha1.ShouldInitiateUploadRequest]) (*connect.Response[debuginfov1alpha1.ShouldInitiateUploadResponse], error) {
	tenant, err := s.tenant(req.Header())
	if err != nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, err)
	}
	if !s.cfg.Enabled || s.bucket == nil {
		return connect.NewResponse(&debuginfov1alpha1.ShouldInitiateUploadResponse{Reason: ReasonDisabled}), nil
	}
	file := req.Msg.GetFile()
	if file != nil && file.GnuBuildId == "" {
		return connect.NewResponse(&debuginfov1alpha1.ShouldInitiateUploadResponse{Reason: ReasonEmptyBuildID}), nil
	}
	id, err := validateFile(file)
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("invalid request: %w", err))
	}
	md, err := s.readMetadata(ctx, tenant, id)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("failed to fetch metadata: %w", err))
	}
	resp, err := s.decide(md)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	if resp.ShouldInitiateUpload {
		md = &debuginfov1alpha1.ObjectMetadata{
			File:      file,
			State:     debuginfov1alpha1.ObjectMetadata_STATE_UPLOADING,
			StartedAt: timestamppb.New(s.now()),
		}
		if err := s.writeMetadata(ctx, tenant, id, md); err != nil {
			return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("failed to write uploading metadata: %w", err))
		}
	}
	return connect.NewResponse(resp), nil
}

// validateFile checks the file of a ShouldInitiateUpload request as
// Pyroscope does: a known type and a valid GNU build ID.
func validateFile(f *debuginfov1alpha1.FileMetadata) (buildID, error) {
	if f == nil {
		return "", errors.New("the request has no file")
	}
	switch f.Type {
	case debuginfov1alpha1.FileMetadata_TYPE_EXECUTABLE_FULL, debuginfov1alpha1.FileMetadata_TYPE_EXECUTABLE_NO_TEXT:
		return parseBuildID(f.GnuBuildId)
	default:
		return "", fmt.Errorf("file type %d is not valid", f.Type)
	}
}

// UploadFinished marks an upload done once its object is in the bucket,
// recording the object's size.
func (s *Service) UploadFinished(ctx context.Context, req *connect.Request[debuginfov1alpha1.UploadFinishedRequest]) (*connect.Response[debuginfov1alpha1.UploadFinishedResponse], error) {
	tenant, id, err := s.callOn(req.Header(), req.Msg.GetGnuBuildId())
	if err != nil {
		return nil, err
	}
	md, err := s.readMetadata(ctx, tenant, id)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("failed to fetch metadata: %w", err))
	}
	if md == nil {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("no upload metadata found for build ID %s", id))
	}
	if md.State != debuginfov1alpha1.ObjectMetadata_STATE_UPLOADING {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("upload is not in uploading state"))
	}
	attrs, err := s.bucket.Attributes(ctx, ObjectPath(tenant, id))
	switch {
	case err != nil && s.bucket.IsObjNotFoundErr(err):
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("no uploaded file found for build ID %s", id))
	case err != nil:
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("failed to check uploaded file: %w", err))
	}
	md.State = debuginfov1alpha1.ObjectMetadata_STATE_UPLOADED
	md.FinishedAt = timestamppb.New(s.now())
	md.SizeBytes = attrs.Size
	if err := s.writeMetadata(ctx, tenant, id, md); err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("failed to write uploaded metadata: %w", err))
	}
	level.Debug(s.logger).Log("msg", "debuginfo upload finished", "tenant", tenant, "gnu_build_id", id, "size", attrs.Size)
	return connect.NewResponse(&debuginfov1alpha1.UploadFinishedResponse{}), nil
}

// listConcurrency bounds the metadata reads of one ListDebuginfo, as
// Pyroscope does.
const listConcurrency = 32

// ListDebuginfo returns the metadata of every build ID of the tenant, in
// build ID order (Pyroscope's order is whatever its reads finish in).
func (s *Service) ListDebuginfo(ctx context.Context, req *connect.Request[debuginfov1alpha1.ListDebuginfoRequest]) (*connect.Response[debuginfov1alpha1.ListDebuginfoResponse], error) {
	tenant, err := s.tenant(req.Header())
	if err != nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, err)
	}
	if s.bucket == nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errDisabled)
	}
	var ids []buildID
	err = s.bucket.Iter(ctx, tenantDir(tenant), func(name string) error {
		if !strings.HasSuffix(name, objstore.DirDelim) {
			return nil
		}
		id, err := parseBuildID(path.Base(name))
		if err != nil {
			level.Warn(s.logger).Log("msg", "skipping debuginfo entry with invalid build ID", "name", name, "err", err)
			return nil
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	found := make([]*debuginfov1alpha1.ObjectMetadata, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listConcurrency)
	for i, id := range ids {
		g.Go(func() (err error) {
			found[i], err = s.readMetadata(gctx, tenant, id)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	resp := &debuginfov1alpha1.ListDebuginfoResponse{Object: make([]*debuginfov1alpha1.ObjectMetadata, 0, len(found))}
	for _, md := range found {
		if md != nil { // a folder without metadata (deleted meanwhile)
			resp.Object = append(resp.Object, md)
		}
	}
	return connect.NewResponse(resp), nil
}

// DeleteDebuginfo removes a build ID's metadata and object; either may
// already be gone.
func (s *Service) DeleteDebuginfo(ctx context.Context, req *connect.Request[debuginfov1alpha1.DeleteDebuginfoRequest]) (*connect.Response[debuginfov1alpha1.DeleteDebuginfoResponse], error) {
	tenant, id, err := s.callOn(req.Header(), req.Msg.GetGnuBuildId())
	if err != nil {
		return nil, err
	}
	for _, p := range []string{MetadataPath(tenant, id), ObjectPath(tenant, id)} {
		if err := s.bucket.Delete(ctx, p); err != nil && !s.bucket.IsObjNotFoundErr(err) {
			return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("failed to delete debuginfo object %q: %w", p, err))
		}
	}
	return connect.NewResponse(&debuginfov1alpha1.DeleteDebuginfoResponse{}), nil
}

// callOn resolves the tenant and build ID of a call about one build ID.
func (s *Service) callOn(h http.Header, gnuBuildID string) (string, buildID, error) {
	tenant, err := s.tenant(h)
	if err != nil {
		return "", "", connect.NewError(connect.CodeUnauthenticated, err)
	}
	if s.bucket == nil {
		return "", "", connect.NewError(connect.CodeUnimplemented, errDisabled)
	}
	id, err := parseBuildID(gnuBuildID)
	if err != nil {
		return "", "", connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("invalid gnu_build_id: %w", err))
	}
	return tenant, id, nil
}

// maxMetadata bounds what is read of a metadata object (Pyroscope's are a
// few hundred bytes), so a stray large object cannot take the memory.
const maxMetadata = 1 << 20

// readMetadata reads the metadata of a build ID; nil when there is none.
func (s *Service) readMetadata(ctx context.Context, tenant string, id buildID) (*debuginfov1alpha1.ObjectMetadata, error) {
	r, err := s.bucket.Get(ctx, MetadataPath(tenant, id))
	if err != nil {
		if s.bucket.IsObjNotFoundErr(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("fetch debuginfo metadata from object storage: %w", err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxMetadata+1))
	if err != nil {
		return nil, fmt.Errorf("read debuginfo metadata from object storage: %w", err)
	}
	if len(data) > maxMetadata {
		return nil, fmt.Errorf("debuginfo metadata %s is over %d bytes", MetadataPath(tenant, id), maxMetadata)
	}
	md := &debuginfov1alpha1.ObjectMetadata{}
	if err := protojson.Unmarshal(data, md); err != nil {
		return nil, fmt.Errorf("unmarshal debuginfo metadata: %w", err)
	}
	return md, nil
}

// writeMetadata stores md as Pyroscope does: protojson with its default
// options.
func (s *Service) writeMetadata(ctx context.Context, tenant string, id buildID, md *debuginfov1alpha1.ObjectMetadata) error {
	data, err := protojson.Marshal(md)
	if err != nil {
		return fmt.Errorf("marshal debuginfo metadata: %w", err)
	}
	return s.bucket.Upload(ctx, MetadataPath(tenant, id), bytes.NewReader(data))
}
