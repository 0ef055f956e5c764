package debuginfo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-kit/log/level"
	debuginfov1alpha1 "github.com/grafana/pyroscope/api/gen/proto/go/debuginfo/v1alpha1"
	"github.com/thanos-io/objstore"

	"github.com/pyrodist/pyrodist/internal/inflight"
)

// writeMargin is how much longer than the upload timeout the answer may
// take to write, as Pyroscope allows.
const writeMargin = 30 * time.Second

// cleanupTimeout bounds the removal of a failed upload's partial object.
const cleanupTimeout = 30 * time.Second

// upload streams the body of POST .../Upload/{gnu_build_id} into the
// bucket. Only a build ID that ShouldInitiateUpload marked in progress
// takes an upload. The answers are Pyroscope's plain-text ones
// (pkg/debuginfo/store.go at 3fe6a45), docs/compatibility.md#debuginfo-uploads.
func (s *Service) upload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if t := s.cfg.UploadTimeout; t > 0 {
		// An upload may take longer than the server's read and write
		// timeouts allow other requests.
		now := time.Now()
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(now.Add(t)); err != nil {
			level.Warn(s.logger).Log("msg", "failed to set read deadline", "err", err)
		}
		if err := rc.SetWriteDeadline(now.Add(t + writeMargin)); err != nil {
			level.Warn(s.logger).Log("msg", "failed to set write deadline", "err", err)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	tenant, err := s.tenant(r.Header)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if s.bucket == nil {
		http.Error(w, errDisabled.Error(), http.StatusNotImplemented)
		return
	}
	id, err := parseBuildID(r.PathValue("gnu_build_id"))
	if err != nil {
		http.Error(w, "invalid gnu_build_id: "+err.Error(), http.StatusBadRequest)
		return
	}
	logger := level.Error(s.logger)
	md, err := s.readMetadata(ctx, tenant, id)
	if err != nil {
		logger.Log("msg", "failed to fetch metadata", "tenant", tenant, "gnu_build_id", id, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if md == nil || md.State != debuginfov1alpha1.ObjectMetadata_STATE_UPLOADING {
		http.Error(w, "no pending upload for this build ID", http.StatusPreconditionFailed)
		return
	}
	limit := s.cfg.MaxUploadSize
	if limit > 0 && r.ContentLength > limit { // refused before a byte is read
		http.Error(w, tooLarge(limit), http.StatusInternalServerError)
		return
	}

	// The bytes pass through (an S3 upload of unknown length aside, see
	// sizeForS3); what stays in memory is the bucket client's buffer,
	// charged for as long as the upload runs.
	ch := s.budget.Charge()
	defer ch.Release()
	if err := ch.Reserve(s.uploadCharge(r.ContentLength)); err != nil {
		http.Error(w, err.Error(), http.StatusTooManyRequests)
		return
	}
	body := &uploadBody{r: r.Body, size: r.ContentLength}
	if limit > 0 {
		body.r = http.MaxBytesReader(w, r.Body, limit)
	}
	var src io.Reader = body
	if body.size < 0 && s.bucket.Provider() == objstore.S3 {
		src, err = s.sizeForS3(body, ch)
	}
	if err == nil {
		err = s.bucket.Upload(ctx, ObjectPath(tenant, id), src)
	}
	if err != nil {
		s.removePartial(ctx, tenant, id)
		var over *http.MaxBytesError
		switch {
		case errors.As(body.err, &over):
			http.Error(w, tooLarge(limit), http.StatusInternalServerError)
		case inflight.IsExhausted(err):
			http.Error(w, err.Error(), http.StatusTooManyRequests)
		default:
			logger.Log("msg", "failed to upload debuginfo", "tenant", tenant, "gnu_build_id", id, "err", err)
			http.Error(w, "upload failed", http.StatusInternalServerError)
		}
		return
	}
	level.Debug(s.logger).Log("msg", "debuginfo upload completed", "tenant", tenant, "gnu_build_id", id)
	w.WriteHeader(http.StatusOK)
}

// tooLarge is the answer to an upload over the limit. Pyroscope answers it
// 500 "upload failed" (its size cap fails the bucket upload); the status is
// kept, the text says why.
func tooLarge(limit int64) string {
	return fmt.Sprintf("upload failed: the debuginfo is larger than the limit of %d bytes (-debug-info.max-upload-size)", limit)
}

// uploadCharge is what an upload of size bytes (-1: unknown) holds of the
// in-flight budget: the bucket client's buffer, or the whole upload when
// it is smaller.
func (s *Service) uploadCharge(size int64) int {
	if size < 0 && s.cfg.MaxUploadSize > 0 {
		size = s.cfg.MaxUploadSize
	}
	if size < 0 || size > s.buffer {
		size = s.buffer
	}
	return int(size)
}

// s3UnknownSizePart is what objstore's S3 client (minio-go v7) allocates
// up front for an upload of unknown length: one part of a 5 TiB object cut
// in 10,000, rounded up to 16 MiB.
const s3UnknownSizePart = 528 << 20

// sizeForS3 spares an S3 upload without a declared length that part: the
// body is read into memory up to the upload buffer (which the upload's
// charge already covers); one that ends there is uploaded with its size
// known. A longer one goes on at the unknown length, charged the part.
func (s *Service) sizeForS3(body *uploadBody, ch *inflight.Charge) (io.Reader, error) {
	var head bytes.Buffer
	n, err := head.ReadFrom(io.LimitReader(body, s.buffer+1))
	if err != nil {
		return nil, err
	}
	if n <= s.buffer {
		return bytes.NewReader(head.Bytes()), nil // objstore.TryToGetSize knows its size
	}
	if err := ch.Reserve(s3UnknownSizePart); err != nil {
		return nil, err
	}
	return io.MultiReader(bytes.NewReader(head.Bytes()), body), nil
}

// removePartial deletes what a failed upload left (the filesystem backend
// keeps a partial file), so UploadFinished cannot mark it uploaded.
func (s *Service) removePartial(ctx context.Context, tenant string, id buildID) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := s.bucket.Delete(ctx, ObjectPath(tenant, id)); err != nil && !s.bucket.IsObjNotFoundErr(err) {
		level.Warn(s.logger).Log("msg", "failed to remove a failed upload", "tenant", tenant, "gnu_build_id", id, "err", err)
	}
}

// uploadBody is an upload's body as the bucket reads it: it keeps the
// first read error, and tells the bucket client the size the client
// declared (objstore.ObjectSizer), so S3 picks parts by the real size
// instead of buffering parts sized for the largest object.
type uploadBody struct {
	r    io.Reader
	size int64 // -1: unknown
	err  error
}

func (b *uploadBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && b.err == nil {
		b.err = err
	}
	return n, err
}

var errUnknownSize = errors.New("the client did not declare the upload's size")

// ObjectSize implements objstore.ObjectSizer.
func (b *uploadBody) ObjectSize() (int64, error) {
	if b.size < 0 {
		return 0, errUnknownSize
	}
	return b.size, nil
}
