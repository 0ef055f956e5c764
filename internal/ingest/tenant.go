package ingest

import (
	"errors"
	"net/http"
	"strings"

	"github.com/grafana/dskit/tenant"
)

// AnonymousTenant owns every request when multitenancy is off.
const AnonymousTenant = "anonymous"

// OrgIDHeader names the tenant when multitenancy is on.
const OrgIDHeader = "X-Scope-OrgID"

var (
	errNoOrgID       = errors.New("no org id")
	errTooManyOrgIDs = errors.New("multiple org IDs present")
)

// tenantOf resolves the tenant of a request.
func (s *Server) tenantOf(h http.Header) (string, error) {
	return ResolveTenant(s.opts.MultitenancyEnabled, h)
}

// ResolveTenant is the tenant a request's headers name: AnonymousTenant
// when multitenancy is off, else its one valid X-Scope-OrgID. Routes served
// beside push (Options.Routes) resolve tenants with it.
func ResolveTenant(multitenancy bool, h http.Header) (string, error) {
	if !multitenancy {
		return AnonymousTenant, nil
	}
	// Two headers are refused rather than the first one trusted: a proxy
	// that appends its own header must not be bypassed by a client's.
	if vs := h.Values(OrgIDHeader); len(vs) > 1 {
		return "", errTooManyOrgIDs
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
	if err := tenant.ValidTenantID(id); err != nil {
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
