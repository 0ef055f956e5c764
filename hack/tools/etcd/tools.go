//go:build tools

// Package tools pins a build tool at an exact version.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
