// Package testtarget starts a real OpenSSH server as an install "target"
// for tests: in its own network namespace (or on loopback), inside a
// private mount and PID namespace where reboot, poweroff, halt, shutdown,
// systemctl and kexec are stand-ins that only record their call, with a
// private overlay over /etc so that users, passwords and sudoers rules never
// touch the host's. Everything is removed with t.Cleanup, also on failure.
package testtarget

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sys/unix"

	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// Options choose the kind of target.
type Options struct {
	// Loopback runs sshd on 127.0.0.1 at a random port in the host's network
	// namespace, for tests that cannot use a network namespace.
	Loopback bool
	// InNetnsOf starts this sshd inside another target's network namespace,
	// listening on 127.0.0.1:Port (default 2222): reachable only through
	// that target, e.g. as a ProxyJump destination.
	InNetnsOf *Target
	Port      int

	// User is the login user. "" or "root" logs in as root; any other name
	// is a throwaway user that exists only in the target's private /etc.
	User string
	// NoSudo gives the user no sudo rights. Otherwise the user may run
	// everything with sudo: without a password when Password is empty,
	// else after typing Password (which is also the login password).
	NoSudo   bool
	Password string
	// Shell is the throwaway user's login shell (default /bin/sh).
	Shell string
	// Doas gives the user root through doas (`permit [nopass]`, following
	// Password) instead of sudo; the test is skipped if doas is missing.
	Doas bool

	// LogLevel is sshd's LogLevel (default VERBOSE).
	LogLevel string
}

// Target is a running sshd and the files a client needs to reach it.
type Target struct {
	t    testing.TB
	opts Options

	Dir            string // per-target temporary directory
	Host           string // address to dial
	Port           int
	User           string
	UID, GID       int
	Password       string
	ClientKeyFile  string // OpenSSH private key accepted for User
	ClientSigner   ssh.Signer
	HostKeys       []ssh.PublicKey // ED25519 first, then ECDSA
	KnownHostsFile string          // known_hosts with HostKeys for Addr()
	RecordFile     string          // one line per stand-in call: "name arg…"
	Netns          string          // network namespace, "" in loopback mode

	subnet  int // X of 10.233.X.0/24
	cmd     *exec.Cmd
	exited  chan struct{}
	running bool
	// initFD is a pidfd of the PID namespace's first process (the child of
	// unshare), -1 when not known: it ends only after every process of the
	// namespace is gone, sshd's listening socket with them.
	initFD int
}

// sbinTools are the commands replaced by recording stand-ins.
var sbinTools = []string{"reboot", "poweroff", "halt", "shutdown", "systemctl", "kexec", "telinit"}

// standinCandidates are the absolute paths bind-mounted over when they exist.
var standinCandidates = []string{
	"/sbin/reboot", "/sbin/poweroff", "/sbin/halt", "/sbin/shutdown", "/sbin/kexec", "/sbin/telinit",
	"/bin/systemctl", "/usr/sbin/reboot", "/usr/sbin/poweroff", "/usr/sbin/halt", "/usr/sbin/shutdown",
	"/usr/sbin/kexec", "/usr/sbin/telinit", "/usr/bin/systemctl", "/bin/kexec", "/usr/bin/kexec",
}

// Require skips the test unless it runs as root with sshd, unshare and
// (for network namespaces) ip available.
func Require(t testing.TB, netns bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("testtarget: needs root (namespaces, bind mounts, sshd); running as uid %d", os.Geteuid())
	}
	need := []string{"unshare", "mount", "chpasswd"}
	if netns {
		need = append(need, "ip")
	}
	for _, tool := range need {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("testtarget: %s is not installed (%v)", tool, err)
		}
	}
	if _, err := sshdPath(); err != nil {
		t.Skipf("testtarget: %v (apt-get install openssh-server)", err)
	}
}

func sshdPath() (string, error) {
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("sshd"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("sshd not found")
}

// Start starts a target and registers its cleanup. It fails the test when
// the target cannot be started, and skips it when the machine lacks root or
// tools.
func Start(t testing.TB, o Options) *Target {
	t.Helper()
	Require(t, !o.Loopback)
	if o.User == "" {
		o.User = "root"
	}
	if o.Doas {
		if _, err := exec.LookPath("doas"); err != nil {
			t.Skipf("testtarget: doas is not installed (apt-get install opendoas): %v", err)
		}
	}
	if o.LogLevel == "" {
		o.LogLevel = "VERBOSE"
	}
	tt := &Target{t: t, opts: o, Dir: t.TempDir(), User: o.User, Password: o.Password, initFD: -1}
	// The throwaway user must be able to reach its files under the temp dir.
	for _, d := range []string{filepath.Dir(tt.Dir), tt.Dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("testtarget: %v", err)
		}
	}
	tt.RecordFile = filepath.Join(tt.Dir, "records")
	steps := []func() error{tt.writeClientKey, tt.RotateHostKeys, tt.writeStandins, tt.writeEtc}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("testtarget: %v", err)
		}
	}
	switch {
	case o.InNetnsOf != nil:
		if o.InNetnsOf.Netns == "" {
			t.Fatalf("testtarget: InNetnsOf needs a target in a network namespace")
		}
		tt.Netns, tt.subnet, tt.Host, tt.Port = o.InNetnsOf.Netns, o.InNetnsOf.subnet, "127.0.0.1", o.Port
		if tt.Port == 0 {
			tt.Port = 2222
		}
	case o.Loopback:
		tt.Host, tt.Port = "127.0.0.1", freePort(t)
	default:
		ns, x, err := newNetns(t)
		if err != nil {
			t.Fatalf("testtarget: %v", err)
		}
		tt.Netns, tt.subnet, tt.Host, tt.Port = ns, x, fmt.Sprintf("10.233.%d.2", x), 22
	}
	if err := tt.writeSSHDConfig(); err != nil {
		t.Fatalf("testtarget: %v", err)
	}
	t.Cleanup(tt.Stop)
	if err := tt.start(); err != nil {
		t.Fatalf("testtarget: %v", err)
	}
	return tt
}

// Addr is host:port of the sshd.
func (tt *Target) Addr() string { return net.JoinHostPort(tt.Host, strconv.Itoa(tt.Port)) }

// Destination is user@host:port, the installer's target argument.
func (tt *Target) Destination() string {
	if strings.Contains(tt.Host, ":") {
		return fmt.Sprintf("%s@[%s]:%d", tt.User, tt.Host, tt.Port)
	}
	return fmt.Sprintf("%s@%s:%d", tt.User, tt.Host, tt.Port)
}

// SilentAddr is an address on the target's network that nothing answers:
// connections to it hang until a deadline (in loopback mode it is a
// TEST-NET address that fails at once).
func (tt *Target) SilentAddr() string {
	if tt.Netns == "" {
		return "192.0.2.1:22"
	}
	return fmt.Sprintf("10.233.%d.3:22", tt.subnet)
}

func (tt *Target) writeClientKey() error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	tt.ClientKeyFile = filepath.Join(tt.Dir, "client_key")
	if err := writeKey(tt.ClientKeyFile, priv); err != nil {
		return err
	}
	tt.ClientSigner, err = ssh.NewSignerFromKey(priv)
	if err != nil {
		return err
	}
	pub := ssh.MarshalAuthorizedKey(tt.ClientSigner.PublicKey())
	return os.WriteFile(tt.ClientKeyFile+".pub", pub, 0o644)
}

func writeKey(path string, priv any) error {
	block, err := ssh.MarshalPrivateKey(priv, "testtarget")
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
}

// RotateHostKeys generates new host keys; a running sshd uses them after
// Restart. KnownHostsFile is not updated, so a client that recorded the old
// keys now sees a changed host key.
func (tt *Target) RotateHostKeys() error {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tt.HostKeys = nil
	for name, priv := range map[string]any{"ssh_host_ed25519_key": edPriv, "ssh_host_ecdsa_key": ecPriv} {
		if err := writeKey(filepath.Join(tt.Dir, name), priv); err != nil {
			return err
		}
	}
	for _, priv := range []any{edPriv, ecPriv} {
		s, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			return err
		}
		tt.HostKeys = append(tt.HostKeys, s.PublicKey())
	}
	return nil
}

// WriteKnownHosts writes a known_hosts file listing keys for this target's
// address (all HostKeys when none are given) and returns its path.
func (tt *Target) WriteKnownHosts(name string, keys ...ssh.PublicKey) string {
	if len(keys) == 0 {
		keys = tt.HostKeys
	}
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(tt.Addr())}, k) + "\n")
	}
	p := filepath.Join(tt.Dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		tt.t.Fatalf("testtarget: %v", err)
	}
	return p
}

// ClientOptions reach this target with its client key, trusting exactly its
// host keys (a known_hosts file in the target's directory); no ssh_config or
// known_hosts file of the machine is read. home stands for the client's home.
func (tt *Target) ClientOptions(home string) remote.Options {
	return remote.Options{
		UserConfigFile:   "none",
		SystemConfigFile: "none",
		Home:             home,
		IdentityFiles:    []string{tt.ClientKeyFile},
		SSHOptions:       []string{"UserKnownHostsFile=" + tt.WriteKnownHosts("known_hosts"), "GlobalKnownHostsFile=/dev/null"},
	}
}

// writeStandins writes the recording script and a PATH directory of
// stand-ins for tools that do not exist on this machine.
func (tt *Target) writeStandins() error {
	script := fmt.Sprintf("#!/bin/sh\n# testtarget stand-in: records the call, does nothing else.\n"+
		"{ printf '%%s' \"${0##*/}\"; for a in \"$@\"; do printf ' %%s' \"$a\"; done; printf '\\n'; } >>%s\nexit 0\n",
		shell.Quote(tt.RecordFile))
	rec := filepath.Join(tt.Dir, "standin")
	if err := os.WriteFile(rec, []byte(script), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(tt.RecordFile, nil, 0o666); err != nil {
		return err
	}
	if err := os.Chmod(tt.RecordFile, 0o666); err != nil {
		return err
	}
	bin := filepath.Join(tt.Dir, "standin-bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		return err
	}
	for _, n := range sbinTools {
		if err := os.Symlink(rec, filepath.Join(bin, n)); err != nil {
			return err
		}
	}
	return nil
}

func (tt *Target) pathEnv() string {
	return filepath.Join(tt.Dir, "standin-bin") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

// writeEtc prepares the target's private /etc: an overlay upper layer over
// the host's /etc (mounted inside the target's mount namespace, so the host
// never sees a change) holding passwd with root's home moved into the temp
// dir, the throwaway user, and a sudoers drop-in.
func (tt *Target) writeEtc() error {
	upper := filepath.Join(tt.Dir, "etc-upper")
	for _, d := range []string{upper, filepath.Join(tt.Dir, "etc-work"), filepath.Join(upper, "sudoers.d")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, f := range []string{"passwd", "group", "shadow"} {
		if err := copyFile(filepath.Join("/etc", f), filepath.Join(upper, f)); err != nil {
			return err
		}
	}
	rootHome := filepath.Join(tt.Dir, "home", "root")
	if err := os.MkdirAll(rootHome, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Dir(rootHome), 0o755); err != nil {
		return err
	}
	if err := editLines(filepath.Join(upper, "passwd"), func(l string) string {
		f := strings.Split(l, ":")
		if len(f) == 7 && f[0] == "root" {
			f[5] = rootHome
			return strings.Join(f, ":")
		}
		return l
	}); err != nil {
		return err
	}
	sudoers := fmt.Sprintf("Defaults lecture=never\nDefaults secure_path=\"%s\"\n", tt.pathEnv())
	if tt.User != "root" {
		uid, err := freeID(filepath.Join(upper, "passwd"), filepath.Join(upper, "group"))
		if err != nil {
			return err
		}
		tt.UID, tt.GID = uid, uid
		shell := tt.opts.Shell
		if shell == "" {
			shell = "/bin/sh"
		}
		home := filepath.Join(tt.Dir, "home", tt.User)
		if err := os.MkdirAll(home, 0o755); err != nil {
			return err
		}
		if err := os.Chown(home, uid, uid); err != nil {
			return err
		}
		appends := map[string]string{
			"passwd": fmt.Sprintf("%s:x:%d:%d:testtarget:%s:%s\n", tt.User, uid, uid, home, shell),
			"group":  fmt.Sprintf("%s:x:%d:\n", tt.User, uid),
			"shadow": fmt.Sprintf("%s:*:19000:0:99999:7:::\n", tt.User),
		}
		for f, line := range appends {
			if err := appendFile(filepath.Join(upper, f), line); err != nil {
				return err
			}
		}
		if tt.Password != "" {
			// chpasswd runs inside the target's mount namespace; the
			// password travels in a file, never in an argv.
			if err := os.WriteFile(filepath.Join(tt.Dir, "chpasswd.in"), []byte(tt.User+":"+tt.Password+"\n"), 0o600); err != nil {
				return err
			}
		}
		if tt.opts.Doas {
			rule := fmt.Sprintf("permit nopass %s as root\n", tt.User)
			if tt.Password != "" {
				rule = fmt.Sprintf("permit %s as root\n", tt.User)
			}
			if err := os.WriteFile(filepath.Join(upper, "doas.conf"), []byte(rule), 0o600); err != nil {
				return err
			}
		}
		if !tt.opts.NoSudo && !tt.opts.Doas {
			tag := ""
			if tt.Password == "" {
				tag = "NOPASSWD: "
			}
			sudoers += fmt.Sprintf("%s ALL=(ALL:ALL) %sALL\n", tt.User, tag)
		}
	}
	drop := filepath.Join(upper, "sudoers.d", "testtarget")
	if err := os.WriteFile(drop, []byte(sudoers), 0o440); err != nil {
		return err
	}
	if err := os.Chmod(drop, 0o440); err != nil {
		return err
	}
	keys := filepath.Join(tt.Dir, "authorized_keys")
	if err := os.Mkdir(keys, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(keys, tt.User), ssh.MarshalAuthorizedKey(tt.ClientSigner.PublicKey()), 0o644)
}

// copyFile copies a file with its mode and owner.
func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	st, err := os.Stat(from)
	if err != nil {
		return err
	}
	if err := os.WriteFile(to, b, st.Mode().Perm()); err != nil {
		return err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		if err := os.Chown(to, int(sys.Uid), int(sys.Gid)); err != nil {
			return err
		}
	}
	return os.Chmod(to, st.Mode().Perm())
}

func editLines(path string, f func(string) string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	for i := range lines {
		lines[i] = f(lines[i])
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")), st.Mode().Perm())
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// freeID finds a uid/gid (same number) used by neither file, from 2000 up.
func freeID(passwd, group string) (int, error) {
	used := map[int]bool{}
	for _, p := range []string{passwd, group} {
		f, err := os.Open(p)
		if err != nil {
			return 0, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fs := strings.Split(sc.Text(), ":"); len(fs) > 2 {
				if n, err := strconv.Atoi(fs[2]); err == nil {
					used[n] = true
				}
			}
		}
		f.Close()
	}
	for id := 2000; id < 60000; id++ {
		if !used[id] {
			return id, nil
		}
	}
	return 0, fmt.Errorf("no free uid between 2000 and 60000")
}

func (tt *Target) writeSSHDConfig() error {
	permitRoot := "prohibit-password"
	cfg := fmt.Sprintf(`Port %d
ListenAddress %s
HostKey %s
HostKey %s
PidFile none
AuthorizedKeysFile %s/%%u
PermitRootLogin %s
PasswordAuthentication yes
PermitEmptyPasswords no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
SetEnv PATH=%s
LogLevel %s
Subsystem sftp internal-sftp
`, tt.Port, tt.Host, filepath.Join(tt.Dir, "ssh_host_ed25519_key"), filepath.Join(tt.Dir, "ssh_host_ecdsa_key"),
		filepath.Join(tt.Dir, "authorized_keys"), permitRoot, tt.pathEnv(), tt.opts.LogLevel)
	return os.WriteFile(filepath.Join(tt.Dir, "sshd_config"), []byte(cfg), 0o644)
}

// setupScript runs as PID 1 of the target's PID namespace, inside its
// private mount namespace: private /run and /etc, stand-ins bind-mounted
// over every reboot-like tool (checked by content before sshd starts), then
// sshd in the foreground.
func (tt *Target) setupScript() (string, error) {
	sshd, err := sshdPath()
	if err != nil {
		return "", err
	}
	rec := filepath.Join(tt.Dir, "standin")
	var b strings.Builder
	b.WriteString("#!/bin/sh\nset -eu\n")
	b.WriteString("mount -t tmpfs -o mode=0755 testtarget-run /run\nmkdir -p /run/sshd\n")
	fmt.Fprintf(&b, "mount -t overlay testtarget-etc -o lowerdir=/etc,upperdir=%s,workdir=%s /etc\n",
		shell.Quote(filepath.Join(tt.Dir, "etc-upper")), shell.Quote(filepath.Join(tt.Dir, "etc-work")))
	if tt.Password != "" && tt.User != "root" {
		fmt.Fprintf(&b, "chpasswd <%s\n", shell.Quote(filepath.Join(tt.Dir, "chpasswd.in")))
	}
	seen := map[string]bool{}
	var checks []string
	for _, p := range standinCandidates {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue // not installed here; the PATH stand-ins cover it
		}
		checks = append(checks, p)
		if seen[real] {
			continue
		}
		seen[real] = true
		fmt.Fprintf(&b, "mount --bind %s %s\n", shell.Quote(rec), shell.Quote(real))
	}
	for _, p := range checks {
		fmt.Fprintf(&b, "cmp -s %s %s || { echo 'testtarget: stand-in for %s is not active, refusing to start' >&2; exit 1; }\n",
			shell.Quote(rec), shell.Quote(p), p)
	}
	fmt.Fprintf(&b, "%s -D -f %s -E %s\n", shell.Quote(sshd), shell.Quote(filepath.Join(tt.Dir, "sshd_config")), shell.Quote(filepath.Join(tt.Dir, "sshd.log")))
	return b.String(), nil
}

// start launches the namespaces and sshd and waits until it listens.
func (tt *Target) start() error {
	if tt.running {
		return nil
	}
	script, err := tt.setupScript()
	if err != nil {
		return err
	}
	setup := filepath.Join(tt.Dir, "setup.sh")
	if err := os.WriteFile(setup, []byte(script), 0o700); err != nil {
		return err
	}
	logPath := filepath.Join(tt.Dir, "sshd.log")
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		return err
	}
	args := []string{"unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child=SIGKILL", "--mount-proc", "/bin/sh", setup}
	if tt.Netns != "" {
		args = append([]string{"ip", "netns", "exec", tt.Netns}, args...)
	}
	out, err := os.OpenFile(filepath.Join(tt.Dir, "setup.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	tt.cmd = exec.Command(args[0], args[1:]...)
	tt.cmd.Stdout, tt.cmd.Stderr = out, out
	if err := tt.cmd.Start(); err != nil {
		return fmt.Errorf("starting %v: %w", args, err)
	}
	tt.running = true
	tt.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		close(done)
	}(tt.cmd, tt.exited)

	want := fmt.Sprintf("Server listening on %s port %d", tt.Host, tt.Port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), want) {
			break
		}
		select {
		case <-tt.exited:
			tt.running = false
			return fmt.Errorf("sshd exited during start-up:\n%s", tt.Logs())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sshd did not listen on %s within 15s:\n%s", tt.Addr(), tt.Logs())
		}
	}
	tt.initFD = namespaceInit(tt.cmd.Process.Pid)
	if tt.opts.InNetnsOf == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := waitBanner(ctx, tt.Addr()); err != nil {
			return fmt.Errorf("sshd on %s does not answer: %w\n%s", tt.Addr(), err, tt.Logs())
		}
	}
	return nil
}

func waitBanner(ctx context.Context, addr string) error {
	for {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			line, rerr := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if rerr == nil && strings.HasPrefix(line, "SSH-") {
				return nil
			}
			err = rerr
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop kills the target's PID namespace (sshd and every session) by the
// PID of the unshare process this package started, and waits until the
// namespace is empty and sshd's port is free. Safe to call twice.
func (tt *Target) Stop() {
	if err := tt.stop(); err != nil {
		tt.t.Errorf("testtarget: %v", err)
	}
}

// stop is Stop returning its error. unshare exits at once on SIGKILL; the
// kernel then kills the namespace's processes one by one, and under load
// the old sshd may hold its port for a while after that: a new sshd
// started too early fails with "Address already in use".
func (tt *Target) stop() error {
	if !tt.running {
		return nil
	}
	tt.running = false
	if tt.cmd.Process != nil {
		tt.cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case <-tt.exited:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("unshare (pid %d) did not exit after SIGKILL", tt.cmd.Process.Pid)
	}
	if tt.initFD >= 0 {
		err := waitExit(tt.initFD, 10*time.Second)
		unix.Close(tt.initFD)
		tt.initFD = -1
		if err != nil {
			return fmt.Errorf("the PID namespace of unshare (pid %d): %w", tt.cmd.Process.Pid, err)
		}
	}
	if tt.opts.InNetnsOf != nil {
		return nil // its address is reachable only inside the other namespace
	}
	return waitFree(tt.Addr(), 10*time.Second)
}

// Restart stops the target and starts it again with the same network
// address and the current host keys (see RotateHostKeys).
func (tt *Target) Restart() {
	tt.t.Helper()
	if err := tt.stop(); err != nil {
		tt.t.Fatalf("testtarget: restart: %v", err)
	}
	if err := tt.start(); err != nil {
		tt.t.Fatalf("testtarget: restart: %v", err)
	}
}

// namespaceInit opens a pidfd of unshare's child, the first process of the
// new PID namespace; -1 when it cannot (then Stop waits for the port only).
func namespaceInit(unsharePID int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", unsharePID, unsharePID))
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		return -1
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return -1
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1
	}
	return fd
}

// waitExit waits until the process of pidfd fd has exited. The first
// process of a PID namespace exits only after the kernel has reaped every
// other process in it, so then all their sockets are closed.
func waitExit(fd int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("its processes did not exit within %s of SIGKILL", timeout)
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(left.Milliseconds())+1)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return fmt.Errorf("poll on its pidfd: %w", err)
		case n > 0:
			return nil
		}
	}
}

// waitFree waits until addr no longer accepts TCP connections: nothing
// listens there any more. A refused or unanswered connection counts as
// free (a test may have cut the link).
func waitFree(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil
		}
		conn.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still accepts connections %s after sshd was killed", addr, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Records returns the calls made to the stand-ins, one "name arg…" each.
func (tt *Target) Records() []string {
	b, err := os.ReadFile(tt.RecordFile)
	if err != nil {
		tt.t.Fatalf("testtarget: %v", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// Logs returns the set-up output and sshd's log, for failure messages.
func (tt *Target) Logs() string {
	setup, _ := os.ReadFile(filepath.Join(tt.Dir, "setup.log"))
	sshd, _ := os.ReadFile(filepath.Join(tt.Dir, "sshd.log"))
	return fmt.Sprintf("--- setup.log\n%s--- sshd.log\n%s", setup, sshd)
}

// SSHDLog returns sshd's log.
func (tt *Target) SSHDLog() string {
	b, _ := os.ReadFile(filepath.Join(tt.Dir, "sshd.log"))
	return string(b)
}

// LinkDown cuts the target's network link without closing connections:
// packets are dropped, as when a machine hangs. LinkUp restores it.
func (tt *Target) LinkDown() { tt.link("down") }

// LinkUp restores the link cut by LinkDown.
func (tt *Target) LinkUp() { tt.link("up") }

func (tt *Target) link(state string) {
	tt.t.Helper()
	if tt.Netns == "" || tt.opts.InNetnsOf != nil {
		tt.t.Fatalf("testtarget: LinkDown/LinkUp need a target with its own network namespace")
	}
	if out, err := exec.Command("ip", "-n", tt.Netns, "link", "set", "dev", vethTarget(tt.subnet), state).CombinedOutput(); err != nil {
		tt.t.Fatalf("testtarget: link %s: %v: %s", state, err, out)
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testtarget: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Relay passes bytes both ways between c and a new connection to addr, as the network
// between a client and a target does, until either side closes; then it closes both.
// Tests run it behind their own listener to delay, reset or cut connections.
func Relay(c net.Conn, addr string) {
	defer c.Close()
	u, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer u.Close()
	ended := make(chan struct{}, 2)
	go func() { io.Copy(u, c); ended <- struct{}{} }()
	go func() { io.Copy(c, u); ended <- struct{}{} }()
	<-ended
}
