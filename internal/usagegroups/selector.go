package usagegroups

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// matchType is a selector operator: = != =~ !~.
type matchType uint8

const (
	matchEqual matchType = iota
	matchNotEqual
	matchRegexp
	matchNotRegexp
)

var matchOps = [...]string{"=", "!=", "=~", "!~"}

// matcher is one label matcher of a selector, with Prometheus' semantics:
// regexps are anchored at both ends and "." matches any character.
type matcher struct {
	typ   matchType
	name  string
	value string
	re    *regexp.Regexp
}

func newMatcher(typ matchType, name, value string) (*matcher, error) {
	m := &matcher{typ: typ, name: name, value: value}
	if typ == matchRegexp || typ == matchNotRegexp {
		re, err := regexp.Compile("^(?s:" + value + ")$")
		if err != nil {
			return nil, err
		}
		m.re = re
	}
	return m, nil
}

func (m *matcher) matches(v string) bool {
	switch m.typ {
	case matchEqual:
		return v == m.value
	case matchNotEqual:
		return v != m.value
	case matchRegexp:
		return m.re.MatchString(v)
	default:
		return !m.re.MatchString(v)
	}
}

func (m *matcher) String() string {
	return m.name + matchOps[m.typ] + strconv.Quote(m.value)
}

// parseSelector reads a series selector as Pyroscope's usage groups take
// it (promql's ParseMetricSelector, through phlaremodel.ParseMetricSelector
// at 3fe6a45): an optional metric name, then optional braces holding
// comma-separated matchers (a trailing comma is allowed); label names are
// identifiers or quoted strings, values are quoted with ", ' or `. `{}` is
// a selector that matches every labelled series. Error texts are ours.
func parseSelector(s string) ([]*matcher, error) {
	p := selectorParser{s: s}
	p.space()
	if p.eof() {
		return nil, errors.New("parse error: unexpected end of input")
	}
	var ms []*matcher
	if id := p.ident(true); id != "" {
		m, _ := newMatcher(matchEqual, "__name__", id)
		ms = append(ms, m)
		p.space()
		if p.eof() {
			return ms, nil
		}
	}
	if !p.take('{') {
		return nil, p.errorf("unexpected character: %q", p.peekRune())
	}
	for {
		p.space()
		if p.take('}') {
			break
		}
		m, err := p.matcher()
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
		p.space()
		if p.take(',') {
			continue
		}
		if p.take('}') {
			break
		}
		if p.eof() {
			return nil, errors.New("parse error: unexpected end of input")
		}
		return nil, p.errorf("unexpected character: %q", p.peekRune())
	}
	p.space()
	if !p.eof() {
		return nil, p.errorf("unexpected character after the selector: %q", p.peekRune())
	}
	return ms, nil
}

type selectorParser struct {
	s   string
	pos int
}

func (p *selectorParser) eof() bool { return p.pos >= len(p.s) }

func (p *selectorParser) peekRune() rune {
	r, _ := utf8.DecodeRuneInString(p.s[p.pos:])
	return r
}

func (p *selectorParser) errorf(format string, args ...any) error {
	return fmt.Errorf("parse error at offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *selectorParser) space() {
	for !p.eof() && strings.IndexByte(" \t\r\n", p.s[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *selectorParser) take(c byte) bool {
	if !p.eof() && p.s[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// ident reads [a-zA-Z_][a-zA-Z0-9_]* (and ':' in metric names).
func (p *selectorParser) ident(metric bool) string {
	start := p.pos
	for !p.eof() {
		c := p.s[p.pos]
		letter := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || metric && c == ':'
		if !letter && (p.pos == start || c < '0' || c > '9') {
			break
		}
		p.pos++
	}
	return p.s[start:p.pos]
}

func (p *selectorParser) matcher() (*matcher, error) {
	var name string
	quoted := false
	if !p.eof() && strings.IndexByte("\"'`", p.s[p.pos]) >= 0 {
		v, err := p.quoted()
		if err != nil {
			return nil, err
		}
		name, quoted = v, true
	} else if name = p.ident(false); name == "" {
		if p.eof() {
			return nil, errors.New("parse error: unexpected end of input")
		}
		return nil, p.errorf("unexpected character: %q", p.peekRune())
	}
	p.space()
	var typ matchType
	switch {
	case strings.HasPrefix(p.s[p.pos:], "=~"):
		typ = matchRegexp
	case strings.HasPrefix(p.s[p.pos:], "!~"):
		typ = matchNotRegexp
	case strings.HasPrefix(p.s[p.pos:], "!="):
		typ = matchNotEqual
	case strings.HasPrefix(p.s[p.pos:], "="):
		typ = matchEqual
	default:
		if quoted {
			// A lone quoted string names the metric: {"my.metric"}.
			return newMatcher(matchEqual, "__name__", name)
		}
		if p.eof() {
			return nil, errors.New("parse error: unexpected end of input")
		}
		return nil, p.errorf("unexpected character in label matcher: %q", p.peekRune())
	}
	p.pos += len(matchOps[typ])
	p.space()
	if p.eof() || strings.IndexByte("\"'`", p.s[p.pos]) < 0 {
		return nil, p.errorf("label %q: a quoted value is expected", name)
	}
	value, err := p.quoted()
	if err != nil {
		return nil, err
	}
	m, err := newMatcher(typ, name, value)
	if err != nil {
		return nil, fmt.Errorf("label %q: %w", name, err)
	}
	return m, nil
}

// quoted reads a string in ", ' (Go escapes) or ` (raw) quotes.
func (p *selectorParser) quoted() (string, error) {
	q := p.s[p.pos]
	start := p.pos
	p.pos++
	if q == '`' {
		end := strings.IndexByte(p.s[p.pos:], '`')
		if end < 0 {
			p.pos = start
			return "", p.errorf("unterminated raw string")
		}
		v := p.s[p.pos : p.pos+end]
		p.pos += end + 1
		return v, nil
	}
	var b strings.Builder
	rest := p.s[p.pos:]
	for {
		if rest == "" || rest[0] == '\n' {
			p.pos = start
			return "", p.errorf("unterminated quoted string")
		}
		if rest[0] == q {
			p.pos = len(p.s) - len(rest) + 1
			return b.String(), nil
		}
		r, _, tail, err := strconv.UnquoteChar(rest, q)
		if err != nil {
			p.pos = len(p.s) - len(rest)
			return "", p.errorf("invalid escape in quoted string")
		}
		b.WriteRune(r)
		rest = tail
	}
}
