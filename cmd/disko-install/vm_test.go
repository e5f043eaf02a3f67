package main

import (
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
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// uefiLayout is a real UEFI layout: a vfat ESP and an ext4 root.
const uefiLayout = `{"disk":{"main":{"device":"/dev/disk/by-id/usb-placeholder","content":{"type":"gpt","partitions":{
  "ESP":{"size":"512M","type":"EF00","content":{"type":"filesystem","format":"vfat","mountpoint":"/boot"}},
  "root":{"size":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}}}}}}`

// TestVMUEFIBoot runs disko-install inside a VM guest (whose kernel has vfat, unlike
// this machine's) onto its blank virtio disk, with the stand-in system as the flake's
// configuration, then resets the machine with UEFI firmware: systemd-boot, the
// stand-in's initrd and its sshd must come up from the installed disk. Run it under the
// shared lock: flock /tmp/heavy.lock go test ./cmd/disko-install -run VM
func TestVMUEFIBoot(t *testing.T) {
	diskotest.Require(t, "nix", "nix-store", "qemu-system-x86_64")
	t.Setenv("NIX_CONFIG", nixConfig)
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	img, err := testvm.Build(ctx, testvm.BuildOptions{ExtraPackages: []string{"nix-bin"}, Log: testvm.LogT(t)})
	if err != nil {
		t.Fatal(err)
	}
	clientPub, err := os.ReadFile(img.ClientKeyPath + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	d, err := config.Load([]byte(uefiLayout), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nixosJSON, err := nixos.JSON(d)
	if err != nil {
		t.Fatal(err)
	}
	sys, err := testvm.BuildSystem(ctx, testvm.SystemOptions{NixOSConfig: nixosJSON, Hostname: "stick",
		AuthorizedKeys: []string{strings.TrimSpace(string(clientPub))}, Log: testvm.LogT(t)})
	if err != nil {
		t.Fatal(err)
	}

	// What the guest gets, read-only: the command, the flake, the system's closure.
	share := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(share, "disko-install"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	os.MkdirAll(filepath.Join(share, "flake"), 0o755)
	os.WriteFile(filepath.Join(share, "flake", "layout.json"), []byte(uefiLayout), 0o644)
	os.WriteFile(filepath.Join(share, "flake", "flake.nix"), []byte(fmt.Sprintf(`{
  outputs = { self }: {
    nixosConfigurations.stick.config = {
      disko.devices = builtins.fromJSON (builtins.readFile ./layout.json);
      system.build.toplevel = builtins.storePath %q;
    };
  };
}
`, sys.Toplevel)), 0o644)
	paths, err := exec.Command("nix-store", "-qR", sys.Toplevel).Output()
	if err != nil {
		t.Fatal(err)
	}
	export, err := os.Create(filepath.Join(share, "closure.export"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nix-store", append([]string{"--export"}, strings.Fields(string(paths))...)...)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = export, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("nix-store --export: %v %s", err, stderr.String())
	}
	export.Close()

	vm := testvm.StartT(t, testvm.Options{
		Image:       img,
		MemoryMiB:   1536,
		Disks:       []testvm.DiskSpec{{Size: 2 * testvm.GiB}},
		Shares:      []testvm.Share{{HostDir: share, GuestDir: "/share"}},
		OnReboot:    testvm.BootUEFI,
		BootTimeout: 4 * time.Minute,
	})
	run := func(cmd string) string {
		t.Helper()
		start := time.Now()
		out, errs, err := vm.Run(ctx, cmd)
		t.Logf("guest: %s (%.1fs)\n%s%s", cmd, time.Since(start).Seconds(), out, errs)
		if err != nil {
			t.Fatalf("guest: %s: %v", cmd, err)
		}
		return string(out)
	}
	nixEnv := "export NIX_CONFIG=" + `"$(printf 'substituters =\nexperimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false')"; `
	run(nixEnv + "nix-store --import < /share/closure.export >/dev/null")
	out := run(nixEnv + "/share/disko-install --flake /share/flake#stick --disk main /dev/vda " +
		"--extra-files /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key")
	if !strings.Contains(out, "disko-install succeeded") {
		t.Fatalf("disko-install did not succeed: %s", out)
	}

	// What the firmware will read: the ESP's initrd is the system's, intact.
	run("mkdir -p /tmp/esp && mount /dev/vda1 /tmp/esp && for f in /tmp/esp/EFI/nixos/*-initrd.efi; do cmp $f " + sys.Toplevel + "/initrd && gzip -t $f; done; umount /tmp/esp")

	// A reset of the same machine, booting with OVMF from the installed disk.
	start := time.Now()
	run("sync; setsid sh -c 'sleep 1; reboot -f' </dev/null >/dev/null 2>&1 &")
	if err := vm.Reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("UEFI boot of the installed disk: sshd answered %.1fs after the reboot command", time.Since(start).Seconds())
	if got := run("hostname; readlink /run/current-system; findmnt -n -o FSTYPE /boot; findmnt -n -o FSTYPE /"); got != fmt.Sprintf("stick\n%s\nvfat\next4\n", sys.Toplevel) {
		t.Errorf("the booted system: %q, want hostname stick, %s, a vfat /boot and an ext4 /", got, sys.Toplevel)
	}
	if vm.Mode() != testvm.BootUEFI {
		t.Errorf("the machine runs in mode %q, not booted by UEFI firmware", vm.Mode())
	}
}
