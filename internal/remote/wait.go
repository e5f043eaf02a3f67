package remote

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// waitUpPoll is how often WaitUp tries again.
const waitUpPoll = time.Second

// AwaitDeadline waits until ctx reports an error when its deadline has
// passed: an operation cut short by the deadline can fail a moment before
// ctx.Err() is set, and would look like a failure of its own.
func AwaitDeadline(ctx context.Context) {
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		<-ctx.Done()
	}
}

// WaitUp dials t until it answers SSH and authenticates, then returns the
// client. Set o.ExpectHostKey to insist on the key seen before a reboot; a
// wrong host key fails at once instead of being retried. tried, when not
// nil, is told every failed attempt (FailureKind names what it got). Its
// error names the address, the time waited and the last attempt's failure.
func WaitUp(ctx context.Context, t Target, o Options, tried func(error)) (*Client, error) {
	cfg, err := Resolve(t, o)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var last error
	for attempt := 1; ; attempt++ {
		c, err := DialConfig(ctx, cfg, o)
		if err == nil {
			return c, nil
		}
		AwaitDeadline(ctx)
		var hke *HostKeyError
		if errors.As(err, &hke) {
			return nil, fmt.Errorf("waiting for ssh on %s: %w", cfg.Addr(), err)
		}
		if ctx.Err() != nil && last != nil {
			// This attempt was cut short by the deadline; the one
			// before says more about the host.
			err = last
		}
		last = err
		if tried != nil && ctx.Err() == nil {
			tried(err)
		}
		o.logger().Debug("not up yet", "host", cfg.Addr(), "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for ssh on %s: %w after %s and %d attempts (last: %s: %v)",
				cfg.Addr(), ctx.Err(), time.Since(start).Round(time.Second), attempt, FailureKind(last), last)
		case <-time.After(waitUpPoll):
		}
	}
}
