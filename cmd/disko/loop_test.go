package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/diskotest"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// TestLoopDisk runs the disko binary on a loop device, in a private mount namespace with
// udevd running, through disko's own sequence: destroy,format,mount without asking,
// unmount, mount (the data is still there), unmount; then a destroy that cannot ask
// (no terminal) must refuse and leave the disk alone. Run it under the shared lock:
// flock /tmp/heavy.lock go test ./cmd/disko -run Loop
func TestLoopDisk(t *testing.T) {
	diskotest.Require(t, "sgdisk", "mkfs.ext4", "partx", "wipefs", "blkid")
	dev := testtarget.LoopDevice(t, 256<<20)
	diskotest.StartUdev(t)
	diskotest.TriggerUdev(t, dev)
	ns := diskotest.NewNamespace(t)
	bin := diskotest.Build(t, ".", "disko")
	root := filepath.Join(t.TempDir(), "mnt")
	layout := writeLayout(t, fmt.Sprintf(`{"disk":{"main":{"device":%q,"content":{"type":"gpt","partitions":{
  "boot":{"size":"64M","content":{"type":"filesystem","format":"ext4","mountpoint":"/boot"}},
  "root":{"size":"100%%","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}}}}}}`, dev))
	if err := testtarget.RefuseUnlessOwnLoop(dev); err != nil {
		t.Fatal(err)
	}
	disko := func(wantCode int, args ...string) string {
		t.Helper()
		out, errs, code := ns.Run([]string{"DISKO_DEVICE_TIMEOUT=20"}, bin, append(args, "--root-mountpoint", root, layout)...)
		if code != wantCode {
			t.Fatalf("disko %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out, errs)
		}
		return out + errs
	}
	wantMounts := fmt.Sprintf("%[1]s ext4 %[2]sp2\n%[1]s/boot ext4 %[2]sp1", root, dev)

	disko(0, "--mode", "destroy,format,mount", "--yes-wipe-all-disks")
	if got := ns.Mounts(t, root); got != wantMounts {
		t.Fatalf("after destroy,format,mount, mounts:\n%s\nwant:\n%s", got, wantMounts)
	}
	for label, part := range map[string]string{"disk-main-boot": dev + "p1", "disk-main-root": dev + "p2"} {
		if got, err := filepath.EvalSymlinks("/dev/disk/by-partlabel/" + label); err != nil || got != part {
			t.Errorf("/dev/disk/by-partlabel/%s -> %q (%v), want %s", label, got, err, part)
		}
	}
	if _, errs, code := ns.Run(nil, "sh", "-c", "echo kept > "+root+"/boot/marker"); code != 0 {
		t.Fatalf("writing a file: %s", errs)
	}

	disko(0, "--mode", "unmount")
	if got := ns.Mounts(t, root); got != "" {
		t.Fatalf("after unmount, still mounted:\n%s", got)
	}
	disko(0, "--mode", "mount")
	if got := ns.Mounts(t, root); got != wantMounts {
		t.Fatalf("after mount, mounts:\n%s\nwant:\n%s", got, wantMounts)
	}
	if out, _, _ := ns.Run(nil, "cat", root+"/boot/marker"); out != "kept\n" {
		t.Errorf("the file written before unmount reads %q after mount", out)
	}
	disko(0, "--mode", "unmount")

	// destroy without --yes-wipe-all-disks and without a terminal to ask on.
	out := disko(1, "--mode", "destroy")
	t.Logf("destroy without consent:\n%s", out)
	if blk, err := os.ReadFile("/sys/class/block/" + filepath.Base(dev) + "p2/partition"); err != nil || strings.TrimSpace(string(blk)) != "2" {
		t.Errorf("the refused destroy removed the partitions (%v)", err)
	}
}
