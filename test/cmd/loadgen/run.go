package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// options of one run.
type options struct {
	mode        string // closed or open
	workers     int
	rate        float64 // requests per second, open loop
	maxInflight int     // open loop: requests beyond it are counted as skipped
	duration    time.Duration
	batch       int
	seed        int64
}

// stats are what a run measured.
type stats struct {
	mu        sync.Mutex
	latencies []time.Duration
	byProfile map[int][]time.Duration // single-profile requests, by profile
	errors    map[string]int64
	requests  int64
	profiles  int64 // acknowledged
	rawBytes  int64 // uncompressed pprof of acknowledged profiles
	wireBytes int64 // gzipped pprof of acknowledged profiles
	skipped   int64
	elapsed   time.Duration
}

func (s *stats) record(w *workload, p push, lat time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.latencies = append(s.latencies, lat)
	if len(p.profs) == 1 {
		s.byProfile[p.profs[0]] = append(s.byProfile[p.profs[0]], lat)
	}
	if err != nil {
		s.errors[errorCode(err)]++
		return
	}
	s.profiles += int64(len(p.profs))
	for _, i := range p.profs {
		s.rawBytes += int64(w.rawSize(i))
		s.wireBytes += int64(len(w.gzipped(i)))
	}
}

// run sends load for o.duration and waits for the requests in flight.
func run(ctx context.Context, t target, w *workload, o options) *stats {
	s := &stats{errors: map[string]int64{}, byProfile: map[int][]time.Duration{}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	deadline := start.Add(o.duration)
	var wg sync.WaitGroup
	switch o.mode {
	case "open":
		openLoop(ctx, t, w, o, s, deadline, &wg)
	default:
		for i := range o.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pk := w.picker(o.seed+int64(i), o.batch)
				for ctx.Err() == nil && time.Now().Before(deadline) {
					p := pk.next()
					t0 := time.Now()
					err := t.send(ctx, p)
					s.record(w, p, time.Since(t0), err)
				}
			}()
		}
	}
	wg.Wait()
	s.elapsed = time.Since(start)
	return s
}

// openLoop starts requests on a fixed schedule whatever the server's speed;
// latency counts from the scheduled start, so a stalled server is not hidden
// by requests that were never sent (coordinated omission).
func openLoop(ctx context.Context, t target, w *workload, o options, s *stats, deadline time.Time, wg *sync.WaitGroup) {
	interval := time.Duration(float64(time.Second) / o.rate)
	pk := w.picker(o.seed, o.batch)
	var inflight atomic.Int64
	start := time.Now()
	for i := int64(0); ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if !due.Before(deadline) || ctx.Err() != nil {
			return
		}
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		if inflight.Load() >= int64(o.maxInflight) {
			s.mu.Lock()
			s.skipped++
			s.mu.Unlock()
			continue
		}
		inflight.Add(1)
		wg.Add(1)
		p := pk.next()
		go func() {
			defer wg.Done()
			defer inflight.Add(-1)
			err := t.send(ctx, p)
			s.record(w, p, time.Since(due), err)
		}()
	}
}

// percentile of sorted latencies (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func sorted(l []time.Duration) []time.Duration {
	l = slices.Clone(l)
	slices.Sort(l)
	return l
}
