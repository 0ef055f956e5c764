package main

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"debug/gosym"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// synthesize builds a CPU profile with n distinct stacks from the real symbol
// table (functions, files, lines, addresses) of this binary. Stacks grow as
// a random tree (a Chinese-restaurant process per node), so prefixes are
// shared and a few hot paths carry most of the weight, as in the profiles of
// large services; values come from the number of times a walk ended there.
func synthesize(n int, seed int64) ([]byte, error) {
	if n > 16000 {
		return nil, fmt.Errorf("%d samples exceed the distributor's default limit of 16000", n)
	}
	syms, err := loadSymbols()
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewSource(seed))

	mapping := &profile.Mapping{
		ID: 1, Start: syms.textStart, Limit: syms.textEnd, File: "/usr/local/bin/checkout-service",
		BuildID:      fmt.Sprintf("%x", r.Uint64()) + fmt.Sprintf("%x", r.Uint64()),
		HasFunctions: true, HasFilenames: true, HasLineNumbers: true,
	}
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        10_000_000,
		TimeNanos:     time.Now().UnixNano(),
		DurationNanos: int64(60 * time.Second),
		Mapping:       []*profile.Mapping{mapping},
	}

	funcs := map[string]*profile.Function{}
	fn := func(s sym) *profile.Function {
		if f, ok := funcs[s.name]; ok {
			return f
		}
		f := &profile.Function{ID: uint64(len(p.Function) + 1), Name: s.name, SystemName: s.name, Filename: s.file, StartLine: int64(s.line)}
		funcs[s.name] = f
		p.Function = append(p.Function, f)
		return f
	}
	// A pool of call sites: 1-3 per function, 15% with an inlined callee at
	// the same address, as the Go compiler produces.
	pool := make([]*profile.Location, 0, 6000)
	perm := r.Perm(len(syms.funcs))
	for _, i := range perm[:min(2500, len(perm))] {
		s := syms.funcs[i]
		for range 1 + r.Intn(3) {
			addr := s.entry + uint64(r.Int63n(int64(max(1, s.end-s.entry))))
			file, line, _ := syms.table.PCToLine(addr)
			if file == "" {
				continue
			}
			loc := &profile.Location{ID: uint64(len(p.Location) + 1), Mapping: mapping, Address: addr,
				Line: []profile.Line{{Function: fn(s), Line: int64(line)}}}
			if r.Intn(100) < 15 {
				in := syms.funcs[r.Intn(len(syms.funcs))]
				loc.Line = append([]profile.Line{{Function: fn(in), Line: int64(in.line + r.Intn(20))}}, loc.Line...)
			}
			p.Location = append(p.Location, loc)
			pool = append(pool, loc)
		}
	}
	var runtimeLocs []*profile.Location
	for _, l := range pool {
		if strings.HasPrefix(l.Line[len(l.Line)-1].Function.Name, "runtime.") {
			runtimeLocs = append(runtimeLocs, l)
		}
	}
	// Hot functions appear in many stacks.
	zipf := rand.NewZipf(r, 1.2, 8, uint64(len(pool)-1))

	type node struct {
		loc      *profile.Location
		parent   *node
		depth    int
		children map[*profile.Location]*node
		order    []*node
		hits     int
		sample   *profile.Sample
	}
	newNode := func(loc *profile.Location, parent *node) *node {
		d := 1
		if parent != nil {
			d = parent.depth + 1
		}
		return &node{loc: loc, parent: parent, depth: d, children: map[*profile.Location]*node{}}
	}
	// Every goroutine's stack ends in runtime.goexit.
	rootLoc := pool[0]
	for _, s := range syms.funcs {
		if s.name == "runtime.goexit" {
			rootLoc = &profile.Location{ID: uint64(len(p.Location) + 1), Mapping: mapping, Address: s.entry + 1,
				Line: []profile.Line{{Function: fn(s), Line: int64(s.line + 1)}}}
			p.Location = append(p.Location, rootLoc)
			break
		}
	}
	root := newNode(rootLoc, nil)
	workers := []string{"http", "grpc", "batch", "gc"}
	byStack := map[string]*profile.Sample{}
	for len(p.Sample) < n {
		cur := root
		for {
			if cur.depth >= 6 && (r.Intn(100) < 6 || cur.depth >= 120) {
				break
			}
			// Chinese-restaurant choice: a new call site with probability
			// alpha/(alpha+visits), else an existing child by its weight.
			const alpha = 1.5
			if len(cur.order) == 0 || r.Float64()*(alpha+float64(cur.hits)) < alpha {
				var loc *profile.Location
				for range 10 {
					if cur.depth > 12 && len(runtimeLocs) > 0 && r.Intn(5) == 0 {
						loc = runtimeLocs[r.Intn(len(runtimeLocs))]
					} else {
						loc = pool[zipf.Uint64()]
					}
					if _, dup := cur.children[loc]; !dup {
						break
					}
				}
				if c, dup := cur.children[loc]; dup {
					cur.hits++
					cur = c
					continue
				}
				c := newNode(loc, cur)
				cur.children[loc] = c
				cur.order = append(cur.order, c)
				cur.hits++
				cur = c
				continue
			}
			pick := r.Intn(cur.hits)
			next := cur.order[len(cur.order)-1]
			for _, c := range cur.order {
				if pick < c.hits+1 {
					next = c
					break
				}
				pick -= c.hits + 1
			}
			cur.hits++
			cur = next
		}
		if cur.sample != nil {
			cur.sample.Value[0]++
			cur.sample.Value[1] += p.Period
			continue
		}
		var locs []*profile.Location
		for x := cur; x != nil; x = x.parent {
			locs = append(locs, x.loc) // leaf first
		}
		// The Go CPU profiler keeps the 64 leaf-most frames of deeper stacks;
		// two deep stacks may then become one.
		if len(locs) > maxCPUStack {
			locs = locs[:maxCPUStack]
		}
		k := stackKey(locs)
		if s, ok := byStack[k]; ok {
			cur.sample = s
			s.Value[0]++
			s.Value[1] += p.Period
			continue
		}
		s := &profile.Sample{Value: []int64{1, p.Period}, Location: locs}
		if r.Intn(10) < 4 {
			s.Label = map[string][]string{"worker": {workers[r.Intn(len(workers))]}}
		}
		cur.sample = s
		byStack[k] = s
		p.Sample = append(p.Sample, s)
	}
	// Keep only the call sites some stack uses.
	used := map[*profile.Location]bool{}
	for _, s := range p.Sample {
		for _, l := range s.Location {
			used[l] = true
		}
	}
	p.Location = slices.DeleteFunc(p.Location, func(l *profile.Location) bool { return !used[l] })
	usedFn := map[*profile.Function]bool{}
	for i, l := range p.Location {
		l.ID = uint64(i + 1)
		for _, ln := range l.Line {
			usedFn[ln.Function] = true
		}
	}
	p.Function = slices.DeleteFunc(p.Function, func(f *profile.Function) bool { return !usedFn[f] })
	for i, f := range p.Function {
		f.ID = uint64(i + 1)
	}
	if err := p.CheckValid(); err != nil {
		return nil, err
	}
	var raw, gz bytes.Buffer
	if err := p.WriteUncompressed(&raw); err != nil {
		return nil, err
	}
	// Compressed as runtime/pprof does.
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return gz.Bytes(), nil
}

// maxCPUStack is runtime/pprof's CPU stack depth (maxCPUProfStack).
const maxCPUStack = 64

func stackKey(locs []*profile.Location) string {
	var b strings.Builder
	for _, l := range locs {
		fmt.Fprintf(&b, "%p,", l)
	}
	return b.String()
}

type sym struct {
	name       string
	file       string
	line       int
	entry, end uint64
}

type symbols struct {
	table              *gosym.Table
	funcs              []sym
	textStart, textEnd uint64
}

// loadSymbols reads this binary's Go symbol table.
func loadSymbols() (*symbols, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	f, err := elf.Open(exe)
	if err != nil {
		return nil, fmt.Errorf("reading the symbol table needs an ELF binary: %w", err)
	}
	defer f.Close()
	text, pcln := f.Section(".text"), f.Section(".gopclntab")
	if text == nil || pcln == nil {
		return nil, fmt.Errorf("%s has no .text or .gopclntab (stripped?)", exe)
	}
	data, err := pcln.Data()
	if err != nil {
		return nil, err
	}
	t, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return nil, err
	}
	s := &symbols{table: t, textStart: text.Addr, textEnd: text.Addr + text.Size}
	for _, fn := range t.Funcs {
		if fn.End <= fn.Entry || strings.Contains(fn.Name, "..") || strings.HasPrefix(fn.Name, "type:") {
			continue
		}
		file, line, _ := t.PCToLine(fn.Entry)
		if file == "" {
			continue
		}
		s.funcs = append(s.funcs, sym{name: fn.Name, file: file, line: line, entry: fn.Entry, end: fn.End})
	}
	if len(s.funcs) < 1000 {
		return nil, fmt.Errorf("only %d functions in the symbol table", len(s.funcs))
	}
	return s, nil
}
