// Command fakewriter runs one segment-writer simulator (see package
// test/fakewriter): it joins memberlist and the segment-writer ring like
// Pyroscope's segment-writer, records what it is sent, and leaves the ring
// (LEAVING) on SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/pyrodist/pyrodist/test/fakewriter"
)

func main() {
	logger := log.With(log.NewLogfmtLogger(log.NewSyncWriter(os.Stderr)), "ts", log.DefaultTimestampUTC)
	var cfg fakewriter.Config
	fs := flag.NewFlagSet("fakewriter", flag.ExitOnError)
	cfg.RegisterFlags(fs, logger)
	logLevel := fs.String("log.level", "info", "Log level: debug, info, warn, error.")
	_ = fs.Parse(os.Args[1:])
	logger = level.NewFilter(logger, level.Allow(level.ParseDefault(*logLevel, level.InfoValue())))

	if err := run(cfg, logger); err != nil {
		fmt.Fprintln(os.Stderr, "fakewriter:", err)
		os.Exit(1)
	}
}

func run(cfg fakewriter.Config, logger log.Logger) error {
	w, err := fakewriter.New(cfg, logger)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := w.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	level.Info(logger).Log("msg", "stopping: leaving the ring")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return w.Stop(sctx)
}
