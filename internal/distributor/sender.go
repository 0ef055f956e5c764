// Package distributor is the data-plane pipeline: validate -> split by
// service_name -> place -> send. The ingest server calls it; it calls a Sender.
package distributor

import (
	"context"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/pyrodist/pyrodist/internal/config"
)

// Profile is one outgoing segment-writer request: one tenant, one service.
type Profile struct {
	Tenant  string
	Service string // the service_name label's value
	// Labels are the series labels, sorted by name, with service_name and
	// __name__ present. The pipeline adds no __profile_type__ (writers derive
	// it per sample type: CreateProfileLabels in
	// pkg/phlaredb/labels/labels.go at 3fe6a45); one the client sent itself is
	// forwarded, as Pyroscope's router forwards series labels unchanged.
	Labels []*typesv1.LabelPair
	// Fingerprint is placement.Fingerprint of Labels, computed once.
	Fingerprint uint64
	// Limits are the tenant's limits as the push resolved them, once: its
	// profiles are validated and placed under the same settings even when
	// the overrides reload meanwhile. Never modified.
	Limits *config.Limits
	// Pprof is the uncompressed pprof. It belongs to the Sender until Send returns.
	Pprof []byte
	// ID is a fresh random UUID v4.
	ID [16]byte
	// Annotations are the distributor's own (usage limits' throttled and
	// sampled notes), shared by the profiles of one pushed profile; client
	// annotations are dropped (docs/compatibility.md#usage-groups).
	Annotations []*typesv1.ProfileAnnotation
}

// Sender delivers one profile to a segment-writer. Send returns only when a
// writer acknowledged it or every candidate failed; errors are gRPC status
// errors classified as Pyroscope's segment-writer client classifies them
// (docs/compatibility.md#failover-and-retries), and the ingest layer maps
// them to client codes.
type Sender interface {
	Send(ctx context.Context, p *Profile) error
}
