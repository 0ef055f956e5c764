package observed

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"
)

// OTLPRequest is one recorded OTLP profiles export.
type OTLPRequest struct {
	Case string `json:"case"`
	// Kind is how it was sent: "otlp-http-proto" (POST /v1development/profiles,
	// application/x-protobuf), "otlp-http-json" (the same path, protojson) or
	// "otlp-grpc" (ProfilesService/Export over h2c).
	Kind string `json:"kind"`
	// Body is the ExportProfilesServiceRequest, encoded as Kind says.
	Body []byte `json:"body"`
}

// OTLPOut is one profile Pyroscope sent to its segment-writer for an
// export: Out plus the shard it was placed on (a ring of one writer with 4
// tokens).
type OTLPOut struct {
	Out
	Shard uint32 `json:"shard"`
}

// OTLPOutcome is Pyroscope's answer to an export (an HTTP status, or a gRPC
// code name for otlp-grpc) and what it forwarded.
type OTLPOutcome struct {
	Case   string    `json:"case"`
	Status string    `json:"status"`
	Outs   []OTLPOut `json:"outs"`
}

var (
	//go:embed testdata/otlp/requests.json
	otlpRequestsJSON []byte
	//go:embed testdata/otlp/pyroscope-outcomes.json
	otlpOutcomesJSON []byte
)

type otlpCorpus struct {
	requests []OTLPRequest
	outcomes map[string]OTLPOutcome
}

var loadOTLP = sync.OnceValue(func() otlpCorpus {
	var c otlpCorpus
	var outs []OTLPOutcome
	if err := json.Unmarshal(otlpRequestsJSON, &c.requests); err != nil {
		panic(fmt.Sprintf("observed: otlp/requests.json: %v", err)) // a build defect, not input
	}
	if err := json.Unmarshal(otlpOutcomesJSON, &outs); err != nil {
		panic(fmt.Sprintf("observed: otlp/pyroscope-outcomes.json: %v", err))
	}
	c.outcomes = make(map[string]OTLPOutcome, len(outs))
	for _, o := range outs {
		c.outcomes[o.Case] = o
	}
	return c
})

// OTLPRequests returns the recorded OTLP exports in file order. Do not
// modify them.
func OTLPRequests() []OTLPRequest { return loadOTLP().requests }

// OTLPOutcomes returns Pyroscope's outcomes of the OTLP exports by case
// name. Do not modify them.
func OTLPOutcomes() map[string]OTLPOutcome { return loadOTLP().outcomes }
