// Command demo runs pyrodist end to end on this machine, with no cluster and
// no Docker: a local Kubernetes control plane (kwok nodes in three zones), the
// Helm chart, the operator as a local process with the chart's identity, the
// 3-zone sample, and the data plane as local processes (fake segment-writers
// per zone, one distributor per zone started with the config the operator
// rendered). It pushes sample profiles and prints where they went.
//
//	go run ./hack/demo up      # `make demo`; leaves everything running
//	go run ./hack/demo down    # `make demo-down`; stops it by PID
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pyrodist/pyrodist/test/localcluster"
)

func main() {
	dir := flag.String("dir", ".demo", "state directory (logs, PIDs, kubeconfig)")
	writersPerZone := flag.Int("writers-per-zone", 2, "fake segment-writers per zone")
	binDir := flag.String("bin", "bin", "directory holding operator, distributor and fakewriter (make build)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: demo [-dir .demo] [-bin bin] up|down\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fatal(err)
	}
	switch flag.Arg(0) {
	case "up":
		bin, err := filepath.Abs(*binDir)
		if err != nil {
			fatal(err)
		}
		d := &demo{dir: abs, bin: bin, writersPerZone: *writersPerZone, start: time.Now()}
		if err := d.up(); err != nil {
			fmt.Fprintf(os.Stderr, "\ndemo failed: %v\nStopping what was started; logs stay in %s/cluster/logs/ until `make demo-down`.\n", err, abs)
			if _, err := localcluster.StopPIDs(filepath.Join(abs, "cluster"), 10*time.Second); err != nil {
				fmt.Fprintln(os.Stderr, "demo:", err)
			}
			os.Exit(1)
		}
	case "down":
		down(abs)
	default:
		flag.Usage()
		os.Exit(2)
	}
}

func down(dir string) {
	stopped, err := localcluster.StopPIDs(filepath.Join(dir, "cluster"), 10*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo down:", err)
	}
	if len(stopped) == 0 {
		fmt.Println("demo: nothing running")
	} else {
		fmt.Printf("demo: stopped %d processes\n", len(stopped))
	}
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "demo down:", err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "demo:", err)
	os.Exit(1)
}
