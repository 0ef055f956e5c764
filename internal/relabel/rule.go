// Package relabel is Prometheus-style relabeling of a profile's series
// labels, as Pyroscope's distributor does it for ingestion_relabeling_rules
// and sample_type_relabeling_rules (pkg/model/relabel and
// pkg/validation/relabeling.go at 3fe6a45). Pyroscope takes its rule type
// from github.com/prometheus/prometheus/model/relabel; that module would
// raise this module's go line and upgrade much of its dependency graph, so
// the rule type, its YAML form, its validation and the engine are ours,
// with the same keys, defaults and results.
package relabel

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Action is what a rule does.
type Action string

// The actions Prometheus defines; YAML accepts them in any case.
const (
	Replace   Action = "replace"
	Keep      Action = "keep"
	Drop      Action = "drop"
	KeepEqual Action = "keepequal"
	DropEqual Action = "dropequal"
	HashMod   Action = "hashmod"
	LabelMap  Action = "labelmap"
	LabelDrop Action = "labeldrop"
	LabelKeep Action = "labelkeep"
	Lowercase Action = "lowercase"
	Uppercase Action = "uppercase"
)

// Actions lists every action, in the order the CRD's enum names them.
var Actions = []Action{Replace, Keep, Drop, KeepEqual, DropEqual, HashMod, LabelMap, LabelDrop, LabelKeep, Lowercase, Uppercase}

// The defaults of a rule's optional fields (Prometheus' DefaultRelabelConfig).
const (
	DefaultSeparator   = ";"
	DefaultRegex       = "(.*)"
	DefaultReplacement = "$1"
)

// Rule is one relabel rule with Prometheus' relabel_config keys. Regex is
// anchored at both ends and "." matches a newline too, as in Prometheus.
type Rule struct {
	SourceLabels []string
	Separator    string
	Regex        Regexp
	Modulus      uint64
	TargetLabel  string
	Replacement  string
	Action       Action
}

// Regexp is a compiled, anchored rule regex that remembers its source.
type Regexp struct {
	*regexp.Regexp
	src string
}

// NewRegexp compiles s anchored as Prometheus does: ^(?s:s)$.
func NewRegexp(s string) (Regexp, error) {
	re, err := regexp.Compile("^(?s:" + s + ")$")
	if err != nil {
		return Regexp{}, err
	}
	return Regexp{Regexp: re, src: s}, nil
}

// MustNewRegexp is NewRegexp for expressions known to compile.
func MustNewRegexp(s string) Regexp {
	re, err := NewRegexp(s)
	if err != nil {
		panic(err)
	}
	return re
}

// String is the expression as written, without the anchors.
func (r Regexp) String() string { return r.src }

var defaultRegex = MustNewRegexp(DefaultRegex)

// NewRule returns a rule holding Prometheus' defaults.
func NewRule() Rule {
	return Rule{Separator: DefaultSeparator, Regex: defaultRegex, Replacement: DefaultReplacement, Action: Replace}
}

// ruleYAML is a rule's YAML form. Replacement is a pointer so that an empty
// replacement (which deletes the target label) survives a render and parse,
// where an omitted one means "$1".
type ruleYAML struct {
	SourceLabels []string `yaml:"source_labels,flow,omitempty"`
	Separator    *string  `yaml:"separator,omitempty"`
	Regex        *string  `yaml:"regex,omitempty"`
	Modulus      uint64   `yaml:"modulus,omitempty"`
	TargetLabel  string   `yaml:"target_label,omitempty"`
	Replacement  *string  `yaml:"replacement,omitempty"`
	Action       string   `yaml:"action,omitempty"`
}

var ruleKeys = map[string]bool{
	"source_labels": true, "separator": true, "regex": true, "modulus": true,
	"target_label": true, "replacement": true, "action": true,
}

// UnmarshalYAML reads a rule over Prometheus' defaults. An unknown key in a
// rule is an error: a misspelt "regex" would silently match everything.
func (r *Rule) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; !ruleKeys[k] {
				return fmt.Errorf("line %d: unknown relabel rule field %q", n.Content[i].Line, k)
			}
		}
	}
	var y ruleYAML
	if err := n.Decode(&y); err != nil {
		return err
	}
	out := NewRule()
	out.SourceLabels = y.SourceLabels
	out.Modulus = y.Modulus
	out.TargetLabel = y.TargetLabel
	if y.Separator != nil {
		out.Separator = *y.Separator
	}
	if y.Replacement != nil {
		out.Replacement = *y.Replacement
	}
	if y.Regex != nil {
		re, err := NewRegexp(*y.Regex)
		if err != nil {
			return fmt.Errorf("line %d: relabel rule regex: %w", n.Line, err)
		}
		out.Regex = re
	}
	if y.Action != "" {
		a := Action(strings.ToLower(y.Action))
		if !validAction(a) {
			return fmt.Errorf("line %d: unknown relabel action %q", n.Line, y.Action)
		}
		out.Action = a
	}
	*r = out
	return nil
}

// MarshalYAML writes the fields that differ from the defaults, so the
// result reads like a hand-written rule and parses back to the same rule.
func (r Rule) MarshalYAML() (any, error) {
	y := ruleYAML{SourceLabels: r.SourceLabels, Modulus: r.Modulus, TargetLabel: r.TargetLabel, Action: string(r.Action)}
	if r.Separator != DefaultSeparator {
		y.Separator = &r.Separator
	}
	if src := r.Regex.String(); r.Regex.Regexp != nil && src != DefaultRegex {
		y.Regex = &src
	}
	if r.Replacement != DefaultReplacement {
		y.Replacement = &r.Replacement
	}
	return y, nil
}

func validAction(a Action) bool {
	for _, x := range Actions {
		if a == x {
			return true
		}
	}
	return false
}

// validName is Prometheus' UTF-8 label name rule, the one Pyroscope
// validates rules with: any non-empty valid UTF-8.
func validName(s string) bool { return s != "" && utf8.ValidString(s) }

// Validate applies Prometheus' checks (Config.Validate with UTF-8 label
// names, as pkg/validation/relabeling.go at 3fe6a45 calls it).
func (r *Rule) Validate() error {
	if r.Action == "" {
		return errors.New("relabel action cannot be empty")
	}
	if !validAction(r.Action) {
		return fmt.Errorf("unknown relabel action %q", r.Action)
	}
	if r.Regex.Regexp == nil {
		r.Regex = defaultRegex
	}
	if r.Action == HashMod && r.Modulus == 0 {
		return errors.New("relabel configuration for hashmod requires non-zero modulus")
	}
	switch r.Action {
	case Replace:
		// Pyroscope accepts a replace rule without target_label (an empty
		// rule, {}, is valid there: pkg/validation/relabeling_test.go at
		// 3fe6a45); it changes nothing, as its engine skips an invalid target.
	case HashMod, Lowercase, Uppercase, KeepEqual, DropEqual:
		if r.TargetLabel == "" {
			return fmt.Errorf("relabel configuration for %s action requires 'target_label' value", r.Action)
		}
		if !validName(r.TargetLabel) {
			return fmt.Errorf("%q is invalid 'target_label' for %s action", r.TargetLabel, r.Action)
		}
	}
	switch r.Action {
	case Lowercase, Uppercase, KeepEqual, DropEqual:
		if r.Replacement != DefaultReplacement {
			return fmt.Errorf("'replacement' can not be set for %s action", r.Action)
		}
	case LabelMap:
		if !validName(r.Replacement) {
			return fmt.Errorf("%q is invalid 'replacement' for %s action", r.Replacement, r.Action)
		}
	}
	switch r.Action {
	case DropEqual, KeepEqual:
		if r.Regex.String() != DefaultRegex || r.Modulus != 0 || r.Separator != DefaultSeparator {
			return fmt.Errorf("%s action requires only 'source_labels' and `target_label`, and no other fields", r.Action)
		}
	case LabelDrop, LabelKeep:
		if r.SourceLabels != nil || r.TargetLabel != "" || r.Modulus != 0 ||
			r.Separator != DefaultSeparator || r.Replacement != DefaultReplacement {
			return fmt.Errorf("%s action requires only 'regex', and no other fields", r.Action)
		}
	}
	return nil
}

// Rules is an ordered list of rules.
type Rules []Rule

// Validate checks every rule, naming the first bad one by position.
func (rs Rules) Validate() error {
	for i := range rs {
		if err := rs[i].Validate(); err != nil {
			return fmt.Errorf("rule at pos %d is not valid: %w", i, err)
		}
	}
	return nil
}

// ValidateFilter checks rules that may only keep or drop, as
// sample_type_relabeling_rules must (SampleTypeRelabelRules.Set in
// pkg/validation/relabeling.go at 3fe6a45).
func (rs Rules) ValidateFilter() error {
	if err := rs.Validate(); err != nil {
		return err
	}
	for i, r := range rs {
		if r.Action != Drop && r.Action != Keep {
			return fmt.Errorf("rule at pos %d: sample type relabeling only supports 'drop' and 'keep' actions, got '%s'", i, r.Action)
		}
	}
	return nil
}

// Defaults are Pyroscope's default ingestion rules (defaultRelabelRules in
// pkg/validation/relabeling.go at 3fe6a45): strip godeltaprof_ from
// __name__, remembering it in __name_replaced__ and marking __delta__=false,
// and turn wall with __type__=cpu into process_cpu. The pipeline runs them
// through a hand-written equivalent (validation.RelabelDefaults); this form
// is what that one is tested against.
var Defaults = Rules{
	{SourceLabels: []string{"__name__"}, Separator: DefaultSeparator, Regex: MustNewRegexp("godeltaprof_(.*)"), TargetLabel: "__name_replaced__", Replacement: "$0", Action: Replace},
	{SourceLabels: []string{"__name_replaced__"}, Separator: DefaultSeparator, Regex: MustNewRegexp("godeltaprof_(.*)"), TargetLabel: "__delta__", Replacement: "false", Action: Replace},
	{SourceLabels: []string{"__name__"}, Separator: DefaultSeparator, Regex: MustNewRegexp("godeltaprof_(.*)"), TargetLabel: "__name__", Replacement: "$1", Action: Replace},
	{SourceLabels: []string{"__name__", "__type__"}, Separator: "/", Regex: MustNewRegexp("wall/cpu"), TargetLabel: "__name_replaced__", Replacement: "wall", Action: Replace},
	{SourceLabels: []string{"__name__", "__type__"}, Separator: "/", Regex: MustNewRegexp("wall/cpu"), TargetLabel: "__name__", Replacement: "process_cpu", Action: Replace},
}
