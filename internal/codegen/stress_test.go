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

// TestStressFormat formats four RAM-backed loop disks at once, a hundred times over, with
// udevd running: it hunts the races between the format script and udev (re-reads of the
// partition table, links made late) that a single run rarely meets. By default it runs a
// few rounds; STRESS=1 runs a hundred (a few minutes).
func TestStressFormat(t *testing.T) {
	rounds := 5
	if os.Getenv("STRESS") != "" {
		rounds = 100
	}
	requireRoot(t, "mkfs.ext4", "mkfs.vfat", "mkswap", "udevadm")
	diskotest.StartUdev(t)
	var devs, disks []string
	for i := range 4 {
		dev := newLoopIn(t, ramDir(t), 4<<30)
		devs = append(devs, dev)
		disks = append(disks, threePartitions(fmt.Sprint("b", i), dev, benchSizes[1]))
	}
	diskotest.TriggerUdev(t, devs...)
	s, err := Generate(layout(t, `{"disk": {`+strings.Join(disks, ",")+`}}`, devs...), Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "format.sh")
	if err := os.WriteFile(f, s.Format, 0o700); err != nil {
		t.Fatal(err)
	}
	for i := range rounds {
		for _, dev := range devs {
			for _, p := range []string{"p1", "p2", "p3", ""} {
				exec.Command("wipefs", "-a", dev+p).Run()
			}
			exec.Command("dd", "if=/dev/zero", "of="+dev, "bs=1M", "count=1", "conv=notrunc,fsync", "status=none").Run()
			exec.Command("partx", "-d", dev).Run()
		}
		exec.Command("udevadm", "settle").Run()
		if out, err := exec.Command("bash", f).CombinedOutput(); err != nil {
			state, _ := exec.Command("sh", "-c", "ls -l /dev/loop*; cat /proc/partitions").CombinedOutput()
			t.Fatalf("round %d: %v\n%s\n%s", i, err, out, state)
		}
	}
}
