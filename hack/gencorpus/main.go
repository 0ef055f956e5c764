// Command gencorpus writes the profile corpus embedded by test/corpus:
// real runtime/pprof output of a mixed Go workload (a CPU and a heap
// profile) and one large CPU profile synthesized from the real symbol table
// of this binary (a runtime profile with ~15k distinct stacks would need
// minutes of CPU).
//
//	go run ./hack/gencorpus [-out test/corpus/testdata]
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/google/pprof/profile"
)

func main() {
	// Set before the workload allocates so the heap profile sees it all. 4 KiB
	// keeps a realistic few hundred allocation sites instead of a handful at
	// the default 512 KiB.
	runtime.MemProfileRate = 4096

	out := flag.String("out", "test/corpus/testdata", "directory for the .pb.gz files")
	cpuFor := flag.Duration("cpu-duration", 4*time.Second, "how long the CPU profile records the workload")
	bigSamples := flag.Int("big-samples", 15000, "distinct stacks in the synthesized large profile (<= 16000)")
	seed := flag.Int64("seed", 7, "seed of the synthesized profile")
	flag.Parse()

	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}

	var cpu bytes.Buffer
	w := startWorkload()
	if err := pprof.StartCPUProfile(&cpu); err != nil {
		log.Fatal(err)
	}
	time.Sleep(*cpuFor)
	pprof.StopCPUProfile()
	w.stop()
	write(*out, "cpu", cpu.Bytes())

	var heap bytes.Buffer
	runtime.GC() // the heap profile reports as of the last GC
	if err := pprof.Lookup("heap").WriteTo(&heap, 0); err != nil {
		log.Fatal(err)
	}
	write(*out, "heap", heap.Bytes())
	w.keepAlive()

	big, err := synthesize(*bigSamples, *seed)
	if err != nil {
		log.Fatal(err)
	}
	write(*out, "cpu-16k", big)
}

// write checks the profile the way the distributor's tests will and stores it.
func write(dir, name string, gz []byte) {
	p, err := profile.ParseData(gz)
	if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	if err := p.CheckValid(); err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pb.gz"), gz, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%-8s %6d samples %5d locations %5d functions %8d bytes gzipped %8d bytes raw\n",
		name, len(p.Sample), len(p.Location), len(p.Function), len(gz), rawLen(gz))
}

func rawLen(gz []byte) int {
	r, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return -1
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		return -1
	}
	return b.Len()
}
