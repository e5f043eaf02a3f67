package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// TestRefusals: runs that must stop early, with a message that says why,
// and leave the target as it was.
func TestRefusals(t *testing.T) {
	needRoot(t)
	ex := theExample(t)

	t.Run("unreachable host", func(t *testing.T) {
		ctx, cancel := testvm.ContextT(t)
		defer cancel()
		port := closedPort(t)
		flags := []string{"-i", ex.clientKey, "-p", strconv.Itoa(port), "--ssh-option", "StrictHostKeyChecking=yes"}
		res := anywhere(t, ctx, t.TempDir(), append(ex.args(flags, ex.installer.Tarball), "root@127.0.0.1")...)
		if res.code == 0 {
			t.Fatal("anywhere succeeded against a closed port")
		}
		if res.took > 15*time.Second {
			t.Errorf("took %s to give up on a closed port", res.took)
		}
		want := fmt.Sprintf("127.0.0.1:%d", port)
		if !strings.Contains(res.output, want) || !strings.Contains(res.output, "connection refused") {
			t.Errorf("the error does not name %s and the refusal:\n%s", want, res.output)
		}
	})

	t.Run("too little memory", func(t *testing.T) {
		vm := testvm.StartT(t, testvm.Options{MemoryMiB: 640, Disks: []testvm.DiskSpec{{Size: 24 * testvm.GiB}}})
		ctx, cancel := testvm.ContextT(t)
		defer cancel()
		before, _, err := vm.Run(ctx, "cat /proc/sys/kernel/random/boot_id")
		if err != nil {
			t.Fatal(err)
		}
		res := anywhere(t, ctx, t.TempDir(), append(ex.args(sshArgs(vm), ex.installer.Tarball), "root@127.0.0.1")...)
		if res.code == 0 {
			t.Fatal("anywhere kexec'd a 640 MiB machine")
		}
		for _, want := range []string{"refusing to kexec", "of RAM (MemTotal)", "needs 900.0 MiB"} {
			if !strings.Contains(res.output, want) {
				t.Errorf("the refusal does not say %q", want)
			}
		}
		if strings.Contains(res.output, "kexec: upload") {
			t.Error("the tarball was uploaded before the refusal")
		}
		after, _, err := vm.Run(ctx, "cat /proc/sys/kernel/random/boot_id; if test -e /etc/is_kexec; then echo kexeced; fi")
		if err != nil || string(after) != string(before) {
			t.Errorf("the target changed: boot id %q -> %q (%v)", before, after, err)
		}
	})
}

// TestResumeAndHostKeyChange reuses one guest: a run whose connection is cut
// in the install phase, its re-run that resumes (kexec and disko are not
// done again), then a kexec into an installer that does not carry the host
// keys over, which anywhere must refuse.
func TestResumeAndHostKeyChange(t *testing.T) {
	needRoot(t)
	ex := theExample(t)
	// Only this machine can reach the URL (127.0.0.1 is the guest itself in
	// the guest): the target's download fails and anywhere streams it up.
	url, _ := serveFile(t, ex.installer.Tarball)
	vm := testvm.StartT(t, testvm.Options{MemoryMiB: 1536, Disks: []testvm.DiskSpec{{Size: 24 * testvm.GiB}}})
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	// The old system is reached on one port, the installer on another
	// (--post-kexec-ssh-port); both lead to the guest's sshd.
	proxy, after := newCutProxy(t, vm.SSHAddr()), newCutProxy(t, vm.SSHAddr())
	flags := []string{"-i", vm.ClientKeyPath(), "-p", strconv.Itoa(proxy.Port()),
		"--post-kexec-ssh-port", strconv.Itoa(after.Port()),
		"--ssh-option", "UserKnownHostsFile=" + knownHosts(t, vm.HostKey(), proxy.Port(), after.Port()),
		"--ssh-option", "StrictHostKeyChecking=yes"}
	args := append(ex.args(flags, url), "--phases", "kexec,disko,install", "root@127.0.0.1")
	home := t.TempDir() // the state file lives here, for both runs
	// A machine id and a second address, which the installer must carry over
	// (as nixos-images' kexec/run does), checked once the installer is up.
	if _, _, err := vm.Run(ctx, "echo 0123456789abcdef0123456789abcdef >/etc/machine-id; ip addr add 192.0.2.7/24 dev eth0"); err != nil {
		t.Fatal(err)
	}

	ok := t.Run("connection cut in the install phase", func(t *testing.T) {
		cut := false
		res := anywhereWatch(t, ctx, home, func(line string) {
			if !cut && strings.HasPrefix(line, "### install:") {
				cut = true
				proxy.Cut()
				after.Cut()
			}
		}, args...)
		if res.code == 0 {
			t.Fatal("anywhere succeeded although its connection was cut")
		}
		for _, want := range []string{"kexec: download " + url + " here and upload it", "the target could not download",
			fmt.Sprintf("wait for the installer on root@127.0.0.1:%d", after.Port()), "run the same command again to resume"} {
			if !strings.Contains(res.output, want) {
				t.Errorf("anywhere did not say %q", want)
			}
		}
	})
	if !ok {
		t.FailNow()
	}
	ok = t.Run("re-run resumes", func(t *testing.T) {
		res := anywhere(t, ctx, home, args...)
		if res.code != 0 {
			t.Fatalf("the re-run exited %d", res.code)
		}
		for _, want := range []string{"kexec: skipped (done in a previous run", "disko: skipped (done in a previous run", "### install: done"} {
			if !strings.Contains(res.output, want) {
				t.Errorf("the re-run did not say %q", want)
			}
		}
		if strings.Contains(res.output, "### kexec: boot") || strings.Contains(res.output, "### disko: wipe") {
			t.Error("the re-run did kexec or disko again")
		}
		if err := vm.Reconnect(ctx); err != nil {
			t.Fatal(err)
		}
		out, _, err := vm.Run(ctx, "readlink -f /mnt/nix/var/nix/profiles/system; cat /mnt/etc/demo/greeting; ls /mnt/boot/loader/entries")
		if err != nil {
			t.Fatal(err)
		}
		want := ex.system.Toplevel + "\n" + ex.greeting + "nixos-generation-1.conf\n"
		if string(out) != want {
			t.Errorf("installed: %q, want %q", out, want)
		}
		out, _, err = vm.Run(ctx, `test -e /etc/is_kexec && cat /etc/machine-id && ip -4 -o addr show dev eth0 | awk '{print $4}' | sort &&
			ip -4 route show default && wc -l </root/.ssh/authorized_keys && stat -c %a /etc/ssh/ssh_host_ed25519_key`)
		if err != nil {
			t.Fatal(err)
		}
		want = "0123456789abcdef0123456789abcdef\n10.0.2.15/24\n192.0.2.7/24\ndefault via 10.0.2.2 dev eth0 \n1\n400\n"
		if string(out) != want {
			t.Errorf("the installer did not carry over the machine id, addresses, route, authorized key or host key mode: %q, want %q", out, want)
		}
	})
	if !ok {
		t.FailNow()
	}
	t.Run("host key changes across kexec", func(t *testing.T) {
		bad := withoutHostKeys(t, ex.installer.Tarball)
		dummy := addToStore(t, "dummy", "not used by the kexec phase\n")
		res := anywhere(t, ctx, t.TempDir(), append(sshArgs(vm), "--phases", "kexec", "--force-kexec",
			"--kexec", bad, "--store-paths", dummy, dummy, "root@127.0.0.1")...)
		if res.code == 0 {
			t.Fatal("anywhere accepted an installer with another host key")
		}
		for _, want := range []string{"kexec: upload " + bad, "after the kexec the target presents host key", "refusing to continue"} {
			if !strings.Contains(res.output, want) {
				t.Errorf("anywhere did not say %q", want)
			}
		}
	})
}
