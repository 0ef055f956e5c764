// Package poll waits for a condition that a harness cannot be told about,
// such as a process it started answering on a port or a cluster reaching a
// state, by checking it again and again.
package poll

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Until calls check until it returns nil and gives up once timeout has passed
// or ctx ends. Each call gets a context bounded by perTry, so one hung request
// cannot use up the whole timeout; failed calls are interval apart.
//
// On giving up it returns an error that wraps both the context's error and
// check's last one. An error check wraps with Stop ends the wait at once and
// is returned as it is.
func Until(ctx context.Context, timeout, perTry, interval time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		tryCtx, tryCancel := context.WithTimeout(ctx, perTry)
		err := check(tryCtx)
		tryCancel()
		if err == nil {
			return nil
		}
		var stop stopError
		if errors.As(err, &stop) {
			return stop.err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

// Stop marks err as final: Until returns err without trying again, for a
// condition that can no longer come true (the process being waited on died).
func Stop(err error) error { return stopError{err} }

type stopError struct{ err error }

func (s stopError) Error() string { return s.err.Error() }
func (s stopError) Unwrap() error { return s.err }
