package vmtest

import (
	"context"
	"os"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
	"github.com/diskoanywhere/diskoanywhere/internal/vmcycle"
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
		t.Logf("guest console, last lines:\n%s", vmcycle.Tail(string(b), 30))
	}
	w.stop()
}

func (w *worker) stop() {
	if w.vm != nil {
		w.vm.Stop()
		w.vm, w.key = nil, ""
	}
}
