package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen/nixos"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/diskotest"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// nixConfig keeps Nix offline and lets root build without build users or a sandbox.
const nixConfig = "substituters =\nexperimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false"

// standInLayout is the test layout: an EF00 "ESP" and a root. The ESP is ext4 because
// this machine's kernel cannot mount vfat; the stand-in's boot loader install only
// needs /boot to be a mount point.
const standInLayout = `{"disk":{"main":{"device":"/dev/disk/by-id/usb-placeholder","content":{"type":"gpt","partitions":{
  "ESP":{"size":"64M","type":"EF00","content":{"type":"filesystem","format":"ext4","mountpoint":"/boot"}},
  "root":{"size":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}}}}}}`

// standInFlake is a flake whose nixosConfigurations.stick is the stand-in NixOS system
// (internal/testvm: a real closure shaped like a NixOS toplevel, whose
// switch-to-configuration installs systemd-boot on /boot) with the layout above.
func standInFlake(t *testing.T) (dir, toplevel string) {
	t.Helper()
	d, err := config.Load([]byte(standInLayout), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nixosJSON, err := nixos.JSON(d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sys, err := testvm.BuildSystem(ctx, testvm.SystemOptions{NixOSConfig: nixosJSON, Hostname: "stick", Log: testvm.LogT(t)})
	if err != nil {
		t.Fatalf("building the stand-in system: %v", err)
	}
	dir = filepath.Join(t.TempDir(), "flake")
	os.MkdirAll(dir, 0o755)
	flake := fmt.Sprintf(`{
  outputs = { self }: {
    nixosConfigurations.stick.config = {
      disko.devices = builtins.fromJSON (builtins.readFile ./layout.json);
      system.build.toplevel = builtins.storePath %q;
    };
  };
}
`, sys.Toplevel)
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(flake), 0o644)
	os.WriteFile(filepath.Join(dir, "layout.json"), []byte(standInLayout), 0o644)
	return dir, sys.Toplevel
}

// TestLoopInstall installs the stand-in system with the disko-install binary onto a
// loop device (in a private mount namespace, udevd running), then checks the disk: its
// partitions, the closure registered in its store, the system profile, the boot loader
// the stand-in's switch-to-configuration installed and the extra file. A second run
// with --mode mount updates the install and keeps the data. Run it under the shared
// lock: flock /tmp/heavy.lock go test ./cmd/disko-install -run Loop
func TestLoopInstall(t *testing.T) {
	diskotest.Require(t, "sgdisk", "mkfs.ext4", "partx", "wipefs", "blkid", "nix", "nix-build", "nix-store", "nix-env", "busybox", "chroot")
	t.Setenv("NIX_CONFIG", nixConfig)
	flake, toplevel := standInFlake(t)
	dev := testtarget.LoopDevice(t, 1<<30)
	if err := testtarget.RefuseUnlessOwnLoop(dev); err != nil {
		t.Fatal(err)
	}
	diskotest.StartUdev(t)
	diskotest.TriggerUdev(t, dev)
	ns := diskotest.NewNamespace(t)
	bin := diskotest.Build(t, ".", "disko-install")
	mnt := filepath.Join(t.TempDir(), "root")
	key := filepath.Join(t.TempDir(), "ssh_host_ed25519_key")
	os.WriteFile(key, []byte("not a real key\n"), 0o600)

	diskoInstall := func(args ...string) string {
		t.Helper()
		start := time.Now()
		args = append([]string{"--flake", flake + "#stick", "--disk", "main", dev, "--mount-point", mnt}, args...)
		out, errs, code := ns.Run([]string{"DISKO_DEVICE_TIMEOUT=20"}, bin, args...)
		t.Logf("disko-install %s: exit %d in %.1fs\n%s", strings.Join(args, " "), code, time.Since(start).Seconds(), errs)
		if code != 0 {
			t.Fatalf("disko-install failed:\nstdout: %s", out)
		}
		return out
	}

	// A configuration that is not a lib.nixosSystem cannot take --system-config.
	if out, errs, code := ns.Run(nil, bin, "--flake", flake+"#stick", "--disk", "main", dev, "--dry-run", "--system-config", "{}"); code != 1 ||
		!strings.Contains(errs, "nixosConfigurations.stick has no extendModules") || !strings.Contains(errs, "disko-install failed") {
		t.Errorf("--system-config on a configuration without extendModules: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}

	// --dry-run builds and says what it would run, and touches nothing.
	out := diskoInstall("--dry-run")
	removeDryRunScript(t, out)
	if !strings.Contains(out, "--yes-wipe-all-disks") || !strings.Contains(out, fmt.Sprintf("Would run: nixos-install --system '%s' --root '%s'", toplevel, mnt)) {
		t.Errorf("--dry-run printed:\n%s", out)
	}
	if b, _ := exec.Command("blkid", "-p", dev).Output(); len(b) != 0 {
		t.Fatalf("--dry-run wrote to the disk: %s", b)
	}

	out = diskoInstall("--extra-files", key, "/etc/ssh/ssh_host_ed25519_key")
	if !strings.Contains(out, "disko-install succeeded") {
		t.Errorf("stdout: %q, want disko-install succeeded", out)
	}
	if got := ns.Mounts(t, mnt); got != "" {
		t.Errorf("still mounted after the install:\n%s", got)
	}
	if _, err := os.Stat(mnt); !os.IsNotExist(err) {
		t.Errorf("the mount point %s is left behind (%v)", mnt, err)
	}
	checkInstalled(t, ns, dev, toplevel, "1")

	// --mode mount: update the installed system in place; a file written on the root stays.
	look := filepath.Join(t.TempDir(), "look")
	ns.Run(nil, "mkdir", "-p", look)
	if _, errs, code := ns.Run(nil, "sh", "-c", fmt.Sprintf("mount %sp2 %s && echo kept > %s/marker && umount %s", dev, look, look, look)); code != 0 {
		t.Fatalf("writing a marker: %s", errs)
	}
	diskoInstall("--mode", "mount")
	checkInstalled(t, ns, dev, toplevel, "1")
	if out, errs, _ := ns.Run(nil, "sh", "-c", fmt.Sprintf("mount %sp2 %s && cat %s/marker; umount %s", dev, look, look, look)); out != "kept\n" {
		t.Errorf("--mode mount lost the data on the root: marker reads %q (%s)", out, errs)
	}
}

// checkInstalled mounts the installed disk in the namespace and checks what disko-install
// left there.
func checkInstalled(t *testing.T, ns *diskotest.Namespace, dev, toplevel, generation string) {
	t.Helper()
	parts, err := exec.Command("lsblk", "--noheadings", "--list", "--output", "NAME,PARTLABEL,PARTTYPE,FSTYPE", dev).Output()
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Base(dev)
	for _, want := range []string{
		base + "p1 disk-main-ESP c12a7328-f81f-11d2-ba4b-00a0c93ec93b ext4",
		base + "p2 disk-main-root 0fc63daf-8483-4772-8e79-3d69d8477de4 ext4",
	} {
		if !strings.Contains(strings.Join(strings.Fields(string(parts)), " "), want) {
			t.Errorf("lsblk %s:\n%s\nwant a partition %q", dev, parts, want)
		}
	}
	root := filepath.Join(t.TempDir(), "check")
	if _, errs, code := ns.Run(nil, "sh", "-c", fmt.Sprintf("mkdir -p %[1]s && mount %[2]sp2 %[1]s && mkdir -p %[1]s/boot && mount %[2]sp1 %[1]s/boot", root, dev)); code != 0 {
		t.Fatalf("mounting the installed disk: %s", errs)
	}
	defer ns.Run(nil, "umount", "-R", root)
	check := func(what, script, want string) {
		t.Helper()
		out, errs, code := ns.Run(nil, "sh", "-c", script)
		if code != 0 || strings.TrimSpace(out) != want {
			t.Errorf("%s: %q (exit %d, %s), want %q", what, strings.TrimSpace(out), code, errs, want)
		}
	}
	check("the system closure is valid in the installed store",
		fmt.Sprintf("nix-store --store local?root=%s --check-validity %s && echo valid", root, toplevel), "valid")
	check("the system profile",
		fmt.Sprintf("readlink %[1]s/nix/var/nix/profiles/system && readlink %[1]s/nix/var/nix/profiles/system-%[2]s-link", root, generation),
		fmt.Sprintf("system-%s-link\n%s", generation, toplevel))
	check("the boot loader on the ESP",
		fmt.Sprintf("cd %s/boot && ls EFI/BOOT && ls EFI/systemd && ls loader/entries | wc -l", root),
		"BOOTX64.EFI\nsystemd-bootx64.efi\n1")
	check("the extra file",
		fmt.Sprintf("stat -c '%%a %%U' %s/etc/ssh/ssh_host_ed25519_key", root), "600 root")
}
