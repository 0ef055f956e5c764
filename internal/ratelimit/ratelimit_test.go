package ratelimit

import (
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
