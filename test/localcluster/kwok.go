package localcluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// kwokConfigFiles are kwok's own stage and metric definitions, read from its
// module source so they match the kwok binary's version:
//   - nodes become Ready and keep a lease;
//   - pods go Pending -> Running/Ready, and are really deleted when asked;
//   - a kubelet-style /metrics/resource endpoint per node;
//   - pod usage taken from the annotations kwok.x-k8s.io/usage-cpu and
//     kwok.x-k8s.io/usage-memory (1m / 1Mi without them), which tests raise to
//     drive an HPA.
var kwokConfigFiles = []string{
	"stage/node/fast/node-initialize.yaml",
	"stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
	"stage/pod/fast/pod-ready.yaml",
	"stage/pod/fast/pod-complete.yaml",
	"stage/pod/fast/pod-delete.yaml",
	"metrics/resource/metrics-resource.yaml",
	"metrics/usage/usage-from-annotation.yaml",
}

// KwokCPUAnnotation sets a pod's simulated CPU usage (a quantity, e.g. "150m").
const KwokCPUAnnotation = "kwok.x-k8s.io/usage-cpu"

// writeKwokConfig joins kwok's YAMLs into one multi-document file. It adds no
// KwokConfiguration document: kwok applies its option defaults only without one.
func writeKwokConfig(path, kwokSrc string) error {
	var buf bytes.Buffer
	for _, f := range kwokConfigFiles {
		b, err := os.ReadFile(filepath.Join(kwokSrc, "kustomize", f))
		if err != nil {
			return fmt.Errorf("kwok config: %w", err)
		}
		buf.WriteString("---\n")
		buf.Write(bytes.TrimRight(b, "\n"))
		buf.WriteString("\n")
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
