package e2e

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/shell"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// sudoUserSetup makes the guest a machine where only alice may log in, with
// sudo: root's authorized keys are removed, so that the installer can only
// be reached if kexec/run carried the sudo user's keys over (nixos-images'
// run reads SUDO_USER's authorized_keys). The rig's image has no setuid bits
// and no PAM stack of Debian's, so both are set up here as a distribution
// would have them; the sudoers rule and PAM's auth line come from the case.
const sudoUserSetup = `set -e
echo 'alice:x:1000:1000::/home/alice:/bin/bash' >>/etc/passwd
echo 'alice:x:1000:' >>/etc/group
echo 'alice:*:19000:0:99999:7:::' >>/etc/shadow
mkdir -p /home/alice/.ssh
mv /root/.ssh/authorized_keys /home/alice/.ssh/authorized_keys
chown -R 1000:1000 /home/alice
chmod 4755 /usr/bin/sudo
printf '%s\n' "$2" 'account sufficient pam_permit.so' 'session sufficient pam_permit.so' >/etc/pam.d/sudo
echo "alice ALL=(ALL) $1" >/etc/sudoers.d/alice
chmod 440 /etc/sudoers.d/alice
mkdir -p /usr/local/sbin
printf '%s\n' '#!/bin/bash' 'IFS= read -r -d "" pw || :' '[ "$pw" = "pw of alice" ]' >/usr/local/sbin/check-pw
chmod 755 /usr/local/sbin/check-pw
`

// TestSudoUserKexec: `anywhere alice@host` on a machine where root cannot
// log in runs the kexec through sudo, with or without a password
// (SUDO_PASSWORD), and the installer lets root in with alice's key
// (nixos-anywhere's sudo path, reference §2.17, its from-nixos-with-sudo test).
func TestSudoUserKexec(t *testing.T) {
	needRoot(t)
	ex := theExample(t)
	for _, c := range []struct {
		name, rule, auth, password string
		refused                    string // what anywhere says when sudo does not let alice in
	}{
		{"passwordless", "NOPASSWD: ALL", "auth sufficient pam_permit.so", "", ""},
		// pam_exec checks the typed password against a fixed one.
		{"password", "ALL", "auth required pam_exec.so expose_authtok quiet /usr/local/sbin/check-pw", "pw of alice", ""},
		{"wrong password", "ALL", "auth required pam_exec.so expose_authtok quiet /usr/local/sbin/check-pw", "not alice's", "did not let alice in"},
	} {
		t.Run(c.name, func(t *testing.T) {
			vm := testvm.StartT(t, testvm.Options{MemoryMiB: 1536, ExtraPackages: []string{"sudo", "libpam-modules"}})
			ctx, cancel := testvm.ContextT(t)
			defer cancel()
			setup := "sh -s " + shell.Quote(c.rule) + " " + shell.Quote(c.auth) + " <<'SETUP'\n" + sudoUserSetup + "SETUP\n"
			if _, _, err := vm.Run(ctx, setup); err != nil {
				t.Fatal(err)
			}
			t.Setenv("SUDO_PASSWORD", c.password)
			dummy := addToStore(t, "dummy", "not used by the kexec phase\n")
			flags := []string{"-i", vm.ClientKeyPath(), "-p", strconv.Itoa(vm.SSHPort()),
				"--ssh-option", "UserKnownHostsFile=" + vm.KnownHostsPath(), "--ssh-option", "StrictHostKeyChecking=yes"}
			res := anywhere(t, ctx, t.TempDir(), append(flags, "--phases", "kexec", "--kexec", ex.installer.Tarball,
				"--store-paths", dummy, dummy, "alice@127.0.0.1")...)
			if c.refused != "" {
				if res.code == 0 || !strings.Contains(res.output, c.refused) || strings.Contains(res.output, "kexec: upload") {
					t.Fatalf("anywhere exited %d; want it to stop before the kexec and say %q", res.code, c.refused)
				}
				return
			}
			if res.code != 0 {
				t.Fatalf("anywhere exited %d", res.code)
			}
			for _, want := range []string{"become root: sudo", "the installer presents the host key seen before the kexec", "### kexec: done"} {
				if !strings.Contains(res.output, want) {
					t.Errorf("anywhere did not say %q", want)
				}
			}
			if c.password != "" && strings.Contains(res.output, c.password) {
				t.Error("the sudo password appears in anywhere's output")
			}
			// Reconnect logs in as root: only alice's key, carried over, lets it in.
			if err := vm.Reconnect(ctx); err != nil {
				t.Fatal(err)
			}
			out, _, err := vm.Run(ctx, "test -e /etc/is_kexec && . /etc/os-release && echo $ID $VARIANT_ID")
			if err != nil || string(out) != "nixos installer\n" {
				t.Errorf("root on the target after the kexec: %q, %v; want the installer", out, err)
			}
		})
	}
}

// TestPasswordLoginKexec: `anywhere --env-password root@host` (SSHPASS) on a machine
// whose root logs in by password: the installer lets root in by key only, so before the
// kexec anywhere authorizes a key of its own in root's authorized_keys, which the
// installer carries over, and reaches the installer with it (nixos-anywhere's
// ssh-copy-id step). The rig's key stays authorized too, for the checks after.
func TestPasswordLoginKexec(t *testing.T) {
	needRoot(t)
	ex := theExample(t)
	const password = "pw of root"
	hash, err := exec.Command("busybox", "mkpasswd", "-m", "sha512", password).Output()
	if err != nil {
		t.Skipf("busybox mkpasswd (busybox-static) makes the password hash: %v", err)
	}
	vm := testvm.StartT(t, testvm.Options{MemoryMiB: 1536})
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	setup := `set -e
sed -i -e 's/^PermitRootLogin .*/PermitRootLogin yes/' -e 's/^PasswordAuthentication .*/PasswordAuthentication yes/' /etc/ssh/sshd_config
grep -v '^root:' /etc/shadow >/etc/shadow.new || :
echo "root:$1:19000:0:99999:7:::" | cat - /etc/shadow.new >/etc/shadow
rm /etc/shadow.new
kill -HUP "$(cat /run/sshd.pid)" # sshd re-reads its configuration; new connections wait for it
sleep 1
`
	if _, _, err := vm.Run(ctx, "sh -s "+shell.Quote(strings.TrimSpace(string(hash)))+" <<'SETUP'\n"+setup+"SETUP\n"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSHPASS", password)
	home := t.TempDir() // no key of its own: anywhere can only use the password
	dummy := addToStore(t, "dummy", "not used by the kexec phase\n")
	res := anywhere(t, ctx, home, "-p", strconv.Itoa(vm.SSHPort()), "--env-password",
		"--ssh-option", "UserKnownHostsFile="+vm.KnownHostsPath(), "--ssh-option", "StrictHostKeyChecking=yes",
		"--phases", "kexec", "--kexec", ex.installer.Tarball, "--store-paths", dummy, dummy, "root@127.0.0.1")
	if res.code != 0 {
		t.Fatalf("anywhere exited %d", res.code)
	}
	for _, want := range []string{"to root's /root/.ssh/authorized_keys", "the installer presents the host key seen before the kexec", "### kexec: done"} {
		if !strings.Contains(res.output, want) {
			t.Errorf("anywhere did not say %q", want)
		}
	}
	if err := vm.Reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	out, _, err := vm.Run(ctx, "test -e /etc/is_kexec && wc -l </root/.ssh/authorized_keys")
	if err != nil || strings.TrimSpace(string(out)) != "2" {
		t.Errorf("the installer's root has %q authorized keys (%v), want the rig's and anywhere's", out, err)
	}
}
