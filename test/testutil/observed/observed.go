// Package observed holds the edge-case requests that were sent to a real
// Pyroscope v2 distributor and what it answered and sent to its writer for
// each (docs/compatibility.md#observed-edge-cases), for conformance tests of
// the ingest server and the pipeline.
package observed

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"
)

// Request is one recorded client request.
type Request struct {
	Case string `json:"case"`
	// Kind is "push" (push.v1 series) or "ingest" (a legacy /ingest body).
	Kind        string      `json:"kind"`
	Labels      [][2]string `json:"labels"`
	Query       string      `json:"query"`
	ContentType string      `json:"content_type"`
	Body        []byte      `json:"body"`
}

// Out is one profile Pyroscope sent to its segment-writer, rendered as text.
type Out struct {
	Labels []string `json:"labels"`
	// Shard is the placement's shard id (1..N) for a ring of one writer
	// with 4 tokens, the ring the corpus was recorded with.
	Shard         uint32   `json:"shard"`
	SampleTypes   []string `json:"sample_types"`
	Period        string   `json:"period"`
	Time          string   `json:"time"`
	DurationNanos int64    `json:"duration_nanos"`
	Samples       []string `json:"samples"`
	CheckValid    string   `json:"check_valid"`
}

// Outcome is Pyroscope's answer to a Request and what it forwarded.
type Outcome struct {
	Case           string `json:"case"`
	Status         string `json:"status"`
	Message        string `json:"message"`
	PyrodistStatus string `json:"pyrodist_status"`
	Outs           []Out  `json:"outs"`
}

var (
	//go:embed testdata/requests.json
	requestsJSON []byte
	//go:embed testdata/pyroscope-outcomes.json
	outcomesJSON []byte
	//go:embed testdata/jfr/requests.json
	jfrRequestsJSON []byte
	//go:embed testdata/jfr/pyroscope-outcomes.json
	jfrOutcomesJSON []byte
)

type corpus struct {
	requests []Request
	outcomes map[string]Outcome
}

func parse(name string, requests, outcomes []byte) corpus {
	var c corpus
	var outs []Outcome
	if err := json.Unmarshal(requests, &c.requests); err != nil {
		panic(fmt.Sprintf("observed: %s requests.json: %v", name, err)) // a build defect, not input
	}
	if err := json.Unmarshal(outcomes, &outs); err != nil {
		panic(fmt.Sprintf("observed: %s pyroscope-outcomes.json: %v", name, err))
	}
	c.outcomes = make(map[string]Outcome, len(outs))
	for _, o := range outs {
		c.outcomes[o.Case] = o
	}
	return c
}

var (
	load    = sync.OnceValue(func() corpus { return parse("pprof", requestsJSON, outcomesJSON) })
	loadJFR = sync.OnceValue(func() corpus { return parse("jfr", jfrRequestsJSON, jfrOutcomesJSON) })
)

// Requests returns the recorded requests in file order. Do not modify them.
func Requests() []Request { return load().requests }

// Outcomes returns Pyroscope's outcomes by case name. Do not modify them.
func Outcomes() map[string]Outcome { return load().outcomes }

// JFRRequests returns the recorded /ingest?format=jfr requests (their
// from/until were "now" when sent, 10 s apart: shift them before replaying).
// Do not modify them.
func JFRRequests() []Request { return loadJFR().requests }

// JFROutcomes returns Pyroscope's outcomes of JFRRequests by case name. Do
// not modify them.
func JFROutcomes() map[string]Outcome { return loadJFR().outcomes }
