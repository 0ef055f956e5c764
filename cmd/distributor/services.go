package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/grafana/dskit/modules"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/debuginfo"
	"github.com/pyrodist/pyrodist/internal/distributor"
	"github.com/pyrodist/pyrodist/internal/ingest"
	"github.com/pyrodist/pyrodist/internal/membership"
	"github.com/pyrodist/pyrodist/internal/metriclabel"
	"github.com/pyrodist/pyrodist/internal/overrides"
	"github.com/pyrodist/pyrodist/internal/placementrules"
	"github.com/pyrodist/pyrodist/internal/ringhealth"
	"github.com/pyrodist/pyrodist/internal/segmentwriter"
	"github.com/pyrodist/pyrodist/internal/storage"
)

// The distributor's long-lived parts. Each starts after what it depends on
// and stops before it, so shutdown runs against the data flow: the server
// drains first, the rings and limits after it, memberlist and the writer
// connections last.
const (
	svcMemberlist      = "memberlist"
	svcTransportCheck  = "memberlist-transport-check"
	svcWriterClient    = "segment-writer-client"
	svcWriterRing      = "segment-writer-ring"
	svcDistributorRing = "distributor-ring"
	svcOverrides       = "overrides"
	svcStorage         = "storage"
	svcPlacementRules  = "placement-rules"
	svcServer          = "server"
)

var dependencies = map[string][]string{
	svcTransportCheck:  {svcMemberlist},
	svcWriterRing:      {svcMemberlist, svcWriterClient},
	svcDistributorRing: {svcMemberlist},
	svcPlacementRules:  {svcStorage},
	svcServer:          {svcWriterClient, svcWriterRing, svcDistributorRing, svcOverrides, svcTransportCheck, svcStorage, svcPlacementRules},
}

// app is the distributor's service graph.
type app struct {
	manager *services.Manager
	server  *ingest.Server
}

func newApp(cfg *config.Config, logger log.Logger, reg *prometheus.Registry) (*app, error) {
	tlsp, err := newTLSParts(cfg, logger, reg)
	if err != nil {
		return nil, err
	}
	ml, err := membership.NewMemberlist(cfg.Memberlist, logger, reg)
	if err != nil {
		return nil, err
	}
	// One set of tenant label values for every per-tenant metric.
	tenants := metriclabel.Tenants(cmp.Or(cfg.Distributor.InstanceLimits.MaxMetricTenants, config.Defaults().Distributor.InstanceLimits.MaxMetricTenants))
	writerCfg := segmentwriter.ConfigFrom(cfg)
	writerCfg.Credentials = tlsp.writers
	writerCfg.Tenants = tenants
	writers, err := segmentwriter.New(writerCfg, reg, logger)
	if err != nil {
		return nil, fmt.Errorf("segment-writer client: %w", err)
	}
	writerRing, err := membership.NewWriterRing(ml, membership.WriterRingOptions{
		HeartbeatTimeout: cfg.SegmentWriter.HeartbeatTimeout,
		OnAddrs:          writers.SetAddresses,
		Logger:           logger,
		Registerer:       reg,
	})
	if err != nil {
		return nil, err
	}
	distRing, err := membership.NewDistributorRing(ml, membership.DistributorRingOptions{
		Ring:       cfg.Memberlist.DistributorRing,
		Zone:       cfg.Distributor.Zone,
		HTTPPort:   cfg.Server.HTTPListenPort,
		Logger:     logger,
		Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	limits := overrides.New(cfg.Limits, cfg.RuntimeConfig, logger, reg)
	// Parts that use the bucket take store.Bucket() (nil without a backend)
	// and depend on svcStorage, so it is closed after they stop.
	store := storage.New(cfg.Storage, storage.Options{}, logger, reg)
	// The placement rules the metastore writes to the bucket; without a
	// bucket there are none and every dataset gets its tenant's limits.
	rules, err := placementrules.New(store.Bucket(), cfg.AdaptivePlacement.PlacementRulesUpdateInterval, reg, logger)
	if err != nil {
		return nil, err
	}
	routerCfg := distributor.RouterConfigFrom(cfg)
	routerCfg.Rules = rules
	router, err := distributor.NewRouter(writerRing, writers, routerCfg)
	if err != nil {
		return nil, err
	}
	pipelineCfg := distributor.ConfigFrom(cfg)
	pipelineCfg.Tenants = tenants
	pipeline, err := distributor.New(pipelineCfg, limits, router, distRing.HealthyDistributors, reg, logger)
	if err != nil {
		return nil, err
	}
	// Debuginfo uploads share the port (docs/compatibility.md#debuginfo-uploads).
	symbols, err := debuginfo.New(debuginfo.Options{
		Config: cfg.DebugInfo,
		Bucket: store.Bucket(), // nil without a backend: uploads are off
		Tenant: func(h http.Header) (string, error) { return ingest.ResolveTenant(cfg.MultitenancyEnabled, h) },
		Budget: pipeline.Budget(),
		Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("debuginfo: %w", err)
	}
	a := &app{}
	a.server, err = ingest.New(ingest.Options{
		Pusher: pipeline,
		Budget: pipeline.Budget(),
		Limits: limits,
		// Ready until a part fails or stops, and while a writer is known.
		Ready: func(ctx context.Context) error {
			if err := a.notRunning(); err != nil {
				return err
			}
			return writerRing.Ready(ctx)
		},
		MultitenancyEnabled: cfg.MultitenancyEnabled,
		MaxConnectionAge:    cfg.Server.MaxConnectionAge,
		ReadTimeout:         cfg.Server.HTTPReadTimeout,
		WriteTimeout:        cfg.Server.HTTPWriteTimeout,
		IdleTimeout:         cfg.Server.HTTPIdleTimeout,
		MinBodyRate:         cfg.Server.MinBodyRate,
		BodyRateGrace:       cfg.Server.BodyRateGrace,
		ListenAddress:       net.JoinHostPort(cfg.Server.HTTPListenAddress, strconv.Itoa(cfg.Server.HTTPListenPort)),
		TLS:                 tlsp.server,
		ShutdownDelay:       cfg.Server.ShutdownDelay,
		GracefulTimeout:     cfg.Server.GracefulTimeout,
		Registerer:          reg,
		Gatherer:            reg,
		EnablePprof:         cfg.Server.EnablePprof,
		Logger:              logger,

		// Profiles of OTLP exports are pushed concurrently within these bounds.
		OTLPExportConcurrency: cfg.Distributor.InstanceLimits.OTLPExportConcurrency,
		OTLPMaxConcurrency:    cfg.Distributor.InstanceLimits.OTLPMaxConcurrency,

		Routes: append(symbols.Routes(), ingest.Route{
			Pattern: "GET " + ringhealth.Path, Name: "ring_writers",
			Handler: writerRing.HealthHandler(cfg.Distributor.Zone, cfg.Distributor.PreferSameZone),
		}),
	})
	if err != nil {
		return nil, err
	}

	// dskit's module wrappers order start and stop by the dependencies; their
	// own start/stop lines would repeat ours, so they log errors only.
	mm := modules.NewManager(level.NewFilter(logger, level.AllowError()))
	parts := map[string]services.Service{
		svcMemberlist:      ml.KV(),
		svcTransportCheck:  ml.TransportCheck(),
		svcWriterClient:    writers,
		svcWriterRing:      writerRing,
		svcDistributorRing: distRing,
		svcOverrides:       limits,
		svcStorage:         store,
		svcPlacementRules:  rules,
		svcServer:          a.server,
	}
	maps.Copy(parts, tlsp.services)
	for name, s := range parts {
		mm.RegisterModule(name, func() (services.Service, error) { return s, nil })
	}
	for name, deps := range tlsp.withDependencies(dependencies) {
		if err := mm.AddDependency(name, deps...); err != nil {
			return nil, err
		}
	}
	svcs, err := mm.InitModuleServices(svcServer)
	if err != nil {
		return nil, err
	}
	list := make([]services.Service, 0, len(svcs))
	for _, s := range svcs {
		list = append(list, s)
	}
	if a.manager, err = services.NewManager(list...); err != nil {
		return nil, err
	}
	return a, nil
}

// notRunning names the parts that are not running; nil when all are.
func (a *app) notRunning() error {
	if a.manager == nil || a.manager.IsHealthy() {
		return nil
	}
	var names []string
	for state, ss := range a.manager.ServicesByState() {
		if state == services.Running {
			continue
		}
		for _, s := range ss {
			names = append(names, services.DescribeService(s)+" "+strings.ToLower(state.String()))
		}
	}
	slices.Sort(names)
	return errors.New("not every part is running: " + strings.Join(names, ", "))
}

// run starts every part, calls listening with the server's address once all
// run, and stops them all, in order, when stop ends or any part fails. It
// returns the first failure.
func (a *app) run(stop context.Context, logger log.Logger, listening func(addr string)) error {
	watcher := services.NewFailureWatcher()
	defer watcher.Close()
	watcher.WatchManager(a.manager)
	healthy := make(chan struct{})
	a.manager.AddListener(services.NewManagerListener(func() { close(healthy) }, nil, nil))

	if err := a.manager.StartAsync(context.Background()); err != nil {
		return err
	}
	var failed error
	select {
	case <-stop.Done():
	case failed = <-watcher.Chan():
	case <-healthy:
		if listening != nil {
			listening(a.server.Addr())
		}
		select {
		case <-stop.Done():
		case failed = <-watcher.Chan():
		}
	}
	if failed != nil {
		// /ready already fails (a part is not running); the caller logs the
		// failure once, as the process's last word.
		level.Warn(logger).Log("msg", "stopping every part")
	}
	a.manager.StopAsync()
	_ = a.manager.AwaitStopped(context.Background())
	if failed == nil {
		level.Info(logger).Log("msg", "distributor stopped")
	}
	return failed
}
