package testvm

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Guest architectures (Options.Arch): the kernel a guest boots decides the
// qemu machine it needs.
const (
	ArchX86_64  = "x86_64"
	ArchAarch64 = "aarch64"
)

// HostArch is this machine's architecture in the kernel's spelling (uname -m):
// the default guest architecture, and the only one KVM can run.
func HostArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return ArchX86_64
	case "arm64":
		return ArchAarch64
	}
	return runtime.GOARCH
}

// machine is what differs between guest architectures: qemu's binary and
// machine type, the kernel's serial console and the UEFI firmware.
type machine struct {
	arch    string
	qemu    string   // the qemu binary
	qemuPkg string   // the Debian package that has it
	args    []string // the machine type, first on qemu's command line
	console string   // the serial console's name in Linux
	// firmware is where Debian's package firmwarePkg puts the UEFI firmware
	// (first found wins); firmwareFiles are the file names looked for in
	// $DISKOANYWHERE_OVMF_DIR (nixpkgs' OVMF.fd has them in FV/).
	firmware      []ovmf
	firmwarePkg   string
	firmwareFiles ovmf
}

// machineFor is the machine for a guest architecture ("" is the host's).
func machineFor(arch string) (machine, error) {
	if arch == "" {
		arch = HostArch()
	}
	switch arch {
	case ArchX86_64:
		// qemu's default PC machine, its 16550 UART and OVMF.
		return machine{arch: arch, qemu: "qemu-system-x86_64", qemuPkg: "qemu-system-x86", console: "ttyS0",
			firmware: []ovmf{
				{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
				{"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
			},
			firmwarePkg: "ovmf", firmwareFiles: ovmf{"OVMF_CODE.fd", "OVMF_VARS.fd"}}, nil
	case ArchAarch64:
		// arm64 has no default machine: virt (PCIe, so the same virtio-*-pci
		// devices; a PL011 UART; the GIC version the accelerator supports, as
		// KVM on a GICv3-only host refuses the default v2) and AAVMF, whose
		// two flash images are each the 64 MiB virt's pflash banks take.
		return machine{arch: arch, qemu: "qemu-system-aarch64", qemuPkg: "qemu-system-arm", console: "ttyAMA0",
			args: []string{"-M", "virt,gic-version=max"},
			firmware: []ovmf{
				{"/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.fd"},
			},
			firmwarePkg: "qemu-efi-aarch64", firmwareFiles: ovmf{"AAVMF_CODE.fd", "AAVMF_VARS.fd"}}, nil
	}
	return machine{}, fmt.Errorf("testvm: guest architecture %q: want %s or %s", arch, ArchX86_64, ArchAarch64)
}

// accelArgs select the accelerator: KVM runs the host's CPU, TCG emulates the
// most capable CPU qemu has for the architecture.
func (m machine) accelArgs(accel string) []string {
	if accel == "kvm" {
		return []string{"-accel", "kvm", "-cpu", "host"}
	}
	// A small translation cache is flushed often, so few stale blocks of
	// code outlive a kexec: with qemu's default (1 GiB) every store of the
	// new kernel into a page that once held translated code takes the slow
	// path, and unpacking its initramfs took 10-56 s instead of 0.6 s.
	// 64 MiB keeps the disk tools as fast as the default; 32 MiB did not.
	return []string{"-accel", "tcg,thread=multi,tb-size=64", "-cpu", "max"}
}

// findFirmware finds the machine's UEFI firmware in $DISKOANYWHERE_OVMF_DIR,
// else where Debian's package puts it.
func (m machine) findFirmware() (ovmf, error) {
	if dir := os.Getenv(ovmfDirEnv); dir != "" {
		f := ovmf{filepath.Join(dir, m.firmwareFiles.code), filepath.Join(dir, m.firmwareFiles.vars)}
		if statOK(f.code) && statOK(f.vars) {
			return f, nil
		}
		return ovmf{}, fmt.Errorf("testvm: %s=%s holds no %s and %s for %s; point it at the firmware's directory (nixpkgs: ${OVMF.fd}/FV) or unset it to use Debian's %s",
			ovmfDirEnv, dir, m.firmwareFiles.code, m.firmwareFiles.vars, m.arch, m.firmwarePkg)
	}
	for _, f := range m.firmware {
		if statOK(f.code) && statOK(f.vars) {
			return f, nil
		}
	}
	return ovmf{}, &MissingError{What: fmt.Sprintf("%s UEFI firmware (%s, or $%s)", m.arch, m.firmware[0].code, ovmfDirEnv), Packages: []string{m.firmwarePkg}}
}
