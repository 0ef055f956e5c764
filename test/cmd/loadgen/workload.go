package main

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/test/corpus"
)

// workload is what the generator sends: corpus profiles re-stamped with a
// recent time, spread over tenants and services with Zipf weights.
type workload struct {
	profiles []corpus.Profile
	weights  []int // cumulative weights of profiles
	tenants  int
	services int
	zipfS    float64

	// Stamped copies, replaced every few minutes so long runs stay inside
	// the distributor's ingestion window.
	current atomic.Pointer[stamped]

	labelsOnce sync.Once
	lbls       [][][]*typesv1.LabelPair // [service][profile]
}

type stamped struct {
	gz    [][]byte
	raw   []int
	multi [][]byte // multipart /ingest bodies
	ctype []string
}

// parseMix reads "cpu=2,heap=1,cpu-16k" (weight 1 when omitted).
func parseMix(s string) ([]corpus.Profile, []int, error) {
	var profs []corpus.Profile
	var cum []int
	total := 0
	for _, part := range strings.Split(s, ",") {
		name, w, found := strings.Cut(strings.TrimSpace(part), "=")
		weight := 1
		if found {
			n, err := strconv.Atoi(w)
			if err != nil || n < 0 {
				return nil, nil, fmt.Errorf("profile mix %q: bad weight %q", s, w)
			}
			weight = n
		}
		p, ok := corpus.Get(name)
		if !ok {
			return nil, nil, fmt.Errorf("profile mix %q: unknown profile %q (have %s)", s, name, corpus.Names())
		}
		if weight == 0 {
			continue
		}
		total += weight
		profs = append(profs, p)
		cum = append(cum, total)
	}
	if total == 0 {
		return nil, nil, fmt.Errorf("profile mix %q selects nothing", s)
	}
	return profs, cum, nil
}

func newWorkload(mix string, tenants, services int, zipfS float64) (*workload, error) {
	profs, cum, err := parseMix(mix)
	if err != nil {
		return nil, err
	}
	if tenants < 1 || services < 1 {
		return nil, fmt.Errorf("need at least one tenant and one service")
	}
	if zipfS <= 1 {
		return nil, fmt.Errorf("-zipf must be > 1, got %v", zipfS)
	}
	w := &workload{profiles: profs, weights: cum, tenants: tenants, services: services, zipfS: zipfS}
	if err := w.restamp(time.Now()); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *workload) restamp(t time.Time) error {
	s := &stamped{}
	for _, p := range w.profiles {
		q, err := p.At(t)
		if err != nil {
			return err
		}
		body, ct := multipartBody(q.Gzipped, p.Metric == "memory")
		s.gz = append(s.gz, q.Gzipped)
		s.raw = append(s.raw, len(q.Raw()))
		s.multi = append(s.multi, body)
		s.ctype = append(s.ctype, ct)
	}
	w.current.Store(s)
	return nil
}

// keepFresh re-stamps the profiles every interval until stop is closed.
func (w *workload) keepFresh(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			_ = w.restamp(now) // the corpus decoded before; keep the old copy on failure
		}
	}
}

func (w *workload) gzipped(i int) []byte { return w.current.Load().gz[i] }
func (w *workload) rawSize(i int) int    { return w.current.Load().raw[i] }
func (w *workload) multipart(i int) ([]byte, string) {
	s := w.current.Load()
	return s.multi[i], s.ctype[i]
}

func (w *workload) tenantName(i int) string  { return "tenant-" + strconv.Itoa(i) }
func (w *workload) serviceName(i int) string { return "svc-" + strconv.Itoa(i) }

// labels are the series labels Alloy's pyroscope.write would send; built
// once per service and profile and shared read-only.
func (w *workload) labels(service, prof int) []*typesv1.LabelPair {
	w.labelsOnce.Do(func() {
		w.lbls = make([][][]*typesv1.LabelPair, w.services)
		for s := range w.lbls {
			w.lbls[s] = make([][]*typesv1.LabelPair, len(w.profiles))
			for p, pr := range w.profiles {
				w.lbls[s][p] = []*typesv1.LabelPair{
					{Name: "__name__", Value: pr.Metric},
					{Name: "service_name", Value: w.serviceName(s)},
					{Name: "env", Value: "bench"},
					{Name: "namespace", Value: "ns-" + strconv.Itoa(s%7)},
					{Name: "pod", Value: fmt.Sprintf("%s-%x", w.serviceName(s), s*2654435761%0xfffff)},
				}
			}
		}
	})
	return w.lbls[service][prof]
}

// picker draws requests; one per goroutine (math/rand sources are not safe
// for concurrent use).
type picker struct {
	w       *workload
	r       *rand.Rand
	tenant  *rand.Zipf
	service *rand.Zipf
	batch   int
}

func (w *workload) picker(seed int64, batch int) *picker {
	r := rand.New(rand.NewSource(seed))
	return &picker{
		w: w, r: r, batch: batch,
		tenant:  rand.NewZipf(r, w.zipfS, 1, uint64(w.tenants-1)),
		service: rand.NewZipf(r, w.zipfS, 1, uint64(w.services-1)),
	}
}

func (p *picker) next() push {
	out := push{tenant: p.w.tenantName(int(p.tenant.Uint64())), service: int(p.service.Uint64()), profs: make([]int, p.batch)}
	total := p.w.weights[len(p.w.weights)-1]
	for i := range out.profs {
		x := p.r.Intn(total)
		for j, c := range p.w.weights {
			if x < c {
				out.profs[i] = j
				break
			}
		}
	}
	return out
}
