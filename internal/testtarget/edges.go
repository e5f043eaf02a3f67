package testtarget

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
)

// DiskEdges is what a change that must keep a disk as it is (a plan, a refused apply)
// may not touch: the sha256 of the disk's first and last MiB and its partition table as
// sfdisk dumps it. Tests compare it before and after.
func DiskEdges(t testing.TB, dev string) string {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatalf("testtarget: %v", err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		t.Fatalf("testtarget: size of %s: %v", dev, err)
	}
	var edges string
	buf := make([]byte, 1<<20)
	for _, off := range []int64{0, size - 1<<20} {
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatalf("testtarget: reading %s at %d: %v", dev, off, err)
		}
		edges += fmt.Sprintf("%s@%d sha256:%x\n", dev, off, sha256.Sum256(buf))
	}
	dump, err := exec.Command("sfdisk", "--dump", dev).CombinedOutput()
	if err != nil {
		t.Fatalf("testtarget: sfdisk --dump %s: %v\n%s", dev, err, dump)
	}
	return edges + string(dump)
}
