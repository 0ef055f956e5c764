package ingest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
)

// The pipeline (and so every segment-writer call) gets the client's
// deadline, bounded by the write timeout less the time kept to answer.
func TestPushDeadlineWithinWriteTimeout(t *testing.T) {
	const writeTimeout = 10 * time.Second
	deadlines := make(chan time.Duration, 1)
	ts := startServer(t, func(o *Options) {
		o.WriteTimeout = writeTimeout
		o.Pusher = pusherFunc(func(ctx context.Context, _ string, _ *pushv1.PushRequest) error {
			d, ok := ctx.Deadline()
			if !ok {
				deadlines <- 0
			} else {
				deadlines <- time.Until(d)
			}
			return nil
		})
	})
	budget := writeTimeout - answerMargin(writeTimeout)
	check := func(name string, want time.Duration) {
		t.Helper()
		got := <-deadlines
		// The request took a moment to arrive: allow it a second.
		if got <= 0 || got > want || got < want-time.Second {
			t.Errorf("%s: handler deadline in %v, want about %v", name, got, want)
		}
	}
	c := pushv1connect.NewPusherServiceClient(http.DefaultClient, ts.url)
	if _, err := c.Push(context.Background(), connect.NewRequest(pushRequest(cpuProfile(t)))); err != nil {
		t.Fatal(err)
	}
	check("push.v1 without a client deadline", budget)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := c.Push(ctx, connect.NewRequest(pushRequest(cpuProfile(t)))); err != nil {
		t.Fatal(err)
	}
	check("push.v1 with a 3 s client deadline", 3*time.Second)

	ctx, cancel = context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := c.Push(ctx, connect.NewRequest(pushRequest(cpuProfile(t)))); err != nil {
		t.Fatal(err)
	}
	check("push.v1 with a client deadline beyond the write timeout", budget)

	if resp := post(t, ts.url+"/ingest?name=app.cpu", "", []byte("main;work 10"), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("/ingest: %d", resp.StatusCode)
	}
	check("/ingest", budget)
}
