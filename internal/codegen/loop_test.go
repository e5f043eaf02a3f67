package codegen

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/diskotest"
)

// loopLayout is a layout of everything this machine's kernel can format and mount: a GPT
// disk with a vfat ESP (formatted only: the kernel here has no vfat, so it has no mount
// point), a swap partition and btrfs with subvolumes and a swap file, and an MBR disk with
// xfs (at least 300 MB) on a primary partition and ext4 on a logical one, plus a tmpfs.
func loopLayout(a, b string) string {
	return fmt.Sprintf(`{
  "disk": {
    "a": {"device": %q, "content": {"type": "gpt", "partitions": {
      "ESP": {"size": "64M", "type": "EF00", "content": {"type": "filesystem", "format": "vfat"}},
      "swap": {"size": "32M", "content": {"type": "swap"}},
      "root": {"size": "100%%", "content": {"type": "btrfs", "extraArgs": ["-f"], "subvolumes": {
        "/rootfs": {"mountpoint": "/"},
        "/home": {"mountpoint": "/home", "mountOptions": ["compress=zstd"]},
        "/home/user": {},
        "/swap": {"mountpoint": "/.swapvol", "swap": {"swapfile": {"size": "16M"}}}
      }}}
    }}},
    "b": {"device": %q, "content": {"type": "table", "format": "msdos", "partitions": [
      {"start": "1MiB", "end": "400MiB", "fs-type": "xfs", "content": {"type": "filesystem", "format": "xfs", "mountpoint": "/data"}},
      {"part-type": "extended", "start": "400MiB", "end": "100%%"},
      {"part-type": "logical", "start": "401MiB", "end": "100%%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/data/logs"}}
    ]}}
  },
  "nodev": {"/tmp": {"fsType": "tmpfs", "mountOptions": ["size=16M"]}}
}`, a, b)
}

// TestLoopCycle runs the scripts through disko's test sequence on two loop disks: format,
// mount, mount again, write a file, unmount, unmount again, format again (nothing is
// recreated: same UUIDs, the file survives), mount, unmount, destroy (the disks are blank).
//
// It runs twice: with udevd running (partitions are found by their /dev/disk/by-* links)
// and without (by sysfs and blkid), as in a container or on this machine by default.
func TestLoopCycle(t *testing.T) {
	requireRoot(t, "mkfs.ext4", "mkfs.xfs", "mkfs.btrfs", "mkfs.vfat", "mkswap", "parted", "udevadm")
	t.Run("udev", func(t *testing.T) {
		diskotest.StartUdev(t)
		a, b := newLoop(t, 1<<30), newLoop(t, 700<<20)
		diskotest.TriggerUdev(t, a, b)
		loopCycle(t, a, b)
	})
	t.Run("no-udev", func(t *testing.T) {
		if exec.Command("udevadm", "control", "--ping", "--timeout=1").Run() == nil {
			t.Skip("a udevd not started by this test is running")
		}
		loopCycle(t, newLoop(t, 1<<30), newLoop(t, 700<<20))
	})
}

func loopCycle(t *testing.T, a, b string) {
	ns := newNamespace(t)
	d := layout(t, loopLayout(a, b), a, b)
	s, err := Generate(d, Options{RootMountpoint: ns.root})
	if err != nil {
		t.Fatal(err)
	}

	t.Log(ns.mustScript(t, "format", s.Format))
	if exec.Command("udevadm", "control", "--ping", "--timeout=1").Run() == nil {
		// The script waited for the links; they point at the partitions it made.
		for label, part := range map[string]string{"disk-a-ESP": a + "p1", "disk-a-swap": a + "p2", "disk-a-root": a + "p3"} {
			if got, err := filepath.EvalSymlinks("/dev/disk/by-partlabel/" + label); err != nil || got != part {
				t.Errorf("/dev/disk/by-partlabel/%s -> %q (%v), want %s", label, got, err, part)
			}
		}
	}
	ns.mustScript(t, "mount", s.Mount)
	mounted := ns.mounts(t)
	for _, mp := range []string{"", "/home", "/.swapvol", "/data", "/data/logs", "/tmp"} {
		if !strings.Contains(mounted, `"target": "`+ns.root+mp+`"`) {
			t.Errorf("%s is not mounted after mount:\n%s", ns.root+mp, mounted)
		}
	}
	if out, err := ns.run(nil, "test", "-f", ns.root+"/.swapvol/swapfile"); err != nil {
		t.Errorf("no swap file in the /swap subvolume: %v %s", err, out)
	}
	if swaps, _ := os.ReadFile("/proc/swaps"); !strings.Contains(string(swaps), a+"p2") {
		t.Errorf("the swap partition is not active:\n%s", swaps)
	}
	ns.mustScript(t, "mount again", s.Mount)
	if again := ns.mounts(t); again != mounted {
		t.Errorf("mounting again changed the mounts:\nbefore:\n%s\nafter:\n%s", mounted, again)
	}
	if out, err := ns.run(nil, "sh", "-c", `echo kept > "$1/home/user/file" && echo kept > "$1/data/logs/file"`, "sh", ns.root); err != nil {
		t.Fatalf("writing files: %v\n%s", err, out)
	}

	ns.mustScript(t, "unmount", s.Unmount)
	if left := ns.mounts(t); left != "" {
		t.Errorf("still mounted after unmount:\n%s", left)
	}
	if swaps, _ := os.ReadFile("/proc/swaps"); strings.Contains(string(swaps), a) {
		t.Errorf("swap still active after unmount:\n%s", swaps)
	}
	ns.mustScript(t, "unmount again", s.Unmount)

	before := lsblkState(t, a, b)
	ns.mustScript(t, "format again", s.Format)
	if after := lsblkState(t, a, b); after != before {
		t.Errorf("formatting again changed the disks:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	ns.mustScript(t, "mount after formatting again", s.Mount)
	for _, f := range []string{"/home/user/file", "/data/logs/file"} {
		if out, err := ns.run(nil, "cat", ns.root+f); err != nil || strings.TrimSpace(out) != "kept" {
			t.Errorf("%s did not survive formatting again: %v %q", f, err, out)
		}
	}
	ns.mustScript(t, "unmount", s.Unmount)

	// Without a terminal and without the flag, destroy refuses and changes nothing.
	if out, err := ns.script(t, s.Destroy); err == nil || !strings.Contains(out, "--yes-wipe-all-disks") {
		t.Errorf("destroy without consent: err=%v, want a refusal naming --yes-wipe-all-disks:\n%s", err, out)
	}
	if after := lsblkState(t, a, b); after != before {
		t.Errorf("a refused destroy changed the disks:\n%s", after)
	}
	ns.mustScript(t, "mount before destroy", s.Mount)
	ns.mustScript(t, "destroy", s.Destroy, "--yes-wipe-all-disks")
	for _, dev := range []string{a, b} {
		if left := blank(t, dev); left != "" {
			t.Errorf("%s is not blank after destroy:\n%s", dev, left)
		}
		if parts, _ := filepath.Glob("/sys/class/block/" + filepath.Base(dev) + "/" + filepath.Base(dev) + "p*"); len(parts) > 0 {
			t.Errorf("%s still has partitions after destroy: %v", dev, parts)
		}
	}
	if left := ns.mounts(t); left != "" {
		t.Errorf("still mounted after destroy:\n%s", left)
	}

	// destroy,format,mount on blank disks, then once more on the formatted ones.
	ns.mustScript(t, "destroy,format,mount", s.DestroyFormatMount, "--yes-wipe-all-disks")
	ns.mustScript(t, "destroy,format,mount again", s.DestroyFormatMount, "--yes-wipe-all-disks")
	if got := ns.mounts(t); got == "" {
		t.Error("nothing is mounted after destroy,format,mount")
	}
	if out, err := ns.run(nil, "test", "-e", ns.root+"/home/user/file"); err == nil {
		t.Errorf("a file survived destroy,format,mount: %s", out)
	}
	ns.mustScript(t, "destroy", s.Destroy, "--yes-wipe-all-disks")
	for _, dev := range []string{a, b} {
		if left := blank(t, dev); left != "" {
			t.Errorf("%s is not blank after the last destroy:\n%s", dev, left)
		}
	}
}

// TestLoopRefusesForeignDisk formats a layout onto a disk that holds a filesystem the
// layout did not make: the script must refuse, say what it found and where, and leave
// the filesystem as it was.
func TestLoopRefusesForeignDisk(t *testing.T) {
	requireRoot(t, "mkfs.ext4")
	a := newLoop(t, 256<<20)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "precious", a).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	before := probe(t, a)
	ns := newNamespace(t)
	d := layout(t, fmt.Sprintf(`{"disk": {"main": {"device": %q, "content": {"type": "gpt", "partitions": {
		"root": {"size": "100%%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}}}}`, a), a)
	s, err := Generate(d, Options{RootMountpoint: ns.root})
	if err != nil {
		t.Fatal(err)
	}
	out, err := ns.script(t, s.Format)
	if err == nil {
		t.Fatalf("format of a disk holding ext4 succeeded:\n%s", out)
	}
	for _, want := range []string{a, "ext4", "precious", "destroy"} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not mention %q:\n%s", want, out)
		}
	}
	if after := probe(t, a); after != before || !strings.Contains(after, "TYPE=ext4") {
		t.Errorf("the refused disk changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestLoopGPTGrows formats a GPT layout (with a hybrid MBR entry, written once after the
// fresh table), then the same layout with one more partition: the new partition is added
// into the free space and formatted, the others are kept as they are. A disk with a GPT
// whose partitions have other names is refused.
func TestLoopGPTGrows(t *testing.T) {
	requireRoot(t, "mkfs.ext4", "sgdisk")
	a := newLoop(t, 512<<20)
	ns := newNamespace(t)
	v1 := `"ESP": {"size": "64M", "type": "EF00", "hybrid": {"mbrBootableFlag": true}, "content": {"type": "filesystem", "format": "ext4"}},
		"data": {"size": "100M", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/data"}}`
	gen := func(parts string) *Scripts {
		d := layout(t, fmt.Sprintf(`{"disk": {"main": {"device": %q, "content": {"type": "gpt", "partitions": {%s}}}}}`, a, parts), a)
		s, err := Generate(d, Options{RootMountpoint: ns.root})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ns.mustScript(t, "format v1", gen(v1).Format)
	if out, _ := exec.Command("sfdisk", "--label-nested", "dos", "--dump", a).CombinedOutput(); !strings.Contains(string(out), "bootable") {
		t.Errorf("no bootable hybrid MBR entry after the first format:\n%s", out)
	}
	before := diskState(t, a)
	v2 := gen(v1 + `, "more": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/more"}}`)
	out := ns.mustScript(t, "format v2", v2.Format)
	if !strings.Contains(out, "adding partition 3") {
		t.Errorf("format v2 did not say it adds partition 3:\n%s", out)
	}
	after := diskState(t, a)
	if !strings.Contains(after, "PART_ENTRY_NAME=disk-main-more") || strings.Count(after, "TYPE=ext4") != 3 {
		t.Errorf("partition 3 was not added and formatted:\n%s", after)
	}
	// The disk and partitions 1 and 2 are unchanged: everything blkid said of them before
	// (UUIDs included) is still said.
	for _, line := range strings.Split(before, "\n") {
		if !strings.Contains(after, line) {
			t.Errorf("%q changed:\nbefore:\n%s\nafter:\n%s", line, before, after)
		}
	}
	ns.mustScript(t, "mount v2", v2.Mount)
	ns.mustScript(t, "unmount v2", v2.Unmount)

	// Another layout's partitions on a GPT: refused, unchanged.
	b := newLoop(t, 256<<20)
	if out, err := exec.Command("sgdisk", "--new=1:0:+10M", "--change-name=1:someone-else", b).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk: %v\n%s", err, out)
	}
	exec.Command("partx", "-a", b).Run()
	state := probe(t, b)
	d := layout(t, fmt.Sprintf(`{"disk": {"main": {"device": %q, "content": {"type": "gpt", "partitions": {%s}}}}}`, b, v1), b)
	s, err := Generate(d, Options{RootMountpoint: ns.root})
	if err != nil {
		t.Fatal(err)
	}
	out, err = ns.script(t, s.Format)
	if err == nil || !strings.Contains(out, "someone-else") || !strings.Contains(out, b) {
		t.Errorf("format of a disk with another layout's GPT: err=%v, want a refusal naming %s and someone-else:\n%s", err, b, out)
	}
	if probe(t, b) != state {
		t.Error("the refused disk changed")
	}
}
