//go:build tools

// Package tools pins a build tool at an exact version.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
