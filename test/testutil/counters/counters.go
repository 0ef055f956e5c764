// Package counters reads counter values out of a Prometheus registry for
// tests.
package counters

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Gather returns the value of every series of the named counters, keyed
// "name{label=value,...}" with the labels in Prometheus' order (by name).
func Gather(tb testing.TB, g prometheus.Gatherer, names ...string) map[string]float64 {
	tb.Helper()
	mfs, err := g.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, n := range names {
			if mf.GetName() != n {
				continue
			}
			for _, m := range mf.GetMetric() {
				var kv []string
				for _, l := range m.GetLabel() {
					kv = append(kv, l.GetName()+"="+l.GetValue())
				}
				out[n+"{"+strings.Join(kv, ",")+"}"] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}
