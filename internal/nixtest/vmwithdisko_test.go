package nixtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// vmBootMarker is what the stand-in system prints on its serial console right before
// sshd starts (testvm's rc.sh).
const vmBootMarker = "testvm: starting sshd"

// TestVMWithDiskoBoots builds system.build.vmWithDisko (nix/system-builds.nix with the
// stand-in package set, the real disko-compile, and testvm's bootable stand-in system
// as the VM's system) and runs its script: it writes the layout's images with the
// system in them, as an ordinary build does, and boots them in qemu under UEFI, whose
// serial console must show the system starting sshd. Run it under the shared lock:
//
//	flock /tmp/heavy.lock go test ./internal/nixtest -run VMWithDiskoBoots -v
func TestVMWithDiskoBoots(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM (minutes under TCG)")
	}
	needNix(t)
	dir := needCompiler(t)
	for _, tool := range []string{"qemu-system-x86_64", "sfdisk", "mkfs.ext4", "mkfs.vfat", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	t.Setenv("NIX_CONFIG", nixConfig)
	if os.Getenv("DISKOANYWHERE_TESTVM_ACCEL") == "" {
		// The script takes KVM whenever /dev/kvm opens, and OVMF dies of an emulation
		// failure under the KVM of these CI machines (a PVM host); testvm probes that,
		// the script cannot.
		t.Setenv("DISKOANYWHERE_TESTVM_ACCEL", "tcg")
	}
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	layout := filepath.Join(root(t), "examples", "disk-config-simple.nix")
	expr := func(vmSystem, body string) string {
		return `let b = import ` + mustAbs(t, filepath.Join("testdata", "system-builds.nix")) + ` { diskoCompileDir = ` + nixPath(t, dir) +
			`; layout = ` + nixPath(t, layout) + `; vmSystem = ` + vmSystem + `; }; in ` + body
	}
	out, _, err := runNix("nix-build", "--no-out-link", "-E", expr("null", "b.installTest.vmCompiled"))
	if err != nil {
		t.Fatal(err)
	}
	nixosConfig := readFile(t, filepath.Join(strings.TrimSpace(out), "nixos-config.json"))
	sys, err := testvm.BuildSystem(ctx, testvm.SystemOptions{NixOSConfig: nixosConfig, Hostname: "vmwithdisko", Log: testvm.LogT(t)})
	if err != nil {
		t.Skipf("the stand-in system cannot be built here: %v", err)
	}
	out, _, err = runNix("nix-build", "--no-out-link", "-E", expr(`"`+sys.Toplevel+`"`, "b.vmWithDisko"))
	if err != nil {
		t.Fatal(err)
	}
	script := strings.TrimSpace(out)
	console := filepath.Join(t.TempDir(), "console")
	logFile, err := os.Create(console)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(script)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		// The script and its qemu are one process group; the script's trap removes
		// the images when qemu is gone.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}()
	deadline := time.After(7 * time.Minute)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("%s exited (%v) before the system started sshd; console:\n%s", script, err, readFile(t, console))
		case <-deadline:
			t.Fatalf("no %q on the console of %s after %s; console:\n%s", vmBootMarker, script, time.Since(start).Round(time.Second), readFile(t, console))
		case <-ctx.Done():
			t.Fatalf("%v; console:\n%s", ctx.Err(), readFile(t, console))
		case <-time.After(time.Second):
		}
		if strings.Contains(string(readFile(t, console)), vmBootMarker) {
			break
		}
	}
	t.Logf("vmWithDisko: images written and the system starting sshd after %.1fs", time.Since(start).Seconds())
}
