package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"github.com/pyrodist/pyrodist/internal/config"
)

func TestGlobalStrategy(t *testing.T) {
	now := time.Unix(1000, 0)
	healthy := 4
	l := New(func() int { return healthy })
	lim := &config.Limits{IngestionRateMB: 4, IngestionBurstSizeMB: 2}
	// The burst is not divided: 2 MiB pass at once.
	if ok, r := l.AllowN(now, "t", lim, 2<<20); !ok || r != 1<<20 {
		t.Fatalf("burst refused or rate %v, want 1 MiB/s (4 MiB/s / 4 distributors)", r)
	}
	if ok, _ := l.AllowN(now, "t", lim, 1); ok {
		t.Fatal("empty bucket allowed")
	}
	// One second refills rate/healthy = 1 MiB.
	if ok, _ := l.AllowN(now.Add(time.Second), "t", lim, 1<<20); !ok {
		t.Fatal("refill refused")
	}
	// Tenants are independent; a profile over the burst is always refused.
	if ok, _ := l.AllowN(now, "u", lim, 3<<20); ok {
		t.Fatal("profile over the burst allowed")
	}
	// A changed limit applies at once; no healthy count means the full rate.
	healthy = 0
	lim2 := &config.Limits{IngestionRateMB: 8, IngestionBurstSizeMB: 2}
	if _, r := l.AllowN(now.Add(2*time.Second), "t", lim2, 1); r != 8<<20 {
		t.Fatalf("rate %v, want 8 MiB/s", r)
	}
}

// Tenant IDs come from clients: buckets that have refilled are forgotten,
// so the map does not grow with every tenant ever seen, and a forgotten
// tenant starts again with a full burst, as it would have had anyway.
func TestIdleTenantsAreForgotten(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(nil)
	lim := &config.Limits{IngestionRateMB: 4, IngestionBurstSizeMB: 2}
	for i := range 1000 {
		l.AllowN(now, fmt.Sprint("tenant-", i), lim, 1<<20)
	}
	if n := len(l.tenants); n != 1000 {
		t.Fatalf("%d buckets, want 1000", n)
	}
	later := now.Add(2 * sweepEvery)
	if ok, _ := l.AllowN(later, "busy", lim, 1); !ok {
		t.Fatal("new tenant refused")
	}
	if n := len(l.tenants); n != 1 {
		t.Fatalf("%d buckets after the idle ones refilled, want 1", n)
	}
	if ok, _ := l.AllowN(later, "tenant-7", lim, 2<<20); !ok {
		t.Fatal("a forgotten tenant did not get its full burst back")
	}
	// A bucket that never refills (rate 0) is kept: forgetting it would
	// hand out a new burst.
	zero := &config.Limits{IngestionRateMB: 0, IngestionBurstSizeMB: 1}
	l.AllowN(later, "frozen", zero, 1<<20)
	l.AllowN(later.Add(2*sweepEvery), "other", lim, 1)
	if ok, _ := l.AllowN(later.Add(2*sweepEvery), "frozen", zero, 1); ok {
		t.Fatal("a rate-0 tenant got a new burst after a sweep")
	}
}
