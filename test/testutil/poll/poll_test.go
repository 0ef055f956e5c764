package poll

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestUntilReturnsOnceCheckPasses(t *testing.T) {
	calls := 0
	err := Until(context.Background(), time.Minute, time.Second, time.Millisecond, func(context.Context) error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls, want nil after 3", err, calls)
	}
}

func TestUntilWrapsTheLastErrorOnTimeout(t *testing.T) {
	last := errors.New("still down")
	err := Until(context.Background(), 20*time.Millisecond, time.Second, time.Millisecond, func(context.Context) error { return last })
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, last) {
		t.Fatalf("err %v: want it to wrap both the deadline and the last error", err)
	}
}

func TestUntilBoundsEachTry(t *testing.T) {
	err := Until(context.Background(), time.Minute, 10*time.Millisecond, time.Millisecond, func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			return Stop(errors.New("a try without a deadline"))
		}
		<-ctx.Done()
		return Stop(ctx.Err())
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the try's own deadline", err)
	}
}

func TestStopEndsTheWaitAtOnce(t *testing.T) {
	gone := errors.New("process exited")
	calls := 0
	err := Until(context.Background(), time.Minute, time.Second, time.Millisecond, func(context.Context) error {
		calls++
		return Stop(gone)
	})
	if err != gone || calls != 1 {
		t.Fatalf("err %v after %d calls, want %v after 1", err, calls, gone)
	}
}
