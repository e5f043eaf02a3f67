package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// TestInstall is the headline: a machine running another Linux (the rig's
// guest, booted directly, on a blank virtio disk) is taken by one anywhere
// run through kexec into the installer, disko (ESP + LUKS + LVM from
// examples/disk-config.nix), install and reboot. The reboot restarts the
// machine with UEFI firmware on the same disk, where systemd-boot, the
// stand-in system's initrd (which unlocks LUKS with its initrd secret) and
// its sshd must come up. Then the test logs in and checks what was
// installed.
func TestInstall(t *testing.T) {
	needRoot(t)
	ex := theExample(t)
	// The installer comes from a URL the target downloads itself (as the
	// default GitHub one), served here and forwarded into the guest.
	url, port := serveFile(t, ex.installer.Tarball)
	vm := testvm.StartT(t, testvm.Options{
		MemoryMiB:     1536,
		Disks:         []testvm.DiskSpec{{Size: 24 * testvm.GiB}}, // the layout's / is 20G
		OnReboot:      testvm.BootUEFI,
		BootTimeout:   4 * time.Minute,
		GuestForwards: []testvm.GuestForward{{GuestAddr: "10.0.2.100:8080", HostAddr: fmt.Sprintf("127.0.0.1:%d", port)}},
	})
	ctx, cancel := testvm.ContextT(t)
	defer cancel()

	guestURL := strings.Replace(url, fmt.Sprintf("127.0.0.1:%d", port), "10.0.2.100:8080", 1)
	oldBoot, _, err := vm.Run(ctx, "cat /proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	// The hardware configuration is made in the installer (the old system
	// has no nixos-generate-config), as nixos-anywhere does.
	hardware := filepath.Join(t.TempDir(), "hardware-configuration.nix")
	args := append(ex.args(sshArgs(vm), guestURL), "--kexec-extra-flags", "--no-sync",
		"--generate-hardware-config", "nixos-generate-config", hardware, "root@127.0.0.1")
	res := anywhere(t, ctx, t.TempDir(), args...)
	if res.code != 0 {
		t.Fatalf("anywhere exited %d after %s", res.code, res.took.Round(time.Second))
	}
	t.Logf("anywhere took %s:\n%s", res.took.Round(time.Second), phaseTimes(res.output))
	for _, want := range []string{
		"kexec: download " + guestURL + " on the target",
		"the installer presents the host key seen before the kexec",
		"host key verified: the new system presents the key installed for it",
	} {
		if !strings.Contains(res.output, want) {
			t.Errorf("anywhere did not say %q", want)
		}
	}

	report, err := os.ReadFile(hardware)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(report), "(--show-hardware-config --no-filesystems): ID=nixos VARIANT_ID=installer") ||
		strings.Contains(string(report), "boot_id="+strings.TrimSpace(string(oldBoot))) {
		t.Errorf("the hardware configuration was not made in the installer:\n%s", report)
	}
	order := []string{"kexec: check the installer", "hardware: generate the hardware configuration", "build: list the system closure", "### disko:"}
	last := -1
	for _, o := range order {
		i := strings.Index(res.output, o)
		if i < 0 {
			t.Errorf("anywhere did not say %q", o)
		} else if i < last {
			t.Errorf("%q comes before the step that must precede it (order %q)", o, order)
		}
		last = i
	}

	if err := vm.Reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if vm.Mode() != testvm.BootUEFI {
		t.Fatalf("the machine did not reboot into UEFI mode (mode %s)", vm.Mode())
	}
	checkInstalled(t, vm, ex)
	console, _ := os.ReadFile(vm.ConsoleLog())
	if !strings.Contains(string(console), "stage-1: opening /dev/disk/by-partlabel/disk-main-luks as crypted") {
		t.Errorf("the installed system's initrd did not unlock the LUKS partition (console)")
	}

	// The installed system boots again on its own: a reboot resets the same
	// machine (same qemu), and the firmware finds systemd-boot again.
	start := time.Now()
	if _, _, err := vm.Run(ctx, "setsid sh -c 'sleep 1; reboot' </dev/null >/dev/null 2>&1 &"); err != nil {
		t.Fatal(err)
	}
	if err := vm.Reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("UEFI reboot of the installed system: sshd answered %.1fs after the reboot command", time.Since(start).Seconds())
	checkInstalled(t, vm, ex)
}

// checkInstalled logs in to the installed system (Reconnect pinned the host
// key it presents: the one the target had before the install, carried over
// by the installer and --copy-host-keys) and checks its mounts, the system
// it runs and a file from --extra-files.
func checkInstalled(t *testing.T, vm *testvm.VM, ex *example) {
	t.Helper()
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	run := func(cmd string) string {
		t.Helper()
		out, _, err := vm.Run(ctx, cmd)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	// Each mount point's file system type and device (resolved: busybox's
	// mount records the name it was given, e.g. /dev/pool/root).
	for _, m := range []struct{ target, device, fstype string }{
		{"/", "/dev/pool/root", "ext4"},
		{"/boot", "/dev/vda1", "vfat"},
		{"/home", "/dev/pool/home", "ext4"},
	} {
		var got struct {
			Filesystems []struct{ Target, Source, Fstype string }
		}
		if err := json.Unmarshal([]byte(run("findmnt --json -o TARGET,SOURCE,FSTYPE "+m.target)), &got); err != nil || len(got.Filesystems) != 1 {
			t.Errorf("findmnt %s: %v (%+v)", m.target, err, got)
			continue
		}
		fs := got.Filesystems[0]
		dev := run("readlink -f " + fs.Source + "; readlink -f " + m.device)
		if d := strings.Fields(dev); fs.Fstype != m.fstype || len(d) != 2 || d[0] != d[1] {
			t.Errorf("%s: %s (%s), want %s (%s)", m.target, fs.Source, fs.Fstype, m.device, m.fstype)
		}
	}
	// / is an LV of a VG on the LUKS container (opened as the layout names
	// it) on the disk's second partition.
	if got := run("test -b /dev/mapper/crypted && echo ok"); got != "ok\n" {
		t.Errorf("no /dev/mapper/crypted: %q", got)
	}
	if got := run("lsblk -s -n -r -o TYPE /dev/pool/root | sort | tr '\\n' ' '"); got != "crypt disk lvm part " {
		t.Errorf("lsblk -s of /: %q, want crypt, disk, lvm, part", got)
	}
	if got := strings.TrimSpace(run("readlink /run/current-system")); got != ex.system.Toplevel {
		t.Errorf("/run/current-system = %q, want %s", got, ex.system.Toplevel)
	}
	if got := run("cat /etc/demo/greeting"); got != ex.greeting {
		t.Errorf("/etc/demo/greeting = %q", got)
	}
	if got := run("stat -c '%a %u %g' /etc/demo/greeting"); got != "640 1234 100\n" {
		t.Errorf("/etc/demo/greeting: mode, owner = %q, want 640 1234 100", got)
	}
}
