//go:build deps

// Package deps keeps the project's chosen dependencies in go.mod while the
// packages that use them are being written. Removed once they are all imported.
package deps

import (
	_ "connectrpc.com/connect"
	_ "github.com/cespare/xxhash/v2"
	_ "github.com/google/pprof/profile"
	_ "github.com/google/uuid"
	_ "github.com/grafana/dskit/kv/memberlist"
	_ "github.com/grafana/dskit/ring"
	_ "github.com/grafana/dskit/services"
	_ "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	_ "github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	_ "github.com/grafana/pyroscope/api/gen/proto/go/segmentwriter/v1"
	_ "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	_ "github.com/klauspost/compress/gzip"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "golang.org/x/time/rate"
	_ "google.golang.org/grpc"
	_ "k8s.io/api/apps/v1"
	_ "k8s.io/client-go/kubernetes"
	_ "sigs.k8s.io/controller-runtime"
	_ "sigs.k8s.io/controller-runtime/pkg/envtest"
	_ "sigs.k8s.io/yaml"
)
