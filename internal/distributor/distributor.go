package distributor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/google/uuid"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/inflight"
	"github.com/pyrodist/pyrodist/internal/metriclabel"
	"github.com/pyrodist/pyrodist/internal/placement"
	"github.com/pyrodist/pyrodist/internal/profile"
	"github.com/pyrodist/pyrodist/internal/ratelimit"
	"github.com/pyrodist/pyrodist/internal/validation"
)

// TenantLimits gives the current limits of a tenant (defaults merged with
// overrides.yaml). Implementations must be safe for concurrent use; the
// returned value must not be modified by the caller.
type TenantLimits interface {
	ForTenant(tenant string) *config.Limits
}

// Config is the process-wide part of the pipeline's settings.
type Config struct {
	// Budget is the in-flight budget the pipeline charges, shared with the
	// ingest server; nil makes one of MaxInflightBytes.
	Budget *inflight.Budget
	// MaxInflightBytes bounds what all requests hold at once; 0 derives it
	// from the memory limit (a quarter of it).
	MaxInflightBytes int64
	// Tenants bounds the tenant label values of the metrics, shared with the
	// segment-writer client; nil makes one of MaxMetricTenants.
	Tenants *metriclabel.Set
	// MaxMetricTenants and MaxMetricProfileNames bound the tenant and type
	// label values of the metrics; 0: the flag defaults.
	MaxMetricTenants      int
	MaxMetricProfileNames int
}

// ConfigFrom picks the pipeline's settings out of the config file.
func ConfigFrom(c *config.Config) Config {
	l := c.Distributor.InstanceLimits
	return Config{MaxInflightBytes: l.MaxInflightBytes, MaxMetricTenants: l.MaxMetricTenants, MaxMetricProfileNames: l.MaxMetricProfileNames}
}

// Distributor validates, normalizes and splits pushed profiles and hands each
// outgoing profile to a Sender.
type Distributor struct {
	limits   TenantLimits
	sender   Sender
	limiter  *ratelimit.Limiter
	usage    *usage
	budget   *inflight.Budget
	metrics  *metrics
	logger   log.Logger
	now      func() time.Time
	defaults config.Limits // for a TenantLimits that knows no limits
}

// New builds a Distributor. healthyDistributors gives the number of healthy
// distributors sharing the global rate limit (nil or a result <= 0 means 1).
func New(cfg Config, limits TenantLimits, sender Sender, healthyDistributors func() int, reg prometheus.Registerer, logger log.Logger) (*Distributor, error) {
	if limits == nil || sender == nil {
		return nil, errors.New("distributor: limits and sender are required")
	}
	if logger == nil {
		logger = log.NewNopLogger()
	}
	f := cfg.Budget
	if f == nil {
		f = inflight.New(cfg.MaxInflightBytes)
	}
	def := config.Defaults().Distributor.InstanceLimits
	tenants := cfg.Tenants
	if tenants == nil {
		tenants = metriclabel.Tenants(cmp.Or(cfg.MaxMetricTenants, def.MaxMetricTenants))
	}
	m, err := newMetrics(reg, f, tenants,
		metriclabel.ProfileNames(cmp.Or(cfg.MaxMetricProfileNames, def.MaxMetricProfileNames)))
	if err != nil {
		return nil, err
	}
	u, err := newUsage(reg, tenants, healthyDistributors)
	if err != nil {
		return nil, err
	}
	return &Distributor{
		limits:   limits,
		sender:   sender,
		limiter:  ratelimit.New(healthyDistributors),
		usage:    u,
		budget:   f,
		metrics:  m,
		logger:   logger,
		now:      time.Now,
		defaults: config.Defaults().Limits,
	}, nil
}

// decodedFactor is the memory of a decoded profile per byte of pprof that
// Push charges up front (measured live after decode and normalization: 3.6x
// for a Go heap profile, 7.4x for a CPU profile, 8.2x for a 16k-sample one),
// as well as the inflated bytes. It is a typical figure, not a bound: the
// decoder charges whatever it takes beyond it (an empty sample is 2 bytes
// of pprof and over 100 decoded).
const decodedFactor = 8

// item is one raw profile of a request, inflated.
type item struct {
	labels []*typesv1.LabelPair // sorted, with service_name
	data   []byte               // uncompressed pprof
}

// Push validates, normalizes, splits and sends every series of req for tenant.
// It returns nil only when every outgoing profile was acked by Sender.Send.
// Client-caused errors are *connect.Error with CodeInvalidArgument or
// CodeResourceExhausted and Pyroscope's messages; Sender errors are returned
// unchanged. When several profiles fail, the error of the first one (in
// request order) is returned.
func (d *Distributor) Push(ctx context.Context, tenant string, req *pushv1.PushRequest) (pushErr error) {
	defer d.recoverTo(&pushErr)
	n := 0
	for _, s := range req.GetSeries() {
		n += len(s.GetSamples())
	}
	if n == 0 {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("no profiles received"))
	}
	lim := d.limits.ForTenant(tenant)
	if lim == nil {
		lim = &d.defaults
	}
	now := d.now()
	start := time.Now() // not d.now: that one is the profiles' clock, faked in tests

	ch := d.budget.Charge()
	var bufs []*[]byte
	defer func() {
		for _, b := range bufs {
			profile.PutBuffer(b)
		}
		ch.Release()
	}()

	// Inflate every profile first, as Pyroscope does: the request size limit
	// applies to their sum.
	items := make([]item, 0, n)
	var sizeErr error
	total := 0
	for _, s := range req.Series {
		labels := make([]*typesv1.LabelPair, len(s.Labels), len(s.Labels)+1)
		copy(labels, s.Labels)
		labels = validation.WithServiceName(labels)
		name := validation.Get(labels, validation.LabelName)
		for _, raw := range s.Samples {
			d.metrics.receivedCompressed.WithLabelValues(d.metrics.types.Value(name), d.metrics.tenants.Value(tenant)).Observe(float64(len(raw.GetRawProfile())))
			buf := profile.GetBuffer()
			bufs = append(bufs, buf)
			data, err := profile.Inflate(raw.GetRawProfile(), lim.MaxProfileSizeBytes, buf, ch.Reserve)
			if err == nil {
				// The decoded form is several times the pprof bytes: charge
				// it now, before anything of the request is sent.
				err = ch.Reserve(decodedFactor * len(data))
			}
			if err != nil {
				var tooLarge *profile.ErrTooLarge
				switch {
				case inflight.IsExhausted(err):
					d.metrics.discard(validation.InflightLimit, tenant, len(raw.GetRawProfile()))
					return d.inflightError(err)
				case errors.As(err, &tooLarge):
					d.metrics.discard(validation.ProfileSizeLimit, tenant, len(raw.GetRawProfile()))
					if sizeErr == nil {
						sizeErr = connect.NewError(connect.CodeInvalidArgument, err)
					}
					continue
				default:
					d.metrics.discard(validation.MalformedProfile, tenant, len(raw.GetRawProfile()))
					return connect.NewError(connect.CodeInvalidArgument, err)
				}
			}
			total += len(data)
			items = append(items, item{labels: labels, data: data})
		}
	}
	if limit := int(lim.IngestionBodyLimitMB * (1 << 20)); limit > 0 && total > limit {
		d.metrics.discard(validation.BodySizeLimitExceeded, tenant, total)
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(
			"uncompressed batched profile payload size exceeds limit of %s", profile.SIBytes(uint64(limit))))
	}

	errs := make([]error, len(items))
	if len(items) == 1 {
		errs[0] = d.pushProfile(ctx, tenant, lim, ch, items[0], now, start)
	} else {
		conc := lim.PushMaxConcurrency
		if conc <= 0 || conc > len(items) {
			conc = len(items)
		}
		sem := make(chan struct{}, conc)
		var wg sync.WaitGroup
		for i := range items {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				defer d.recoverTo(&errs[i])
				errs[i] = d.pushProfile(ctx, tenant, lim, ch, items[i], now, start)
			}()
		}
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return sizeErr
}

// pushProfile runs one raw profile through the pipeline and sends its
// per-service profiles. The memory it adds to what Push charged (encoded
// profiles, gRPC's copy of each request) is charged to ch. start is when Push
// began, for the processing-time histogram.
func (d *Distributor) pushProfile(ctx context.Context, tenant string, lim *config.Limits, ch *inflight.Charge, it item, now, start time.Time) error {
	name := validation.Get(it.labels, validation.LabelName)
	cost := len(it.data)
	for _, l := range it.labels {
		cost += len(l.Name) + len(l.Value)
	}
	var v verdict
	if err := d.admitTenant(tenant, lim, cost, &v); err != nil {
		return err
	}
	// Rate limiting comes before validation, as in Pyroscope: invalid
	// profiles use tokens too.
	if ok, r := d.limiter.AllowN(now, tenant, lim, cost); !ok {
		d.metrics.discard(validation.RateLimited, tenant, cost)
		return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
			"push rate limit (%s) exceeded while adding %s", profile.IECBytes(uint64(r)), profile.IECBytes(uint64(cost))))
	}
	if err := d.admitGroups(tenant, lim, it.labels, cost, &v); err != nil || v.drop {
		return err
	}
	invalid := func(err error) error {
		var verr *validation.Error
		if errors.As(err, &verr) {
			d.usage.metrics.Discarded(string(verr.Reason), tenant, v.groups, cost)
		}
		return d.invalid(tenant, len(it.data), err)
	}
	// The decoded profile lives in pooled memory until the encodes below
	// are done; only bytes and labels leave this function.
	arena := profile.GetArena()
	defer func() {
		if arena != nil {
			arena.Release()
		}
	}()
	// The count limits apply while decoding and the decoded memory beyond
	// what Push charged is charged as it is taken: a few KB of pprof can
	// decode to hundreds of MB before Validate would see the sample count.
	// A profile to strip has its counts checked once stripped, as in Pyroscope.
	bounds := profile.Bounds{
		Limits: lim, Series: it.labels, Now: now,
		Paid: decodedFactor * len(it.data), Reserve: ch.Reserve,
	}
	if v.strip {
		bounds.Limits = nil
	}
	p, _, err := arena.DecodeWithin(it.data, bounds)
	if inflight.IsExhausted(err) {
		d.metrics.discard(validation.InflightLimit, tenant, len(it.data))
		return d.inflightError(err)
	}
	if err != nil {
		// A count limit is Validate's refusal, met after the usage groups'
		// accounting in Pyroscope; a profile that does not decode never
		// reaches it there.
		if verr := (*validation.Error)(nil); !errors.As(err, &verr) || verr.Reason == validation.MalformedProfile {
			return d.invalid(tenant, len(it.data), err)
		}
		d.admitted(tenant, name, len(it.data), &v)
		return invalid(err)
	}
	if v.strip {
		it.labels = d.stripped(tenant, p, it.labels, len(it.data), &v)
		cost = p.SizeVT()
		d.admitted(tenant, name, cost, &v)
		for _, l := range it.labels {
			cost += len(l.Name) + len(l.Value)
		}
	} else {
		d.admitted(tenant, name, len(it.data), &v)
	}
	tenantLabel := d.metrics.tenants.Value(tenant)
	d.metrics.receivedSamples.WithLabelValues(d.metrics.types.Value(name), tenantLabel).Observe(float64(len(p.Sample)))
	d.metrics.receivedDecompressed.WithLabelValues(tenantLabel, "received").Observe(float64(len(it.data)))

	// Pyroscope detects the language before validation shortens long strings
	// (GetProfileLanguage ahead of ValidateProfile in pushSeries,
	// pkg/distributor/distributor.go at 3fe6a45): a string that only matched
	// by its prefix may not after.
	isGo := profile.IsGo(p, it.labels)
	changed, err := profile.Validate(lim, p, len(it.data), it.labels, now)
	if err != nil {
		return invalid(err)
	}
	changed = changed || v.strip
	// A tenant and profile name that passed validation may take all of
	// the metrics' room for such values; refused ones only half.
	tenantLabel = d.metrics.tenants.Accepted(tenant)
	d.metrics.types.Accepted(name)
	if isGo && profile.FixGo(p) {
		changed = true
	}
	// Sample-type rules come between the Go fixes and normalization, as in
	// pushSeries (pkg/distributor/distributor.go at 3fe6a45).
	if lim.SampleTypeRelabelingRules.SampleTypes(p, it.labels) {
		changed = true
	}
	if profile.Normalize(p) {
		changed = true
	}
	if len(p.Sample) == 0 {
		return nil // nothing left to store: acknowledged, nothing sent
	}
	if profile.InjectMappingVersions(p, it.labels) {
		changed = true
	}
	labels := validation.LimitSessions(it.labels, lim.MaxSessionsPerSeries)
	outs, splitChanged, dropped, err := profile.SplitDropping(lim, p, labels)
	if err != nil {
		return invalid(err)
	}
	d.metrics.relabelDropped(tenant, dropped)
	if dropped.Bytes > 0 {
		d.usage.metrics.Discarded(string(validation.DroppedByRelabelRules), tenant, v.groups, dropped.Bytes)
	}
	if len(outs) == 0 {
		return nil // every label set dropped by relabel rules: acknowledged
	}

	profiles := make([]*Profile, len(outs))
	var bufs []*[]byte
	defer func() {
		for _, b := range bufs {
			profile.PutBuffer(b)
		}
	}()
	for i, o := range outs {
		var pprof []byte
		encoded := false
		if len(outs) == 1 && !changed && !splitChanged {
			// Nothing changed: forward the inflated bytes as they came.
			pprof = it.data
		} else {
			buf := profile.GetBuffer()
			bufs = append(bufs, buf)
			if pprof, err = profile.Encode(o.Profile, buf); err != nil {
				return connect.NewError(connect.CodeInternal, fmt.Errorf("encode profile: %w", err))
			}
			encoded = true
		}
		// The segment-writer codec marshals each request into a buffer of
		// its own that gRPC holds until the frame is written: charge it,
		// and the encoded profile when there is one, before sending.
		cost := len(pprof)
		for _, l := range o.Labels {
			cost += len(l.Name) + len(l.Value)
		}
		if encoded {
			cost += len(pprof)
		}
		if err := ch.Reserve(cost); err != nil {
			d.metrics.discard(validation.InflightLimit, tenant, len(it.data))
			return d.inflightError(err)
		}
		d.metrics.receivedDecompressed.WithLabelValues(tenantLabel, "normalized").Observe(float64(len(pprof)))
		profiles[i] = &Profile{
			Tenant:      tenant,
			Service:     o.Service,
			Labels:      o.Labels,
			Fingerprint: placement.Fingerprint(o.Labels),
			Limits:      lim,
			Pprof:       pprof,
			ID:          uuid.New(),
			Annotations: v.annotations,
		}
	}
	arena.Release()
	arena = nil
	d.metrics.processing.Observe(time.Since(start).Seconds())
	return d.send(ctx, profiles)
}

// Budget is the in-flight budget the pipeline charges; the ingest server
// charges what it holds before calling Push to the same one.
func (d *Distributor) Budget() *inflight.Budget { return d.budget }

// inflightError is the client's answer to an exhausted budget: 429.
func (d *Distributor) inflightError(err error) error {
	var e *inflight.ExhaustedError
	if errors.As(err, &e) {
		err = e
	}
	return connect.NewError(connect.CodeResourceExhausted, err)
}

func (d *Distributor) invalid(tenant string, size int, err error) error {
	var verr *validation.Error
	if errors.As(err, &verr) {
		d.metrics.discard(verr.Reason, tenant, size)
		level.Debug(d.logger).Log("msg", "profile rejected", "tenant", tenant, "reason", verr.Reason, "err", err)
	}
	return connect.NewError(connect.CodeInvalidArgument, err)
}

// send delivers the profiles concurrently; the first error cancels the rest.
func (d *Distributor) send(ctx context.Context, profiles []*Profile) error {
	if w := writerWaitFrom(ctx); w != nil {
		w.begin(time.Now())
		defer func() { w.end(time.Now()) }()
	}
	if len(profiles) == 1 {
		return d.sender.Send(ctx, profiles[0])
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, p := range profiles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			defer func() {
				d.recoverTo(&err)
				if err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}()
			err = d.sender.Send(ctx, p)
		}()
	}
	wg.Wait()
	return first
}

// recoverTo turns a panic of a goroutine Push started into an Internal
// error in *err: net/http recovers only the handler's own goroutine, so a
// bug reached by one request must not end the process.
func (d *Distributor) recoverTo(err *error) {
	if r := recover(); r != nil {
		level.Error(d.logger).Log("msg", "panic in the pipeline", "panic", r, "stack", string(debug.Stack()))
		*err = connect.NewError(connect.CodeInternal, fmt.Errorf("internal error: %v", r))
	}
}
