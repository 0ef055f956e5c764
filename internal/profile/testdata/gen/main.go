//go:build ignore

// Command gen writes the benchmark and test profiles in ../ from real
// runtime/pprof runs: a CPU profile of a small workload (a few hundred
// samples), a heap profile, and a profile with ~16k distinct samples.
//
//	go run ./internal/profile/testdata/gen
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

var sink []byte

func work(d time.Duration) {
	end := time.Now().Add(d)
	data := make([]byte, 1<<16)
	for time.Now().Before(end) {
		h := sha256.Sum256(data)
		data[h[0]]++
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(data)
		zw.Close()
		re := regexp.MustCompile(`a+b*c?`)
		_ = re.MatchString(strings.Repeat("ab", 100))
		keys := make([]string, 500)
		for i := range keys {
			keys[i] = fmt.Sprint(i * int(h[1]))
		}
		sort.Strings(keys)
		sink = b.Bytes()
	}
}

func main() {
	dir := filepath.Join("internal", "profile", "testdata")
	// CPU
	var cpu bytes.Buffer
	if err := pprof.StartCPUProfile(&cpu); err != nil {
		panic(err)
	}
	work(8 * time.Second)
	pprof.StopCPUProfile()
	must(os.WriteFile(filepath.Join(dir, "cpu.pb.gz"), cpu.Bytes(), 0o644))

	// Heap
	runtime.MemProfileRate = 512
	var keep [][]byte
	for i := 0; i < 20000; i++ {
		keep = append(keep, make([]byte, 64+i%4096))
	}
	work(200 * time.Millisecond)
	runtime.GC()
	var heap bytes.Buffer
	must(pprof.Lookup("heap").WriteTo(&heap, 0))
	must(os.WriteFile(filepath.Join(dir, "heap.pb.gz"), heap.Bytes(), 0o644))
	_ = keep

	// 16k samples: the CPU profile's stacks multiplied with distinct leaf
	// frames, as a large real service's profile looks.
	p, err := profile.Parse(bytes.NewReader(cpu.Bytes()))
	must(err)
	big := p.Copy()
	big.Sample = nil
	fnID := uint64(len(p.Function))
	locID := uint64(len(p.Location))
	for i := 0; len(big.Sample) < 16000; i++ {
		s := p.Sample[i%len(p.Sample)]
		fnID++
		locID++
		fn := &profile.Function{ID: fnID, Name: fmt.Sprintf("example.com/svc/handler.func%d", i), Filename: "handler.go"}
		loc := &profile.Location{ID: locID, Mapping: s.Location[0].Mapping, Line: []profile.Line{{Function: fn, Line: int64(i % 500)}}}
		big.Function = append(big.Function, fn)
		big.Location = append(big.Location, loc)
		big.Sample = append(big.Sample, &profile.Sample{
			Location: append([]*profile.Location{loc}, s.Location...),
			Value:    []int64{1 + int64(i%7), 10000000 * (1 + int64(i%7))},
		})
	}
	var out bytes.Buffer
	must(big.Write(&out))
	must(os.WriteFile(filepath.Join(dir, "big16k.pb.gz"), out.Bytes(), 0o644))
	for _, f := range []string{"cpu.pb.gz", "heap.pb.gz", "big16k.pb.gz"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		zr, _ := gzip.NewReader(bytes.NewReader(b))
		raw, _ := io.ReadAll(zr)
		q, _ := profile.ParseData(b)
		fmt.Printf("%s: %d bytes gzipped, %d raw, %d samples\n", f, len(b), len(raw), len(q.Sample))
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
