package testtarget

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Loop devices made by this process: device path -> backing file. Install
// tests check every device they are about to write with RefuseUnlessOwnLoop.
var (
	loopMu    sync.Mutex
	ownLoops  = map[string]string{}
	loopRegex = regexp.MustCompile(`^/dev/(loop[0-9]+)(p[0-9]+)?$`)
)

// LoopDevice creates a sparse file of size bytes in a temp dir, attaches it
// to a free loop device and returns the device path (/dev/loopN). The device
// is detached at cleanup.
func LoopDevice(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("testtarget: loop devices need root; running as uid %d", os.Geteuid())
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skipf("testtarget: losetup is not installed (%v)", err)
	}
	file := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(file)
	if err != nil {
		t.Fatalf("testtarget: %v", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		t.Fatalf("testtarget: sparse file of %d bytes: %v", size, err)
	}
	f.Close()
	out, err := exec.Command("losetup", "--find", "--show", file).CombinedOutput()
	dev := strings.TrimSpace(string(out))
	if err != nil || !loopRegex.MatchString(dev) {
		t.Fatalf("testtarget: losetup --find --show %s: %v: %s", file, err, out)
	}
	loopMu.Lock()
	ownLoops[dev] = file
	loopMu.Unlock()
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("testtarget: losetup -d %s: %v: %s", dev, err, out)
		}
		loopMu.Lock()
		delete(ownLoops, dev)
		loopMu.Unlock()
	})
	return dev
}

// RefuseUnlessOwnLoop returns an error unless path (after following
// symlinks, e.g. /dev/disk/by-partlabel/x) is a loop device made by
// LoopDevice in this process, or a partition of one, and the kernel still
// backs it with the file this harness created. Install tests call it for
// every disk in a layout before running anything that writes.
func RefuseUnlessOwnLoop(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("refusing %s: %w", path, err)
	}
	m := loopRegex.FindStringSubmatch(real)
	if m == nil {
		return fmt.Errorf("refusing %s (%s): not a loop device; tests may only touch loop devices made by testtarget.LoopDevice", path, real)
	}
	dev := "/dev/" + m[1]
	loopMu.Lock()
	file, ok := ownLoops[dev]
	var own []string
	for d := range ownLoops {
		own = append(own, d)
	}
	loopMu.Unlock()
	if !ok {
		slices.Sort(own)
		return fmt.Errorf("refusing %s (%s): %s was not created by this test harness (own loop devices: %v)", path, real, dev, own)
	}
	backing, err := os.ReadFile(filepath.Join("/sys/block", m[1], "loop", "backing_file"))
	if err != nil {
		return fmt.Errorf("refusing %s: cannot read the backing file of %s: %w", path, dev, err)
	}
	if b := strings.TrimSpace(string(backing)); b != file {
		return fmt.Errorf("refusing %s: %s is backed by %s, not by this harness's %s", path, dev, b, file)
	}
	return nil
}
