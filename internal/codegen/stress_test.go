package codegen

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestStressFormat(t *testing.T) {
	if os.Getenv("STRESS") == "" {
		t.Skip()
	}
	requireRoot(t, "mkfs.ext4")
	startUdev(t)
	var devs, disks []string
	for i := range 4 {
		dev := newLoopIn(t, ramDir(t), 4<<30)
		devs = append(devs, dev)
		disks = append(disks, threePartitions(fmt.Sprint("b", i), dev, benchSizes[1]))
	}
	triggerUdev(t, devs...)
	d := layout(t, `{"disk": {`+strings.Join(disks, ",")+`}}`, devs...)
	s, _ := Generate(d, Options{})
	f := t.TempDir() + "/format.sh"
	os.WriteFile(f, s.Format, 0o700)
	for i := 0; i < 100; i++ {
		for _, dev := range devs {
			for _, p := range []string{"p1", "p2", "p3", ""} {
				exec.Command("wipefs", "-a", dev+p).Run()
			}
			exec.Command("dd", "if=/dev/zero", "of="+dev, "bs=1M", "count=1", "conv=notrunc,fsync", "status=none").Run()
			exec.Command("partx", "-d", dev).Run()
		}
		exec.Command("udevadm", "settle").Run()
		out, err := exec.Command("bash", f).CombinedOutput()
		if err != nil {
			ls, _ := exec.Command("sh", "-c", "ls -l /dev/loop*; cat /proc/partitions").CombinedOutput()
			t.Fatalf("round %d: %v\n%s\n%s", i, err, out, ls)
		}
	}
}
