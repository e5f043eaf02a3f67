package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Poll intervals of the wait loops.
const (
	waitGonePoll = 500 * time.Millisecond
	waitGoneDial = 2 * time.Second
	waitUpPoll   = time.Second
)

// WaitGone waits until addr (host:port) stops accepting TCP connections, as
// a machine does while it reboots or kexecs. Its error names the address and
// says that it is still answering.
func WaitGone(ctx context.Context, addr string) error {
	start := time.Now()
	for {
		d := net.Dialer{Timeout: waitGoneDial}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			// A dial cut short by the caller's deadline proves nothing.
			AwaitDeadline(ctx)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for %s to go down: %w (it still accepted connections after %s)",
				addr, ctx.Err(), time.Since(start).Round(time.Second))
		}
		if err != nil {
			return nil
		}
		conn.Close()
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to go down: %w (it still accepted connections after %s)",
				addr, ctx.Err(), time.Since(start).Round(time.Second))
		case <-time.After(waitGonePoll):
		}
	}
}

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
