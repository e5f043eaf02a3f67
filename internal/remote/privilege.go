package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// Method is how commands reach root on the target.
type Method string

// Escalation methods, in the order they are preferred.
const (
	MethodRoot Method = "root" // the login user is root
	MethodSudo Method = "sudo"
	MethodDoas Method = "doas"
	MethodNone Method = "none" // no way to become root
)

// Privilege describes the login user and its way to root, detected in one
// round trip by PrivilegeScript.
type Privilege struct {
	User          string
	UID           int
	Method        Method
	NeedsPassword bool   // sudo (or doas) asks for the user's password
	Detail        string // what sudo/doas said when it refused, for messages
}

// PrivilegeScript is a POSIX sh fragment printing `priv.*=value` lines; it
// is also embedded in the fact-gathering script so that one round trip
// answers both. Parse its output with ParsePrivilege.
const PrivilegeScript = `priv_uid=$(id -u 2>/dev/null)
echo "priv.uid=$priv_uid"
echo "priv.user=$(id -un 2>/dev/null)"
if [ "$priv_uid" != 0 ]; then
  for priv_tool in sudo doas; do
    if command -v "$priv_tool" >/dev/null 2>&1; then
      if priv_out=$("$priv_tool" -n true 2>&1 </dev/null); then
        echo "priv.$priv_tool=nopasswd"
      else
        echo "priv.$priv_tool=password"
        echo "priv.${priv_tool}_msg=$(printf '%s' "$priv_out" | head -n 1)"
      fi
    fi
  done
fi
`

// ParsePrivilege interprets the priv.* keys printed by PrivilegeScript.
func ParsePrivilege(kv map[string]string) (Privilege, error) {
	uid, err := strconv.Atoi(kv["priv.uid"])
	if err != nil {
		return Privilege{}, fmt.Errorf("privilege probe: no numeric uid in its output (got %q)", kv["priv.uid"])
	}
	p := Privilege{User: kv["priv.user"], UID: uid, Method: MethodNone}
	switch {
	case uid == 0:
		p.Method = MethodRoot
	case kv["priv.sudo"] == "nopasswd":
		p.Method = MethodSudo
	case kv["priv.doas"] == "nopasswd":
		p.Method = MethodDoas
	case kv["priv.sudo"] == "password":
		p.Method, p.NeedsPassword, p.Detail = MethodSudo, true, kv["priv.sudo_msg"]
	case kv["priv.doas"] == "password":
		p.Method, p.NeedsPassword, p.Detail = MethodDoas, true, kv["priv.doas_msg"]
	default:
		p.Detail = "neither sudo nor doas is installed"
	}
	return p, nil
}

// ParseKeyValues reads `key=value` lines; other lines are ignored.
func ParseKeyValues(out []byte) map[string]string {
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && k != "" && !strings.ContainsAny(k, " \t") {
			kv[k] = v
		}
	}
	return kv
}

// DetectPrivilege finds out, in one round trip, whether the login user is
// root or can use sudo/doas, and whether a password is needed. The answer
// is cached.
func (c *Client) DetectPrivilege(ctx context.Context) (Privilege, error) {
	c.privMu.Lock()
	defer c.privMu.Unlock()
	if c.priv != nil {
		return *c.priv, nil
	}
	out, err := c.Output(ctx, PrivilegeScript)
	if err != nil {
		return Privilege{}, fmt.Errorf("detecting root/sudo/doas on %s: %w", c.cfg.Addr(), err)
	}
	p, err := ParsePrivilege(ParseKeyValues(out))
	if err != nil {
		return Privilege{}, fmt.Errorf("detecting root/sudo/doas on %s: %w", c.cfg.Addr(), err)
	}
	c.priv = &p
	return p, nil
}

// SetPrivilege records a privilege already detected elsewhere (the fact
// gathering round trip), so Root needs no extra probe.
func (c *Client) SetPrivilege(p Privilege) {
	c.privMu.Lock()
	c.priv, c.root = &p, nil
	c.privMu.Unlock()
}

// Shell runs commands on the target either as the login user (Client.User)
// or as root (Client.Root), wrapping them in sudo or doas as needed.
type Shell struct {
	c        *Client
	root     bool
	priv     Privilege
	password string // sudo password, fed on stdin; never in argv or logs
}

// User returns a shell that runs commands as the login user, unwrapped.
func (c *Client) User() *Shell { return &Shell{c: c} }

// Root returns a shell whose commands run as root: directly when the login
// user is root, else through `sudo` (or `doas`). A sudo password comes from
// Options.SudoPassword or Options.SudoPasswordPrompt, is checked once with
// `sudo -v`, and is then fed to `sudo -S` on stdin for every command. The
// shell is cached: later calls cost no round trip.
func (c *Client) Root(ctx context.Context) (*Shell, error) {
	p, err := c.DetectPrivilege(ctx)
	if err != nil {
		return nil, err
	}
	c.privMu.Lock()
	cached := c.root
	c.privMu.Unlock()
	if cached != nil {
		return cached, nil
	}
	s, err := c.newRootShell(ctx, p)
	if err != nil {
		return nil, err
	}
	c.privMu.Lock()
	c.root = s
	c.privMu.Unlock()
	return s, nil
}

// newRootShell builds the root shell for privilege p, checking a sudo password.
func (c *Client) newRootShell(ctx context.Context, p Privilege) (*Shell, error) {
	var err error
	s := &Shell{c: c, root: true, priv: p}
	host := c.cfg.Addr()
	switch p.Method {
	case MethodRoot:
		return s, nil
	case MethodNone:
		return nil, fmt.Errorf("user %s on %s is not root and %s; log in as root or install sudo", p.User, host, p.Detail)
	case MethodDoas:
		if p.NeedsPassword {
			return nil, fmt.Errorf("doas on %s needs a password for %s (%s), but doas reads passwords only from a terminal; "+
				"add `permit nopass %s` to /etc/doas.conf or use sudo", host, p.User, p.Detail, p.User)
		}
		return s, nil
	}
	if !p.NeedsPassword {
		return s, nil
	}
	pw := c.opts.SudoPassword
	if pw == "" && c.opts.SudoPasswordPrompt != nil {
		if pw, err = c.opts.SudoPasswordPrompt(p.User, host); err != nil {
			return nil, fmt.Errorf("asking for the sudo password of %s on %s: %w", p.User, host, err)
		}
	}
	if pw == "" {
		return nil, fmt.Errorf("sudo on %s needs a password for %s (%s); set %s or run interactively", host, p.User, p.Detail, EnvSudoPassword)
	}
	var stderr tailBuffer
	stderr.max = 4096
	err = c.run(ctx, `"sudo -v"`, "sudo -k -S -p '' -v", strings.NewReader(pw+"\n"), nil, &stderr, nil)
	var ee *ExitError
	if errors.As(err, &ee) {
		return nil, fmt.Errorf("sudo on %s did not let %s in (wrong password, or the user may not use sudo): %s", host, p.User, stderr.String())
	}
	if err != nil {
		return nil, err
	}
	s.password = pw
	return s, nil
}

// Privilege is how this shell reaches root (zero for a User shell).
func (s *Shell) Privilege() Privilege { return s.priv }

// IsRoot reports whether commands run as root.
func (s *Shell) IsRoot() bool { return s.root || s.priv.UID == 0 }

// wrap turns cmd into the command line run by /bin/sh, and stdin
// into what it reads (the sudo password first, when one is needed).
func (s *Shell) wrap(cmd string, stdin io.Reader) (string, io.Reader) {
	if !s.root || s.priv.Method == MethodRoot {
		return cmd, stdin
	}
	switch {
	case s.priv.Method == MethodDoas:
		return "doas -n -- sh -c " + shell.Quote(cmd), stdin
	case s.password != "":
		if stdin == nil {
			stdin = strings.NewReader("")
		}
		// -k: always ask, so the password line is never left for the command.
		return "sudo -k -S -p '' -- sh -c " + shell.Quote(cmd), io.MultiReader(strings.NewReader(s.password+"\n"), stdin)
	default:
		return "sudo -n -- sh -c " + shell.Quote(cmd), stdin
	}
}

// Run runs cmd (a shell command line) as this shell's user; see Client.Run.
func (s *Shell) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	wrapped, in := s.wrap(cmd, stdin)
	return s.c.run(ctx, display(cmd), wrapped, in, stdout, stderr, s.wrap)
}

// Output runs cmd and returns its stdout; stderr's tail goes into the error.
func (s *Shell) Output(ctx context.Context, cmd string) ([]byte, error) {
	return output(ctx, s, cmd)
}

func output(ctx context.Context, s *Shell, cmd string) ([]byte, error) {
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 4096}
	err := s.Run(ctx, cmd, nil, &stdout, stderr)
	var ee *ExitError
	if errors.As(err, &ee) {
		ee.Stderr = stderr.String()
	}
	return stdout.Bytes(), err
}
