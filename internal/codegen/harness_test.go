package codegen

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// Test harness for running generated scripts against real loop devices. Everything it
// makes is undone at cleanup: loop devices (detached), the mount namespace holder
// (killed, which drops every mount in it), swap on its devices (turned off), and udevd
// (stopped, /run/udev removed) when it started one.

// requireRoot skips unless the test can use loop devices and mount namespaces.
func requireRoot(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root for loop devices and mounts (running as uid %d)", os.Geteuid())
	}
	for _, tool := range append([]string{"losetup", "unshare", "nsenter", "sfdisk", "partx", "blkid", "wipefs", "lsblk", "findmnt", "jq"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
}

var loopRe = regexp.MustCompile(`^/dev/loop[0-9]+$`)

// newLoop attaches a sparse file of size bytes with partition scanning (-P: partx and the
// kernel may then add partition nodes) and returns /dev/loopN.
func newLoop(t testing.TB, size int64) string {
	t.Helper()
	return newLoopIn(t, t.TempDir(), size)
}

// newLoopIn is newLoop with the sparse file in dir.
func newLoopIn(t testing.TB, dir string, size int64) string {
	t.Helper()
	file := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, size); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", "--partscan", file).CombinedOutput()
	dev := strings.TrimSpace(string(out))
	if err != nil || !loopRe.MatchString(dev) {
		t.Fatalf("losetup --find --show --partscan %s: %v: %s", file, err, out)
	}
	t.Cleanup(func() { detachLoop(t, dev, file) })
	return dev
}

// ramDir is a directory on tmpfs (/dev/shm) for loop disks that must not share the
// machine's disk: with the backing files on one disk, every fsync of one loop disk waits
// for the writes of the others, which real, independent disks do not. Sparse files there
// only take the memory that is written.
func ramDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "codegen-bench")
	if err != nil {
		t.Skipf("no tmpfs at /dev/shm for RAM-backed loop disks: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// detachLoop turns off swap on the loop device's partitions, then detaches it. With udevd
// running, `losetup -d` only marks the device for removal while udev still holds it, so
// this waits until the kernel lets go.
func detachLoop(t testing.TB, dev, file string) {
	// /proc/swaps names a device by the path it had in the namespace that turned it on,
	// which may be gone: turn off swap on every partition instead (a no-op elsewhere).
	parts, _ := filepath.Glob("/sys/class/block/" + filepath.Base(dev) + "/" + filepath.Base(dev) + "p*")
	for _, p := range append(parts, dev) {
		exec.Command("swapoff", "/dev/"+filepath.Base(p)).Run()
	}
	exec.Command("partx", "-d", dev).Run()
	if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
		t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		return
	}
	for range 100 {
		backing, err := os.ReadFile("/sys/block/" + filepath.Base(dev) + "/loop/backing_file")
		if err != nil || strings.TrimSpace(string(backing)) != file {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("%s is still attached to %s", dev, file)
}

// namespace is a private mount namespace, held open by a sleeping process, in which the
// scripts run: their mounts never reach the host and vanish with the holder.
type namespace struct {
	pid  int
	root string // root mount point of the scripts
}

func newNamespace(t testing.TB) *namespace {
	t.Helper()
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "infinity")
	if err := holder.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	t.Cleanup(func() {
		holder.Process.Kill()
		holder.Wait()
	})
	ns := &namespace{pid: holder.Process.Pid, root: filepath.Join(t.TempDir(), "mnt")}
	// unshare execs sleep once the namespace exists: wait until the holder's mount
	// namespace differs from ours.
	self, _ := os.Readlink("/proc/self/ns/mnt")
	for range 100 {
		other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", ns.pid))
		if err == nil && other != self {
			return ns
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the mount namespace did not appear")
	return nil
}

// run runs a command in the namespace and returns its combined output.
func (ns *namespace) run(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--target", fmt.Sprint(ns.pid), "--mount", "--", name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// script writes a generated script to a file and runs it in the namespace.
func (ns *namespace) script(t testing.TB, s []byte, args ...string) (string, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(f, s, 0o700); err != nil {
		t.Fatal(err)
	}
	return ns.run([]string{"DISKO_DEVICE_TIMEOUT=20"}, "bash", append([]string{f}, args...)...)
}

// mustScript runs a script and fails the test when it fails.
func (ns *namespace) mustScript(t testing.TB, what string, s []byte, args ...string) string {
	t.Helper()
	out, err := ns.script(t, s, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", what, err, out)
	}
	return out
}

// mounts lists what is mounted at or below the namespace's root (findmnt --json).
func (ns *namespace) mounts(t testing.TB) string {
	t.Helper()
	out, err := ns.run(nil, "findmnt", "--json", "--list", "--output", "TARGET,SOURCE,FSTYPE,OPTIONS")
	if err != nil {
		t.Fatalf("findmnt: %v\n%s", err, out)
	}
	var keep []string
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, `"target": "`+ns.root) {
			keep = append(keep, strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), ",")))
		}
	}
	slices.Sort(keep)
	return strings.Join(keep, "\n")
}

// layout loads a layout from JSON and checks that its disks are the test's loop devices.
func layout(t testing.TB, json string, loops ...string) *config.Devices {
	t.Helper()
	d, err := config.Load([]byte(json), config.LoadOptions{})
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	for name, disk := range d.Disk {
		if !slices.Contains(loops, disk.Device) {
			t.Fatalf("disk %s is %s, not one of the test's loop devices %v", name, disk.Device, loops)
		}
	}
	return d
}

// lsblkState is what must not change when formatting again: names, partition labels,
// filesystem types and UUIDs.
func lsblkState(t testing.TB, devs ...string) string {
	t.Helper()
	out, err := exec.Command("lsblk", append([]string{"--json", "--output", "NAME,PARTLABEL,FSTYPE,UUID"}, devs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("lsblk: %v\n%s", err, out)
	}
	return string(out)
}

// probe is blkid's low-level view of dev (what is on the disk itself, not in a cache).
func probe(t testing.TB, dev string) string {
	t.Helper()
	out, _ := exec.Command("blkid", "-p", "-o", "export", dev).CombinedOutput()
	return string(out)
}

// diskState is what blkid's low-level probe sees on dev and each of its partitions (names
// in the table, filesystem types, UUIDs): lsblk's view without udev.
func diskState(t testing.TB, dev string) string {
	t.Helper()
	parts, _ := filepath.Glob("/sys/class/block/" + filepath.Base(dev) + "/" + filepath.Base(dev) + "p*")
	slices.Sort(parts)
	state := probe(t, dev)
	for _, p := range parts {
		state += "\n" + probe(t, "/dev/"+filepath.Base(p))
	}
	return state
}

// blank reports what wipefs still finds on dev ("" when nothing).
func blank(t testing.TB, dev string) string {
	t.Helper()
	out, err := exec.Command("wipefs", "--no-act", "--noheadings", dev).CombinedOutput()
	if err != nil {
		t.Fatalf("wipefs --no-act %s: %v\n%s", dev, err, out)
	}
	return strings.TrimSpace(string(out))
}
