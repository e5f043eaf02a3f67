package codegen

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoopDestroyMountedMultiDeviceBtrfs: destroy, run while a btrfs over two disks is
// mounted, leaves both disks blank and unused. The filesystem is made from the second
// disk with the first one's partition as another device (luks-btrfs-raid.nix), so lsblk
// shows its mounts on the second disk only: tearing down the first disk by lsblk's tree
// alone found nothing to unmount there, and wiped a partition that was still in use.
// (The partition's device is set to its kernel name, which the second disk's extraArgs
// name, so that the second disk is formatted after the first, without udev's links.)
func TestLoopDestroyMountedMultiDeviceBtrfs(t *testing.T) {
	requireRoot(t, "mkfs.btrfs")
	a, b := newLoop(t, 256<<20), newLoop(t, 256<<20)
	d := layout(t, fmt.Sprintf(`{"disk": {
  "a": {"device": %q, "content": {"type": "gpt", "partitions": {"p": {"size": "100%%", "device": %q}}}},
  "b": {"device": %q, "content": {"type": "gpt", "partitions": {"p": {"size": "100%%", "content": {
    "type": "btrfs", "extraArgs": ["-d raid1", %q], "subvolumes": {
      "/root": {"mountpoint": "/"}, "/home": {"mountpoint": "/home"}}}}}}}}}`, a, a+"p1", b, a+"p1"), a, b)
	ns := newNamespace(t)
	s, err := Generate(d, Options{RootMountpoint: ns.root})
	if err != nil {
		t.Fatal(err)
	}
	ns.mustScript(t, "format,mount", s.FormatMount)
	if got := ns.mounts(t); !strings.Contains(got, ns.root+"/home") {
		t.Fatalf("not mounted after format,mount:\n%s", got)
	}
	ns.mustScript(t, "destroy", s.Destroy, "--yes-wipe-all-disks")
	if got := ns.mounts(t); got != "" {
		t.Errorf("still mounted after destroy:\n%s", got)
	}
	for _, dev := range []string{a, b} {
		if parts, _ := filepath.Glob("/sys/class/block/" + filepath.Base(dev) + "/" + filepath.Base(dev) + "p*"); len(parts) > 0 {
			t.Errorf("the kernel still shows partitions %q of %s after destroy", parts, dev)
		}
		if got := blank(t, dev); got != "" {
			t.Errorf("%s is not blank after destroy: %s", dev, got)
		}
	}
}

// TestLoopDestroyFailsOnDiskInUse: destroy fails, naming what is left, when a partition
// cannot be removed because something lsblk does not show holds it (here a loop device
// on it), instead of reporting a blank disk while the kernel still uses the partition.
func TestLoopDestroyFailsOnDiskInUse(t *testing.T) {
	requireRoot(t, "mkfs.ext4")
	a := newLoop(t, 64<<20)
	d := layout(t, fmt.Sprintf(`{"disk": {"a": {"device": %q, "content": {"type": "gpt", "partitions": {
  "root": {"size": "100%%", "content": {"type": "filesystem", "format": "ext4"}}}}}}}`, a), a)
	ns := newNamespace(t)
	s, err := Generate(d, Options{RootMountpoint: ns.root})
	if err != nil {
		t.Fatal(err)
	}
	ns.mustScript(t, "format", s.Format)
	out, err := exec.Command("losetup", "--find", "--show", a+"p1").CombinedOutput()
	holder := strings.TrimSpace(string(out))
	if err != nil || !loopRe.MatchString(holder) {
		t.Fatalf("losetup on %sp1: %v: %s", a, err, out)
	}
	t.Cleanup(func() { exec.Command("losetup", "-d", holder).Run() })
	f := filepath.Join(t.TempDir(), "destroy.sh")
	if err := os.WriteFile(f, s.Destroy, 0o700); err != nil {
		t.Fatal(err)
	}
	out2, err := ns.run([]string{"DISKO_DEVICE_TIMEOUT=1"}, "bash", f, "--yes-wipe-all-disks")
	if err == nil || !strings.Contains(out2, "is still in use after wiping ("+a+"p1 remain)") {
		t.Fatalf("destroy with %sp1 held by %s: %v, want it to fail naming the partition:\n%s", a, holder, err, out2)
	}
}

// TestLoopAskPasswordNeedsTerminal: a layout whose LUKS container asks for its passphrase,
// run without a terminal, stops before anything changes, instead of failing at the prompt
// after the disk was wiped (a nixos-anywhere run without a TTY). Destroy and unmount ask
// nothing and are not held back.
func TestLoopAskPasswordNeedsTerminal(t *testing.T) {
	requireRoot(t, "mkfs.ext4", "cryptsetup")
	a := newLoop(t, 64<<20)
	d := layout(t, fmt.Sprintf(`{"disk": {"a": {"device": %q, "content": {"type": "gpt", "partitions": {
  "luks": {"size": "100%%", "content": {"type": "luks", "name": "asks", "askPassword": true,
    "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}}}}}`, a), a)
	ns := newNamespace(t)
	s, err := Generate(d, Options{RootMountpoint: ns.root})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-L", "old-data", a).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	before := blank(t, a)
	for _, c := range []struct {
		mode   string
		script []byte
		args   []string
	}{
		{"destroy,format,mount", s.DestroyFormatMount, []string{"--yes-wipe-all-disks"}},
		{"format", s.Format, nil},
		{"format,mount", s.FormatMount, nil},
		{"mount", s.Mount, nil},
	} {
		out, err := ns.script(t, c.script, c.args...) // stdin is /dev/null
		if err == nil || !strings.Contains(out, "the passphrase of LUKS container asks (askPassword) must be typed, but stdin is not a terminal; nothing was changed") {
			t.Errorf("%s without a terminal: err=%v, want the refusal:\n%s", c.mode, err, out)
		}
		if got := blank(t, a); got != before {
			t.Errorf("%s changed the disk: %q, was %q", c.mode, got, before)
		}
	}
	for _, c := range []struct {
		mode   string
		script []byte
		args   []string
	}{
		{"unmount", s.Unmount, nil},
		{"destroy", s.Destroy, []string{"--yes-wipe-all-disks"}},
	} {
		if out, err := ns.script(t, c.script, c.args...); err != nil || strings.Contains(out, "must be typed") {
			t.Errorf("%s without a terminal: err=%v:\n%s", c.mode, err, out)
		}
	}
}
