// Package metricnames finds the metric names that the chart's dashboard and
// alerts query, and which of them a set of scraped /metrics pages lacks: a
// dashboard panel or an alert on a metric nobody exposes shows nothing and
// never fires, silently.
package metricnames

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"
)

// FromPromQL returns the metric names a PromQL expression selects, sorted
// and unique. It is a tokenizer, not a parser, careful about what is not a
// metric name: string literals, label matchers ({...}), ranges and
// subqueries ([...]), label lists of by/without/on/ignoring/group_left/
// group_right, function names (an identifier before "("), keywords and
// Grafana variables ($namespace, $__rate_interval).
func FromPromQL(expr string) []string {
	s := stripStrings(expr)
	s = stripGroups(s, '{', '}')
	s = stripGroups(s, '[', ']')
	s = labelLists.ReplaceAllString(s, " ")
	s = variables.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range identifier.FindAllStringIndex(s, -1) {
		word := s[loc[0]:loc[1]]
		if loc[0] > 0 && (isDigit(s[loc[0]-1]) || s[loc[0]-1] == '.') {
			continue // the tail of a number such as 1e3 or 0.5
		}
		if keywords[strings.ToLower(word)] || strings.HasPrefix(strings.TrimLeft(s[loc[1]:], " \t\n"), "(") {
			continue
		}
		names = append(names, word)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

var (
	identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	variables  = regexp.MustCompile(`\$\{?[a-zA-Z0-9_]+\}?`)
	labelLists = regexp.MustCompile(`(?i)\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	keywords   = map[string]bool{
		"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true, "ignoring": true,
		"group_left": true, "group_right": true, "bool": true, "offset": true, "atan2": true, "inf": true, "nan": true,
	}
)

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// stripStrings blanks PromQL string literals ("...", '...', `...`).
func stripStrings(s string) string {
	out := []byte(s)
	for i := 0; i < len(out); i++ {
		q := out[i]
		if q != '"' && q != '\'' && q != '`' {
			continue
		}
		j := i + 1
		for ; j < len(out) && out[j] != q; j++ {
			if out[j] == '\\' && q != '`' {
				j++
			}
		}
		for k := i; k <= j && k < len(out); k++ {
			out[k] = ' '
		}
		i = j
	}
	return string(out)
}

// stripGroups blanks everything between open and close, nesting included.
func stripGroups(s string, open, close byte) string {
	out := []byte(s)
	depth := 0
	for i, c := range out {
		switch {
		case c == open:
			depth++
		case c == close && depth > 0:
			depth--
			out[i] = ' '
			continue
		}
		if depth > 0 {
			out[i] = ' '
		}
	}
	return string(out)
}

// Query is one PromQL expression and where it comes from.
type Query struct {
	Where, Expr string
}

// DashboardQueries lists the PromQL of every panel target and query
// variable of a Grafana dashboard (rows' nested panels included).
func DashboardQueries(dashboard []byte) ([]Query, error) {
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(dashboard, &d); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	var qs []Query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				if t.Expr != "" {
					qs = append(qs, Query{Where: "panel " + p.Title, Expr: t.Expr})
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if json.Unmarshal(v.Query, &s) != nil {
				return nil, fmt.Errorf("variable %s: query is neither a string nor an object", v.Name)
			}
			q.Query = s
		}
		// label_values(metric, label): the metric is the first argument.
		if m := labelValues.FindStringSubmatch(q.Query); m != nil {
			qs = append(qs, Query{Where: "variable " + v.Name, Expr: m[1]})
		} else if q.Query != "" {
			qs = append(qs, Query{Where: "variable " + v.Name, Expr: q.Query})
		}
	}
	return qs, nil
}

var labelValues = regexp.MustCompile(`^\s*label_values\(\s*([^,]+),`)

type panel struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// RuleQueries lists the expr of every rule in a PrometheusRule spec (a
// "groups:" document).
func RuleQueries(rules []byte) ([]Query, error) {
	var doc struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert  string `json:"alert"`
				Record string `json:"record"`
				Expr   string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(rules, &doc); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	var qs []Query
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			qs = append(qs, Query{Where: "alert " + r.Alert + r.Record, Expr: r.Expr})
		}
	}
	return qs, nil
}

// Exposed is the set of metric families a set of /metrics pages showed.
type Exposed map[string]dto.MetricType

// Add parses one Prometheus text exposition into e.
func (e Exposed) Add(r io.Reader) error {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return err
	}
	for name, f := range fams {
		e[name] = f.GetType()
	}
	return nil
}

// Has reports whether name is exposed: a family of that name, or the
// _bucket, _sum or _count series of a histogram or summary family.
func (e Exposed) Has(name string) bool {
	if _, ok := e[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch e[base] {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			return true
		case dto.MetricType_SUMMARY:
			if suffix != "_bucket" {
				return true
			}
		}
	}
	return false
}

// Missing lists, one line each, the queries' metric names that e lacks.
func (e Exposed) Missing(qs []Query) []string {
	var out []string
	for _, q := range qs {
		for _, n := range FromPromQL(q.Expr) {
			if !e.Has(n) {
				out = append(out, fmt.Sprintf("%s: %s", q.Where, n))
			}
		}
	}
	return out
}

// Files of the chart's monitoring folder (charts/pyrodist/monitoring).
const (
	DashboardFile = "dashboard-distributors.json"
	AlertsFile    = "alerts.yaml"
)

// ChartQueries reads every query of the chart's dashboard and alerts from
// dir, the chart's monitoring folder.
func ChartQueries(dir string) ([]Query, error) {
	dash, err := os.ReadFile(filepath.Join(dir, DashboardFile))
	if err != nil {
		return nil, err
	}
	qs, err := DashboardQueries(dash)
	if err != nil {
		return nil, err
	}
	rules, err := os.ReadFile(filepath.Join(dir, AlertsFile))
	if err != nil {
		return nil, err
	}
	rq, err := RuleQueries(rules)
	if err != nil {
		return nil, err
	}
	return append(qs, rq...), nil
}
