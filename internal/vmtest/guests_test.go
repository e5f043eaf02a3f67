package vmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// worker runs layouts one after the other in its guest, and boots a new guest when the
// next layout needs other disks or the last one failed (its guest is then in an unknown
// state). A layout starts by checking that the disks are blank and nothing of a layout
// is mounted or open, and ends by destroying everything: that is what makes a guest
// reusable.
type worker struct {
	ctx   context.Context
	img   *testvm.Image
	files []testvm.File
	vm    *testvm.VM
	key   string // disk class of vm
	ran   int    // layouts run in vm
	boots int
}

// next takes the next layout from the queue, preferring one of the current guest's class.
func (w *worker) next(take func(key string) *layout) *layout {
	return take(w.key)
}

// guest returns the guest l runs in; a failure to boot fails t with the console's tail.
func (w *worker) guest(t *testing.T, l *layout) *testvm.VM {
	t.Helper()
	key := classKey(l.class)
	if w.vm != nil && w.key == key {
		w.ran++
		t.Logf("guest: reused (layout %d in it)", w.ran)
		return w.vm
	}
	w.stop()
	var disks []testvm.DiskSpec
	for _, s := range l.class {
		disks = append(disks, testvm.DiskSpec{Size: s})
	}
	vm, err := testvm.Start(w.ctx, testvm.Options{Image: w.img, Disks: disks, ExtraFiles: w.files, Log: testvm.LogT(t)})
	if err != nil {
		t.Fatal(err) // the error carries the console's tail
	}
	w.vm, w.key, w.ran = vm, key, 1
	w.boots++
	t.Logf("guest: booted in %.1fs with disks %s", vm.BootTime.Seconds(), key)
	return vm
}

// failed shows the end of the guest's console and drops the guest: the next layout
// gets a fresh one.
func (w *worker) failed(t *testing.T) {
	if w.vm == nil {
		return
	}
	if b, err := os.ReadFile(w.vm.ConsoleLog()); err == nil {
		t.Logf("guest console, last lines:\n%s", tail(string(b), 30))
	}
	w.stop()
}

func (w *worker) stop() {
	if w.vm != nil {
		w.vm.Stop()
		w.vm, w.key = nil, ""
	}
}

// guestFiles are put into every guest before it boots: the key files, the probe, the
// cryptsetup stand-in, and the f2fs kernel module with what it depends on (under
// f2fsModules, in load order), which the guest image may lack.
func guestFiles(kernelRelease string) ([]testvm.File, error) {
	files := []testvm.File{
		{GuestPath: probePath, Data: []byte(probeScript), Mode: 0o755},
		{GuestPath: toolDir + "/cryptsetup", Data: []byte(cryptsetupStandIn), Mode: 0o755},
	}
	for p, content := range keyFiles {
		files = append(files, testvm.File{GuestPath: p, Data: []byte(content), Mode: 0o600})
	}
	out, err := exec.Command("modprobe", "--set-version", kernelRelease, "--show-depends", "f2fs").Output()
	if err != nil {
		return nil, fmt.Errorf("modprobe --show-depends f2fs for kernel %s: %w", kernelRelease, err)
	}
	var order []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "insmod" {
			continue
		}
		guest := fmt.Sprintf("%s/%02d-%s", f2fsModules, len(order), path.Base(f[1]))
		files = append(files, testvm.File{GuestPath: guest, HostPath: f[1], Mode: 0o644})
		order = append(order, guest)
	}
	files = append(files, testvm.File{GuestPath: f2fsModules + "/order", Data: []byte(strings.Join(order, "\n") + "\n"), Mode: 0o644})
	return files, nil
}

// f2fsModules holds the f2fs module files in the guest.
const f2fsModules = "/opt/vmtest/modules"
