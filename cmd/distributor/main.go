// Command distributor is pyrodist's data plane: a Pyroscope v2-compatible
// distributor. It reads one YAML config file plus flags, serves the ingest
// APIs on one HTTP port, and forwards profiles to Pyroscope segment-writers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pyrodist/pyrodist/internal/config"
	"github.com/pyrodist/pyrodist/internal/memlimit"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("distributor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logLevel := fs.String("log.level", "info", "Only log messages with the given severity or above: debug, info, warn, error.")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: distributor [flags]\n\n"+
			"A Pyroscope v2-compatible distributor. Defaults come from the flags below, then the\n"+
			"file named by -config.file, then flags given on the command line.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	cfg, err := config.Load(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "distributor:", err)
		return 2
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "distributor:", err)
		return 2
	}
	signals, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stopSignals()
	go func() {
		<-signals.Done()
		stopSignals() // a second signal now ends the process at once
	}()
	if err := serve(signals, cfg, logger, nil); err != nil {
		_ = level.Error(logger).Log("msg", "distributor failed", "err", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, lvl string) (log.Logger, error) {
	var opt level.Option
	switch strings.ToLower(lvl) {
	case "debug":
		opt = level.AllowDebug()
	case "info":
		opt = level.AllowInfo()
	case "warn":
		opt = level.AllowWarn()
	case "error":
		opt = level.AllowError()
	default:
		return nil, fmt.Errorf("unknown log level %q: use debug, info, warn or error", lvl)
	}
	l := log.NewLogfmtLogger(log.NewSyncWriter(w))
	l = level.NewFilter(l, opt)
	return log.With(l, "ts", log.DefaultTimestampUTC, "caller", log.DefaultCaller), nil
}

// serve runs the distributor until stop ends (SIGTERM or SIGINT) or one of
// its parts fails, then shuts down in order: /ready fails at once, requests
// are still served for -shutdown-delay (load balancers notice), the port
// closes and in-flight requests drain within -server.graceful-shutdown-timeout,
// then the distributor leaves the cluster and closes its writer connections.
// listening, when set, learns the HTTP address once every part runs.
func serve(stop context.Context, cfg *config.Config, logger log.Logger, listening func(addr string)) error {
	setMemoryLimit(logger, cfg.Distributor.InstanceLimits.MaxInflightBytes)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a, err := newApp(cfg, logger, reg)
	if err != nil {
		return err
	}
	return a.run(stop, logger, listening)
}

// processHeadroom is what the process holds besides its in-flight budget
// (runtime, connections and their buffers, memberlist, metrics, pools).
const processHeadroom = 64 << 20

// setMemoryLimit gives the GC a target unless GOMEMLIMIT says otherwise: 90%
// of the container's memory limit (the in-flight budget then derives from
// it), or, with no container limit, the explicit in-flight budget plus the
// process's headroom. Without a target the heap may grow to twice what
// requests hold before a collection, and the process's memory would no
// longer follow its budget.
func setMemoryLimit(logger log.Logger, budget int64) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if limit := memlimit.Cgroup(); limit > 0 {
		goLimit := limit / 10 * 9
		debug.SetMemoryLimit(goLimit)
		_ = level.Info(logger).Log("msg", "Go memory limit set from the container limit", "bytes", goLimit)
		return
	}
	if budget > 0 {
		goLimit := budget + processHeadroom
		debug.SetMemoryLimit(goLimit)
		_ = level.Info(logger).Log("msg", "Go memory limit set from the in-flight budget", "bytes", goLimit)
	}
}
