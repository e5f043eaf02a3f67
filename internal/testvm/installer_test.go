package testvm

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestInstaller kexecs a test guest into the installer tarball the way
// nixos-anywhere does (extract, run kexec/run, wait) and checks what the
// installer must carry over: the same host key (Reconnect pins it), root's
// authorized key, the network configuration; and what makes it an
// installer: the NixOS installer markers and a working Nix.
func TestInstaller(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM; skipped in -short mode")
	}
	ctx, cancel := ContextT(t)
	defer cancel()
	inst, err := BuildInstaller(ctx, BuildOptions{Log: &testLog{t: t}})
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("VM test skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	vm := StartT(t, Options{MemoryMiB: 1536})
	run := func(cmd string) string {
		t.Helper()
		out, _, err := vm.Run(ctx, cmd)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	// A machine id and a second address: both must survive the kexec.
	run("echo 0123456789abcdef0123456789abcdef > /etc/machine-id; ip addr add 192.0.2.7/24 dev eth0")
	start := time.Now()
	if err := vm.CopyIn(ctx, inst.Tarball, "/root/kexec/installer.tar.gz", 0o644); err != nil {
		t.Fatal(err)
	}
	upload := time.Since(start)
	run("cd /root/kexec && tar -xzf installer.tar.gz")
	extracted := time.Since(start)
	out := run("cd /root/kexec && setsid --wait ./kexec/run 2>&1")
	if !strings.Contains(out, "machine will boot into nixos") {
		t.Fatalf("kexec/run did not announce the kexec:\n%s", out)
	}
	loaded := time.Since(start)
	if err := vm.Reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("upload %.1fs, extract %.1fs, run %.1fs, installer up %.1fs later (%.1fs in all)",
		upload.Seconds(), (extracted - upload).Seconds(), (loaded - extracted).Seconds(),
		(time.Since(start) - loaded).Seconds(), time.Since(start).Seconds())

	checks := map[string]string{
		"test -e /etc/is_kexec && . /etc/os-release && echo $ID $VARIANT_ID": "nixos installer\n",
		"cat /etc/machine-id": "0123456789abcdef0123456789abcdef\n",
		"ip -4 -o addr show dev eth0 | awk '{print $4}' | sort": "10.0.2.15/24\n192.0.2.7/24\n",
		"ip -4 route show default":                              "default via 10.0.2.2 dev eth0 \n",
		"cat /root/.ssh/authorized_keys | wc -l":                "1\n",
		"stat -c %a /etc/ssh/ssh_host_ed25519_key":              "400\n",
	}
	for cmd, want := range checks {
		if got := run(cmd); got != want {
			t.Errorf("%s: got %q, want %q", cmd, got, want)
		}
	}
	if got := run("NIX_CONFIG='substituters =' nix-store --version"); !strings.Contains(got, "nix") {
		t.Errorf("nix-store --version: %q", got)
	}
}
