package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// reboot unmounts the installed system, turns off its swap, exports its
// pools, reboots the target detached from the SSH session, waits until it
// is gone, then waits for the new system and checks that it presents the
// host key installed for it (nixos-anywhere stops at "gone").
func (r *run) reboot(ctx context.Context, a *artifacts) error {
	phase := string(PhaseReboot)
	r.rep.Phase(phase, "reboot into the new system")
	expected, keyNote := r.installedHostKey(ctx)
	if err := r.rootRun(ctx, phase, "unmount and reboot", r.rebootScript(a), nil); err != nil {
		return err
	}
	cfg := r.client.Config()
	r.cleanupWorkdir()
	r.client.Close()

	gone, cancel := context.WithTimeout(ctx, r.o.RebootTimeout)
	defer cancel()
	s := r.rep.Step(phase, "wait for the target to go down")
	var err error
	if len(cfg.ProxyJump) > 0 {
		// The target is not reachable directly; give it time to go down.
		select {
		case <-gone.Done():
			err = gone.Err()
		case <-time.After(r.o.RebootDelay + 10*time.Second):
		}
	} else {
		// The installer's login still works until it goes down; the new
		// system may let us in with another key, or not at all.
		var seen restart
		seen, _, err = waitRestart(gone, r.target, r.o.SSH, r.hostKey, r.bootID, newWatch(s))
		if err == nil && seen != restartDown {
			s.Detail("the new system already answers", nil)
		}
	}
	if err := s.Done(err); err != nil {
		return fmt.Errorf("waiting for %s to go down after the reboot command: %w (check the machine's console)", cfg.Addr(), err)
	}
	r.forgetInstallerKey() // the installer is gone

	key, err := r.awaitNewSystem(ctx, cfg, expected)
	if err != nil {
		return err
	}
	if expected == nil {
		r.rep.Warn(phase, fmt.Sprintf("the new system's host key %s cannot be verified: %s", fingerprint(key), keyNote))
		return nil
	}
	r.rep.Info(phase, "host key verified: the new system presents the key installed for it ("+fingerprint(expected)+")", map[string]any{"hostKey": fingerprint(expected), "verified": true})
	if !bytes.Equal(expected.Marshal(), r.hostKey.Marshal()) {
		r.rep.Info(phase, fmt.Sprintf("the host key changed from the installer's; update known_hosts: ssh-keygen -R %s", knownHostsName(cfg)), nil)
	}
	check, cancelCheck := context.WithTimeout(ctx, r.o.RebootTimeout)
	defer cancelCheck()
	return r.checkNewSystem(check, a, expected)
}

// awaitNewSystem waits, at most --reboot-timeout, until the rebooted target
// at cfg answers SSH as a machine other than the installer, and returns
// the host key it presents (which must be expected, when known). While it
// waits, its step says how long and what the last try got; when it gives
// up, it says what to check.
func (r *run) awaitNewSystem(ctx context.Context, cfg *remote.Config, expected ssh.PublicKey) (ssh.PublicKey, error) {
	up, cancelUp := context.WithTimeout(ctx, r.o.RebootTimeout)
	defer cancelUp()
	s := r.rep.Step(string(PhaseReboot), "wait for the new system on "+cfg.Addr())
	w := newWatch(s)
	var key ssh.PublicKey
	var err error
	if len(cfg.ProxyJump) > 0 && expected != nil {
		opts := r.o.SSH
		opts.ExpectHostKey = expected
		var c *remote.Client
		c, err = remote.WaitUp(up, r.target, opts, w.failed)
		if err == nil {
			key = c.HostKey()
			c.Close()
		}
	} else {
		for {
			key, err = waitHostKey(up, cfg.Addr(), expected, w)
			if err != nil || r.hostKey == nil || !bytes.Equal(key.Marshal(), r.hostKey.Marshal()) {
				// A key other than the installer's is a machine other than the
				// installer, whatever its boot id says.
				break
			}
			check := checkBoot(up, r.target, r.o.SSH, key, r.bootID)
			if check == bootOther {
				break
			}
			if check == bootSame {
				w.got("the installer still answers (same boot id)", nil)
			} else {
				w.got("the host key answers, the login broke off (a system going down or coming up)", nil)
			}
			if err = pause(up, 2*time.Second); err != nil {
				break
			}
		}
	}
	if err == nil {
		s.Detail("answers with host key "+fingerprint(key), map[string]any{"hostKey": fingerprint(key)})
	}
	if err := s.Done(err); err != nil {
		if ctx.Err() == nil && up.Err() != nil {
			return nil, fmt.Errorf("the new system did not answer SSH on %s within %s (%s).\n"+
				"Check the machine's console: did it boot the new system, or stop in the boot loader or in stage 1 "+
				"(a disk not found, a LUKS passphrase prompt, a key file missing from the initrd)?\n"+
				"Check the firmware's boot order: does it boot the disk just installed (its UEFI entry, or the BIOS boot disk)?\n"+
				"Check the network: does the new configuration bring up this interface and address and start sshd "+
				"(services.openssh.enable), and does no firewall stand in between?\n"+
				"--reboot-timeout waits longer", cfg.Addr(), r.o.RebootTimeout, w.last())
		}
		return nil, err
	}
	return key, nil
}

// installedHostKey reads the public host key the installed system will
// present: from MNT/etc/ssh (put there by --copy-host-keys or
// --extra-files). nil means the new system generates its own keys.
func (r *run) installedHostKey(ctx context.Context) (ssh.PublicKey, string) {
	mnt := r.o.mountPoint()
	cmd := fmt.Sprintf(`for t in ed25519 ecdsa rsa; do
  k=%s/etc/ssh/ssh_host_${t}_key
  if [ -f "$k.pub" ]; then cat "$k.pub"; exit 0; fi
  if [ -f "$k" ] && command -v ssh-keygen >/dev/null 2>&1; then ssh-keygen -y -f "$k" && exit 0; fi
done`, shell.Quote(mnt))
	out, err := r.rootOutput(ctx, cmd)
	if err != nil || strings.TrimSpace(out) == "" {
		return nil, "the installed system gets new host keys on first boot; pass --copy-host-keys, or put keys under etc/ssh in --extra-files, to have it checked"
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(out))
	if err != nil {
		return nil, fmt.Sprintf("%s/etc/ssh holds a host key that does not parse (%v)", mnt, err)
	}
	return key, ""
}

// rebootScript unmounts, turns off swap and exports pools that belong to
// the installed system only (on a NixOS installer: all of them), then
// reboots detached so that the SSH session ends cleanly.
func (r *run) rebootScript(a *artifacts) string {
	var disks, pools []string
	if a.layout != nil {
		for _, d := range a.layout.Disk {
			disks = append(disks, d.Device)
		}
		for p := range a.layout.Zpool {
			pools = append(pools, p)
		}
	}
	slices.Sort(disks)
	slices.Sort(pools)
	installer := "0"
	if r.facts.IsInstaller {
		installer = "1"
	}
	return fmt.Sprintf(`set -u
mnt=%[1]s
installer=%[2]s
disks=%[3]s
pools=%[4]s
sync
if mountpoint -q "$mnt"; then
  umount -R "$mnt" || echo "warning: umount -R $mnt failed; rebooting anyway" >&2
fi
if [ "$installer" = 1 ]; then
  swapoff -a || true
else
  ours=""
  for d in $disks; do ours="$ours $(lsblk -nrpo NAME "$d" 2>/dev/null | tr '\n' ' ')"; done
  tail -n +2 /proc/swaps | while read -r dev _; do
    case " $ours " in *" $dev "*) swapoff "$dev" && echo "swapoff $dev" ;; esac
    case "$dev" in "$mnt"/*) swapoff "$dev" && echo "swapoff $dev" ;; esac
  done
fi
if command -v zpool >/dev/null 2>&1; then
  if [ "$installer" = 1 ]; then pools=$(zpool list -H -o name 2>/dev/null); fi
  for p in $pools; do
    if zpool list -H -o name "$p" >/dev/null 2>&1; then zpool export "$p" || exit 1; echo "exported pool $p"; fi
  done
fi
sync
cmd='sleep %[5]d; reboot'
if command -v setsid >/dev/null 2>&1; then
  setsid nohup sh -c "$cmd" </dev/null >/dev/null 2>&1 &
else
  nohup sh -c "$cmd" </dev/null >/dev/null 2>&1 &
fi
echo "rebooting in %[5]d s"
`, shell.Quote(r.o.mountPoint()), installer, shell.Quote(strings.Join(disks, " ")), shell.Quote(strings.Join(pools, " ")), int(r.o.RebootDelay.Round(time.Second)/time.Second))
}

// errProbeDone ends a handshake on purpose once the host key is known.
var errProbeDone = errors.New("host key received")

// waitHostKey dials addr until an SSH server answers and returns the host
// key it presents, without authenticating. With expected set only that
// key's type is negotiated, and any other key fails at once.
// Every failed try is reported to w.
func waitHostKey(ctx context.Context, addr string, expected ssh.PublicKey, w *watch) (ssh.PublicKey, error) {
	start := time.Now()
	var last error
	for {
		key, err := probeHostKey(ctx, addr, expected)
		if err != nil {
			remote.AwaitDeadline(ctx) // a probe cut short by the deadline is no try
		}
		if err == nil {
			if expected != nil && !bytes.Equal(key.Marshal(), expected.Marshal()) {
				return key, fmt.Errorf("host key verification failed for %s: the new system presents %s, but the key installed for it is %s; "+
					"this is not the machine that was installed (or it did not boot the new system)", addr, fingerprint(key), fingerprint(expected))
			}
			return key, nil
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		if ctx.Err() == nil {
			w.failed(err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for ssh on %s: %w after %s (last: %s: %v)", addr, ctx.Err(), time.Since(start).Round(time.Second), remote.FailureKind(last), last)
		case <-time.After(time.Second):
		}
	}
}

func probeHostKey(ctx context.Context, addr string, expected ssh.PublicKey) (ssh.PublicKey, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, &remote.DialError{Stage: remote.StageTCP, Err: err}
	}
	defer conn.Close()
	if dl, ok := dctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	var got ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User: "anywhere-host-key-probe",
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			got = key
			return errProbeDone
		},
	}
	if expected != nil {
		cfg.HostKeyAlgorithms = []string{expected.Type()}
		if expected.Type() == ssh.KeyAlgoRSA {
			cfg.HostKeyAlgorithms = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
	}
	_, _, _, err = ssh.NewClientConn(conn, addr, cfg)
	if got != nil {
		return got, nil
	}
	if err == nil {
		err = errors.New("no host key received")
	}
	return nil, &remote.DialError{Stage: remote.StageHandshake, Err: err}
}

// checkNewSystem logs in to the rebooted target (host key pinned) and
// checks that it booted again and runs the installed system.
func (r *run) checkNewSystem(ctx context.Context, a *artifacts, expected ssh.PublicKey) error {
	phase := string(PhaseReboot)
	opts := r.o.SSH
	opts.ExpectHostKey = expected
	s := r.rep.Step(phase, "check the new system")
	c, err := remote.Dial(ctx, r.target, opts)
	if err != nil {
		s.Done(nil)
		r.rep.Warn(phase, "could not log in to the new system to check it (its host key was verified): "+err.Error())
		return nil
	}
	defer c.Close()
	out, err := c.User().Output(ctx, "cat /proc/sys/kernel/random/boot_id; readlink /run/current-system || echo; cat /proc/sys/kernel/hostname")
	if err != nil {
		return s.Done(fmt.Errorf("checking the new system: %w", err))
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	for len(lines) < 3 {
		lines = append(lines, "")
	}
	bootID, current, hostname := lines[0], lines[1], lines[2]
	system := a.toplevel
	if system == "" && !strings.HasSuffix(r.state.Inputs["system"], ".drv") {
		system = r.state.Inputs["system"]
	}
	s.Detail("hostname "+hostname, map[string]any{"hostname": hostname, "bootId": bootID, "currentSystem": current})
	switch {
	case current != "" && system != "" && current != system:
		return s.Done(fmt.Errorf("the new system runs %s, not the installed %s: did it boot the right disk?", current, system))
	}
	s.Done(nil)
	if bootID != "" && bootID == r.bootID {
		r.rep.Warn(phase, "the boot id did not change: the target answered without having rebooted")
	}
	if current == "" {
		r.rep.Warn(phase, "the new system has no /run/current-system; is it NixOS?")
	}
	return nil
}

func knownHostsName(cfg *remote.Config) string {
	if cfg.Port == 22 {
		return cfg.HostName
	}
	return fmt.Sprintf("[%s]:%d", cfg.HostName, cfg.Port)
}
