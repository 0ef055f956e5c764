// Command image builds pyrodist's container image without Docker: one layer
// holding the static binaries (operator, distributor and, when built,
// fakewriter) on no base image, run as the non-root user 65532. It writes a
// tarball that `docker load` and `crane push` accept.
//
//	go run . -bin ../../bin -tag ghcr.io/pyrodist/pyrodist:0.1.0 -o ../../bin/image.tar
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	var o options
	flag.StringVar(&o.binDir, "bin", "bin", "directory holding the static binaries")
	flag.StringVar(&o.tag, "tag", "ghcr.io/pyrodist/pyrodist:dev", "image reference written into the tarball")
	flag.StringVar(&o.out, "o", "bin/image.tar", "output tarball")
	flag.StringVar(&o.version, "version", "", "org.opencontainers.image.version label (default: the tag)")
	flag.StringVar(&o.revision, "revision", "", "org.opencontainers.image.revision label (a git commit)")
	flag.Int64Var(&o.epoch, "source-date-epoch", 0, "timestamp of files and config, in Unix seconds (reproducible builds)")
	flag.Parse()
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" && o.epoch == 0 {
		if _, err := fmt.Sscan(v, &o.epoch); err != nil {
			fatal(fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", v, err))
		}
	}
	sum, err := build(o)
	if err != nil {
		fatal(err)
	}
	fmt.Printf("image %s written to %s\n  digest %s, binaries: %v\n", o.tag, o.out, sum.digest, sum.binaries)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "image:", err)
	os.Exit(1)
}
