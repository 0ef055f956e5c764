package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"google.golang.org/protobuf/proto"
)

// push is one request: a tenant and the profiles it carries.
type push struct {
	tenant  string
	service int
	profs   []int // indexes into the workload's profiles
}

// target sends one request and returns nil or an error whose code() names
// the failure (connect code or HTTP status).
type target interface {
	send(ctx context.Context, p push) error
	close()
}

// coded is an error with the label it is counted under.
type coded struct {
	code string
	err  error
}

func (e *coded) Error() string { return e.code + ": " + e.err.Error() }
func (e *coded) Unwrap() error { return e.err }

// errorCode is the label an error is counted under.
func errorCode(err error) string {
	var c *coded
	if errors.As(err, &c) {
		return c.code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "deadline_exceeded"
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code().String()
	}
	return "transport"
}

// h2cClients returns n HTTP/2 cleartext clients, each with its own
// connection, so load spreads over several connections as agents' does.
func h2cClients(n int, timeout time.Duration) []*http.Client {
	out := make([]*http.Client, n)
	for i := range out {
		var protos http.Protocols
		protos.SetUnencryptedHTTP2(true)
		out[i] = &http.Client{Timeout: timeout, Transport: &http.Transport{
			Protocols:         &protos,
			DialContext:       (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			ForceAttemptHTTP2: true,
		}}
	}
	return out
}

// pushTarget speaks push.v1 over Connect or gRPC with the generated client.
type pushTarget struct {
	clients []pushv1connect.PusherServiceClient
	https   []*http.Client
	next    chan int
	wl      *workload
}

func newPushTarget(baseURL string, grpc bool, conns int, timeout time.Duration, wl *workload) *pushTarget {
	t := &pushTarget{https: h2cClients(conns, timeout), wl: wl, next: make(chan int, conns)}
	opts := []connect.ClientOption{connect.WithCodec(vtCodec{})}
	if grpc {
		opts = append(opts, connect.WithGRPC())
	}
	for i, hc := range t.https {
		t.clients = append(t.clients, pushv1connect.NewPusherServiceClient(hc, baseURL, opts...))
		t.next <- i
	}
	return t
}

func (t *pushTarget) send(ctx context.Context, p push) error {
	// Round-robin over connections.
	i := <-t.next
	t.next <- i
	req := &pushv1.PushRequest{Series: make([]*pushv1.RawProfileSeries, 0, len(p.profs))}
	for _, pi := range p.profs {
		req.Series = append(req.Series, &pushv1.RawProfileSeries{
			Labels:  t.wl.labels(p.service, pi),
			Samples: []*pushv1.RawSample{{RawProfile: t.wl.gzipped(pi), ID: newID()}},
		})
	}
	r := connect.NewRequest(req)
	r.Header().Set("X-Scope-OrgID", p.tenant)
	_, err := t.clients[i].Push(ctx, r)
	return err
}

func (t *pushTarget) close() {
	for _, c := range t.https {
		c.CloseIdleConnections()
	}
}

// ingestTarget posts multipart pprof to /ingest as pyroscope-go does.
type ingestTarget struct {
	base   string
	client *http.Client
	wl     *workload
}

func newIngestTarget(baseURL string, conns int, timeout time.Duration, wl *workload) *ingestTarget {
	return &ingestTarget{base: strings.TrimRight(baseURL, "/") + "/ingest", wl: wl, client: &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns},
	}}
}

func (t *ingestTarget) send(ctx context.Context, p push) error {
	if len(p.profs) != 1 {
		return &coded{code: "usage", err: errors.New("/ingest carries one profile per request")}
	}
	pi := p.profs[0]
	body, contentType := t.wl.multipart(pi)
	now := time.Now()
	q := url.Values{}
	q.Set("name", fmt.Sprintf("%s{env=bench}", t.wl.serviceName(p.service)))
	q.Set("from", strconv.FormatInt(now.Add(-10*time.Second).Unix(), 10))
	q.Set("until", strconv.FormatInt(now.Unix(), 10))
	q.Set("spyName", "gospy")
	q.Set("sampleRate", "100")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Scope-OrgID", p.tenant)
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return &coded{code: "http_" + strconv.Itoa(resp.StatusCode), err: fmt.Errorf("%s", bytes.TrimSpace(msg))}
	}
	return nil
}

func (t *ingestTarget) close() { t.client.CloseIdleConnections() }

// multipartBody builds the form pyroscope-go uploads: the gzipped profile and,
// for heap profiles, the sample-type config.
func multipartBody(gz []byte, heap bool) ([]byte, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, _ := mw.CreateFormFile("profile", "profile.pprof")
	_, _ = fw.Write(gz)
	if heap {
		fw, _ = mw.CreateFormFile("sample_type_config", "sample_type_config.json")
		_, _ = io.WriteString(fw, `{"alloc_objects":{"units":"objects"},"alloc_space":{"units":"bytes"},`+
			`"inuse_objects":{"units":"objects","aggregation":"average"},"inuse_space":{"units":"bytes","aggregation":"average"}}`)
	}
	_ = mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// vtCodec marshals with the generated vtproto code, keeping the load
// generator's own CPU low on a machine it shares with the distributor.
type vtCodec struct{}

func (vtCodec) Name() string { return "proto" }

func (vtCodec) Marshal(v any) ([]byte, error) {
	if m, ok := v.(interface{ MarshalVT() ([]byte, error) }); ok {
		return m.MarshalVT()
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a proto message", v)
	}
	return proto.Marshal(m)
}

func (vtCodec) Unmarshal(b []byte, v any) error {
	if m, ok := v.(interface{ UnmarshalVT([]byte) error }); ok {
		return m.UnmarshalVT(b)
	}
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a proto message", v)
	}
	return proto.Unmarshal(b, m)
}
