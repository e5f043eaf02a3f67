package image

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// TestBootableImage builds the example layout's image with the stand-in NixOS system
// (the one the end-to-end tests install), as user nobody, and boots it in qemu with
// OVMF: the system's switch-to-configuration boot must have put systemd-boot, the
// kernel, the initrd and a loader entry onto the ESP, and the booted system must answer
// over SSH with the layout's mounts. Run it under the shared lock:
//
//	flock /tmp/heavy.lock go test ./internal/image -run BootableImage -v
func TestBootableImage(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM (minutes under TCG)")
	}
	for _, tool := range []string{"nix-build", "nix-store", "qemu-system-x86_64", "mkfs.vfat", "mcopy", "mkfs.ext4", "sfdisk", "unshare"} {
		if _, err := toolPath(tool); err != nil {
			t.Skip(err)
		}
	}
	t.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false")
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	// The image carries a host key of its own (--post-format-files), owned by the user
	// who builds (nobody).
	keys := sharedTempDir(t)
	rig := newBootRig(ctx, t, exampleLayout, testvm.SystemOptions{Hostname: "imaged"}, keys)
	sys, hostKey := rig.sys, rig.hostKey
	giveToNobody(t, keys)
	out := sharedTempDir(t)
	start := time.Now()
	res := helper(t, asNobody(t), []string{"HOME=" + out}, helperJob{Layout: exampleLayout, Out: out, System: sys.Toplevel, ClosureInfo: closureInfo(t, sys.Toplevel),
		Files: []File{{Source: hostKey, Dest: "/etc/ssh/ssh_host_ed25519_key"}}})
	if res.Err != "" {
		t.Fatal(res.Err)
	}
	t.Logf("built %s as nobody in %.1fs", res.Paths[0], time.Since(start).Seconds())

	// The ESP, read with mtools: what the firmware will find.
	regions, err := partitionRegions(ctx, res.Paths[0])
	if err != nil {
		t.Fatal(err)
	}
	esp := fmt.Sprintf("%s@@%d", res.Paths[0], regions[1].offset)
	list, err := exec.Command("mdir", "-/", "-b", "-i", esp, "::/").CombinedOutput()
	if err != nil {
		t.Fatalf("mdir: %v\n%s", err, list)
	}
	for _, want := range []string{"::/EFI/BOOT/BOOTX64.EFI", "::/loader/loader.conf", "::/loader/entries/nixos-generation-1.conf"} {
		if !strings.Contains(string(list), want) {
			t.Errorf("the ESP has no %s:\n%s", want, list)
		}
	}

	vm := testvm.StartT(t, testvm.Options{
		Image:       rig.img,
		Boot:        testvm.BootUEFI,
		HostKey:     rig.hostPub,
		Disks:       []testvm.DiskSpec{{Path: res.Paths[0]}},
		BootTimeout: 4 * time.Minute,
	})
	t.Logf("UEFI boot of the image: sshd answered after %.1fs", vm.BootTime.Seconds())
	got, _, err := vm.Run(ctx, "hostname; readlink /run/current-system; findmnt -n -o FSTYPE /boot; findmnt -n -o FSTYPE /; test -s /nix/var/nix/db/db.sqlite && echo registered")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("imaged\n%s\nvfat\next4\nregistered\n", sys.Toplevel); string(got) != want {
		t.Errorf("the booted image:\n%s\nwant hostname imaged, %s, a vfat /boot, an ext4 /, a Nix database", got, sys.Toplevel)
	}
}
