// Package usagelimits decides what becomes of a profile under its tenant's
// usage limits: the ingestion hard limit (tenant and usage groups, with the
// small sample let through once it is reached) and the distributor's
// sampling by usage group; it words the refusals and the annotations the
// kept profiles carry to the segment-writers as Pyroscope does
// (pkg/distributor/ingestlimits, pkg/distributor/sampling and
// pkg/distributor/annotation at 3fe6a45; docs/compatibility.md#usage-groups).
package usagelimits

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/profile"
	"github.com/pyrodist/pyrodist/internal/usagegroups"
)

// Annotation keys Pyroscope's distributor sets (pkg/distributor/annotation).
const (
	ThrottledKey = "pyroscope.ingest.throttled"
	SampledKey   = "pyroscope.ingest.sampled"
)

const (
	// A tenant's sampling window is forgotten after this long unused, checked
	// at most once per sweepEvery (Pyroscope's sampler: 24h, hourly).
	trackerMaxAge = 24 * time.Hour
	sweepEvery    = time.Hour
)

// Limiter holds the per-tenant state of the hard limit's sample: how many
// profiles this distributor may still let through in the current window.
// It is safe for concurrent use.
type Limiter struct {
	instances func() int
	rand      func() float64
	now       func() time.Time

	mu        sync.Mutex
	trackers  map[string]*tracker
	lastSweep time.Time
}

type tracker struct {
	start     time.Time // of the current window
	remaining int
}

// New builds a Limiter. instances gives the number of healthy distributors
// (nil or a result <= 0 means 1); rnd (nil: math/rand/v2) gives numbers in
// [0, 1) and now (nil: time.Now) the time, both replaceable in tests.
func New(instances func() int, rnd func() float64, now func() time.Time) *Limiter {
	if rnd == nil {
		rnd = rand.Float64
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{instances: instances, rand: rnd, now: now, trackers: map[string]*tracker{}}
}

// LimitError is a refusal under a reached ingestion limit; the pipeline
// answers it with ResourceExhausted (429).
type LimitError struct{ msg string }

func (e *LimitError) Error() string { return e.msg }

// CheckTenant applies the tenant's own hard limit. When the limit is reached
// the profile is refused unless the sample lets it through; then the
// throttled annotation it must carry is returned. A nil limit admits
// everything with no annotation.
func (l *Limiter) CheckTenant(tenant string, c *config.IngestionLimit) (*typesv1.ProfileAnnotation, error) {
	if c == nil || !c.LimitReached {
		return nil, nil
	}
	if l.allow(tenant, c.Sampling) {
		return throttled(c, c.PeriodLimitMB, ""), nil
	}
	return nil, &LimitError{fmt.Sprintf("limit of %s/%s reached, next reset at %s",
		mib(c.PeriodLimitMB), c.PeriodType, resetTime(c))}
}

// CheckGroups applies the hard limits of the usage groups the profile
// matched, in their order: the first group whose limit is reached decides
// (a group is looked up by its resolved name, then its configured one).
// As in Pyroscope, the groups draw on the tenant's one sample.
func (l *Limiter) CheckGroups(tenant string, c *config.IngestionLimit, groups []usagegroups.Name) (*typesv1.ProfileAnnotation, error) {
	if c == nil || len(c.UsageGroups) == 0 {
		return nil, nil
	}
	for _, g := range groups {
		gl, ok := c.UsageGroups[g.Resolved]
		if !ok {
			gl, ok = c.UsageGroups[g.Configured]
		}
		if !ok || !gl.LimitReached {
			continue
		}
		if l.allow(tenant, c.Sampling) {
			return throttled(c, gl.PeriodLimitMB, g.Resolved), nil
		}
		return nil, &LimitError{fmt.Sprintf("limit of %s/%s reached for usage group %s, next reset at %s",
			mib(gl.PeriodLimitMB), c.PeriodType, g, resetTime(c))}
	}
	return nil, nil
}

func mib(mb int) string { return profile.IECBytes(uint64(mb) * 1024 * 1024) }

func resetTime(c *config.IngestionLimit) string {
	return time.Unix(c.LimitResetTime, 0).UTC().Format(time.RFC3339)
}

// allow is Pyroscope's sampler (pkg/distributor/ingestlimits/sampler.go):
// each window of s.Period starts with s.NumRequests admissions, and each
// request is admitted with probability NumRequests / distributors while
// some are left, so the cluster as a whole lets about NumRequests through.
func (l *Limiter) allow(tenant string, s config.IngestionLimitSampling) bool {
	n := 1
	if l.instances != nil {
		n = max(l.instances(), 1)
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= sweepEvery {
		for t, tr := range l.trackers {
			if now.Sub(tr.start) > trackerMaxAge {
				delete(l.trackers, t)
			}
		}
		l.lastSweep = now
	}
	t, ok := l.trackers[tenant]
	if !ok {
		t = &tracker{start: now, remaining: s.NumRequests}
		l.trackers[tenant] = t
	}
	if now.Sub(t.start) >= s.Period {
		t.start, t.remaining = now, s.NumRequests
	}
	if t.remaining > 0 && l.rand() < float64(s.NumRequests)/float64(n) {
		t.remaining--
		return true
	}
	return false
}

// Source is the sampling rule that decided a profile's fate.
type Source struct {
	UsageGroup  string  `json:"usageGroup"`
	Probability float64 `json:"probability"`
}

// Sample applies distributor_sampling to a profile of groups, as
// Pyroscope's shouldSample (pkg/distributor/distributor.go at 3fe6a45):
// a group's rule is found by its resolved name, then its configured one;
// walking the groups in order, a rule replaces the chosen one when its
// probability is lower or equal, except that once a static group is chosen
// dynamic ones are passed over. keep reports whether the profile is kept
// (a draw at or under the probability); source is nil when no rule applied
// (kept, no annotation).
func (l *Limiter) Sample(c *config.DistributorSampling, groups []usagegroups.Name) (keep bool, source *Source) {
	if c == nil || len(c.UsageGroups) == 0 {
		return true, nil
	}
	p := 1.0
	var match *usagegroups.Name
	for i := range groups {
		g := &groups[i]
		rule, ok := c.UsageGroups[g.Resolved]
		if !ok {
			rule, ok = c.UsageGroups[g.Configured]
		}
		if !ok {
			continue
		}
		if match != nil && match.MoreSpecificThan(*g) {
			continue
		}
		if rule.Probability <= p {
			p, match = rule.Probability, g
		}
	}
	if match == nil {
		return true, nil
	}
	return l.rand() <= p, &Source{UsageGroup: match.Resolved, Probability: p}
}

// envelope is the JSON shape of both annotations: {"body": ...}.
type envelope struct {
	Body any `json:"body"`
}

type throttledBody struct {
	PeriodType        string `json:"periodType"`
	PeriodLimitMb     int    `json:"periodLimitMb"`
	LimitResetTime    int64  `json:"limitResetTime"`
	SamplingPeriodSec int    `json:"samplingPeriodSec"`
	SamplingRequests  int    `json:"samplingRequests"`
	UsageGroup        string `json:"usageGroup"`
}

type sampledBody struct {
	Source *Source `json:"source"`
}

func throttled(c *config.IngestionLimit, limitMB int, group string) *typesv1.ProfileAnnotation {
	return annotation(ThrottledKey, throttledBody{
		PeriodType:        c.PeriodType,
		PeriodLimitMb:     limitMB,
		LimitResetTime:    c.LimitResetTime,
		SamplingPeriodSec: int(c.Sampling.Period.Seconds()),
		SamplingRequests:  c.Sampling.NumRequests,
		UsageGroup:        group,
	})
}

// Sampled is the annotation of a profile a sampling rule kept (or stripped).
func Sampled(s *Source) *typesv1.ProfileAnnotation {
	return annotation(SampledKey, sampledBody{Source: s})
}

func annotation(key string, body any) *typesv1.ProfileAnnotation {
	// Plain structs of strings and numbers: Marshal fails only on a
	// probability of -Inf (NaN and +Inf never win a rule), which keeps no
	// profile unless keep_stripped_profiles: then the value is empty.
	b, _ := json.Marshal(envelope{Body: body})
	return &typesv1.ProfileAnnotation{Key: key, Value: string(b)}
}
