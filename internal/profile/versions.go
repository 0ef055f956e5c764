package profile

import (
	"encoding/json"

	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// mappingVersion is what Pyroscope stores in a mapping's build_id when the
// series says where the service's source lives (its source-code integration
// reads it back). Field order and names are Pyroscope's.
type mappingVersion struct {
	Repository string `json:"repository,omitempty"`
	GitRef     string `json:"git_ref,omitempty"`
	BuildID    string `json:"build_id,omitempty"`
	RootPath   string `json:"root_path,omitempty"`
}

// InjectMappingVersions does what injectMappingVersions in
// pkg/distributor/distributor.go at 3fe6a45 does: when the series labels
// carry service_repository, service_git_ref or service_root_path, every
// mapping's build_id becomes a JSON object with them and the original
// build id. It reports whether it changed p.
func InjectMappingVersions(p *profilev1.Profile, ls []*typesv1.LabelPair) bool {
	var v mappingVersion
	for _, l := range ls {
		switch l.Name {
		case "service_repository":
			v.Repository = l.Value
		case "service_git_ref":
			v.GitRef = l.Value
		case "service_root_path":
			v.RootPath = l.Value
		}
	}
	if v.Repository == "" && v.GitRef == "" && v.RootPath == "" {
		return false
	}
	for _, m := range p.Mapping {
		v.BuildID = ""
		if m.BuildId >= 0 && m.BuildId < int64(len(p.StringTable)) {
			v.BuildID = p.StringTable[m.BuildId]
		}
		b, err := json.Marshal(v)
		if err != nil {
			continue // strings only: cannot fail
		}
		p.StringTable = append(p.StringTable, string(b))
		m.BuildId = int64(len(p.StringTable) - 1)
	}
	return len(p.Mapping) > 0
}
