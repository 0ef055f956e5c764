package distributor

import (
	"context"
	"testing"
	"time"
)

// Overlapping waits count once; separate ones add up.
func TestWriterWait(t *testing.T) {
	ctx, w := WithWriterWait(context.Background())
	if writerWaitFrom(ctx) != w || writerWaitFrom(context.Background()) != nil {
		t.Fatal("the context does not carry the WriterWait")
	}
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	w.begin(at(0))
	w.begin(at(1))
	w.end(at(2))
	if got := w.Total(); got != 0 {
		t.Fatalf("total %v while a send is pending, want 0", got)
	}
	w.end(at(3))
	w.begin(at(5))
	w.end(at(6))
	if got := w.Total(); got != 4*time.Second {
		t.Fatalf("total %v, want 4s (0-3 once, then 5-6)", got)
	}
}
