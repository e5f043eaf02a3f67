package install

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/facts"
	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

func TestInstallerKeyPath(t *testing.T) {
	for _, c := range []struct{ state, want string }{
		{"/s/anywhere/root@h_22.json", "/s/anywhere/root@h_22.key"},
		{"/s/state", "/s/state.key"},
		{"/s/state.key", "/s/state.key.key"}, // never the state file itself
		{"/s/x.key.json", "/s/x.key.key"},
	} {
		if got := InstallerKeyPath(c.state); got != c.want {
			t.Errorf("InstallerKeyPath(%s) = %s, want %s", c.state, got, c.want)
		}
	}
}

func testKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestAuthorizeScript runs the script with sh as an unprivileged user
// (nobody, when the test runs as root) in a temporary home: ssh-copy-id
// semantics, once per key whatever the line's comment or options.
func TestAuthorizeScript(t *testing.T) {
	key := testKey(t)
	keyText := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	line := keyText + " anywhere-installer\n"
	other := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(testKey(t)))) + " me@laptop"
	for _, c := range []struct {
		name   string
		before *string // authorized_keys before; nil: no ~/.ssh at all
		want   string
		out    string
	}{
		{"no .ssh", nil, line, "added"},
		{"other keys", ptr(other + "\n"), other + "\n" + line, "added"},
		{"no final newline", ptr(other), other + "\n" + line, "added"},
		{"empty file", ptr(""), line, "added"},
		{"present with another comment", ptr(keyText + " elsewhere\n"), keyText + " elsewhere\n", "present"},
		{"present with options", ptr(`command="x" ` + keyText + "\n"), `command="x" ` + keyText + "\n", "present"},
	} {
		t.Run(c.name, func(t *testing.T) {
			home := unprivilegedHome(t)
			f := filepath.Join(home, ".ssh", "authorized_keys")
			if c.before != nil {
				os.Mkdir(filepath.Dir(f), 0o700)
				if err := os.WriteFile(f, []byte(*c.before), 0o600); err != nil {
					t.Fatal(err)
				}
				chownNobody(t, filepath.Dir(f), f)
			}
			for run := 1; run <= 2; run++ {
				out, err := runUnprivileged(home, authorizeScript(key))
				if err != nil {
					t.Fatalf("run %d: %v\n%s", run, err, out)
				}
				want := c.out + " " + f
				if run == 2 {
					want = "present " + f
				}
				if strings.TrimSpace(out) != want {
					t.Errorf("run %d printed %q, want %q", run, out, want)
				}
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.want {
				t.Errorf("authorized_keys:\n%s\nwant:\n%s", b, c.want)
			}
			if c.before == nil {
				for p, mode := range map[string]os.FileMode{filepath.Dir(f): 0o700, f: 0o600} {
					if st, err := os.Stat(p); err != nil || st.Mode().Perm() != mode {
						t.Errorf("%s: mode %v (%v), want %v", p, st.Mode().Perm(), err, mode)
					}
				}
			}
		})
	}
	t.Run("root outside /root", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root")
		}
		home := t.TempDir()
		cmd := exec.Command("sh", "-c", authorizeScript(key))
		cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "takes root's keys from /root/.ssh/authorized_keys only") {
			t.Errorf("want a refusal, got %v: %s", err, out)
		}
		if _, err := os.Stat(filepath.Join(home, ".ssh")); err == nil {
			t.Errorf("the refusal created %s/.ssh", home)
		}
	})
}

func ptr(s string) *string { return &s }

const nobody = 65534

// unprivilegedHome is a home directory the user the script runs as owns.
func unprivilegedHome(t *testing.T) string {
	home := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		os.Chmod(filepath.Dir(home), 0o755)
		os.Chmod(filepath.Dir(filepath.Dir(home)), 0o755)
		chownNobody(t, home)
	}
	return home
}

func chownNobody(t *testing.T, paths ...string) {
	if os.Geteuid() != 0 {
		return
	}
	for _, p := range paths {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
}

func runUnprivileged(home, script string) (string, error) {
	args := []string{"sh", "-c", script}
	if os.Geteuid() == 0 {
		args = append([]string{"setpriv", "--reuid", fmt.Sprint(nobody), "--regid", fmt.Sprint(nobody), "--clear-groups"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// eventHook passes every JSON event the reporter writes to fn, at once:
// the run waits while fn works.
type eventHook struct {
	mu     sync.Mutex
	buf    []byte
	events []Event
	fn     func(Event)
}

func (h *eventHook) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf = append(h.buf, p...)
	for {
		i := bytes.IndexByte(h.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		var e Event
		if json.Unmarshal(h.buf[:i], &e) == nil {
			h.events = append(h.events, e)
			if h.fn != nil {
				h.fn(e)
			}
		}
		h.buf = h.buf[i+1:]
	}
}

func (h *eventHook) step(name string) *Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, e := range h.events {
		if e.Event == "step" && e.Step == name {
			return &h.events[i]
		}
	}
	return nil
}

// kexecTarball is a nixos-images-like tarball whose kexec/run is run.
func kexecTarball(t *testing.T, run string) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range []struct {
		name string
		mode int64
		body string
	}{{"kexec/", 0o755, ""}, {"kexec/run", 0o755, run}, {"kexec/bzImage", 0o644, "kernel"}, {"kexec/initrd", 0o644, "initrd"}} {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.body))
	}
	tw.Close()
	zw.Close()
	p := filepath.Join(t.TempDir(), "kexec.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// connectRun connects as Run does, up to the phases. The preflight facts
// are made those of a machine that can kexec: this one cannot (no kexec in
// its kernel, a container), and the kexec tarball here is a stand-in whose
// kexec is the target's recording stand-in.
func connectRun(t *testing.T, ctx context.Context, o *Options, hook *eventHook) *run {
	t.Helper()
	var human bytes.Buffer
	r := &run{o: o, stdout: &human, stderr: &human, keys: map[string][]byte{}}
	r.rep = NewReporter(&human, hook)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output:\n%s", human.String())
		}
	})
	r.dial = dialSSH
	err := r.connect(ctx, false)
	if r.client != nil {
		t.Cleanup(func() { r.client.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	if r.state, _, err = LoadState(o.StateFile, r.client.Config().Destination()); err != nil {
		t.Fatal(err)
	}
	r.facts.Container = ""
	r.facts.Kexec = facts.Kexec{Supported: true, Lockdown: "none"}
	for _, tool := range []string{"tar", "cpio", "gzip"} {
		r.facts.Tools[tool] = "/usr/bin/" + tool
	}
	return r
}

// TestPasswordLoginAuthorizesAKeyBeforeKexec: a sudo user who logs in with
// a password only (SSHPASS; no key of the client is accepted) is refused
// the kexec when no key can be authorized, before anything changes; then a
// key made for the target is added to its ~/.ssh/authorized_keys once,
// over two runs; the stand-in kexec is called; and the "installer" (the
// same sshd restarted as a NixOS installer with a new boot id, which lets
// root in with the keys carried from the user's authorized_keys only) is
// reached as root with that key.
func TestPasswordLoginAuthorizesAKeyBeforeKexec(t *testing.T) {
	const password = "pw of carol"
	tt := testtarget.Start(t, testtarget.Options{User: "carol", Password: password})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	local := t.TempDir()
	stateFile := filepath.Join(local, "state", "carol.json")
	keyFile := InstallerKeyPath(stateFile)
	options := func(tarball string) *Options {
		o := &Options{
			Target: tt.Destination(),
			SSH: remote.Options{
				UserConfigFile: "none", SystemConfigFile: "none", Home: local,
				Password: password, SudoPassword: password,
				SSHOptions: []string{"UserKnownHostsFile=" + tt.WriteKnownHosts("known_hosts"), "GlobalKnownHostsFile=/dev/null"},
			},
			Kexec:     tarball,
			Phases:    []Phase{PhaseKexec},
			StateFile: stateFile,
		}
		o.addSavedInstallerKey() // as Run does
		return o
	}
	sshDir := filepath.Join(tt.Dir, "home", "carol", ".ssh")
	authorized := filepath.Join(sshDir, "authorized_keys")
	failing := kexecTarball(t, "#!/bin/sh\necho 'kexec failed, dumping dmesg'\nexit 1\n")

	t.Run("refused when no key can be added", func(t *testing.T) {
		// ~/.ssh is a file, which the user cannot replace.
		if err := os.WriteFile(sshDir, []byte("not a directory\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(sshDir)
		hook := &eventHook{}
		r := connectRun(t, ctx, options(failing), hook)
		if got := r.client.Login().Method; got != remote.AuthPassword {
			t.Fatalf("the test's login went by %s, want a password", got)
		}
		err := r.kexec(ctx)
		var ref refusal
		if !errors.As(err, &ref) || !strings.Contains(err.Error(), "refusing to kexec") || !strings.Contains(err.Error(), "the installer lets root in with a key only") {
			t.Fatalf("kexec() = %v, want a refusal", err)
		}
		if hook.step("upload "+failing) != nil {
			t.Errorf("the tarball was uploaded before the refusal")
		}
		if rec := tt.Records(); len(rec) > 0 {
			t.Errorf("stand-ins were called: %q", rec)
		}
	})

	var pub ssh.PublicKey
	t.Run("a failed kexec leaves one key", func(t *testing.T) {
		hook := &eventHook{}
		r := connectRun(t, ctx, options(failing), hook)
		if got := r.client.Login().Method; got != remote.AuthPassword {
			t.Fatalf("the test's login went by %s, want a password", got)
		}
		err := r.kexec(ctx)
		if err == nil || !strings.Contains(err.Error(), "did not say") {
			t.Fatalf("kexec() = %v, want kexec/run's failure", err)
		}
		b, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatalf("the key made for the installer is not kept: %v", err)
		}
		if st, _ := os.Stat(keyFile); st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", keyFile, st.Mode().Perm())
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			t.Fatal(err)
		}
		pub = s.PublicKey()
		checkAuthorized(t, tt, authorized, pub)
		e := hook.step("authorize a key for the installer")
		if e == nil || e.Status != "ok" || e.Message != "added "+fingerprint(pub)+" (made for this target, kept in "+keyFile+" until the reboot phase) to carol's "+authorized {
			t.Errorf("the step does not say what was added where: %+v", e)
		}
	})
	if pub == nil {
		t.FailNow()
	}

	t.Run("the installer takes the key", func(t *testing.T) {
		hook := &eventHook{}
		hook.fn = func(e Event) {
			if e.Event == "step" && e.Step == "unpack the installer and load it (kexec/run)" && e.Status == "ok" {
				becomeInstaller(t, tt, password, authorized)
			}
		}
		r := connectRun(t, ctx, options(kexecTarball(t, "#!/bin/sh\nset -e\nhere=$(dirname \"$0\")\n"+
			"kexec --load \"$here/bzImage\" --initrd=\"$here/initrd\" --no-checks\necho 'machine will boot into nixos in 6s...'\n")), hook)
		if err := r.kexec(ctx); err != nil {
			t.Fatalf("kexec() = %v\n%s", err, tt.Logs())
		}
		checkAuthorized(t, tt, authorized, pub)
		if e := hook.step("authorize a key for the installer"); e == nil || !strings.HasSuffix(e.Message, "is already in carol's "+authorized) || e.Data["keyFile"] != keyFile {
			t.Errorf("the second run's step: %+v", e)
		}
		rec := tt.Records()
		if len(rec) != 1 || !strings.HasPrefix(rec[0], "kexec --load ") {
			t.Errorf("stand-in calls %q, want one kexec --load", rec)
		}
		if c := r.client.Config(); c.User != "root" || r.client.Login().Method != remote.AuthPublicKey || !r.facts.IsInstaller {
			t.Errorf("after the kexec: %s by %s, installer %v; want root by key on the installer", c.User, r.client.Login().Method, r.facts.IsInstaller)
		}
		if !strings.Contains(tt.SSHDLog(), "Accepted publickey for root") || !strings.Contains(tt.SSHDLog(), ssh.FingerprintSHA256(pub)) {
			t.Errorf("sshd did not let root in with the installer key:\n%s", tt.SSHDLog())
		}
		// The reboot phase removes the kept key once the installer is gone.
		r.forgetInstallerKey()
		if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there: %v", keyFile, err)
		}
		for _, f := range r.o.SSH.IdentityFiles {
			if f == keyFile {
				t.Errorf("the removed key is still offered")
			}
		}
	})
}

// checkAuthorized wants exactly pub in the user's authorized_keys, owned
// by the user, 0600 in a 0700 ~/.ssh.
func checkAuthorized(t *testing.T, tt *testtarget.Target, path string, pub ssh.PublicKey) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("authorized_keys: %v", err)
	}
	want := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " anywhere-installer\n"
	if string(b) != want {
		t.Errorf("authorized_keys:\n%s\nwant exactly:\n%s", b, want)
	}
	for p, mode := range map[string]os.FileMode{filepath.Dir(path): 0o700, path: 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); st.Mode().Perm() != mode || int(sys.Uid) != tt.UID {
			t.Errorf("%s: mode %v owner %d, want %v owner %d", p, st.Mode().Perm(), sys.Uid, mode, tt.UID)
		}
	}
}

// becomeInstaller turns the target into what the kexec would boot: a NixOS
// installer with a new boot id that lets root in with the keys carried
// from the user's authorized_keys only (as nixos-images' kexec/run carries
// SUDO_USER's), and the same host keys.
func becomeInstaller(t *testing.T, tt *testtarget.Target, password, authorized string) {
	tt.Stop()
	osRelease := filepath.Join(tt.Dir, "etc-upper", "os-release")
	os.Remove(osRelease)
	if err := os.WriteFile(osRelease, []byte("NAME=NixOS\nID=nixos\nVARIANT_ID=installer\nPRETTY_NAME=\"NixOS installer\"\n"), 0o644); err != nil {
		t.Error(err)
	}
	carried, err := os.ReadFile(authorized)
	if err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(filepath.Join(tt.Dir, "authorized_keys", "root"), carried, 0o644); err != nil {
		t.Error(err)
	}
	tt.Restart()
	c, err := ssh.Dial("tcp", tt.Addr(), &ssh.ClientConfig{
		User: tt.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(tt.ClientSigner)},
		HostKeyCallback: ssh.FixedHostKey(tt.HostKeys[0]), HostKeyAlgorithms: []string{tt.HostKeys[0].Type()},
		Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Error(err)
		return
	}
	defer s.Close()
	s.Stdin = strings.NewReader(password + "\n")
	cmd := "cat /proc/sys/kernel/random/uuid > /run/boot_id && mount --bind /run/boot_id /proc/sys/kernel/random/boot_id"
	if out, err := s.CombinedOutput("sudo -S -p '' sh -c " + shell.Quote(cmd)); err != nil {
		t.Errorf("new boot id: %v: %s", err, out)
	}
}

// TestAddSavedInstallerKey: the key an earlier run kept next to the
// default state file (or --state-file) is offered as an -i file, once.
func TestAddSavedInstallerKey(t *testing.T) {
	dir := t.TempDir()
	saved := filepath.Join(dir, "anywhere", "root@192.0.2.1_22.key")
	o := Options{Target: "root@192.0.2.1", Env: []string{"XDG_STATE_HOME=" + dir},
		SSH: remote.Options{UserConfigFile: "none", SystemConfigFile: "none", Home: dir, IdentityFiles: []string{}}}
	if got := o.addSavedInstallerKey(); got != "" || len(o.SSH.IdentityFiles) != 0 {
		t.Fatalf("no saved key: added %q, -i %q", got, o.SSH.IdentityFiles)
	}
	if err := writeSecret(saved, []byte("key")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		o.addSavedInstallerKey()
	}
	if len(o.SSH.IdentityFiles) != 1 || o.SSH.IdentityFiles[0] != saved {
		t.Errorf("-i %q, want [%s]", o.SSH.IdentityFiles, saved)
	}
	o = Options{Target: "root@192.0.2.1", StateFile: filepath.Join(dir, "mine.json"), SSH: remote.Options{UserConfigFile: "none", SystemConfigFile: "none", Home: dir}}
	writeSecret(filepath.Join(dir, "mine.key"), []byte("key"))
	if got := o.addSavedInstallerKey(); got != filepath.Join(dir, "mine.key") {
		t.Errorf("with --state-file: added %q", got)
	}
}
