// Package usagegroups sorts a tenant's profiles into its usage groups
// (distributor_usage_groups: a group name per series selector) and counts
// what each group sent and lost, as Pyroscope does in
// pkg/validation/usage_groups.go at 3fe6a45 (docs/compatibility.md#usage-groups).
package usagegroups

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"go.yaml.in/yaml/v3"
)

const (
	// MaxGroups is the most usage groups a tenant may configure.
	MaxGroups = 50
	// Other is the group a profile counts under when it matched none.
	Other = "other"
	// dynamicPrefix opens a placeholder in a group name: ${labels.<name>}
	// is replaced by the value of that series label.
	dynamicPrefix = "${labels."
)

// Config is a tenant's usage groups. The zero value has none; nil too.
// It is parsed once, when the overrides file loads, and never modified:
// decoding YAML into a Config replaces what it held.
type Config struct {
	raw     map[string]string
	entries []entry // sorted by name, so matching is deterministic
}

type entry struct {
	name     string
	matchers []*matcher
	template []part // nil: a static name
}

// part is a literal piece of a group name, or a label placeholder.
type part struct {
	label bool
	value string // the literal, or the label's name
}

// Parse checks and compiles groups (name -> series selector) with
// Pyroscope's rules: at most MaxGroups, names are trimmed UTF-8, neither
// empty nor "other", selectors parse, placeholders are closed and name a
// label.
func Parse(groups map[string]string) (*Config, error) {
	if len(groups) > MaxGroups {
		return nil, fmt.Errorf("maximum number of usage groups is %d, got %d", MaxGroups, len(groups))
	}
	c := &Config{raw: make(map[string]string, len(groups)), entries: make([]entry, 0, len(groups))}
	for name, selector := range groups {
		if !utf8.ValidString(name) {
			return nil, fmt.Errorf("usage group name %q is not valid UTF-8", name)
		}
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, errors.New("usage group name cannot be empty")
		}
		if name == Other {
			return nil, fmt.Errorf("usage group name %q is reserved", Other)
		}
		ms, err := parseSelector(selector)
		if err != nil {
			return nil, fmt.Errorf("failed to parse matchers for usage group %q: %w", name, err)
		}
		e := entry{name: name, matchers: ms}
		if strings.Contains(name, dynamicPrefix) {
			if e.template, err = parseTemplate(name); err != nil {
				return nil, fmt.Errorf("failed to parse template for usage group %q: %w", name, err)
			}
		}
		c.entries = append(c.entries, e)
		c.raw[name] = selector
	}
	slices.SortFunc(c.entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return c, nil
}

func parseTemplate(name string) ([]part, error) {
	var parts []part
	for rest := name; rest != ""; {
		before, after, found := strings.Cut(rest, dynamicPrefix)
		if before != "" {
			parts = append(parts, part{value: before})
		}
		if !found {
			break
		}
		label, tail, closed := strings.Cut(after, "}")
		if !closed {
			return nil, errors.New("unclosed placeholder")
		}
		if label == "" {
			return nil, errors.New("empty label name in placeholder")
		}
		parts = append(parts, part{label: true, value: label})
		rest = tail
	}
	return parts, nil
}

// UnmarshalYAML reads the map of group name to selector and parses it.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	var m map[string]string
	if err := n.Decode(&m); err != nil {
		return fmt.Errorf("malformed usage group config: %w", err)
	}
	p, err := Parse(m)
	if err != nil {
		return err
	}
	*c = *p
	return nil
}

// MarshalYAML writes the groups as they were configured.
func (c Config) MarshalYAML() (any, error) { return c.raw, nil }

// IsZero reports whether no group is configured (for YAML's omitempty).
func (c Config) IsZero() bool { return len(c.entries) == 0 }

// Groups returns the configured groups (name -> selector); the caller must
// not modify it.
func (c *Config) Groups() map[string]string {
	if c == nil {
		return nil
	}
	return c.raw
}

// Len is the number of configured groups.
func (c *Config) Len() int {
	if c == nil {
		return 0
	}
	return len(c.entries)
}

// Name is a group a profile belongs to: its configured name and, for a
// dynamic one, the name with its placeholders filled in (else the same).
type Name struct {
	Configured string
	Resolved   string
}

// Dynamic reports whether the group's name has placeholders.
func (n Name) Dynamic() bool { return strings.Contains(n.Configured, dynamicPrefix) }

// MoreSpecificThan: a static group is more specific than a dynamic one.
func (n Name) MoreSpecificThan(o Name) bool { return !n.Dynamic() && o.Dynamic() }

// String is how Pyroscope prints a matched group in its usage-group limit
// message (a UsageGroupMatchName formatted by value with %s).
func (n Name) String() string { return "{" + n.Configured + " " + n.Resolved + "}" }

// Match appends to dst the groups whose every matcher finds its label
// present in labels with a matching value (a missing label never matches,
// whatever the operator). A dynamic group whose placeholder label is
// missing or empty is skipped. Nothing is allocated when c has no groups.
func (c *Config) Match(labels []*typesv1.LabelPair, dst []Name) []Name {
	if c == nil {
		return dst
	}
	for i := range c.entries {
		e := &c.entries[i]
		if !e.matches(labels) {
			continue
		}
		resolved := e.name
		if e.template != nil {
			var ok bool
			if resolved, ok = e.expand(labels); !ok {
				continue
			}
		}
		dst = append(dst, Name{Configured: e.name, Resolved: resolved})
	}
	return dst
}

func (e *entry) matches(labels []*typesv1.LabelPair) bool {
	if len(labels) == 0 && len(e.matchers) > 0 {
		return false
	}
	for _, m := range e.matchers {
		v, ok := get(labels, m.name)
		if !ok || !m.matches(v) {
			return false
		}
	}
	return true
}

func (e *entry) expand(labels []*typesv1.LabelPair) (string, bool) {
	var b strings.Builder
	for _, p := range e.template {
		if !p.label {
			b.WriteString(p.value)
			continue
		}
		v, ok := get(labels, p.value)
		if !ok || v == "" {
			return "", false
		}
		b.WriteString(v)
	}
	return b.String(), true
}

func get(labels []*typesv1.LabelPair, name string) (string, bool) {
	for _, l := range labels {
		if l.GetName() == name {
			return l.GetValue(), true
		}
	}
	return "", false
}
