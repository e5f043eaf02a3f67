// Package diskotest runs the disko and disko-install commands against loop devices in
// tests: a udevd for /dev/disk/by-* links, a private mount namespace for their mounts,
// and the command built from source. It holds only test helpers, shared by cmd/disko
// and cmd/disko-install.
package diskotest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Require skips unless the test runs as root with the tools a loop-device run needs.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root for loop devices and mounts; running as uid %d", os.Geteuid())
	}
	for _, tool := range append([]string{"losetup", "nsenter", "unshare", "udevadm", "findmnt"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (see .ci/setup)", tool)
		}
	}
}

// Build compiles the command in pkg (a directory, as `go build` takes it) into a
// temporary directory as name and returns the binary's path.
func Build(t testing.TB, pkg, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// udevMu keeps tests of one package that run in parallel from starting two udevds.
var udevMu sync.Mutex

// StartUdev makes sure a udevd runs, for the /dev/disk/by-* links the scripts wait for.
// It starts systemd-udevd in the foreground as a child of the test (a daemonized one would
// outlive it) unless one already answers, and at cleanup stops it and removes /run/udev (a
// stale control socket would make tools such as lvm believe udev runs) and the links it
// made to loop devices.
func StartUdev(t testing.TB) {
	t.Helper()
	udevMu.Lock()
	defer udevMu.Unlock()
	if exec.Command("udevadm", "control", "--ping", "--timeout=2").Run() != nil {
		bin := ""
		for _, b := range []string{"/lib/systemd/systemd-udevd", "/usr/lib/systemd/systemd-udevd"} {
			if _, err := os.Stat(b); err == nil {
				bin = b
			}
		}
		if bin == "" {
			t.Skip("systemd-udevd is not installed (Debian: udev)")
		}
		cmd := exec.Command(bin, "--resolve-names=never")
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", bin, err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			os.RemoveAll("/run/udev")
			removeLoopLinks()
		})
		up := false
		for range 100 {
			if exec.Command("udevadm", "control", "--ping", "--timeout=1").Run() == nil {
				up = true
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !up {
			t.Fatalf("udevd did not answer:\n%s", log.String())
		}
	}
}

// TriggerUdev lets udev see devices that existed before it started.
func TriggerUdev(t testing.TB, devs ...string) {
	t.Helper()
	args := []string{"trigger", "--action=add", "--settle"}
	for _, d := range devs {
		args = append(args, "--parent-match=/sys/class/block/"+filepath.Base(d))
	}
	if out, err := exec.Command("udevadm", args...).CombinedOutput(); err != nil {
		t.Fatalf("udevadm trigger: %v: %s", err, out)
	}
}

// removeLoopLinks removes the /dev/disk links to loop devices (or to nothing) and the
// directories left empty.
func removeLoopLinks() {
	links, _ := filepath.Glob("/dev/disk/*/*")
	for _, l := range links {
		target, err := filepath.EvalSymlinks(l)
		if err != nil || strings.HasPrefix(target, "/dev/loop") {
			os.Remove(l)
		}
	}
	exec.Command("find", "/dev/disk", "-depth", "-type", "d", "-empty", "-delete").Run()
}

// Namespace is a private mount namespace, held open by a sleeping process, in which the
// commands run: their mounts never reach the host and vanish with the holder.
type Namespace struct{ pid int }

// NewNamespace starts the holder; it is killed at cleanup.
func NewNamespace(t testing.TB) *Namespace {
	t.Helper()
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "infinity")
	if err := holder.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	t.Cleanup(func() {
		holder.Process.Kill()
		holder.Wait()
	})
	self, _ := os.Readlink("/proc/self/ns/mnt")
	for range 100 {
		other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", holder.Process.Pid))
		if err == nil && other != self {
			return &Namespace{pid: holder.Process.Pid}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the mount namespace did not appear")
	return nil
}

// Run runs a command in the namespace with the test's environment plus env and returns
// its stdout, its stderr and its exit code (-1 when it could not run).
func (ns *Namespace) Run(env []string, name string, args ...string) (stdout, stderr string, code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--target", fmt.Sprint(ns.pid), "--mount", "--", name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return out.String(), errb.String(), code
}

// Mounts lists the mount points at or below root in the namespace, sorted, one
// "TARGET FSTYPE SOURCE" line each.
func (ns *Namespace) Mounts(t testing.TB, root string) string {
	t.Helper()
	out, errs, code := ns.Run(nil, "findmnt", "--list", "--noheadings", "--output", "TARGET,FSTYPE,SOURCE")
	if code != 0 {
		t.Fatalf("findmnt: exit %d: %s", code, errs)
	}
	var keep []string
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && (f[0] == root || strings.HasPrefix(f[0], root+"/")) {
			keep = append(keep, strings.Join(f, " "))
		}
	}
	return strings.Join(keep, "\n")
}
