package codegen

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

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
