//go:build tools

// Package tools pins a build tool at an exact version.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
