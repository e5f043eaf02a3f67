// Package installvm is the machine `anywhere --vm-test` installs onto: a
// throwaway local qemu VM booted straight from a kexec installer tarball's
// kernel and initrd (nixos-images' layout: kexec/{run,bzImage,initrd}), with
// one blank virtual disk per disk of the layout. The VM starts the way the
// tarball's kexec/run would leave a machine: the kernel command line is the
// one run passes to kexec, and the archive run appends to the initrd (root's
// authorized key and the host key, under /ssh) is appended here, with keys
// made for this VM. When the installed system reboots, the same VM restarts
// with UEFI firmware (OVMF) from its disks, as a machine does.
//
// The VM's architecture is the installer kernel's: x86_64 (qemu-system-x86_64,
// OVMF) or aarch64 (qemu-system-aarch64 -M virt, AAVMF), read from the
// kernel image's header, so an aarch64 tarball on an x86_64 machine runs
// under TCG. The qemu plumbing is internal/testvm's (one SSH connection with
// a pinned host key, the console log, KVM when a probe shows it boots and the
// architecture is this machine's, else TCG).
package installvm

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// Options describe the VM.
type Options struct {
	Tarball   string  // the kexec installer tarball (a local file)
	DiskSizes []int64 // bytes of each blank disk: /dev/vda, /dev/vdb, ...
	MemoryMiB int     // default 2048: the installer runs from RAM
	CPUs      int     // default 2
	// BootTimeout bounds the wait for the installer's sshd (default 5 min: a
	// NixOS installer under TCG takes minutes).
	BootTimeout time.Duration
	Log         io.Writer // progress lines; nil discards
}

// Machine is the running VM and what logs in to it.
type Machine struct {
	*testvm.VM
	Dir     string        // holds the keys, the unpacked installer and the disks; removed by Stop
	HostKey ssh.PublicKey // the key the installer and, with --copy-host-keys, the installed system present
	Key     string        // a private key file root may log in with
	// AuthorizedKey is Key's public half (an authorized_keys line): the installed
	// system must authorize it too for the checks after the reboot.
	AuthorizedKey []byte
	Cmdline       string // the kernel command line from kexec/run
	Arch          string // the installer kernel's architecture: testvm.ArchX86_64 or testvm.ArchAarch64
}

// Start boots the installer in a new VM and returns once root can log in to it over SSH.
// The error of a VM that did not come up carries the end of its console.
func Start(ctx context.Context, o Options) (*Machine, error) {
	if o.MemoryMiB == 0 {
		o.MemoryMiB = 2048
	}
	if o.BootTimeout == 0 {
		o.BootTimeout = 5 * time.Minute
	}
	dir, err := os.MkdirTemp("", "anywhere-vm-test-")
	if err != nil {
		return nil, err
	}
	m := &Machine{Dir: dir}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	kernel, initrd, run, err := unpack(o.Tarball, filepath.Join(dir, "kexec"))
	if err != nil {
		return nil, err
	}
	if m.Cmdline, err = kexecCmdline(run); err != nil {
		return nil, fmt.Errorf("%s: %w", o.Tarball, err)
	}
	if m.Arch, err = kernelArch(kernel); err != nil {
		return nil, fmt.Errorf("--kexec %s: kexec/bzImage: %w", o.Tarball, err)
	}
	hostPriv, hostPub, err := newKey("anywhere-vm-test host key")
	if err != nil {
		return nil, err
	}
	clientPriv, clientPub, err := newKey("anywhere-vm-test")
	if err != nil {
		return nil, err
	}
	m.Key = filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(m.Key, clientPriv, 0o600); err != nil {
		return nil, err
	}
	m.AuthorizedKey = clientPub
	if m.HostKey, _, _, _, err = ssh.ParseAuthorizedKey(hostPub); err != nil {
		return nil, err
	}
	sum, err := fileHash(kernel)
	if err != nil {
		return nil, err
	}
	img := &testvm.Image{
		Dir:    filepath.Join(testvm.DefaultCacheDir(), "vm-test"), // where the KVM probe's answer is kept
		Kernel: kernel, BootKernel: kernel, Initrd: initrd,
		KernelRelease: "installer-" + m.Arch + "-" + sum, // names the KVM probe's answer
		HostKey:       m.HostKey,
		ClientKeyPath: m.Key,
	}
	for _, d := range []string{img.Dir, filepath.Join(dir, "vm")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	var disks []testvm.DiskSpec
	for _, s := range o.DiskSizes {
		disks = append(disks, testvm.DiskSpec{Size: s})
	}
	// What kexec/run appends to the initrd: the installer installs them at boot
	// (nixos-images' restore-remote-access).
	files := []testvm.File{
		{GuestPath: "/ssh/authorized_keys", Data: clientPub, Mode: 0o600},
		{GuestPath: "/ssh/ssh_host_ed25519_key", Data: hostPriv, Mode: 0o600},
		{GuestPath: "/ssh/ssh_host_ed25519_key.pub", Data: hostPub, Mode: 0o644},
	}
	m.VM, err = testvm.Start(ctx, testvm.Options{
		Image: img, Disks: disks, ExtraFiles: files, Dir: filepath.Join(dir, "vm"),
		Arch: m.Arch, MemoryMiB: o.MemoryMiB, CPUs: o.CPUs, KernelArgs: strings.Fields(m.Cmdline),
		BootTimeout: o.BootTimeout, OnReboot: testvm.BootUEFI, Log: o.Log,
	})
	if err != nil {
		return nil, err
	}
	ok = true
	return m, nil
}

// Stop powers the VM off and removes its directory.
func (m *Machine) Stop() {
	if m.VM != nil {
		m.VM.Stop()
	}
	os.RemoveAll(m.Dir)
}

// ConsoleTail is the last n lines of the VM's console.
func (m *Machine) ConsoleTail(n int) string {
	b, err := os.ReadFile(m.ConsoleLog())
	if err != nil {
		return "(no console log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// unpack extracts kexec/bzImage, kexec/initrd and kexec/run from the tarball into dir.
func unpack(tarball, dir string) (kernel, initrd string, run []byte, err error) {
	f, err := os.Open(tarball)
	if err != nil {
		return "", "", nil, fmt.Errorf("--kexec: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", "", nil, fmt.Errorf("--kexec %s: not a .tar.gz: %w", tarball, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", nil, err
	}
	found := map[string]bool{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", "", nil, fmt.Errorf("--kexec %s: %w", tarball, err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		switch name {
		case "kexec/bzImage", "kexec/initrd", "kexec/run":
		default:
			continue
		}
		out := filepath.Join(dir, filepath.Base(name))
		w, err := os.Create(out)
		if err != nil {
			return "", "", nil, err
		}
		_, err = io.Copy(w, tr)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", "", nil, fmt.Errorf("--kexec %s: %s: %w", tarball, name, err)
		}
		found[name] = true
	}
	for _, n := range []string{"kexec/bzImage", "kexec/initrd", "kexec/run"} {
		if !found[n] {
			return "", "", nil, fmt.Errorf("--kexec %s: no %s: not a kexec installer tarball in nixos-images' layout (kexec/{run,bzImage,initrd})", tarball, n)
		}
	}
	run, err = os.ReadFile(filepath.Join(dir, "run"))
	return filepath.Join(dir, "bzImage"), filepath.Join(dir, "initrd"), run, err
}

var (
	commandLineRe = regexp.MustCompile(`--command-line[= ]"([^"]*)"`)
	assignmentRe  = regexp.MustCompile(`(?m)^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)="([^"]*)"`)
	variableRe    = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)
)

// kexecCmdline is the kernel command line kexec/run passes to `kexec --load
// --command-line "..."`, with the script's own variables (kernel_params="...")
// filled in.
func kexecCmdline(run []byte) (string, error) {
	m := commandLineRe.FindSubmatch(run)
	if m == nil {
		return "", errors.New(`kexec/run has no --command-line "...": cannot tell the installer's kernel command line`)
	}
	vars := map[string]string{}
	for _, a := range assignmentRe.FindAllSubmatch(run, -1) {
		vars[string(a[1])] = string(a[2])
	}
	var missing []string
	line := variableRe.ReplaceAllStringFunc(string(m[1]), func(v string) string {
		name := variableRe.FindStringSubmatch(v)[1]
		val, ok := vars[name]
		if !ok {
			missing = append(missing, name)
		}
		return val
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("kexec/run's kernel command line uses $%s, which the script does not set", strings.Join(missing, ", $"))
	}
	return strings.Join(strings.Fields(line), " "), nil
}

// newKey makes an ed25519 key: the private key in OpenSSH's format and the public key
// as an authorized_keys line.
func newKey(comment string) (priv, pub []byte, err error) {
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(sk, comment)
	if err != nil {
		return nil, nil, err
	}
	sp, err := ssh.NewPublicKey(pk)
	if err != nil {
		return nil, nil, err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " " + comment + "\n"
	return pem.EncodeToMemory(block), []byte(line), nil
}

// kernelArch reads a kernel image's architecture from its header: an x86
// bzImage has "HdrS" at 0x202 (the boot protocol's header), an arm64 Image
// "ARM\x64" at 0x38. nixos-images names either kexec/bzImage.
func kernelArch(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 0x206)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", err
	}
	head = head[:n]
	switch {
	case n >= 0x206 && string(head[0x202:0x206]) == "HdrS":
		return testvm.ArchX86_64, nil
	case n >= 0x3c && string(head[0x38:0x3c]) == "ARM\x64":
		return testvm.ArchAarch64, nil
	}
	return "", errors.New("neither an x86 bzImage nor an arm64 Image: cannot tell which qemu machine boots it")
}

func fileHash(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
