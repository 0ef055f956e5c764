package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// What the demo sends: every (tenant, service) through every zone's
// distributor, so the table shows the same shard served by each zone's own
// writers (zone preference never changes the shard, only the writer).
var (
	sampleTenants  = []string{"acme", "globex", "big-tenant"}
	sampleServices = []string{"checkout", "cart", "search"}
)

const perZone = 2 // profiles per (tenant, service, zone): one push.v1, one /ingest

func (d *demo) pushSamples(ctx context.Context) error {
	d.step("pushing %d profiles: tenants %v x services %v x %d zones, through push.v1 and /ingest",
		len(sampleTenants)*len(sampleServices)*len(d.dists)*perZone, sampleTenants, sampleServices, len(d.dists))
	hc := &http.Client{Timeout: 10 * time.Second}
	now := time.Now()
	for _, tenant := range sampleTenants {
		for _, svc := range sampleServices {
			for _, dist := range d.dists {
				prof, err := cpuProfile(svc, now)
				if err != nil {
					return err
				}
				if err := pushV1(ctx, hc, dist.http(), tenant, svc, prof); err != nil {
					return fmt.Errorf("push.v1 %s/%s via %s: %w", tenant, svc, dist.zone, err)
				}
				if err := pushIngest(ctx, hc, dist.http(), tenant, svc, prof, now); err != nil {
					return fmt.Errorf("/ingest %s/%s via %s: %w", tenant, svc, dist.zone, err)
				}
			}
		}
	}
	return nil
}

// record is the part of a fake writer's GET /profiles entry the table needs.
type record struct {
	Tenant      string `json:"tenant"`
	ServiceName string `json:"service_name"`
	Shard       uint32 `json:"shard"`
	Writer      string `json:"writer"`
}

type writerRecords struct {
	ID       string   `json:"id"`
	Zone     string   `json:"zone"`
	Profiles []record `json:"profiles"`
}

type route struct {
	tenant, service, zone string
	shard                 uint32
	writer                string
}

func (d *demo) printRouting(ctx context.Context) error {
	counts := map[route]int{}
	for _, w := range d.writers {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.http()+"/profiles", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("%s /profiles: %w", w.id, err)
		}
		var wr writerRecords
		err = json.NewDecoder(resp.Body).Decode(&wr)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s /profiles: %w", w.id, err)
		}
		for _, r := range wr.Profiles {
			writerID := cmp.Or(r.Writer, wr.ID)
			counts[route{r.Tenant, r.ServiceName, wr.Zone, r.Shard, writerID}]++
		}
	}
	routes := make([]route, 0, len(counts))
	for r := range counts {
		routes = append(routes, r)
	}
	slices.SortFunc(routes, func(a, b route) int {
		return cmp.Or(cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.service, b.service),
			cmp.Compare(a.zone, b.zone), cmp.Compare(a.shard, b.shard), cmp.Compare(a.writer, b.writer))
	})
	d.step("routing table, from the fake segment-writers' records (GET /profiles)")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSERVICE\tZONE\tSHARD\tWRITER\tPROFILES")
	total := 0
	for _, r := range routes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\n", r.tenant, r.service, r.zone, r.shard, r.writer, counts[r])
		total += counts[r]
	}
	tw.Flush()
	fmt.Printf("%d profiles recorded by %d writers\n", total, len(d.writers))
	if err := os.WriteFile(filepath.Join(d.dir, "routing.txt"), []byte(routingText(routes, counts)), 0o644); err != nil {
		return err
	}
	return nil
}

func routingText(routes []route, counts map[route]int) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSERVICE\tZONE\tSHARD\tWRITER\tPROFILES")
	for _, r := range routes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\n", r.tenant, r.service, r.zone, r.shard, r.writer, counts[r])
	}
	tw.Flush()
	return b.String()
}

func (d *demo) instructions() error {
	a := d.dists[0].http()
	// A ready-made profile for the curl example below.
	sample := filepath.Join(d.dir, "sample-cpu.pprof")
	prof, err := cpuProfile("my-service", time.Now())
	if err != nil {
		return err
	}
	if err := os.WriteFile(sample, prof, 0o644); err != nil {
		return err
	}
	fmt.Printf(`
==> pyrodist demo is running (%.0fs). It keeps running until `+"`make demo-down`"+`.

  export KUBECONFIG=%s
  %s -n %s get pyroscopedistributors,deploy,svc,hpa,pdb

Distributors (one per zone; the sample enables multitenancy, so send X-Scope-OrgID):
`, time.Since(d.start).Seconds(), d.c.Kubeconfig, d.c.Bin.Kubectl, sampleNS)
	for _, dist := range d.dists {
		fmt.Printf("  zone %-8s %s\n", dist.zone, dist.http())
	}
	fmt.Printf("Fake segment-writers (GET /profiles, /counts):\n")
	for _, w := range d.writers {
		fmt.Printf("  %-18s %s\n", w.id, w.http())
	}
	fmt.Printf(`
Push your own profiles:

  # a pprof file through /ingest, as pyroscope-go sends it (-g: the braces are not a curl glob)
  curl -g -X POST -H 'X-Scope-OrgID: my-tenant' -F profile=@%[4]s '%[1]s/ingest?name=my-service{env=dev}'

  # any Go program's CPU profile (net/http/pprof), e.g. this distributor's own while it works
  curl -s -o cpu.pprof '%[1]s/debug/pprof/profile?seconds=10'

  # folded stacks ("frame;frame count"), the simplest /ingest format
  curl -X POST -H 'X-Scope-OrgID: my-tenant' --data-binary 'main;handle;query 42' '%[1]s/ingest?name=my-script.cpu'

  # or point pyroscope-go at a distributor:
  pyroscope.Start(pyroscope.Config{
      ApplicationName: "my-service",
      ServerAddress:   "%[1]s",
      TenantID:        "my-tenant",
      ProfileTypes:    []pyroscope.ProfileType{pyroscope.ProfileCPU, pyroscope.ProfileAllocSpace},
  })

  # then see where it went (tenant, service, shard, writer):
  curl -s %[2]s/counts

Logs: %[3]s/cluster/logs/   Routing table: %[3]s/routing.txt
Stop everything: make demo-down
`, a, d.writers[0].http(), d.dir, sample)
	return nil
}
