package codegen

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLoopSwapAcrossNamespaces: swap turned on by a mount script run in a mount namespace
// that is gone is still recognised as on by the next run (mount leaves it alone, unmount
// turns it off). /proc/swaps then lists the partition under another name (/loop0p1), so
// comparing names made the second mount fail with "swapon failed: Device or resource
// busy" and the unmount leave the swap on.
func TestLoopSwapAcrossNamespaces(t *testing.T) {
	requireRoot(t, "mkswap", "swapon", "swapoff", "stat")
	loop := newLoop(t, 64<<20)
	d := layout(t, fmt.Sprintf(`{"disk": {"a": {"device": %q, "content": {"type": "gpt", "partitions": {
  "swap": {"size": "100%%", "content": {"type": "swap"}}}}}}}`, loop), loop)
	first := newNamespace(t)
	s, err := Generate(d, Options{RootMountpoint: first.root})
	if err != nil {
		t.Fatal(err)
	}
	first.mustScript(t, "format,mount", s.FormatMount)
	syscall.Kill(first.pid, syscall.SIGKILL)
	part := loop + "p1"
	if on := swapsOf(t, part); on == 0 {
		t.Fatalf("%s is not on after format,mount", part)
	}
	next := newNamespace(t)
	next.mustScript(t, "mount in another namespace", s.Mount)
	if on := swapsOf(t, part); on != 1 {
		t.Fatalf("%s is on %d times after mounting again, want once", part, on)
	}
	next.mustScript(t, "unmount in another namespace", s.Unmount)
	if on := swapsOf(t, part); on != 0 {
		t.Fatalf("%s is still on after unmount", part)
	}
}

// swapsOf counts the active swap areas on the partition dev (/dev/loopNpM), by device
// number: /proc/swaps may list it under a name that does not exist here.
func swapsOf(t *testing.T, dev string) int {
	t.Helper()
	want, err := os.ReadFile("/sys/class/block/" + filepath.Base(dev) + "/dev")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/swaps")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 || f[1] != "partition" {
			continue
		}
		if num, err := os.ReadFile("/sys/class/block/" + filepath.Base(f[0]) + "/dev"); err == nil && string(num) == string(want) {
			n++
		}
	}
	return n
}
