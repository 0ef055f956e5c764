package main

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	"github.com/google/uuid"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// cpuProfile builds a small, valid gzipped pprof CPU profile whose stacks
// depend on the service name, as a real agent would send every 15 s.
func cpuProfile(service string, at time.Time) ([]byte, error) {
	h := fnv.New32a()
	h.Write([]byte(service))
	seed := int64(h.Sum32())
	fnNames := []string{"main.main", "net/http.(*conn).serve", service + ".handle", service + ".query", "encoding/json.Marshal", "runtime.mallocgc"}
	p := &profile.Profile{
		SampleType:        []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		DefaultSampleType: "cpu",
		PeriodType:        &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:            10_000_000,
		TimeNanos:         at.UnixNano(),
		DurationNanos:     int64(15 * time.Second),
	}
	for i, n := range fnNames {
		fn := &profile.Function{ID: uint64(i + 1), Name: n, SystemName: n, Filename: service + ".go"}
		p.Function = append(p.Function, fn)
		p.Location = append(p.Location, &profile.Location{ID: uint64(i + 1), Address: uint64(0x1000 + i*0x10), Line: []profile.Line{{Function: fn, Line: int64(10 + i)}}})
	}
	loc := p.Location
	stacks := [][]*profile.Location{
		{loc[2], loc[1], loc[0]},
		{loc[3], loc[2], loc[1], loc[0]},
		{loc[4], loc[2], loc[1], loc[0]},
		{loc[5], loc[4], loc[2], loc[1], loc[0]},
	}
	for i, s := range stacks {
		n := 1 + (seed>>(i*4))&15
		p.Sample = append(p.Sample, &profile.Sample{Location: s, Value: []int64{n, n * p.Period}})
	}
	if err := p.CheckValid(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil { // gzip-compressed, like runtime/pprof
		return nil, err
	}
	return buf.Bytes(), nil
}

// pushV1 sends one profile through push.v1 PusherService/Push (Connect protocol, binary proto).
func pushV1(ctx context.Context, hc *http.Client, base, tenant, service string, pprof []byte) error {
	client := pushv1connect.NewPusherServiceClient(hc, base)
	req := connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: "process_cpu"},
			{Name: "service_name", Value: service},
			{Name: "env", Value: "demo"},
		},
		Samples: []*pushv1.RawSample{{RawProfile: pprof, ID: uuid.NewString()}},
	}}})
	req.Header().Set("X-Scope-OrgID", tenant)
	_, err := client.Push(ctx, req)
	return err
}

// pushIngest sends one profile to the legacy /ingest endpoint as pyroscope-go
// does: a multipart form with the pprof in the "profile" field.
func pushIngest(ctx context.Context, hc *http.Client, base, tenant, service string, pprof []byte, at time.Time) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("profile", "profile.pprof")
	if err != nil {
		return err
	}
	if _, err := fw.Write(pprof); err != nil {
		return err
	}
	if err := mw.Close(); err != nil {
		return err
	}
	q := url.Values{}
	q.Set("name", service+"{env=demo}")
	q.Set("from", fmt.Sprint(at.Add(-15*time.Second).Unix()))
	q.Set("until", fmt.Sprint(at.Unix()))
	q.Set("spyName", "gospy")
	q.Set("sampleRate", "100")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/ingest?"+q.Encode(), &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-Scope-OrgID", tenant)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/ingest: %s %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
