package metricnames

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestFromPromQL(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`sum by (zone, tenant) (rate(foo_total{namespace=~"$namespace",route=~"a|b(c)"}[$__rate_interval]))`, []string{"foo_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(lat_seconds_bucket[5m]))) > 1e3`, []string{"lat_seconds_bucket"}},
		{`a / ignoring(pod) group_left(zone) b and on (x) c unless d offset 5m`, []string{"a", "b", "c", "d"}},
		{`max(x / (y > 0)) > bool 0.9`, []string{"x", "y"}},
		{`count by (zone) (z{label="with } brace and \" quote"})`, []string{"z"}},
		{`rate(m[5m:1m])`, []string{"m"}},
		{`ns:rule:rate5m`, []string{"ns:rule:rate5m"}},
	} {
		if got := FromPromQL(tc.expr); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("FromPromQL(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

const page = `# HELP h_seconds x
# TYPE h_seconds histogram
h_seconds_bucket{le="1"} 1
h_seconds_bucket{le="+Inf"} 1
h_seconds_sum 1
h_seconds_count 1
# HELP s_seconds x
# TYPE s_seconds summary
s_seconds_sum 1
s_seconds_count 1
# HELP c_total x
# TYPE c_total counter
c_total 1
`

// A name nobody exposes is reported, with where it is used; histogram and
// summary series are found through their family.
func TestMissing(t *testing.T) {
	e := Exposed{}
	if err := e.Add(strings.NewReader(page)); err != nil {
		t.Fatal(err)
	}
	got := e.Missing([]Query{
		{"panel ok", `rate(h_seconds_bucket[5m]) + rate(h_seconds_sum[5m]) + s_seconds_count + c_total`},
		{"panel bogus", `rate(pyrodist_no_such_metric_total[5m]) + s_seconds_bucket + c`},
	})
	want := []string{"panel bogus: c", "panel bogus: pyrodist_no_such_metric_total", "panel bogus: s_seconds_bucket"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Missing = %v, want %v", got, want)
	}
}

// The chart's own files parse, and every query names at least one metric
// (a query the tokenizer reads as naming none would escape the check).
func TestChartQueries(t *testing.T) {
	dir := filepath.Join("..", "..", "charts", "pyrodist", "monitoring")
	qs, err := ChartQueries(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) < 20 {
		t.Errorf("%d queries in %s; the dashboard and alerts have more", len(qs), dir)
	}
	for _, q := range qs {
		if len(FromPromQL(q.Expr)) == 0 {
			t.Errorf("%s: no metric name in %q", q.Where, q.Expr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, DashboardFile)); err != nil {
		t.Error(err)
	}
}
