// Package storage is the distributor's object storage: a service that
// builds the bucket Pyroscope's storage block describes, checks that it
// answers, and closes it on stop. The placement-rules poller and debug
// info uploads use its Bucket.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/backoff"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/thanos-io/objstore"

	"github.com/pyrodist/pyrodist/internal/config"
)

// BucketName labels objstore's metrics (objstore_bucket_operations_total
// and the others, bucket="storage"), as Pyroscope names its shared bucket
// (initStorage in pkg/pyroscope/modules.go at 3fe6a45).
const BucketName = "storage"

// ProbeObject is what the start check looks up: the placement rules, the
// object the distributor reads. Looking up an object needs only read
// access to it where S3 would answer 403, not 404, for a missing object
// to a reader without list access.
const ProbeObject = "adaptive_placement/placement_rules.binpb"

// ErrNotReady is returned by the bucket's operations until it is built.
var ErrNotReady = errors.New("object storage is not ready")

// Options tune the service; the zero value is what the distributor uses.
type Options struct {
	// StartWait bounds how long start waits for the first attempt to
	// build and check the bucket (default 10s).
	StartWait time.Duration
	// CheckTimeout bounds one reachability check (default 10s).
	CheckTimeout time.Duration
	// Backoff paces the attempts after a failure (default 1s doubling to 1m).
	Backoff backoff.Config
	// StopWait bounds how long stop waits for an attempt under way (a
	// Swift authentication cannot be cancelled) before it gives up on
	// closing the bucket (default 5s).
	StopWait time.Duration
}

// Service owns the bucket.
//
// A production distributor must not depend on object storage to ingest:
// the placement rules fall back to the static ones and debug info uploads
// fail on their own. So start never fails because the store is down or
// slow: start makes one attempt to build and check the bucket, waits for
// it at most StartWait, and the attempts go on in the background (with
// backoff, a warning each time) until the bucket is built and answered
// once. A config the store can never accept is refused earlier, at load
// (config.Storage.Validate). Until the bucket is built its operations
// return ErrNotReady; pyrodist_storage_bucket_ready tells when it is.
type Service struct {
	services.Service

	cfg     config.Storage
	opts    Options
	logger  log.Logger
	metrics *objstore.Metrics
	ready   prometheus.Gauge
	bucket  *bucket // nil without a backend
	build   func(context.Context, config.Storage, log.Logger) (objstore.Bucket, error)

	cancel context.CancelFunc
	done   chan struct{}
}

// New returns the service for cfg, which Load has validated. Without a
// backend it runs idle and Bucket is nil.
func New(cfg config.Storage, opts Options, logger log.Logger, reg prometheus.Registerer) *Service {
	if opts.StartWait <= 0 {
		opts.StartWait = 10 * time.Second
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 10 * time.Second
	}
	if opts.StopWait <= 0 {
		opts.StopWait = 5 * time.Second
	}
	if opts.Backoff.MinBackoff <= 0 {
		opts.Backoff = backoff.Config{MinBackoff: time.Second, MaxBackoff: time.Minute}
	}
	s := &Service{cfg: cfg, opts: opts, logger: log.With(logger, "component", "storage"), build: newBackend}
	if cfg.Enabled() {
		s.metrics = objstore.BucketMetrics(reg, BucketName)
		s.ready = promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "pyrodist_storage_bucket_ready",
			Help: "1 once the object storage bucket is built and answered the distributor's check, 0 before.",
		})
		s.bucket = &bucket{provider: providers[cfg.Backend]}
	}
	s.Service = services.NewBasicService(s.starting, s.running, s.stopping).WithName("storage")
	return s
}

// Bucket is the object storage, prefix applied, with objstore's metrics;
// nil when no backend is configured. It can be taken before the service
// starts: its operations return ErrNotReady until the bucket is built.
// Its Close does nothing: the service closes the bucket when it stops, so
// the parts that use it must stop first (depend on the storage module).
func (s *Service) Bucket() objstore.Bucket {
	if s.bucket == nil {
		return nil
	}
	return s.bucket
}

func (s *Service) starting(ctx context.Context) error {
	if s.bucket == nil {
		level.Info(s.logger).Log("msg", "no object storage configured (storage.backend is empty)")
		return nil
	}
	if s.cfg.DeprecatedPrefix != "" {
		level.Warn(s.logger).Log("msg", "storage.storage_prefix is deprecated; use storage.prefix")
	}
	if s.cfg.Backend == config.StorageFilesystem {
		level.Warn(s.logger).Log("msg", "the filesystem storage backend is only useful when every Pyroscope component shares this directory", "dir", s.cfg.Filesystem.Dir)
	}
	loop, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	first := make(chan struct{})
	go s.connect(loop, first)
	select {
	case <-first:
	case <-time.After(s.opts.StartWait):
		level.Warn(s.logger).Log("msg", "object storage did not answer in time; starting without it, attempts go on", "backend", s.cfg.Backend, "waited", s.opts.StartWait)
	case <-ctx.Done():
	}
	return nil
}

func (s *Service) running(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (s *Service) stopping(error) error {
	if s.bucket == nil {
		return nil
	}
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(s.opts.StopWait):
		// The process is ending; an attempt that cannot be cancelled must
		// not hold up the rest of the shutdown.
		level.Warn(s.logger).Log("msg", "an object storage attempt is still running; stopping without waiting for it", "waited", s.opts.StopWait)
		return nil
	}
	return s.bucket.close()
}

// connect builds the bucket, then checks it answers, retrying each step
// with backoff until it succeeds or ctx ends. first is closed after the
// first attempt, whatever its outcome.
func (s *Service) connect(ctx context.Context, first chan struct{}) {
	defer close(s.done)
	once := sync.OnceFunc(func() { close(first) })
	defer once()

	b := backoff.New(ctx, s.opts.Backoff)
	for b.Ongoing() {
		raw, err := s.build(ctx, s.cfg, s.logger)
		if err == nil {
			var built objstore.Bucket = objstore.WrapWith(raw, s.metrics)
			if p := s.cfg.EffectivePrefix(); p != "" {
				built = objstore.NewPrefixedBucket(built, p)
			}
			s.bucket.set(built)
			break
		}
		level.Warn(s.logger).Log("msg", "cannot build the object storage client; retrying", "backend", s.cfg.Backend, "err", err)
		s.bucket.fail(err)
		once()
		b.Wait()
	}
	if s.bucket.get() == nil {
		return // stopped before the bucket was built
	}
	b.Reset()
	for b.Ongoing() {
		err := s.check(ctx)
		if err == nil {
			s.ready.Set(1)
			level.Info(s.logger).Log("msg", "object storage ready", "backend", s.cfg.Backend, "prefix", s.cfg.EffectivePrefix())
			return
		}
		if ctx.Err() != nil {
			return
		}
		level.Warn(s.logger).Log("msg", "object storage does not answer; retrying", "backend", s.cfg.Backend, "err", err)
		once()
		b.Wait()
	}
}

// check looks ProbeObject up. Any answer of the store counts, found or
// not; access denied counts too (the store answered: the credentials are
// for the user to fix, and asking again would not change the answer), but
// it is logged.
func (s *Service) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.CheckTimeout)
	defer cancel()
	b := s.bucket.get()
	_, err := b.Exists(ctx, ProbeObject)
	if err != nil && b.IsAccessDeniedErr(err) {
		level.Warn(s.logger).Log("msg", "object storage answers but denies access; check the credentials and the bucket's policy", "object", ProbeObject, "err", err)
		return nil
	}
	return err
}

// bucket is the Bucket handed out before the real one exists: it forwards
// to the built bucket, or returns ErrNotReady.
type bucket struct {
	provider objstore.ObjProvider

	mu      sync.RWMutex
	b       objstore.Bucket
	lastErr error
}

func (l *bucket) set(b objstore.Bucket) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b, l.lastErr = b, nil
}

func (l *bucket) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastErr = err
}

func (l *bucket) get() objstore.Bucket {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.b
}

// use returns the built bucket or ErrNotReady with the last build error.
func (l *bucket) use() (objstore.Bucket, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	switch {
	case l.b != nil:
		return l.b, nil
	case l.lastErr != nil:
		return nil, fmt.Errorf("%w: %w", ErrNotReady, l.lastErr)
	}
	return nil, ErrNotReady
}

func (l *bucket) close() error {
	if b := l.get(); b != nil {
		return b.Close()
	}
	return nil
}

func (l *bucket) Provider() objstore.ObjProvider { return l.provider }
func (l *bucket) Name() string                   { return BucketName }

// Close does nothing: the service closes the bucket when it stops.
func (l *bucket) Close() error { return nil }

func (l *bucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	b, err := l.use()
	if err != nil {
		return err
	}
	return b.Upload(ctx, name, r, opts...)
}

func (l *bucket) Delete(ctx context.Context, name string) error {
	b, err := l.use()
	if err != nil {
		return err
	}
	return b.Delete(ctx, name)
}

func (l *bucket) Iter(ctx context.Context, dir string, f func(string) error, opts ...objstore.IterOption) error {
	b, err := l.use()
	if err != nil {
		return err
	}
	return b.Iter(ctx, dir, f, opts...)
}

func (l *bucket) IterWithAttributes(ctx context.Context, dir string, f func(objstore.IterObjectAttributes) error, opts ...objstore.IterOption) error {
	b, err := l.use()
	if err != nil {
		return err
	}
	return b.IterWithAttributes(ctx, dir, f, opts...)
}

func (l *bucket) SupportedIterOptions() []objstore.IterOptionType {
	if b := l.get(); b != nil {
		return b.SupportedIterOptions()
	}
	return nil
}

func (l *bucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	b, err := l.use()
	if err != nil {
		return nil, err
	}
	return b.Get(ctx, name)
}

func (l *bucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	b, err := l.use()
	if err != nil {
		return nil, err
	}
	return b.GetRange(ctx, name, off, length)
}

func (l *bucket) Exists(ctx context.Context, name string) (bool, error) {
	b, err := l.use()
	if err != nil {
		return false, err
	}
	return b.Exists(ctx, name)
}

func (l *bucket) Attributes(ctx context.Context, name string) (objstore.ObjectAttributes, error) {
	b, err := l.use()
	if err != nil {
		return objstore.ObjectAttributes{}, err
	}
	return b.Attributes(ctx, name)
}

func (l *bucket) IsObjNotFoundErr(err error) bool {
	b := l.get()
	return b != nil && b.IsObjNotFoundErr(err)
}

func (l *bucket) IsAccessDeniedErr(err error) bool {
	b := l.get()
	return b != nil && b.IsAccessDeniedErr(err)
}
