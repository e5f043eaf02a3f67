package remote

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// retryPause is the wait between ConnectionAttempts, OpenSSH's one second.
var retryPause = time.Second

// dialTCP opens the TCP connection to one hop, directly or through via,
// trying ConnectionAttempts times. Each attempt gets its own ConnectTimeout,
// and the context returned (cancel it when done) bounds the SSH handshake
// that follows on the successful attempt's connection. AddressFamily picks
// the network for direct connections; through a jump host, that host
// resolves the name.
func dialTCP(ctx context.Context, via *ssh.Client, cfg *Config, log *slog.Logger) (net.Conn, context.Context, context.CancelFunc, error) {
	addr := cfg.Addr()
	attempts := max(cfg.ConnectionAttempts, 1)
	for attempt := 1; ; attempt++ {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if cfg.ConnectTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, cfg.ConnectTimeout)
		}
		var conn net.Conn
		var err error
		if via == nil {
			d := net.Dialer{KeepAlive: 30 * time.Second}
			conn, err = d.DialContext(actx, cfg.network(), addr)
		} else {
			conn, err = via.DialContext(actx, "tcp", addr)
		}
		if err == nil {
			return conn, actx, cancel, nil
		}
		hint := timeoutHint(actx, cfg, err)
		cancel()
		if attempt >= attempts || ctx.Err() != nil {
			tries := ""
			if attempts > 1 {
				tries = fmt.Sprintf(" (%d attempts, ConnectionAttempts=%d)", attempt, attempts)
			}
			return nil, nil, nil, &DialError{Stage: StageTCP, Err: fmt.Errorf("connecting to %s: %w%s%s", addr, err, hint, tries)}
		}
		log.Debug("connect failed, trying again", "addr", addr, "attempt", attempt, "of", attempts, "err", err)
		select {
		case <-ctx.Done():
			return nil, nil, nil, &DialError{Stage: StageTCP, Err: fmt.Errorf("connecting to %s: %w (after %d of %d attempts)", addr, ctx.Err(), attempt, attempts)}
		case <-time.After(retryPause):
		}
	}
}

// network is the Go network name for AddressFamily.
func (c *Config) network() string {
	if c.Network == "" {
		return "tcp"
	}
	return c.Network
}

// algorithms is the ssh.Config part of KexAlgorithms, Ciphers and MACs; nil
// lists leave x/crypto's defaults.
func (c *Config) algorithms() ssh.Config {
	return ssh.Config{KeyExchanges: c.KexAlgorithms, Ciphers: c.Ciphers, MACs: c.MACs}
}
