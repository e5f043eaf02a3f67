package testvm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestQemuArgs: the command line of each guest architecture, booting a kernel
// and booting the disks with UEFI.
func TestQemuArgs(t *testing.T) {
	for _, tc := range []struct {
		name, arch, accel, mode string
		want, absent            []string // runs of consecutive arguments
	}{
		{"x86_64 kernel, TCG", ArchX86_64, "tcg", BootKernel,
			[]string{"-accel tcg,thread=multi,tb-size=64 -cpu max", "-no-reboot -kernel /k/bzImage -initrd /k/initrd",
				"-device virtio-blk-pci,drive=disk0,serial=testvm0", "console=ttyS0 panic=-1"},
			[]string{"-M", "pflash"}},
		{"x86_64 UEFI, KVM", ArchX86_64, "kvm", BootUEFI,
			[]string{"-accel kvm -cpu host", "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd",
				"if=pflash,format=raw,unit=1,file=/vm/OVMF_VARS.fd", "virtio-blk-pci,drive=disk0,serial=testvm0,bootindex=0"},
			[]string{"-kernel", "-append", "-M"}},
		{"aarch64 kernel, TCG", ArchAarch64, "tcg", BootKernel,
			[]string{"-M virt,gic-version=max -nographic", "-accel tcg,thread=multi,tb-size=64 -cpu max",
				"-device virtio-net-pci,netdev=net0,romfile=", "-no-reboot -kernel /k/bzImage -initrd /k/initrd",
				"-device virtio-blk-pci,drive=disk0,serial=testvm0", "console=ttyAMA0 panic=-1"},
			[]string{"ttyS0", "pflash"}},
		{"aarch64 UEFI, TCG", ArchAarch64, "tcg", BootUEFI,
			[]string{"-M virt,gic-version=max", "-cpu max", "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd",
				"if=pflash,format=raw,unit=1,file=/vm/OVMF_VARS.fd", "virtio-blk-pci,drive=disk0,serial=testvm0,bootindex=0"},
			[]string{"-kernel", "-append"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := machineFor(tc.arch)
			if err != nil {
				t.Fatal(err)
			}
			if m.arch != tc.arch {
				t.Fatalf("machineFor(%q).arch = %q", tc.arch, m.arch)
			}
			vm := &VM{img: &Image{BootKernel: "/k/bzImage"}, machine: m, mode: tc.mode, dir: "/vm",
				console: "/vm/console.log", port: 2222, disks: []string{"/vm/disk0.raw"},
				firmware: ovmf{"/fw/CODE.fd", "/fw/VARS.fd"},
				opts:     Options{CPUs: 2, MemoryMiB: 1024, Accel: tc.accel, Disks: []DiskSpec{{Size: 1 << 20}}}}
			line := " " + strings.Join(vm.qemuArgs("/k/initrd"), " ") + " "
			for _, w := range tc.want {
				if !strings.Contains(line, " "+w) {
					t.Errorf("the command line lacks %q:\n%s", w, line)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(line, a) {
					t.Errorf("the command line has %q:\n%s", a, line)
				}
			}
		})
	}
	if _, err := machineFor("riscv64"); err == nil || !strings.Contains(err.Error(), `"riscv64"`) {
		t.Errorf("riscv64: %v, want an error naming it", err)
	}
	if m, _ := machineFor(""); m.arch != HostArch() {
		t.Errorf(`machineFor("") is %s, want the host's %s`, m.arch, HostArch())
	}
}

// TestFindFirmwareAarch64: $DISKOANYWHERE_OVMF_DIR must hold AAVMF's files for
// an aarch64 guest (OVMF's x86 ones are not enough); without it, Debian's
// qemu-efi-aarch64 paths or an error naming that package.
func TestFindFirmwareAarch64(t *testing.T) {
	m, err := machineFor(ArchAarch64)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv(ovmfDirEnv, dir)
	for _, name := range []string{"OVMF_CODE.fd", "OVMF_VARS.fd"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("fw"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.findFirmware(); err == nil || !strings.Contains(err.Error(), "AAVMF_CODE.fd") {
		t.Fatalf("x86 firmware only: %v, want an error naming AAVMF_CODE.fd", err)
	}
	for _, name := range []string{"AAVMF_CODE.fd", "AAVMF_VARS.fd"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("fw"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if f, err := m.findFirmware(); err != nil || f.code != filepath.Join(dir, "AAVMF_CODE.fd") || f.vars != filepath.Join(dir, "AAVMF_VARS.fd") {
		t.Fatalf("findFirmware() = %+v, %v; want the AAVMF files in %s", f, err, dir)
	}
	t.Setenv(ovmfDirEnv, "")
	f, err := m.findFirmware()
	switch {
	case statOK("/usr/share/AAVMF/AAVMF_CODE.fd") && statOK("/usr/share/AAVMF/AAVMF_VARS.fd"):
		if err != nil || f.code != "/usr/share/AAVMF/AAVMF_CODE.fd" {
			t.Errorf("with qemu-efi-aarch64 installed: %+v, %v", f, err)
		}
	case err == nil || !strings.Contains(err.Error(), "qemu-efi-aarch64"):
		t.Errorf("without the firmware: %v, want an error naming qemu-efi-aarch64", err)
	}
}

// TestAAVMFBoots is the aarch64 smoke test: qemu-system-aarch64 with the UEFI
// command line qemuArgs makes (virt, TCG, AAVMF, a blank virtio disk) starts
// the firmware, which reaches its boot manager (BdsDxe) on the serial console
// and, finding nothing to boot on the blank disk, says so. No aarch64 kernel
// or system is booted: none can be built here.
func TestAAVMFBoots(t *testing.T) {
	if testing.Short() {
		t.Skip("boots qemu; skipped in -short mode")
	}
	m, err := machineFor(ArchAarch64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath(m.qemu); err != nil {
		t.Skipf("%s is not installed (Debian: %s)", m.qemu, m.qemuPkg)
	}
	fw, err := m.findFirmware()
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	vars := filepath.Join(dir, "OVMF_VARS.fd")
	if err := copyFile(fw.vars, vars, 0o644); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "disk0.raw")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 64<<20); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	vm := &VM{img: &Image{}, machine: m, mode: BootUEFI, dir: dir, console: filepath.Join(dir, "console.log"),
		port: port, disks: []string{disk}, firmware: fw,
		opts: Options{CPUs: 1, MemoryMiB: 512, Accel: "tcg", Disks: []DiskSpec{{Size: 64 << 20}}}}
	args := vm.qemuArgs("")
	if !slices.Contains(args, "virt,gic-version=max") {
		t.Fatalf("not a virt machine: %v", args)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.qemu, args...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	var console []byte
	for _, marker := range []string{"BdsDxe", "UEFI Interactive Shell"} {
		for !strings.Contains(string(console), marker) {
			if ctx.Err() != nil {
				t.Fatalf("no %q on the console after %s; qemu: %s\nconsole:\n%s", marker, time.Since(start).Round(time.Second), out, console)
			}
			time.Sleep(500 * time.Millisecond)
			console, _ = os.ReadFile(vm.console)
		}
		t.Logf("%q on the console after %s", marker, time.Since(start).Round(100*time.Millisecond))
	}
	for _, line := range strings.Split(string(console), "\n") {
		if strings.Contains(line, "BdsDxe") || strings.Contains(line, "Shell") {
			t.Logf("console: %s", strings.TrimSpace(line))
		}
	}
}
