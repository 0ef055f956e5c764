package ingest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// AnonymousTenant owns every request when multitenancy is off.
const AnonymousTenant = "anonymous"

// OrgIDHeader names the tenant when multitenancy is on.
const OrgIDHeader = "X-Scope-OrgID"

const maxTenantIDLength = 150

var (
	errNoOrgID       = errors.New("no org id")
	errTooManyOrgIDs = errors.New("multiple org IDs present")
)

// tenantOf resolves the tenant of a request (spec §4.4).
func (s *Server) tenantOf(h http.Header) (string, error) {
	if !s.opts.MultitenancyEnabled {
		return AnonymousTenant, nil
	}
	return ParseOrgID(h.Get(OrgIDHeader))
}

// ParseOrgID validates an X-Scope-OrgID value as dskit does: metadata after
// ':' is dropped; several '|'-separated IDs are refused unless they are all
// the same; an ID is at most 150 bytes of ASCII letters, digits and
// !-_.*'() and is not "." or "..".
func ParseOrgID(v string) (string, error) {
	if v == "" {
		return "", errNoOrgID
	}
	first, rest, more := strings.Cut(v, "|")
	id := trimMetadata(first)
	if err := validTenantID(id); err != nil {
		return "", err
	}
	for more {
		var part string
		part, rest, more = strings.Cut(rest, "|")
		if trimMetadata(part) != id {
			return "", errTooManyOrgIDs
		}
	}
	if id == "" {
		return "", errNoOrgID
	}
	return id, nil
}

func trimMetadata(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		return id[:i]
	}
	return id
}

func validTenantID(id string) error {
	for i := 0; i < len(id); i++ {
		if !validTenantChar(id[i]) {
			return fmt.Errorf("tenant ID '%s' contains unsupported character '%c'", id, id[i])
		}
	}
	if len(id) > maxTenantIDLength {
		return fmt.Errorf("tenant ID is too long: max %d characters", maxTenantIDLength)
	}
	if id == "." || id == ".." {
		return errors.New("tenant ID is '.' or '..'")
	}
	return nil
}

func validTenantChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!-_.*'()", c) >= 0
}
