package testvm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// kvmBoots tells whether Debian's kernel starts under KVM on this host. A
// /dev/kvm can exist and still not run a stock kernel (a PVM host hangs it
// in the decompressor, silently), so the answer comes from trying: boot the
// kernel alone for at most 5 s and look for its first console line. The
// answer is kept next to the image, keyed by host kernel, qemu and guest
// kernel, so the probe runs once per machine.
func kvmBoots(ctx context.Context, img *Image, m machine, logw io.Writer) bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	qemu, err := exec.LookPath(m.qemu)
	if err != nil {
		return false
	}
	st, err := os.Stat(qemu)
	if err != nil {
		return false
	}
	host, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	h := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%d|%s", bytes.TrimSpace(host), qemu, st.ModTime().UnixNano(), img.KernelRelease))
	cached := filepath.Join(filepath.Dir(img.Dir), "kvm-probe-"+hex.EncodeToString(h[:8]))
	if b, err := os.ReadFile(cached); err == nil {
		return string(b) == "yes"
	}
	dir, err := os.MkdirTemp("", "testvm-kvm-probe-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	console := filepath.Join(dir, "console.log")
	args := append(append(slices.Clone(m.args), m.accelArgs("kvm")...), "-m", "256", "-nographic", "-nodefaults",
		"-no-reboot", "-monitor", "none", "-kernel", img.Kernel, "-append", "console="+m.console+" panic=-1",
		"-chardev", "file,id=console,path="+console, "-serial", "chardev:console")
	cmd := exec.Command(qemu, args...)
	if err := cmd.Start(); err != nil {
		return false
	}
	ok := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		if b, _ := os.ReadFile(console); bytes.Contains(b, []byte("Linux version")) {
			ok = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if ctx.Err() != nil {
		return false // interrupted: decide again next time
	}
	answer := "no"
	if ok {
		answer = "yes"
	}
	os.WriteFile(cached, []byte(answer), 0o644)
	fmt.Fprintf(logw, "testvm: KVM probe: Debian's kernel boots under KVM: %s (cached in %s)\n", answer, cached)
	return ok
}
