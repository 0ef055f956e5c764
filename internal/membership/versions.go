package membership

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/dskit/kv/codec"
	"github.com/grafana/dskit/kv/memberlist"

	versionv1 "github.com/grafana/pyroscope/api/gen/proto/go/version/v1"
)

// Pyroscope gossips collectors/versions (querier API versions per instance)
// under a codec named "versions". A member that does not know the codec logs
// an error on every update and does not relay the key, so we carry it: we
// decode, merge and forward it like Pyroscope does, and never write to it.

// VersionsCodecID is the codec name Pyroscope registers for its versions key.
const VersionsCodecID = "versions"

// VersionsCodec returns the codec for Pyroscope's versions key: snappy over
// the protobuf versionv1.Versions, as dskit's proto codec writes it.
func VersionsCodec() codec.Codec { return versionsCodec{} }

type versionsCodec struct{}

func (versionsCodec) CodecID() string { return VersionsCodecID }

func (versionsCodec) Decode(b []byte) (interface{}, error) {
	raw, err := snappy.Decode(nil, b)
	if err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	v := &Versions{Versions: &versionv1.Versions{}}
	if err := v.UnmarshalVT(raw); err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	if v.Instances == nil {
		v.Instances = map[string]*versionv1.InstanceVersion{}
	}
	return v, nil
}

func (versionsCodec) Encode(x interface{}) ([]byte, error) {
	v, ok := x.(*Versions)
	if !ok {
		return nil, fmt.Errorf("versions: cannot encode %T", x)
	}
	raw, err := v.MarshalVT()
	if err != nil {
		return nil, err
	}
	return snappy.Encode(nil, raw), nil
}

// Versions is the value of the versions key: one entry per instance, the
// newest timestamp wins, and at equal timestamps "left" wins, so merging is
// commutative and idempotent as memberlist requires.
type Versions struct {
	*versionv1.Versions
}

var _ memberlist.Mergeable = (*Versions)(nil)

func (v *Versions) Merge(other memberlist.Mergeable, _ bool) (memberlist.Mergeable, error) {
	if other == nil {
		return nil, nil
	}
	o, ok := other.(*Versions)
	if !ok {
		return nil, fmt.Errorf("versions: cannot merge %T", other)
	}
	if o == nil || o.Versions == nil {
		return nil, nil
	}
	if v.Instances == nil {
		v.Instances = map[string]*versionv1.InstanceVersion{}
	}
	change := &Versions{Versions: &versionv1.Versions{Instances: map[string]*versionv1.InstanceVersion{}}}
	for id, in := range o.Instances {
		if in == nil {
			continue
		}
		cur, ok := v.Instances[id]
		if !ok || in.Timestamp > cur.Timestamp || (in.Timestamp == cur.Timestamp && in.Left && !cur.Left) {
			v.Instances[id] = in.CloneVT()
			change.Instances[id] = in.CloneVT()
		}
	}
	if len(change.Instances) == 0 {
		return nil, nil
	}
	return change, nil
}

func (v *Versions) MergeContent() []string {
	return slices.Sorted(maps.Keys(v.Instances))
}

func (v *Versions) RemoveTombstones(limit time.Time) (total, removed int) {
	for id, in := range v.Instances {
		if !in.Left {
			continue
		}
		if limit.IsZero() || time.Unix(0, in.Timestamp).Before(limit) {
			delete(v.Instances, id)
			removed++
		} else {
			total++
		}
	}
	return total, removed
}

func (v *Versions) Clone() memberlist.Mergeable {
	return &Versions{Versions: v.CloneVT()}
}
