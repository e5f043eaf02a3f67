package image

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeSystem is a NixOS-shaped toplevel whose switch-to-configuration, run by a static
// busybox of its closure, records what it finds (the environment nixos-enter gives it)
// onto the ESP, or fails when fail is set.
const fakeSystem = `{ fail }:
let
  # busybox picks its applet by its own name: it must be called busybox.
  dir = builtins.path { path = /usr/bin; name = "busybox-static"; filter = p: t: baseNameOf p == "busybox"; };
  bb = "${dir}/busybox";
in derivation {
  name = if fail then "fake-nixos-system-failing" else "fake-nixos-system";
  system = builtins.currentSystem;
  builder = bb;
  args = [ "sh" "-ec" ''
    ${bb} mkdir -p $out/bin
    ${bb} cat > $out/bin/switch-to-configuration <<EOF
    #!${bb} sh
    set -e
    ${if fail then "echo 'boot loader: no space on the ESP' >&2; exit 1" else ""}
    test "\$1" = boot
    test "\$NIXOS_INSTALL_BOOTLOADER" = 1
    test -f /etc/NIXOS
    test "\$(${bb} stat -c %d /boot)" != "\$(${bb} stat -c %d /)"
    ${bb} mkdir -p /boot/EFI/BOOT
    ${bb} ls /dev | ${bb} tr '\n' ' ' > /boot/EFI/BOOT/devices
    ${bb} readlink /run/current-system > /boot/EFI/BOOT/current
    ${bb} readlink /nix/var/nix/profiles/system > /boot/EFI/BOOT/profile
    echo boot loader installed
    EOF
    ${bb} chmod 555 $out/bin/switch-to-configuration
  '' ];
}`

// TestBootloaderEnvironment builds images with a toplevel whose switch-to-configuration
// checks and records its surroundings, as user nobody: it runs with `boot` and
// NIXOS_INSTALL_BOOTLOADER=1, sees /etc/NIXOS, the system profile and
// /run/current-system, /boot is a mount point of its own, /dev holds no block device,
// and what it writes to /boot lands in the vfat ESP. When it fails, the build fails
// with its message and leaves nothing behind.
func TestBootloaderEnvironment(t *testing.T) {
	for _, tool := range []string{"nix-build", "nix-store", "mtype", "mkfs.vfat", "mkfs.ext4", "sfdisk", "unshare"} {
		if _, err := toolPath(tool); err != nil {
			t.Skip(err)
		}
	}
	if _, err := os.Stat("/usr/bin/busybox"); err != nil {
		t.Skip("needs a static /usr/bin/busybox (Debian: busybox-static)")
	}
	t.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false")
	expr := filepath.Join(t.TempDir(), "system.nix")
	os.WriteFile(expr, []byte(fakeSystem), 0o644)
	build := func(fail bool) string {
		out, err := exec.Command("nix-build", "--no-out-link", expr, "--arg", "fail", strconv.FormatBool(fail)).CombinedOutput()
		if err != nil {
			t.Skipf("nix-build cannot build here: %v\n%s", err, out)
		}
		lines := strings.Fields(string(out))
		return lines[len(lines)-1]
	}

	toplevel := build(false)
	out := sharedTempDir(t)
	res := helper(t, asNobody(t), []string{"HOME=" + out}, helperJob{Layout: exampleLayout, Out: out, System: toplevel, ClosureInfo: closureInfo(t, toplevel)})
	if res.Err != "" {
		t.Fatal(res.Err)
	}
	regions, err := partitionRegions(t.Context(), res.Paths[0])
	if err != nil {
		t.Fatal(err)
	}
	esp := fmt.Sprintf("%s@@%d", res.Paths[0], regions[1].offset)
	for file, want := range map[string]string{
		"devices": "fd full null random tty urandom zero ",
		"current": toplevel + "\n",
		"profile": "system-1-link\n",
	} {
		got, err := exec.Command("mtype", "-i", esp, "::/EFI/BOOT/"+file).CombinedOutput()
		if err != nil || string(got) != want {
			t.Errorf("ESP file %s: %v %q, want %q", file, err, got, want)
		}
	}

	failing := build(true)
	out = sharedTempDir(t)
	res = helper(t, asNobody(t), []string{"HOME=" + out}, helperJob{Layout: exampleLayout, Out: out, System: failing, ClosureInfo: closureInfo(t, failing)})
	wantFailure(t, res, "switch-to-configuration boot (the bootloader) failed", "boot loader: no space on the ESP")
}
