// Package ratelimit keeps a token bucket per tenant over uncompressed bytes,
// with Pyroscope's global strategy: each distributor allows the tenant's rate
// divided by the number of healthy distributors; the burst is not divided.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pyrodist/pyrodist/internal/config"
)

const (
	bytesInMB = 1 << 20
	// recheck is how often a tenant's rate is recomputed even when its
	// limits did not change (the healthy-distributor count may have).
	recheck = 10 * time.Second
	// sweepEvery is how often idle buckets are dropped: tenant IDs come
	// from clients, so a map that only grows is unbounded memory.
	sweepEvery = time.Minute
)

// Limiter holds the tenants' buckets. Safe for concurrent use.
type Limiter struct {
	healthy func() int
	mu      sync.Mutex
	tenants map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim             *rate.Limiter
	rateMB, burstMB float64
	healthy         int
	checked         time.Time
	used            time.Time
}

// full reports whether the bucket has surely refilled by now: a fresh
// bucket starts full, so dropping it then changes nothing.
func (b *bucket) full(now time.Time) bool {
	r := float64(b.lim.Limit())
	if r <= 0 {
		return false // never refills: forgetting it would grant a new burst
	}
	refill := time.Duration(float64(b.lim.Burst()) / r * float64(time.Second))
	return now.Sub(b.used) >= max(refill, recheck)
}

// New returns a Limiter; healthy gives the number of healthy distributors
// (nil or a result <= 0 counts as 1).
func New(healthy func() int) *Limiter {
	return &Limiter{healthy: healthy, tenants: make(map[string]*bucket)}
}

func (l *Limiter) healthyCount() int {
	if l.healthy == nil {
		return 1
	}
	if n := l.healthy(); n > 0 {
		return n
	}
	return 1
}

// AllowN takes cost bytes from tenant's bucket at now. It returns false when
// the bucket lacks them, with the per-distributor rate in bytes/s for the
// error message.
func (l *Limiter) AllowN(now time.Time, tenant string, lim *config.Limits, cost int) (bool, float64) {
	l.mu.Lock()
	if now.Sub(l.swept) >= sweepEvery {
		for t, b := range l.tenants {
			if b.full(now) {
				delete(l.tenants, t)
			}
		}
		l.swept = now
	}
	b := l.tenants[tenant]
	if b == nil {
		b = &bucket{}
		l.tenants[tenant] = b
	}
	if b.lim == nil || b.rateMB != lim.IngestionRateMB || b.burstMB != lim.IngestionBurstSizeMB || now.Sub(b.checked) >= recheck {
		h := l.healthyCount()
		r := rate.Limit(lim.IngestionRateMB * bytesInMB / float64(h))
		burst := int(lim.IngestionBurstSizeMB * bytesInMB)
		if b.lim == nil {
			b.lim = rate.NewLimiter(r, burst)
		} else {
			b.lim.SetLimitAt(now, r)
			b.lim.SetBurstAt(now, burst)
		}
		b.rateMB, b.burstMB, b.healthy, b.checked = lim.IngestionRateMB, lim.IngestionBurstSizeMB, h, now
	}
	b.used = now
	lm := b.lim
	l.mu.Unlock()
	return lm.AllowN(now, cost), float64(lm.Limit())
}
