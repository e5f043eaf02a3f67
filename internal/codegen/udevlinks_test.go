package codegen

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen/nixos"
	"github.com/diskoanywhere/diskoanywhere/internal/diskotest"
)

// configDevices lists the devices the NixOS configuration of a layout names:
// fileSystems.*.device and swapDevices.*.device.
func configDevices(t *testing.T, c map[string]any) []string {
	t.Helper()
	var devs []string
	fss, _ := c["fileSystems"].(map[string]any)
	for _, fs := range fss {
		if dev, _ := fs.(map[string]any)["device"].(string); strings.HasPrefix(dev, "/dev/") {
			devs = append(devs, dev)
		}
	}
	swaps, _ := c["swapDevices"].([]any)
	for _, s := range swaps {
		if dev, _ := s.(map[string]any)["device"].(string); strings.HasPrefix(dev, "/dev/") {
			devs = append(devs, dev)
		}
	}
	slices.Sort(devs)
	return devs
}

// TestLoopLinksRightAfterFormat: with udev running, every /dev/disk/by-* link the NixOS
// configuration names exists the moment the format script returns, and udev's records
// (what lsblk shows) name the filesystem blkid finds on every partition. Links by
// filesystem UUID and label come from udev's probe after mkfs, which may run before
// mkfs wrote (a stale record): the script must have made udev look again. Repeated, since
// the race it closes shows in some runs only.
func TestLoopLinksRightAfterFormat(t *testing.T) {
	requireRoot(t, "mkfs.ext4", "mkfs.vfat", "mkswap", "udevadm")
	diskotest.StartUdev(t)
	a := newLoop(t, 256<<20)
	diskotest.TriggerUdev(t, a)
	d := layout(t, fmt.Sprintf(`{"disk": {"a": {"device": %q, "content": {"type": "gpt", "partitions": {
		"ESP": {"size": "32M", "type": "EF00", "content": {"type": "filesystem", "format": "vfat", "mountpoint": "/boot", "extraArgs": ["-n", "BOOTLBL"]}},
		"swap": {"size": "16M", "content": {"type": "swap"}},
		"root": {"size": "100%%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/", "extraArgs": ["-L", "rootlbl"]}}}}}}}`, a), a)
	c, err := nixos.Config(d)
	if err != nil {
		t.Fatal(err)
	}
	devs := configDevices(t, c)
	if len(devs) != 3 {
		t.Fatalf("the NixOS configuration names %d devices, want 3: %v", len(devs), devs)
	}
	ns := newNamespace(t)
	s, err := Generate(d, Options{RootMountpoint: ns.root})
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 6
	for i := range rounds {
		ns.mustScript(t, "format", s.Format)
		for _, dev := range devs {
			if _, err := os.Stat(dev); err != nil {
				t.Errorf("round %d: %s, named by the NixOS configuration, is missing right after format: %v", i, dev, err)
			}
		}
		for _, link := range []string{"/dev/disk/by-label/BOOTLBL", "/dev/disk/by-label/rootlbl"} {
			if _, err := os.Stat(link); err != nil {
				t.Errorf("round %d: %s is missing right after format", i, link)
			}
		}
		parts, _ := filepath.Glob("/sys/class/block/" + filepath.Base(a) + "/" + filepath.Base(a) + "p*")
		for _, p := range parts {
			node := "/dev/" + filepath.Base(p)
			out, _ := exec.Command("lsblk", "--noheadings", "--nodeps", "--output", "FSTYPE", node).Output()
			udev := strings.TrimSpace(string(out))
			disk, _ := exec.Command("blkid", "-p", "-o", "value", "-s", "TYPE", node).Output()
			if got := strings.TrimSpace(string(disk)); udev != got {
				t.Errorf("round %d: udev records %q on %s, blkid -p finds %q", i, udev, node, got)
			}
		}
		if i < rounds-1 {
			ns.mustScript(t, "destroy", s.Destroy, "--yes-wipe-all-disks")
		}
	}
}
