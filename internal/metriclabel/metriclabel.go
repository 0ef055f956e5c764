// Package metriclabel bounds the values of metric labels that clients
// choose, such as tenant IDs and profile names. Every distinct value is a
// series that the registry keeps for the life of the process, so a client
// free to invent values could otherwise grow memory and /metrics without
// bound, even with requests that are refused.
//
// A Set admits a value once it is valid and while there is room; values it
// does not admit are recorded as Other. An admitted value stays admitted.
// Values from requests that have not passed validation may take at most half
// of the room, so a flood of refused requests cannot keep well-behaved
// newcomers from getting series of their own.
package metriclabel

import (
	"net/http"
	"strings"
	"sync"

	"github.com/grafana/dskit/tenant"
)

// Other is the label value recorded for every value a Set does not admit:
// invalid ones and new ones once the Set is full.
const Other = "__other__"

// maxProfileNameLen bounds a profile name kept as a label value; real
// ones (process_cpu, memory, wall, goroutine, ...) are far shorter.
const maxProfileNameLen = 64

// Set is the admitted values of one label. It is safe for concurrent use;
// looking up a value already admitted takes no lock.
type Set struct {
	max         int
	maxUnvetted int
	valid       func(string) bool

	admitted sync.Map // value -> the Set's own copy of it

	mu       sync.Mutex // serializes admissions
	n        int        // admitted values, known ones excluded
	unvetted int        // of n, those admitted by Value
}

// NewSet admits at most max values that valid accepts (max <= 0: none)
// besides known, which are admitted from the start.
func NewSet(max int, valid func(string) bool, known ...string) *Set {
	s := &Set{max: max, maxUnvetted: max / 2, valid: valid}
	for _, v := range known {
		s.admitted.Store(v, v)
	}
	return s
}

// Tenants is a Set of tenant IDs: valid ones are those dskit accepts,
// and "anonymous", the tenant of every request when multitenancy is off, is
// always admitted.
func Tenants(max int) *Set {
	return NewSet(max, func(v string) bool { return v != "" && tenant.ValidTenantID(v) == nil }, "anonymous")
}

// ProfileNames is a Set of profile names (the __name__ label): valid ones
// are at most 64 bytes of ASCII letters, digits and _ : . - (so a name that
// is not UTF-8, on which Prometheus panics, never reaches a metric), and the
// names Pyroscope's clients send are always admitted.
func ProfileNames(max int) *Set {
	return NewSet(max, validProfileName,
		"process_cpu", "wall", "memory", "goroutine", "goroutines", "block", "mutex", "exceptions")
}

func validProfileName(v string) bool {
	if v == "" || len(v) > maxProfileNameLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_:.-", c) >= 0) {
			return false
		}
	}
	return true
}

// Value is the label value to record for v from a request that has not
// (or not yet) passed validation: v once admitted, else Other. A valid v is
// admitted while such values take less than half of the Set's room.
func (s *Set) Value(v string) string { return s.admit(v, false) }

// Accepted is Value for v from a request that passed validation: such
// values may take all of the Set's room.
func (s *Set) Accepted(v string) string { return s.admit(v, true) }

func (s *Set) admit(v string, vetted bool) string {
	if c, ok := s.admitted.Load(v); ok {
		return c.(string)
	}
	if !s.valid(v) {
		return Other
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.admitted.Load(v); ok {
		return c.(string)
	}
	if s.n >= s.max || (!vetted && s.unvetted >= s.maxUnvetted) {
		return Other
	}
	// A copy, so a series label never pins the request that carried it.
	c := strings.Clone(v)
	s.admitted.Store(c, c)
	s.n++
	if !vetted {
		s.unvetted++
	}
	return c
}

// HTTPMethod is the label value for an HTTP request method: the methods
// of RFC 9110 and PATCH as they are, anything else (a server accepts any
// token as a method) as Other.
func HTTPMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return Other
}
