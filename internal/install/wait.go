package install

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/remote"
)

// restart is what waitRestart saw of a target that was told to kexec or
// reboot.
type restart int

const (
	restartDown     restart = iota // it stopped answering SSH
	restartNewBoot                 // it answers with the same key as a new boot
	restartOtherKey                // it answers with another host key
)

// waitRestart polls the target over SSH until it stops answering, or
// answers as a new boot or with another host key (then that key is
// returned). A TCP port that accepts connections proves nothing: NAT, load
// balancers and hypervisors' port forwards (qemu's user-mode network)
// accept while the machine behind them is down, so only an SSH handshake
// within a few seconds counts as "up". Every try that finds the old boot
// still running is reported to w.
func waitRestart(ctx context.Context, t remote.Target, o remote.Options, key ssh.PublicKey, bootID string, w *watch) (restart, ssh.PublicKey, error) {
	o.ExpectHostKey = key
	o.SSHOptions = append(append([]string(nil), o.SSHOptions...), "ConnectTimeout=5")
	for {
		c, err := remote.Dial(ctx, t, o)
		var hke *remote.HostKeyError
		switch {
		case errors.As(err, &hke):
			return restartOtherKey, hke.Key, nil
		case err != nil && ctx.Err() != nil:
			return restartDown, nil, ctx.Err()
		case err != nil:
			return restartDown, nil, nil
		}
		boot, err := bootIDOf(ctx, c.User())
		c.Close()
		if err == nil && bootID != "" && boot != bootID {
			return restartNewBoot, key, nil
		}
		w.got(stillUp, nil)
		select {
		case <-ctx.Done():
			return restartDown, nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// stillUp is what a try got that reached the system being left.
const stillUp = "the old system still answers (same boot id)"

// watch keeps a wait's step up to date with its tries: how many, and what
// the last one got (remote.FailureKind's words), on the status line and in
// JSON progress events.
type watch struct {
	s     *Step
	tries int
	kind  string
	err   error
}

func newWatch(s *Step) *watch { return &watch{s: s} }

// failed records a connection attempt that failed with err.
func (w *watch) failed(err error) { w.got(remote.FailureKind(err), err) }

// got records what a try got: kind in a few words, err the detail or nil.
func (w *watch) got(kind string, err error) {
	w.tries++
	w.kind, w.err = kind, err
	data := map[string]any{"tries": w.tries, "last": kind}
	if err != nil {
		data["last_error"] = err.Error()
	}
	w.s.Progress(fmt.Sprintf("%d %s, last: %s", w.tries, plural(w.tries, "try", "tries"), kind), data)
}

// last says what the last try got, for the message of a wait that gave up.
func (w *watch) last() string {
	switch {
	case w.tries == 0:
		return "no try finished"
	case w.err == nil:
		return fmt.Sprintf("%d %s, the last got: %s", w.tries, plural(w.tries, "try", "tries"), w.kind)
	}
	return fmt.Sprintf("%d %s, the last got: %s: %v", w.tries, plural(w.tries, "try", "tries"), w.kind, w.err)
}

func plural(n int, one, more string) string {
	if n == 1 {
		return one
	}
	return more
}

// bootCheck is what logging in to a target that presents the old system's
// host key tells of its boot.
type bootCheck int

const (
	bootSame   bootCheck = iota // it still runs the old boot
	bootOther                   // another boot, or it shows nothing of its boot (no login for us, no boot id to read)
	bootUnsure                  // the connection failed or broke off: a system going down or coming up
)

// checkBoot logs in with key pinned and compares the target's boot id with
// bootID. A machine told to reboot or kexec answers for a moment while it
// goes down, and a dropped probe in between looks like "down": only a new
// boot id proves the restart, and a login that breaks off proves nothing
// (in CI a rebooting installer answered a host key probe, then reset the
// login, and was taken for the new system). A target that refuses the
// login, or lets it in but cannot show a boot id, answers as a whole
// system and is taken as another boot: that login is all there is to try.
func checkBoot(ctx context.Context, t remote.Target, o remote.Options, key ssh.PublicKey, bootID string) bootCheck {
	if bootID == "" || key == nil {
		return bootOther
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	o.ExpectHostKey = key
	c, err := remote.Dial(dctx, t, o)
	if err != nil {
		if k := remote.FailureKind(err); k == remote.FailAuth || k == remote.FailHostKey {
			return bootOther
		}
		return bootUnsure
	}
	defer c.Close()
	boot, err := bootIDOf(ctx, c.User())
	var exit *remote.ExitError
	switch {
	case errors.As(err, &exit) && exit.Signal == "":
		return bootOther // it ran the command and has no boot id to show
	case err != nil:
		return bootUnsure
	case boot == bootID:
		return bootSame
	}
	return bootOther
}

// bootIDTimeout bounds reading the boot id once logged in, wherever it is
// read (waiting for a kexec or a reboot to take the old system down, and
// for the new one to come up). Reading a /proc file answers in
// milliseconds, so a login that takes longer belongs to a system going
// down: the read counts as failed, and the waits try again, instead of
// hanging until the connection's keepalive notices. Logging in is bounded
// separately, by the caller's context and ConnectTimeout.
const bootIDTimeout = 10 * time.Second

// bootIDOf reads the boot id of the system sh is logged in to, within
// bootIDTimeout.
func bootIDOf(ctx context.Context, sh Shell) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, bootIDTimeout)
	defer cancel()
	out, err := sh.Output(ctx, "cat /proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(out)), err
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
