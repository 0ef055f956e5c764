// Package legacy turns Pyroscope's legacy /ingest requests (the query
// parameters, folded text and pprof bodies) into push.v1 series: the labels
// Pyroscope's /ingest gives them (docs/compatibility.md#push-apis) and a pprof
// profile.
package legacy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Label is one name=value pair of the `name` parameter.
type Label struct {
	Name, Value string
}

// Name is the parsed `name` parameter: app{k=v,...}.
type Name struct {
	App string
	// Labels are sorted by name, without duplicates (the last value given wins).
	Labels []Label
}

// Get returns the value of label k and whether it was given.
func (n Name) Get(k string) (string, bool) {
	for _, l := range n.Labels {
		if l.Name == k {
			return l.Value, true
		}
	}
	return "", false
}

var errNoApp = errors.New("service name is required")

// ParseName parses `app{k=v,...}`. The app part must match [A-Za-z0-9_./-]+,
// label names [A-Za-z0-9_.]+, and __name__ is reserved (it is where Pyroscope
// keeps the app internally). Values run to the next ',' or '}'.
func ParseName(s string) (Name, error) {
	var n Name
	app, rest, hasLabels := strings.Cut(s, "{")
	app = strings.TrimSpace(app)
	if app == "" {
		return n, errNoApp
	}
	for i := 0; i < len(app); i++ {
		if !isAppChar(app[i]) {
			return n, fmt.Errorf("service name %q contains unsupported character %q", app, app[i])
		}
	}
	n.App = app
	if !hasLabels {
		return n, nil
	}
	body, ok := strings.CutSuffix(strings.TrimSpace(rest), "}")
	if !ok {
		return n, fmt.Errorf("labels of %q are not closed with '}'", s)
	}
	if strings.ContainsAny(body, "{}") {
		return n, fmt.Errorf("labels of %q contain a nested brace", s)
	}
	seen := make(map[string]int)
	for _, pair := range strings.Split(body, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok {
			return n, fmt.Errorf("label %q has no '=' and value", k)
		}
		if err := validLabelName(k); err != nil {
			return n, err
		}
		v = strings.TrimSpace(v)
		if i, dup := seen[k]; dup {
			n.Labels[i].Value = v
			continue
		}
		seen[k] = len(n.Labels)
		n.Labels = append(n.Labels, Label{Name: k, Value: v})
	}
	sort.Slice(n.Labels, func(i, j int) bool { return n.Labels[i].Name < n.Labels[j].Name })
	return n, nil
}

func validLabelName(k string) error {
	if k == "" {
		return errors.New("label name is empty")
	}
	if k == "__name__" {
		return errors.New("label name __name__ is reserved")
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !isAlnum(c) && c != '_' && c != '.' {
			return fmt.Errorf("label name %q contains unsupported character %q", k, c)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isAppChar(c byte) bool {
	return isAlnum(c) || c == '_' || c == '.' || c == '/' || c == '-'
}
