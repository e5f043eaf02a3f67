package remote_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// options reaches tt with its client key and a known_hosts file that lists
// its host keys; no ssh_config, agent or home files of the machine leak in.
func options(t *testing.T, tt *testtarget.Target) remote.Options {
	t.Helper()
	return tt.ClientOptions(t.TempDir())
}

func target(t *testing.T, s string) remote.Target {
	t.Helper()
	tg, err := remote.ParseTarget(s)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, tt *testtarget.Target, o remote.Options) *remote.Client {
	t.Helper()
	c, err := remote.Dial(ctxT(t, 20*time.Second), target(t, tt.Destination()), o)
	if err != nil {
		t.Fatalf("Dial(%s) = %v\n%s", tt.Destination(), err, tt.Logs())
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func output(t *testing.T, r interface {
	Output(context.Context, string) ([]byte, error)
}, cmd string) string {
	t.Helper()
	out, err := r.Output(ctxT(t, 20*time.Second), cmd)
	if err != nil {
		t.Fatalf("Output(%q) = %v", cmd, err)
	}
	return strings.TrimSpace(string(out))
}

func TestRootKeyAuthAndStreams(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{})
	c := dial(t, tt, options(t, tt))
	if got := output(t, c, "id -u"); got != "0" {
		t.Errorf("id -u = %q, want 0", got)
	}
	var stdout, stderr bytes.Buffer
	err := c.Run(ctxT(t, 10*time.Second), "tr a-z A-Z; echo to-stderr >&2", strings.NewReader("hello\n"), &stdout, &stderr)
	if err != nil || stdout.String() != "HELLO\n" || stderr.String() != "to-stderr\n" {
		t.Errorf("Run(tr) = %v, stdout %q, stderr %q; want HELLO and to-stderr", err, stdout.String(), stderr.String())
	}
	if !bytes.Equal(c.HostKey().Marshal(), tt.HostKeys[0].Marshal()) && !bytes.Equal(c.HostKey().Marshal(), tt.HostKeys[1].Marshal()) {
		t.Errorf("HostKey() = %s, not one of the target's keys", ssh.FingerprintSHA256(c.HostKey()))
	}
	root, err := c.Root(ctxT(t, 10*time.Second))
	if err != nil || root.Privilege().Method != remote.MethodRoot {
		t.Fatalf("Root() = %+v, %v; want method root", root, err)
	}

	// Concurrent commands share the connection, one session each.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := c.Output(context.Background(), fmt.Sprintf("echo %d", i))
			if err == nil && strings.TrimSpace(string(out)) != strconv.Itoa(i) {
				err = fmt.Errorf("echo %d printed %q", i, out)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestExitStatus(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{Loopback: true})
	c := dial(t, tt, options(t, tt))
	for _, tc := range []struct {
		cmd        string
		status     int
		signal     string
		stderrPart string
	}{
		{"exit 3", 3, "", ""},
		{"echo boom >&2; exit 42", 42, "", "boom"},
		{"kill -TERM $$", -1, "TERM", ""},
	} {
		_, err := c.Output(ctxT(t, 10*time.Second), tc.cmd)
		var ee *remote.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("Output(%q) = %v, want an *ExitError", tc.cmd, err)
		}
		if ee.Status != tc.status || ee.Signal != tc.signal || !strings.Contains(ee.Stderr, tc.stderrPart) {
			t.Errorf("Output(%q) = status %d signal %q stderr %q; want %d %q containing %q", tc.cmd, ee.Status, ee.Signal, ee.Stderr, tc.status, tc.signal, tc.stderrPart)
		}
		if !strings.Contains(err.Error(), tt.Addr()) {
			t.Errorf("error %q does not name the host %s", err, tt.Addr())
		}
	}
}

func TestRunHonoursContext(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target testtarget.Options
		root   bool
	}{
		{"login user", testtarget.Options{Loopback: true}, false},
		{"sudo nopasswd", testtarget.Options{Loopback: true, User: "alice"}, true},
		{"sudo password", testtarget.Options{Loopback: true, User: "bob", Password: "pw"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := testtarget.Start(t, tc.target)
			o := options(t, tt)
			o.SudoPassword = tt.Password
			c := dial(t, tt, o)
			var sh interface {
				Run(context.Context, string, io.Reader, io.Writer, io.Writer) error
			} = c
			if tc.root {
				r, err := c.Root(ctxT(t, 10*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				sh = r
			}
			marker := fmt.Sprintf("%d.%d", 30+time.Now().Nanosecond()%1000, os.Getpid())
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := sh.Run(ctx, "sleep "+marker+"; echo not-reached", nil, nil, nil)
			if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "sleep "+marker) {
				t.Errorf("Run(sleep) with a 300ms deadline = %v; want a deadline error naming the command", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Run returned after %s, want shortly after the deadline", d)
			}
			// The remote command must not outlive the cancellation.
			for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				left := cmdlinesContaining("sleep\x00" + marker)
				if len(left) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("remote command still running 3s after cancellation: %q", left)
				}
			}
			if got := output(t, c, "echo still-usable"); got != "still-usable" {
				t.Errorf("client after a cancelled command: %q", got)
			}
		})
	}
}

// cmdlinesContaining scans every process's argv for secret.
func cmdlinesContaining(secret string) []string {
	var hits []string
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err == nil && bytes.Contains(b, []byte(secret)) {
			hits = append(hits, d+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return hits
}

func TestSudo(t *testing.T) {
	const password = "c0rrect horse 'battery' $staple"
	for _, tc := range []struct {
		name         string
		target       testtarget.Options
		sudoPassword string
		prompt       bool
		wantErr      string
		wantPassword bool
		method       remote.Method
	}{
		{name: "nopasswd", target: testtarget.Options{User: "alice"}},
		{name: "password from env", target: testtarget.Options{User: "bob", Password: password}, sudoPassword: password, wantPassword: true},
		{name: "password from prompt", target: testtarget.Options{User: "bob", Password: password}, prompt: true, wantPassword: true},
		{name: "wrong password", target: testtarget.Options{User: "bob", Password: password}, sudoPassword: "nope", wantErr: "incorrect password"},
		{name: "no password given", target: testtarget.Options{User: "bob", Password: password}, wantErr: "set SUDO_PASSWORD"},
		{name: "not in sudoers", target: testtarget.Options{User: "dave", Password: password, NoSudo: true}, sudoPassword: password, wantErr: "may not run sudo"},
		{name: "doas nopass", target: testtarget.Options{User: "olga", Doas: true}, method: remote.MethodDoas},
		// sudo is installed too and wins when both want a password, since
		// sudo can read it from stdin.
		{name: "doas with password", target: testtarget.Options{User: "olga", Password: password, Doas: true}, wantErr: "sudo on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := testtarget.Start(t, tc.target)
			o := options(t, tt)
			o.SudoPassword = tc.sudoPassword
			var logs bytes.Buffer
			o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			t.Cleanup(func() {
				if strings.Contains(logs.String(), "horse") {
					t.Errorf("the password appears in the debug log:\n%s", logs.String())
				}
			})
			if tc.prompt {
				o.SudoPasswordPrompt = func(user, host string) (string, error) {
					if user != tt.User || host != tt.Addr() {
						return "", fmt.Errorf("prompt for %s on %s", user, host)
					}
					return password, nil
				}
			}
			c := dial(t, tt, o)
			if got := output(t, c, "id -u"); got != strconv.Itoa(tt.UID) {
				t.Errorf("login uid = %s, want %d", got, tt.UID)
			}
			root, err := c.Root(ctxT(t, 10*time.Second))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Root() = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Root() = %v", err)
			}
			n := c.Sessions()
			if again, err := c.Root(ctxT(t, 10*time.Second)); err != nil || again != root || c.Sessions() != n {
				t.Errorf("a second Root() = %v, %d extra sessions; want the cached shell", err, c.Sessions()-n)
			}
			if tc.method == "" {
				tc.method = remote.MethodSudo
			}
			if p := root.Privilege(); p.Method != tc.method || p.NeedsPassword != tc.wantPassword {
				t.Errorf("Privilege() = %+v, want %s with NeedsPassword=%v", p, tc.method, tc.wantPassword)
			}

			// While a root command runs, no process's argv holds the password.
			done := make(chan error, 1)
			var out bytes.Buffer
			go func() {
				done <- root.Run(context.Background(), "sleep 1; id -u; cat", strings.NewReader("stdin-after-password\n"), &out, nil)
			}()
			var leaks []string
			for running := true; running; {
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("root Run = %v", err)
					}
					running = false
				case <-time.After(5 * time.Millisecond):
					leaks = append(leaks, cmdlinesContaining("horse 'battery'")...)
				}
			}
			if len(leaks) > 0 {
				t.Errorf("the sudo password is visible in process arguments: %q", leaks)
			}
			if out.String() != "0\nstdin-after-password\n" {
				t.Errorf("root Run printed %q, want uid 0 and the stdin that followed the password", out.String())
			}
		})
	}
}

func TestHostKeyUnknownThenAccepted(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{})
	kh := filepath.Join(t.TempDir(), "ssh", "known_hosts") // does not exist yet
	o := options(t, tt)
	o.SSHOptions = []string{"UserKnownHostsFile=" + kh, "GlobalKnownHostsFile=/dev/null"}
	tg := target(t, tt.Destination())

	_, err := remote.Dial(ctxT(t, 10*time.Second), tg, o)
	var hke *remote.HostKeyError
	if !errors.As(err, &hke) || !hke.Unknown() {
		t.Fatalf("Dial with an empty known_hosts = %v, want an unknown-host-key error", err)
	}
	fp := ssh.FingerprintSHA256(hke.Key)
	if !strings.Contains(err.Error(), fp) || !strings.Contains(err.Error(), tt.Addr()) || !strings.Contains(err.Error(), "StrictHostKeyChecking=accept-new") {
		t.Errorf("error %q should name the address, the fingerprint %s and how to accept it", err, fp)
	}

	// A prompt that declines, then one that accepts.
	var asked []remote.HostKeyQuestion
	o.HostKeyPrompt = func(q remote.HostKeyQuestion) (bool, error) { asked = append(asked, q); return false, nil }
	if _, err := remote.Dial(ctxT(t, 10*time.Second), tg, o); err == nil || !strings.Contains(err.Error(), "declined") {
		t.Errorf("Dial with a declining prompt = %v, want a refusal", err)
	}
	if len(asked) != 1 || asked[0].Fingerprint != fp || asked[0].File != kh {
		t.Errorf("prompt asked %+v, want one question with %s and file %s", asked, fp, kh)
	}
	o.HostKeyPrompt = nil

	// StrictHostKeyChecking=yes beats AcceptNewHostKey: the option can override the API default.
	o.AcceptNewHostKey = true
	strict := o
	strict.SSHOptions = append(strict.SSHOptions, "StrictHostKeyChecking=yes")
	if _, err := remote.Dial(ctxT(t, 10*time.Second), tg, strict); !errors.As(err, &hke) {
		t.Errorf("StrictHostKeyChecking=yes with AcceptNewHostKey = %v, want a refusal", err)
	}

	c, err := remote.Dial(ctxT(t, 10*time.Second), tg, o)
	if err != nil {
		t.Fatalf("Dial with AcceptNewHostKey = %v", err)
	}
	c.Close()
	b, err := os.ReadFile(kh)
	if err != nil || !strings.HasPrefix(string(b), tt.Host+" ") || !strings.Contains(string(b), string(ssh.MarshalAuthorizedKey(hke.Key))[:40]) {
		t.Fatalf("known_hosts after accepting = %q, %v; want a line for %s with the key", b, err, tt.Host)
	}
	if st, _ := os.Stat(kh); st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode = %v, want 0600", st.Mode().Perm())
	}

	// Now known: the default policy connects without accepting anything new.
	o.AcceptNewHostKey = false
	c, err = remote.Dial(ctxT(t, 10*time.Second), tg, o)
	if err != nil {
		t.Fatalf("Dial after recording = %v", err)
	}
	c.Close()
	if b2, _ := os.ReadFile(kh); !bytes.Equal(b, b2) {
		t.Errorf("known_hosts changed on a known host: %q -> %q", b, b2)
	}

	// HashKnownHosts=yes records a hashed name.
	hashed := filepath.Join(t.TempDir(), "kh_hashed")
	o.SSHOptions = []string{"UserKnownHostsFile=" + hashed, "GlobalKnownHostsFile=/dev/null", "HashKnownHosts=yes", "StrictHostKeyChecking=accept-new"}
	c, err = remote.Dial(ctxT(t, 10*time.Second), tg, o)
	if err != nil {
		t.Fatalf("Dial with HashKnownHosts = %v", err)
	}
	c.Close()
	if b, _ := os.ReadFile(hashed); !strings.HasPrefix(string(b), "|1|") || strings.Contains(string(b), tt.Host) {
		t.Errorf("hashed known_hosts = %q, want a |1| entry without the address", b)
	}
	o.SSHOptions = []string{"UserKnownHostsFile=" + hashed, "GlobalKnownHostsFile=/dev/null", "StrictHostKeyChecking=yes"}
	c, err = remote.Dial(ctxT(t, 10*time.Second), tg, o)
	if err != nil {
		t.Fatalf("Dial against the hashed entry = %v", err)
	}
	c.Close()
}

func TestHostKeyChangedIsRefused(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{})
	o := options(t, tt)
	c := dial(t, tt, o)
	c.Close()
	if err := tt.RotateHostKeys(); err != nil {
		t.Fatal(err)
	}
	tt.Restart()
	o.AcceptNewHostKey = true // must not help with a changed key
	_, err := remote.Dial(ctxT(t, 10*time.Second), target(t, tt.Destination()), o)
	var hke *remote.HostKeyError
	if !errors.As(err, &hke) || hke.Unknown() || len(hke.Known) == 0 {
		t.Fatalf("Dial after a host key change = %v, want a changed-key error", err)
	}
	kh := filepath.Join(tt.Dir, "known_hosts")
	for _, part := range []string{"REMOTE HOST IDENTIFICATION HAS CHANGED", kh + ":1", ssh.FingerprintSHA256(hke.Key), "ssh-keygen -R"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q lacks %q", err, part)
		}
	}
}

func TestHostKeyTypeFollowsKnownHosts(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{Loopback: true})
	// The server offers ED25519 and ECDSA; x/crypto prefers ECDSA. With only
	// one type recorded, that one must be negotiated instead of reporting a
	// changed key.
	for i, name := range []string{"ed25519", "ecdsa"} {
		o := options(t, tt)
		o.SSHOptions = []string{"UserKnownHostsFile=" + tt.WriteKnownHosts("kh_"+name, tt.HostKeys[i]), "StrictHostKeyChecking=yes"}
		c := dial(t, tt, o)
		if !bytes.Equal(c.HostKey().Marshal(), tt.HostKeys[i].Marshal()) {
			t.Errorf("with only the %s key known, the server presented %s", name, c.HostKey().Type())
		}
	}
}

func TestExpectHostKey(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{Loopback: true})
	o := options(t, tt)
	o.SSHOptions = []string{"UserKnownHostsFile=/dev/null", "StrictHostKeyChecking=yes"}
	o.ExpectHostKey = tt.HostKeys[0]
	c := dial(t, tt, o)
	if !bytes.Equal(c.HostKey().Marshal(), tt.HostKeys[0].Marshal()) {
		t.Errorf("HostKey() = %s, want the pinned key", ssh.FingerprintSHA256(c.HostKey()))
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(pub)
	o.ExpectHostKey = other
	_, err := remote.Dial(ctxT(t, 10*time.Second), target(t, tt.Destination()), o)
	var hke *remote.HostKeyError
	if !errors.As(err, &hke) || hke.Expected == nil || !strings.Contains(err.Error(), "pinned") {
		t.Errorf("Dial with a different pinned key = %v, want a pinned-key mismatch", err)
	}
}

func TestProxyJump(t *testing.T) {
	jump := testtarget.Start(t, testtarget.Options{})
	inner := testtarget.Start(t, testtarget.Options{InNetnsOf: jump, Port: 2222})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	var both []byte
	for _, f := range []string{jump.WriteKnownHosts("kh"), inner.WriteKnownHosts("kh")} {
		b, _ := os.ReadFile(f)
		both = append(both, b...)
	}
	os.WriteFile(kh, both, 0o600)

	// The inner sshd listens on 127.0.0.1:2222 inside the jump host's
	// network namespace: unreachable from here except through the jump.
	if conn, err := net.DialTimeout("tcp", inner.Addr(), time.Second); err == nil {
		conn.Close()
		t.Logf("note: something on this host also listens on %s", inner.Addr())
	}
	cfg := fmt.Sprintf(`Host inner
  HostName 127.0.0.1
  Port 2222
  User root
  IdentityFile %s
  ProxyJump bastion

Host bastion
  HostName %s
  User root
  IdentityFile %s

Host *
  UserKnownHostsFile %s
  StrictHostKeyChecking yes
`, inner.ClientKeyFile, jump.Host, jump.ClientKeyFile, kh)
	cfgFile := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfgFile, []byte(cfg), 0o600)

	for _, tc := range []struct {
		name   string
		target string
		o      remote.Options
	}{
		{"ssh_config ProxyJump", "inner", remote.Options{UserConfigFile: cfgFile, SystemConfigFile: "none"}},
		{"--ssh-option ProxyJump", "root@127.0.0.1:2222", remote.Options{
			UserConfigFile: "none", SystemConfigFile: "none",
			IdentityFiles: []string{jump.ClientKeyFile, inner.ClientKeyFile},
			SSHOptions:    []string{"ProxyJump=root@" + jump.Host, "UserKnownHostsFile=" + kh, "StrictHostKeyChecking=yes"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Home = t.TempDir()
			c, err := remote.Dial(ctxT(t, 20*time.Second), target(t, tc.target), tc.o)
			if err != nil {
				t.Fatalf("Dial(%s) = %v", tc.target, err)
			}
			defer c.Close()
			// SSH_CONNECTION shows the client side of the last hop: the
			// jump host's loopback, not this machine's veth address.
			got := output(t, c, "echo $SSH_CONNECTION")
			if f := strings.Fields(got); len(f) != 4 || f[0] != "127.0.0.1" || f[3] != "2222" {
				t.Errorf("SSH_CONNECTION = %q, want a connection from 127.0.0.1 to port 2222", got)
			}
			if !bytes.Equal(c.HostKey().Marshal(), inner.HostKeys[0].Marshal()) && !bytes.Equal(c.HostKey().Marshal(), inner.HostKeys[1].Marshal()) {
				t.Errorf("HostKey() is not the inner target's key")
			}
		})
	}
}

func TestSSHConfigAlias(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{User: "alice"})
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	key, _ := os.ReadFile(tt.ClientKeyFile)
	os.WriteFile(filepath.Join(home, ".ssh", "alice_key"), key, 0o600)
	os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), []byte(mustRead(t, tt.WriteKnownHosts("kh"))), 0o600)
	cfg := filepath.Join(home, ".ssh", "config")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`Host my-target
  HostName %s
  User alice
  IdentityFile ~/.ssh/%%r_key
  ServerAliveInterval 5
`, tt.Host)), 0o600)
	o := remote.Options{Home: home, SystemConfigFile: "none"} // ~/.ssh/config is found through Home
	c, err := remote.Dial(ctxT(t, 10*time.Second), target(t, "my-target"), o)
	if err != nil {
		t.Fatalf("Dial(my-target) = %v", err)
	}
	defer c.Close()
	if got := output(t, c, "id -un"); got != "alice" {
		t.Errorf("id -un = %q, want alice", got)
	}
	if c.Config().HostName != tt.Host || c.Config().ServerAliveInterval != 5*time.Second {
		t.Errorf("Config() = %+v, want HostName %s and ServerAliveInterval 5s", c.Config(), tt.Host)
	}
}

// TestNonPOSIXLoginShell gives the user a login shell that only accepts
// `exec /bin/sh -c '…'` (as fish or csh would choke on POSIX scripts): every
// command, including privilege detection, uploads and facts-style scripts,
// must reach /bin/sh that way.
func TestNonPOSIXLoginShell(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	shell := filepath.Join(dir, "strictshell")
	script := "#!/bin/sh\ncase \"$2\" in\n\"exec /bin/sh -c '\"*) eval \"$2\";;\n*) echo \"strictshell: cannot parse: $2\" >&2; exit 127;;\nesac\n"
	if err := os.WriteFile(shell, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	tt := testtarget.Start(t, testtarget.Options{User: "hana", Shell: shell})
	c := dial(t, tt, options(t, tt))
	if got := output(t, c, "x=$(id -un); echo \"$x\"\nif true; then echo two-lines; fi"); got != "hana\ntwo-lines" {
		t.Errorf("multi-line POSIX script = %q", got)
	}
	root, err := c.Root(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatalf("Root() = %v", err)
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := root.Upload(ctxT(t, 10*time.Second), strings.NewReader("data"), p, 0o600, 0, 0); err != nil {
		t.Errorf("Upload = %v", err)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAuthSources(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{User: "erin", Password: "pa55 word"})
	keyPEM, _ := os.ReadFile(tt.ClientKeyFile)
	noKeys := func(t *testing.T) remote.Options {
		o := options(t, tt)
		o.IdentityFiles = nil
		return o
	}
	sock := startAgent(t, tt.ClientKeyFile)
	unrelated := filepath.Join(t.TempDir(), "other_key")
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	blk, _ := ssh.MarshalPrivateKey(otherPriv, "")
	os.WriteFile(unrelated, pem.EncodeToMemory(blk), 0o600)

	for _, tc := range []struct {
		name    string
		mod     func(*remote.Options)
		wantErr string
		// how the login went: the method and where the given key came from
		method, given string
	}{
		{name: "SSH_PRIVATE_KEY", mod: func(o *remote.Options) {
			o.FromEnv(func(k string) string { return map[string]string{remote.EnvPrivateKey: string(keyPEM)}[k] }, false)
		}, method: remote.AuthPublicKey, given: remote.EnvPrivateKey},
		{name: "SSHPASS with --env-password", mod: func(o *remote.Options) {
			o.FromEnv(func(k string) string { return map[string]string{remote.EnvPassword: "pa55 word"}[k] }, true)
		}, method: remote.AuthPassword},
		{name: "a key the target refuses, then the password", mod: func(o *remote.Options) {
			o.IdentityFiles = []string{unrelated}
			o.Password = "pa55 word"
		}, method: remote.AuthPassword, given: "-i " + unrelated},
		{name: "SSHPASS without --env-password", mod: func(o *remote.Options) {
			o.FromEnv(func(k string) string { return map[string]string{remote.EnvPassword: "pa55 word"}[k] }, false)
		}, wantErr: "no credentials"},
		{name: "wrong password", mod: func(o *remote.Options) { o.Password = "wrong" }, wantErr: "unable to authenticate"},
		{name: "ssh-agent", mod: func(o *remote.Options) { o.AgentSocket = sock }, method: remote.AuthPublicKey},
		{name: "IdentitiesOnly filters the agent", mod: func(o *remote.Options) {
			o.AgentSocket = sock
			o.IdentityFiles = []string{unrelated}
			o.SSHOptions = append(o.SSHOptions, "IdentitiesOnly=yes")
		}, wantErr: "unable to authenticate"},
		{name: "IdentityAgent=none", mod: func(o *remote.Options) {
			o.AgentSocket = sock
			o.SSHOptions = append(o.SSHOptions, "IdentityAgent=none")
		}, wantErr: "no credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := noKeys(t)
			tc.mod(&o)
			c, err := remote.Dial(ctxT(t, 10*time.Second), target(t, tt.Destination()), o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Dial = %v, want an error containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "pa55") || strings.Contains(err.Error(), "wrong") {
					t.Errorf("error %q contains the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial = %v", err)
			}
			defer c.Close()
			if got := output(t, c, "id -un"); got != "erin" {
				t.Errorf("id -un = %q", got)
			}
			l := c.Login()
			if l.Method != tc.method || l.GivenFrom != tc.given || (l.GivenKey != nil) != (tc.given != "") {
				t.Errorf("Login() = %s, given %q (key %v); want %s, given %q", l.Method, l.GivenFrom, l.GivenKey != nil, tc.method, tc.given)
			}
		})
	}
}

// startAgent serves an in-process ssh-agent (x/crypto's keyring, spoken to
// over a real unix socket) holding the key in keyFile.
func startAgent(t *testing.T, keyFile string) string {
	t.Helper()
	keyring := agent.NewKeyring()
	raw, err := ssh.ParseRawPrivateKey([]byte(mustRead(t, keyFile)))
	if err != nil {
		t.Fatal(err)
	}
	if err := keyring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(keyring, conn); conn.Close() }()
		}
	}()
	return sock
}

func TestUploadModesAndOwners(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target testtarget.Options
		sudo   string
	}{
		{"root", testtarget.Options{}, ""},
		{"sudo with password", testtarget.Options{User: "frank", Password: "s3cr3t"}, "s3cr3t"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := testtarget.Start(t, tc.target)
			o := options(t, tt)
			o.SudoPassword = tc.sudo
			c := dial(t, tt, o)
			root, err := c.Root(ctxT(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "up")
			for _, u := range []struct {
				path      string
				data      string
				mode      os.FileMode
				uid, gid  int
				wantMode  os.FileMode
				wantOwner [2]int
			}{
				{filepath.Join(dir, "secret.key"), "key material\n", 0o600, 0, 0, 0o600, [2]int{0, 0}},
				{filepath.Join(dir, "sub", "deep", "conf"), strings.Repeat("x", 100000), 0o644, 1234, 5678, 0o644, [2]int{1234, 5678}},
				{filepath.Join(dir, "suid"), "#!/bin/sh\n", os.ModeSetuid | 0o755, 0, 0, os.ModeSetuid | 0o755, [2]int{0, 0}},
				{filepath.Join(dir, "empty"), "", 0o640, 42, -1, 0o640, [2]int{42, 0}},
				{filepath.Join(dir, "with space 'q'"), "q", 0o400, 7, 8, 0o400, [2]int{7, 8}},
			} {
				if err := root.Upload(ctxT(t, 20*time.Second), strings.NewReader(u.data), u.path, u.mode, u.uid, u.gid); err != nil {
					t.Fatalf("Upload(%s) = %v", u.path, err)
				}
				st, err := os.Stat(u.path)
				if err != nil {
					t.Fatal(err)
				}
				sys := st.Sys().(*syscall.Stat_t)
				if st.Mode() != u.wantMode || int(sys.Uid) != u.wantOwner[0] || int(sys.Gid) != u.wantOwner[1] {
					t.Errorf("stat %s = %v %d:%d, want %v %d:%d", u.path, st.Mode(), sys.Uid, sys.Gid, u.wantMode, u.wantOwner[0], u.wantOwner[1])
				}
				if got := mustRead(t, u.path); got != u.data {
					t.Errorf("%s holds %d bytes, want %d", u.path, len(got), len(u.data))
				}
			}
			if st, _ := os.Stat(filepath.Join(dir, "sub")); st.Mode().Perm() != 0o700 {
				t.Errorf("created parent mode = %v, want 0700", st.Mode().Perm())
			}
			if leftovers, _ := filepath.Glob(filepath.Join(dir, ".anywhere-upload.*")); len(leftovers) > 0 {
				t.Errorf("temporary files left: %q", leftovers)
			}
			local := filepath.Join(t.TempDir(), "local.bin")
			os.WriteFile(local, []byte("from a file"), 0o600)
			if err := root.UploadFile(ctxT(t, 10*time.Second), local, filepath.Join(dir, "copied"), 0o644, 0, 0); err != nil ||
				mustRead(t, filepath.Join(dir, "copied")) != "from a file" {
				t.Errorf("UploadFile = %v", err)
			}
			if err := root.Upload(ctxT(t, 5*time.Second), strings.NewReader("x"), "relative/path", 0o644, 0, 0); err == nil {
				t.Error("Upload to a relative path succeeded")
			}
			err = root.Upload(ctxT(t, 5*time.Second), strings.NewReader("x"), "/proc/version/nope", 0o644, 0, 0)
			var ee *remote.ExitError
			if !errors.As(err, &ee) || !strings.Contains(err.Error(), "/proc/version/nope") {
				t.Errorf("Upload into /proc/version = %v, want an ExitError naming the path", err)
			}
		})
	}
}

func TestUploadTree(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{})
	c := dial(t, tt, options(t, tt))
	root, err := c.Root(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	type entry struct {
		mode     os.FileMode
		uid, gid int
		data     string
	}
	files := map[string]entry{
		"etc":                              {os.ModeDir | 0o755, 0, 0, ""},
		"etc/ssh":                          {os.ModeDir | 0o700, 0, 0, ""},
		"etc/ssh/ssh_host_ed25519_key":     {0o600, 0, 0, "private"},
		"etc/ssh/ssh_host_ed25519_key.pub": {0o644, 0, 0, "public"},
		"home":                             {os.ModeDir | 0o755, 0, 0, ""},
		"home/user":                        {os.ModeDir | 0o750, 1000, 100, ""},
		"home/user/.profile":               {0o640, 1000, 100, "export A=1\n"},
		"var/lib/app":                      {os.ModeDir | 0o2770, 999, 998, ""},
		"var/lib/app/bin":                  {0o4755, 0, 0, "#!/bin/sh\n"},
		"sp ace 'quoted'":                  {0o644, 0, 0, "odd name"},
	}
	for _, name := range []string{"etc", "etc/ssh", "home", "home/user", "var", "var/lib", "var/lib/app"} {
		os.MkdirAll(filepath.Join(src, name), 0o755)
	}
	for name, e := range files {
		p := filepath.Join(src, name)
		if e.mode.IsDir() {
			os.Chmod(p, e.mode.Perm()|e.mode&os.ModeSetgid)
		} else if err := os.WriteFile(p, []byte(e.data), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chown(p, e.uid, e.gid)
		if !e.mode.IsDir() {
			os.Chmod(p, 0o600)
			if err := syscall.Chmod(p, uint32(e.mode.Perm())|uint32(e.mode)&0o7000); err != nil {
				t.Fatal(err)
			}
		} else if err := syscall.Chmod(p, uint32(e.mode.Perm())|uint32(e.mode)&0o7000); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("ssh_host_ed25519_key.pub", filepath.Join(src, "etc/ssh/link.pub"))
	os.Link(filepath.Join(src, "home/user/.profile"), filepath.Join(src, "home/user/.profile-hardlink"))

	dst := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(dst, 0o755)
	if err := root.UploadTree(ctxT(t, 30*time.Second), src, dst, remote.TreeOptions{}); err != nil {
		t.Fatalf("UploadTree = %v", err)
	}
	for name, e := range files {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(dst, name), &st); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		wantMode := uint32(e.mode.Perm()) | uint32(e.mode)&0o7000
		if e.mode&os.ModeSetgid != 0 {
			wantMode |= 0o2000
		}
		if st.Mode&0o7777 != wantMode || int(st.Uid) != e.uid || int(st.Gid) != e.gid {
			t.Errorf("%s: mode %o owner %d:%d, want %o %d:%d", name, st.Mode&0o7777, st.Uid, st.Gid, wantMode, e.uid, e.gid)
		}
		if e.data != "" && mustRead(t, filepath.Join(dst, name)) != e.data {
			t.Errorf("%s: content differs", name)
		}
	}
	if l, err := os.Readlink(filepath.Join(dst, "etc/ssh/link.pub")); err != nil || l != "ssh_host_ed25519_key.pub" {
		t.Errorf("symlink = %q, %v", l, err)
	}
	var a, b syscall.Stat_t
	syscall.Stat(filepath.Join(dst, "home/user/.profile"), &a)
	syscall.Stat(filepath.Join(dst, "home/user/.profile-hardlink"), &b)
	if a.Ino != b.Ino {
		t.Errorf("hard link not preserved: inodes %d and %d", a.Ino, b.Ino)
	}
	if st, _ := os.Stat(dst); st.Mode().Perm() != 0o755 {
		t.Errorf("destination directory mode changed to %v", st.Mode().Perm())
	}

	// Owner override, as --extra-files does (everything owned by root).
	dst2 := filepath.Join(t.TempDir(), "mnt2")
	zero := 0
	if err := root.UploadTree(ctxT(t, 30*time.Second), src, dst2, remote.TreeOptions{UID: &zero, GID: &zero}); err != nil {
		t.Fatalf("UploadTree(root-owned) = %v", err)
	}
	var st syscall.Stat_t
	syscall.Stat(filepath.Join(dst2, "home/user/.profile"), &st)
	if st.Uid != 0 || st.Gid != 0 || st.Mode&0o777 != 0o640 {
		t.Errorf("override: .profile is %o %d:%d, want 640 0:0", st.Mode&0o777, st.Uid, st.Gid)
	}
}

func TestKeepalive(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{LogLevel: "DEBUG1"})
	o := options(t, tt)
	if c := dial(t, tt, o); c.Config().ServerAliveInterval != remote.DefaultServerAliveInterval || c.Config().ServerAliveCountMax != 3 {
		t.Errorf("default keepalive = %s × %d, want %s × 3", c.Config().ServerAliveInterval, c.Config().ServerAliveCountMax, remote.DefaultServerAliveInterval)
	}
	o.SSHOptions = append(o.SSHOptions, "ServerAliveInterval=1", "ServerAliveCountMax=2")
	c := dial(t, tt, o)
	time.Sleep(2500 * time.Millisecond)
	if n := strings.Count(tt.SSHDLog(), "keepalive@openssh.com"); n < 2 {
		t.Errorf("sshd saw %d keepalive requests in 2.5s with ServerAliveInterval=1, want at least 2", n)
	}

	// A peer that stops answering is detected and the connection closed.
	tt.LinkDown()
	defer tt.LinkUp()
	start := time.Now()
	select {
	case <-c.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("connection to a silent peer still open after 15s")
	}
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), "no keepalive reply") {
		t.Errorf("Err() = %v, want a keepalive timeout", err)
	}
	t.Logf("silent peer detected after %s", time.Since(start).Round(100*time.Millisecond))
	if _, err := c.Output(context.Background(), "true"); err == nil || !strings.Contains(err.Error(), "keepalive") {
		t.Errorf("Output on a dead connection = %v, want the keepalive reason", err)
	}
}

func TestWaitDeadlinesNameTheAddress(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{})
	silent := tt.SilentAddr()
	o := options(t, tt)
	start := time.Now()
	_, err := remote.WaitUp(ctxT(t, 1500*time.Millisecond), target(t, "root@"+silent), o, nil)
	if err == nil || !strings.Contains(err.Error(), "waiting for ssh on "+silent) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitUp(%s) = %v, want a deadline error naming the address", silent, err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("WaitUp took %s with a 1.5s deadline", d)
	}
	o.SSHOptions = append(o.SSHOptions, "ConnectTimeout=1")
	_, err = remote.Dial(context.Background(), target(t, "root@"+silent), o)
	if err == nil || !strings.Contains(err.Error(), silent) || !strings.Contains(err.Error(), "ConnectTimeout=1s") {
		t.Errorf("Dial(%s) with ConnectTimeout=1 = %v, want a timeout naming the address", silent, err)
	}
}

func TestRebootCycle(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{User: "grace"})
	o := options(t, tt)
	c := dial(t, tt, o)
	root, err := c.Root(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	bootID := mustRead(t, "/proc/sys/kernel/random/boot_id")
	if err := root.Run(ctxT(t, 10*time.Second), "reboot", nil, nil, nil); err != nil {
		t.Fatalf("reboot via sudo = %v", err)
	}
	if err := root.Run(ctxT(t, 10*time.Second), "/sbin/kexec -e || kexec -e", nil, nil, nil); err != nil {
		t.Fatalf("kexec via sudo = %v", err)
	}
	if got := strings.Join(tt.Records(), "|"); got != "reboot|kexec -e" {
		t.Errorf("stand-in records = %q, want reboot|kexec -e", got)
	}
	if after := mustRead(t, "/proc/sys/kernel/random/boot_id"); after != bootID {
		t.Fatalf("this machine rebooted: boot id %s -> %s", bootID, after)
	}

	// The installer's cycle: pin the key, and wait for the host to come
	// back with the same key.
	o.ExpectHostKey = c.HostKey()
	c.Close()
	tt.Stop()
	go func() { time.Sleep(1500 * time.Millisecond); tt.Restart() }()
	start := time.Now()
	c2, err := remote.WaitUp(ctxT(t, 20*time.Second), target(t, tt.Destination()), o, nil)
	if err != nil {
		t.Fatalf("WaitUp = %v", err)
	}
	c2.Close()
	t.Logf("WaitUp returned %s after the restart was scheduled", time.Since(start).Round(100*time.Millisecond))

	// A machine that comes back with another key is refused at once.
	if err := tt.RotateHostKeys(); err != nil {
		t.Fatal(err)
	}
	tt.Restart()
	start = time.Now()
	_, err = remote.WaitUp(ctxT(t, 20*time.Second), target(t, tt.Destination()), o, nil)
	var hke *remote.HostKeyError
	if !errors.As(err, &hke) || hke.Expected == nil || !strings.Contains(err.Error(), "waiting for ssh on "+tt.Addr()) {
		t.Errorf("WaitUp with a new host key = %v, want a pinned-key mismatch", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("WaitUp kept retrying a wrong host key for %s", d)
	}
}
