package distributor

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/pyrodist/pyrodist/internal/config"
)

// staticLimits gives every tenant the same limits.
type staticLimits struct{ l *config.Limits }

func (s staticLimits) ForTenant(string) *config.Limits { return s.l }

func defaultLimits() *config.Limits {
	c := config.Defaults()
	return &c.Limits
}

// recorder is a Sender that keeps what it was given (copying the bytes,
// which belong to the pipeline after Send returns).
type recorder struct {
	mu   sync.Mutex
	got  []*Profile
	fail error
}

func (r *recorder) Send(_ context.Context, p *Profile) error {
	if r.fail != nil {
		return r.fail
	}
	cp := *p
	cp.Pprof = append([]byte(nil), p.Pprof...)
	r.mu.Lock()
	r.got = append(r.got, &cp)
	r.mu.Unlock()
	return nil
}

func newTestDistributor(t testing.TB, l *config.Limits, s Sender) *Distributor {
	t.Helper()
	d, err := New(Config{MaxInflightBytes: 1 << 30}, staticLimits{l}, s, func() int { return 1 }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sampleTypes(p *profile.Profile) []string {
	var out []string
	for _, st := range p.SampleType {
		out = append(out, st.Type+"/"+st.Unit)
	}
	return out
}

func periodString(p *profile.Profile) string {
	if p.PeriodType == nil {
		return fmt.Sprintf("/ %d", p.Period)
	}
	return fmt.Sprintf("%s/%s %d", p.PeriodType.Type, p.PeriodType.Unit, p.Period)
}

func timeClass(ns int64, now time.Time) string {
	switch {
	case ns == 0:
		return "zero"
	case time.Duration(now.UnixNano()-ns).Abs() < 10*time.Minute:
		return "recent"
	}
	return fmt.Sprintf("given:%d", ns)
}
