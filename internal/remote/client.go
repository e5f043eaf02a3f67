package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// Client is an authenticated SSH connection to a target, possibly through
// jump hosts. It is safe for concurrent use; each Run opens its own session.
type Client struct {
	cfg     *Config
	opts    Options
	log     *slog.Logger
	conn    *ssh.Client
	hops    []*ssh.Client // jump host connections, outermost first
	hostKey ssh.PublicKey
	login   Login

	sessions atomic.Int64

	closeOnce sync.Once
	done      chan struct{}
	deadMu    sync.Mutex
	dead      error // why the connection ended, if it did on its own

	privMu sync.Mutex
	priv   *Privilege
	root   *Shell // cached by Root, so a sudo password is checked once
}

// Dial resolves t with o and connects, through ProxyJump hosts if any.
func Dial(ctx context.Context, t Target, o Options) (*Client, error) {
	cfg, err := Resolve(t, o)
	if err != nil {
		return nil, err
	}
	return DialConfig(ctx, cfg, o)
}

// DialConfig connects using an already resolved configuration.
func DialConfig(ctx context.Context, cfg *Config, o Options) (*Client, error) {
	log := o.logger()
	start := time.Now()
	var hops []*ssh.Client
	closeHops := func() {
		for i := len(hops) - 1; i >= 0; i-- {
			hops[i].Close()
		}
	}
	var via *ssh.Client
	for _, jc := range cfg.ProxyJump {
		c, _, _, err := dialHop(ctx, via, jc, o, "")
		if err != nil {
			closeHops()
			return nil, fmt.Errorf("ssh %s via jump host %s: %w", cfg.Destination(), jc.Destination(), err)
		}
		hops = append(hops, c)
		via = c
	}
	conn, key, login, err := dialHop(ctx, via, cfg, o, o.Password)
	if err != nil {
		closeHops()
		return nil, fmt.Errorf("ssh %s: %w", cfg.Destination(), err)
	}
	c := &Client{cfg: cfg, opts: o, log: log, conn: conn, hops: hops, hostKey: key, login: login, done: make(chan struct{})}
	go func() {
		err := conn.Wait()
		c.setDead(fmt.Errorf("connection to %s closed: %v", cfg.Addr(), err))
		c.Close()
	}()
	if cfg.ServerAliveInterval > 0 {
		go c.keepalive(cfg.ServerAliveInterval, cfg.ServerAliveCountMax)
	}
	log.Info("connected", "host", cfg.Destination(), "hops", len(hops), "key", ssh.FingerprintSHA256(key), "auth", login.Method, "took", time.Since(start).Round(time.Millisecond))
	return c, nil
}

// dialHop opens one SSH connection, directly or through via. Each TCP
// connect attempt and the handshake after it are bounded by ConnectTimeout
// and ctx.
func dialHop(ctx context.Context, via *ssh.Client, cfg *Config, o Options, password string) (*ssh.Client, ssh.PublicKey, Login, error) {
	addr := cfg.Addr()
	checker := &hostKeyChecker{cfg: cfg, addr: addr, prompt: o.HostKeyPrompt}
	algos, err := checker.algorithms()
	if err != nil {
		return nil, nil, Login{}, err
	}
	a, err := newAuth(cfg, o, password)
	if err != nil {
		return nil, nil, Login{}, err
	}
	defer a.close()
	methods := a.methods()
	if len(methods) == 0 {
		notes := ""
		if len(a.notes) > 0 {
			notes = " (" + strings.Join(a.notes, "; ") + ")"
		}
		return nil, nil, Login{}, fmt.Errorf("no credentials for %s: no identity file, no %s, no agent and no password; "+
			"pass -i KEY, set %s, or start ssh-agent%s", cfg.Destination(), EnvPrivateKey, EnvPrivateKey, notes)
	}
	sc := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              methods,
		HostKeyCallback:   checker.check,
		HostKeyAlgorithms: algos,
		Config:            cfg.algorithms(),
		BannerCallback: func(msg string) error {
			o.logger().Info("banner", "host", addr, "text", strings.TrimSpace(msg))
			return nil
		},
	}

	conn, ctx, cancel, err := dialTCP(ctx, via, cfg, o.logger())
	if err != nil {
		return nil, nil, Login{}, err
	}
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sconn, chans, reqs, err := ssh.NewClientConn(conn, addr, sc)
	if !stop() && err == nil {
		// The deadline fired just as the handshake finished.
		sconn.Close()
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		var hke *HostKeyError
		if errors.As(err, &hke) {
			return nil, nil, Login{}, hke
		}
		if ctx.Err() != nil {
			return nil, nil, Login{}, &DialError{Stage: StageHandshake, Err: fmt.Errorf("ssh handshake with %s: %w%s", addr, ctx.Err(), timeoutHint(ctx, cfg, err))}
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, nil, Login{}, &DialError{Stage: StageAuth, Err: fmt.Errorf("authenticating as %s: %w (%s)", cfg.Destination(), err, a.describe())}
		}
		return nil, nil, Login{}, &DialError{Stage: StageHandshake, Err: fmt.Errorf("ssh handshake with %s: %w", addr, err)}
	}
	conn.SetDeadline(time.Time{})
	checker.mu.Lock()
	key := checker.seen
	checker.mu.Unlock()
	return ssh.NewClient(sconn, chans, reqs), key, a.login(), nil
}

func timeoutHint(ctx context.Context, cfg *Config, err error) string {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Sprintf(" (gave up after ConnectTimeout=%s or the caller's deadline; is the host up and port %d open?)",
			cfg.ConnectTimeout, cfg.Port)
	}
	return ""
}

// keepalive sends keepalive@openssh.com every interval and closes the
// connection after countMax unanswered requests, like ServerAliveInterval.
func (c *Client) keepalive(interval time.Duration, countMax int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case <-c.done:
			return
		case err := <-reply:
			if err != nil {
				return
			}
			missed = 0
		case <-time.After(interval):
			missed++
			c.log.Info("keepalive unanswered", "host", c.cfg.Addr(), "missed", missed)
			if missed >= countMax {
				c.setDead(fmt.Errorf("no keepalive reply from %s for %s (ServerAliveInterval=%s × ServerAliveCountMax=%d); the connection was closed",
					c.cfg.Addr(), interval*time.Duration(countMax), interval, countMax))
				c.Close()
				return
			}
		}
	}
}

func (c *Client) setDead(err error) {
	c.deadMu.Lock()
	if c.dead == nil {
		c.dead = err
	}
	c.deadMu.Unlock()
}

// Err reports why the connection ended (keepalive timeout, peer closed,
// "client closed"), or nil while it is up.
func (c *Client) Err() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	c.deadMu.Lock()
	defer c.deadMu.Unlock()
	return c.dead
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close ends the connection and the jump host connections.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.setDead(errors.New("client closed"))
		close(c.done)
		err = c.conn.Close()
		for i := len(c.hops) - 1; i >= 0; i-- {
			c.hops[i].Close()
		}
	})
	return err
}

// Config is the effective configuration this client was dialled with.
func (c *Client) Config() *Config { return c.cfg }

// HostKey is the key the target presented; pin it with
// Options.ExpectHostKey to recognise the machine after kexec or reboot.
func (c *Client) HostKey() ssh.PublicKey { return c.hostKey }

// Login says how the target let this connection in (password or key) and
// which key the user gave, if any.
func (c *Client) Login() Login { return c.login }

// Sessions counts the sessions (round trips) opened so far; tests use it to
// check that fact gathering takes one.
func (c *Client) Sessions() int64 { return c.sessions.Load() }

// ExitError is a remote command that ran and failed.
type ExitError struct {
	Host    string
	Command string // shortened for display
	Status  int    // exit status; -1 when killed by a signal
	Signal  string // signal name without "SIG", if any
	Stderr  string // tail of stderr when captured (Output)
}

func (e *ExitError) Error() string {
	var s string
	if e.Signal != "" {
		s = fmt.Sprintf("%s on %s was killed by signal %s", e.Command, e.Host, e.Signal)
	} else {
		s = fmt.Sprintf("%s on %s exited with status %d", e.Command, e.Host, e.Status)
	}
	if e.Stderr != "" {
		s += ": " + e.Stderr
	}
	return s
}

// Run runs cmd with /bin/sh as the login user, streaming stdin, stdout and
// stderr (nil means none / discard). A failed command returns *ExitError.
// When ctx ends, the remote command is sent SIGTERM and the session closed.
func (c *Client) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	return c.run(ctx, display(cmd), cmd, stdin, stdout, stderr, nil)
}

// Output runs cmd and returns its stdout; stderr goes into the error.
func (c *Client) Output(ctx context.Context, cmd string) ([]byte, error) {
	return output(ctx, c.User(), cmd)
}

// run runs cmd (already wrapped for sudo/doas). wrap, when not nil, is the
// same wrapping, used to kill the command's process group with the same
// privileges if ctx ends.
func (c *Client) run(ctx context.Context, shown, cmd string, stdin io.Reader, stdout, stderr io.Writer, wrap func(string, io.Reader) (string, io.Reader)) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("running %s on %s: %w", shown, c.cfg.Addr(), err)
	}
	sess, err := c.conn.NewSession()
	if err != nil {
		if dead := c.Err(); dead != nil {
			err = dead
		}
		return fmt.Errorf("opening a session on %s for %s: %w", c.cfg.Addr(), shown, err)
	}
	c.sessions.Add(1)
	defer sess.Close()
	sniff := &pidSniffer{w: stderr, seen: make(chan struct{})}
	sess.Stdin, sess.Stdout, sess.Stderr = stdin, stdout, sniff
	c.log.Debug("run", "host", c.cfg.Addr(), "cmd", shown)
	start := time.Now()
	// sshd hands the command to the login shell, which may be fish or zsh:
	// replace it with /bin/sh at once (same PID, a process group leader
	// thanks to sshd's setsid). It reports its PID so that a cancelled
	// command can be killed, since sshd ignores "signal" requests for root
	// sessions.
	if err := sess.Start("exec /bin/sh -c " + shell.Quote(pidPrefix+cmd)); err != nil {
		return fmt.Errorf("starting %s on %s: %w", shown, c.cfg.Addr(), err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		sess.Signal(ssh.SIGTERM)
		// The PID line is the command's first output, but on a busy
		// machine it may not have come yet: wait for it (or for the
		// command's end), since without it nothing is killed.
		ended := false
		select {
		case <-sniff.seen:
		case <-done:
			ended = true
		case <-time.After(5 * time.Second):
		}
		if pid := sniff.PID(); pid > 0 && !ended {
			c.killGroup(pid, wrap)
		}
		sess.Close()
		if !ended {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
			}
		}
		return fmt.Errorf("running %s on %s: %w (after %s; the remote command was sent SIGTERM)", shown, c.cfg.Addr(), ctx.Err(), time.Since(start).Round(time.Millisecond))
	}
	c.log.Debug("ran", "host", c.cfg.Addr(), "cmd", shown, "took", time.Since(start).Round(time.Millisecond), "err", err)
	if err == nil {
		return nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		x := &ExitError{Host: c.cfg.Addr(), Command: shown, Status: ee.ExitStatus(), Signal: ee.Signal()}
		if x.Signal != "" {
			x.Status = -1
		}
		return x
	}
	if dead := c.Err(); dead != nil {
		return fmt.Errorf("running %s on %s: %w", shown, c.cfg.Addr(), dead)
	}
	return fmt.Errorf("running %s on %s: %w", shown, c.cfg.Addr(), err)
}

// pidPrefix makes the remote shell print its PID on stderr first.
const pidPrefix = "printf '" + pidMarker + "%s\\n' \"$$\" >&2\n"

const pidMarker = "\x1eanywhere-pid:"

// killGroup sends SIGTERM to the remote process group pgid from a new
// session, through the same sudo/doas wrapping as the command (root-owned
// processes cannot be signalled by the login user).
func (c *Client) killGroup(pgid int, wrap func(string, io.Reader) (string, io.Reader)) {
	sess, err := c.conn.NewSession()
	if err != nil {
		return
	}
	defer sess.Close()
	c.sessions.Add(1)
	cmd, stdin := fmt.Sprintf("kill -s TERM -- -%d 2>/dev/null; true", pgid), io.Reader(nil)
	if wrap != nil {
		cmd, stdin = wrap(cmd, nil)
	}
	sess.Stdin = stdin
	done := make(chan error, 1)
	go func() { done <- sess.Run("exec /bin/sh -c " + shell.Quote(cmd)) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// pidSniffer takes the PID line printed by pidPrefix off the start of
// stderr and passes everything else on.
type pidSniffer struct {
	w    io.Writer
	mu   sync.Mutex
	head []byte
	done bool
	pid  int
	seen chan struct{} // closed once the first line was read
}

func (p *pidSniffer) Write(b []byte) (int, error) {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return p.forward(b)
	}
	p.head = append(p.head, b...)
	i := bytes.IndexByte(p.head, '\n')
	if i < 0 && len(p.head) < 64 {
		p.mu.Unlock()
		return len(b), nil
	}
	p.done = true
	close(p.seen)
	rest := p.head
	if line, ok := bytes.CutPrefix(p.head[:max(i, 0)], []byte(pidMarker)); ok && i >= 0 {
		p.pid, _ = strconv.Atoi(string(line))
		rest = p.head[i+1:]
	}
	p.head = nil
	p.mu.Unlock()
	if _, err := p.forward(rest); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (p *pidSniffer) forward(b []byte) (int, error) {
	if p.w == nil || len(b) == 0 {
		return len(b), nil
	}
	return p.w.Write(b)
}

// PID is the remote shell's PID, or 0 when it has not been seen.
func (p *pidSniffer) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// display shortens a command for messages: its first line, at most 80 bytes.
func display(cmd string) string {
	line, _, multi := strings.Cut(strings.TrimSpace(cmd), "\n")
	if len(line) > 80 {
		line, multi = line[:77], true
	}
	if multi {
		line += "…"
	}
	return fmt.Sprintf("%q", line)
}

// tailBuffer keeps the last max bytes written, for error messages.
type tailBuffer struct {
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(t.buf.String()) }
