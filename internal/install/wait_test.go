package install

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// TestWaitRestartOtherKey: a target that is already back with other host keys when the
// wait for it to go down tries it is reported with its new key, and the kexec phase
// explains that key as the wait for the installer does: the installer did not carry
// the keys over, refusing to continue. In CI the installer once came up first, and the
// run ended with only "the target answers with another host key".
func TestWaitRestartOtherKey(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{})
	o := tt.ClientOptions(t.TempDir())
	target, err := remote.ParseTarget(tt.Destination())
	if err != nil {
		t.Fatal(err)
	}
	old := tt.HostKeys[0]
	if err := tt.RotateHostKeys(); err != nil {
		t.Fatal(err)
	}
	tt.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := NewReporter(io.Discard, nil).Step("kexec", "wait for the target to go down")
	seen, key, err := waitRestart(ctx, target, o, old, "the old boot id", newWatch(s))
	if err != nil || seen != restartOtherKey || key == nil || !bytes.Equal(key.Marshal(), tt.HostKeys[0].Marshal()) {
		t.Fatalf("waitRestart = %v, key %v, %v; want restartOtherKey with the new key %s", seen, key, err, fingerprint(tt.HostKeys[0]))
	}
	msg := hostKeyChanged(key, old)
	for _, want := range []string{"after the kexec the target presents host key " + fingerprint(key), "before it presented " + fingerprint(old), "refusing to continue"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
}

// TestAwaitNewSystemWaitsOutABrokenLogin: a rebooting installer whose host key the new
// system keeps (--copy-host-keys) may answer a host key probe and then break off the
// login that reads its boot id, as it goes down. In CI the wait took such a login for
// the new system, and the check of the new system then could not log in. Here a proxy
// in front of a real sshd passes the first connection (the probe), resets every
// connection for the next 3 s, then passes them again: the wait ends only after
// that, when a login shows a boot id other than the installer's.
func TestAwaitNewSystemWaitsOutABrokenLogin(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	const flux = 3 * time.Second
	var resets atomic.Int32
	go func() {
		var first time.Time
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if first.IsZero() {
				first = time.Now()
			} else if time.Since(first) < flux {
				resets.Add(1)
				c.(*net.TCPConn).SetLinger(0) // a reset, as from a system going down
				c.Close()
				continue
			}
			go testtarget.Relay(c, tt.Addr())
		}
	}()
	key := tt.HostKeys[0]
	got, waited, err := awaitReboot(t, tt.User+"@"+l.Addr().String(), tt.ClientOptions(t.TempDir()), key)
	if err != nil {
		t.Fatalf("awaitNewSystem: %v", err)
	}
	if waited < flux || resets.Load() == 0 {
		t.Errorf("the wait ended after %s with %d connections reset: it took a broken login for the new system", waited.Round(time.Millisecond), resets.Load())
	}
	if !bytes.Equal(got.Marshal(), key.Marshal()) {
		t.Errorf("the new system's key is %s, want %s", fingerprint(got), fingerprint(key))
	}
}

// TestAwaitNewSystemLoginRefused: a new system that keeps the installer's host key but
// lets this client in with none of its keys answers as a whole system: the wait takes
// it as the new system at once instead of waiting out --reboot-timeout for a boot id.
func TestAwaitNewSystemLoginRefused(t *testing.T) {
	tt := testtarget.Start(t, testtarget.Options{})
	o := tt.ClientOptions(t.TempDir())
	o.IdentityFiles = []string{filepath.Join(t.TempDir(), "stranger")}
	if _, _, err := loadOrMakeKey(o.IdentityFiles[0]); err != nil { // a key the target does not know
		t.Fatal(err)
	}
	target, err := remote.ParseTarget(tt.Destination())
	if err != nil {
		t.Fatal(err)
	}
	if got := checkBoot(context.Background(), target, o, tt.HostKeys[0], installerBootID); got != bootOther {
		t.Fatalf("checkBoot with a refused login = %v, want bootOther", got)
	}
	_, waited, err := awaitReboot(t, tt.Destination(), o, tt.HostKeys[0])
	if err != nil {
		t.Fatalf("awaitNewSystem: %v", err)
	}
	if waited > 10*time.Second {
		t.Errorf("the wait took %s for a system that refuses the login", waited.Round(time.Millisecond))
	}
}

// installerBootID is the boot id the reboot phase remembers from the installer: a
// real target never shows it, so any login that reads a boot id shows another.
const installerBootID = "the installer's boot id"

// awaitReboot runs the reboot phase's wait for the new system on dest, as after an
// installer with host key installerKey was told to reboot (with --copy-host-keys, so
// the new system presents that key too), and says how long the wait took.
func awaitReboot(t *testing.T, dest string, o remote.Options, installerKey ssh.PublicKey) (ssh.PublicKey, time.Duration, error) {
	t.Helper()
	target, err := remote.ParseTarget(dest)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := remote.Resolve(target, o)
	if err != nil {
		t.Fatal(err)
	}
	r := &run{o: &Options{RebootTimeout: 30 * time.Second, SSH: o}, rep: NewReporter(io.Discard, nil),
		target: target, hostKey: installerKey, bootID: installerBootID}
	start := time.Now()
	key, err := r.awaitNewSystem(context.Background(), cfg, installerKey)
	return key, time.Since(start), err
}
