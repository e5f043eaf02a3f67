package testvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Sizes for DiskSpec.Size.
const (
	MiB int64 = 1 << 20
	GiB int64 = 1 << 30
)

// DiskSpec is one virtio disk of the guest. Disks appear in order as
// /dev/vda, /dev/vdb, ... and as /dev/disk/by-id/virtio-<Serial>.
type DiskSpec struct {
	Size     int64  // bytes of a new sparse raw file in the VM's directory (deleted by Stop)
	Path     string // or an existing image file, kept after Stop
	Format   string // of Path: "raw" (default) or "qcow2"
	ReadOnly bool   // e.g. a disk that carries tools (Nix) into the guest
	Serial   string // default "testvm<N>" (N = index); at most 20 characters
}

// Share is a host directory mounted read-only in the guest over virtio-9p,
// for tools or fixtures too big to copy over SSH.
type Share struct {
	HostDir  string
	GuestDir string // absolute, no whitespace
}

// File is put into the guest's root filesystem before it boots (an extra
// initramfs archive), for things that must be there before sshd starts.
type File struct {
	GuestPath string
	Data      []byte // content, or:
	HostPath  string // a host file to copy
	Mode      os.FileMode
}

// Options describe a guest. The zero value boots a guest with no disks.
type Options struct {
	Disks      []DiskSpec
	MemoryMiB  int      // default 1024; the root filesystem is in RAM and may fill half of it
	CPUs       int      // default 2
	KernelArgs []string // appended to the kernel command line; testvm.modules=a,b loads modules at boot
	ExtraFiles []File
	Shares     []Share
	NoUdev     bool // boot without systemd-udevd (lvm.conf then makes /dev nodes itself)

	// BootTimeout bounds the wait for sshd to answer (default 60s), in
	// Start and Reconnect. On a busy machine, where qemu gets less CPU time
	// than the wait's wall time, the wait stretches up to 3x (waitOver);
	// the context given to Start can shorten it.
	BootTimeout time.Duration
	// Arch is the guest's architecture, which its kernel decides: ArchX86_64
	// or ArchAarch64 (qemu-system-aarch64 -M virt, AAVMF); default the host's.
	// KVM runs only the host's architecture; another one runs under TCG.
	Arch string
	// Accel is "auto" (default: KVM when a quick, cached probe shows that
	// Debian's kernel really boots under it, else TCG), "tcg" or "kvm".
	// Env DISKOANYWHERE_TESTVM_ACCEL overrides it.
	Accel string
	// Dir holds the disks and logs; default a new temp dir removed by Stop.
	Dir string
	// Image to boot; default Build(ctx, BuildOptions{CacheDir: CacheDir,
	// ExtraPackages: ExtraPackages}).
	Image         *Image
	CacheDir      string
	ExtraPackages []string
	// Log receives progress (build, boot time); nil discards it.
	Log io.Writer

	// Boot is how the machine starts: BootKernel (default) boots the
	// image's kernel and initramfs directly; BootUEFI boots from the disks
	// with OVMF firmware (Debian's ovmf; NVRAM in the VM's directory), as a
	// machine with an installed system does, and then a guest reboot is a
	// real reset of the same machine.
	Boot string
	// OnReboot is what a guest reboot does to a BootKernel machine: by
	// default qemu exits (-no-reboot). BootUEFI starts qemu again at once on
	// the same disks, port and NVRAM, booting with OVMF from the disks: the
	// machine reboots into what was installed on them.
	OnReboot string
	// HostKey is the SSH host key the system booted from the disks presents
	// (default: the image's, which --copy-host-keys carries over).
	HostKey ssh.PublicKey
	// GuestForwards make host TCP services reachable from the guest, which
	// otherwise cannot reach the host at all (restricted user-mode network).
	GuestForwards []GuestForward
}

// GuestForward makes the guest's connections to GuestAddr (an address in
// 10.0.2.0/24 other than .2, .3 and .15, with a port) reach HostAddr.
type GuestForward struct {
	GuestAddr string // e.g. 10.0.2.100:8080
	HostAddr  string // e.g. 127.0.0.1:43210
}

// Values of Options.Boot and Options.OnReboot.
const (
	BootKernel = "kernel"
	BootUEFI   = "uefi"
)

// VM is a running guest. Its methods are safe for concurrent use; commands
// share one SSH connection.
type VM struct {
	img        *Image
	opts       Options
	dir        string
	ownDir     bool
	port       int
	console    string
	qemuLog    string
	knownHosts string
	disks      []string

	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	mode     string // BootKernel or BootUEFI: how qemu was last started
	stopping bool   // Stop or kill asked for the end: no restart
	machine  machine
	firmware ovmf

	mu      sync.Mutex
	client  *ssh.Client
	bootID  string
	signer  ssh.Signer
	scripts int

	stopOnce sync.Once
	stopErr  error

	// BootTime is how long the guest took from qemu start to the first
	// SSH command (the last Reconnect for a guest that was kexec'd).
	BootTime time.Duration
}

// Start boots a guest and returns once root can log in over SSH. ctx bounds
// only the start; the guest runs until Stop.
func Start(ctx context.Context, opts Options) (_ *VM, err error) {
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	if opts.MemoryMiB == 0 {
		opts.MemoryMiB = 1024
	}
	if opts.CPUs == 0 {
		opts.CPUs = 2
	}
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 60 * time.Second
	}
	if a := os.Getenv("DISKOANYWHERE_TESTVM_ACCEL"); a != "" {
		opts.Accel = a
	}
	img := opts.Image
	if img == nil {
		img, err = Build(ctx, BuildOptions{CacheDir: opts.CacheDir, ExtraPackages: opts.ExtraPackages, Log: logw})
		if err != nil {
			return nil, err
		}
	}
	switch opts.Boot {
	case "", BootKernel:
		opts.Boot = BootKernel
	case BootUEFI:
	default:
		return nil, fmt.Errorf("testvm: Boot %q: want %q or %q", opts.Boot, BootKernel, BootUEFI)
	}
	if opts.OnReboot != "" && opts.OnReboot != BootUEFI {
		return nil, fmt.Errorf("testvm: OnReboot %q: want \"\" or %q", opts.OnReboot, BootUEFI)
	}
	m, err := machineFor(opts.Arch)
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(m.qemu); err != nil {
		return nil, &MissingError{What: m.qemu, Packages: []string{m.qemuPkg}, core: true}
	}
	native := m.arch == HostArch()
	switch opts.Accel {
	case "", "auto":
		opts.Accel = "tcg"
		if native && kvmBoots(ctx, img, m, logw) {
			opts.Accel = "kvm"
		}
	case "kvm":
		if !native {
			return nil, fmt.Errorf("testvm: accel kvm: KVM runs only this machine's architecture %s, not %s; use tcg", HostArch(), m.arch)
		}
	case "tcg":
	default:
		return nil, fmt.Errorf("testvm: accel %q: want auto, tcg or kvm", opts.Accel)
	}
	key, err := os.ReadFile(img.ClientKeyPath)
	if err != nil {
		return nil, fmt.Errorf("testvm: client key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("testvm: client key %s: %w", img.ClientKeyPath, err)
	}
	vm := &VM{img: img, opts: opts, dir: opts.Dir, signer: signer, mode: opts.Boot, machine: m}
	if opts.Boot == BootUEFI || opts.OnReboot == BootUEFI {
		if vm.firmware, err = m.findFirmware(); err != nil {
			return nil, err
		}
	}
	if vm.dir == "" {
		if vm.dir, err = os.MkdirTemp("", "testvm-"); err != nil {
			return nil, fmt.Errorf("testvm: %w", err)
		}
		vm.ownDir = true
	}
	ok := false
	defer func() {
		if !ok && vm.ownDir {
			if kept := vm.keepConsole(); kept != "" {
				err = fmt.Errorf("%w\n(full console log kept at %s)", err, kept)
			}
			os.RemoveAll(vm.dir)
		}
	}()
	vm.console = filepath.Join(vm.dir, "console.log")
	vm.qemuLog = filepath.Join(vm.dir, "qemu.log")
	vm.knownHosts = filepath.Join(vm.dir, "known_hosts")
	if err := vm.prepareDisks(); err != nil {
		return nil, err
	}
	if vm.firmware.code != "" {
		if err := copyFile(vm.firmware.vars, filepath.Join(vm.dir, "OVMF_VARS.fd"), 0o644); err != nil {
			return nil, fmt.Errorf("testvm: NVRAM: %w", err)
		}
	}
	initrd, err := vm.prepareInitrd()
	if err != nil {
		return nil, err
	}
	// The forwarded port is picked before qemu binds it, so another process
	// can take it in between (see freePort); qemu then exits at once and we
	// retry with another.
	for attempt := 0; ; attempt++ {
		if vm.port, err = freePort(); err != nil {
			return nil, err
		}
		if err := vm.launch(initrd); err != nil {
			return nil, err
		}
		err = vm.waitSSH(ctx, opts.BootTimeout, "")
		if err == nil {
			break
		}
		log, _ := os.ReadFile(vm.qemuLog)
		if attempt < 2 && bytes.Contains(log, []byte("hostfwd")) {
			vm.kill()
			continue
		}
		vm.kill()
		return nil, err
	}
	known := fmt.Sprintf("[127.0.0.1]:%d %s", vm.port, ssh.MarshalAuthorizedKey(vm.HostKey()))
	if err := os.WriteFile(vm.knownHosts, []byte(known), 0o644); err != nil {
		vm.kill()
		return nil, fmt.Errorf("testvm: %w", err)
	}
	ok = true
	fmt.Fprintf(logw, "testvm: guest up in %.1fs (ssh %s, %d CPUs, %d MiB, %s)\n",
		vm.BootTime.Seconds(), vm.SSHAddr(), opts.CPUs, opts.MemoryMiB, opts.Accel)
	return vm, nil
}

func (vm *VM) prepareDisks() error {
	for i, d := range vm.opts.Disks {
		p := d.Path
		switch {
		case p != "" && d.Size != 0:
			return fmt.Errorf("testvm: disk %d: set Size or Path, not both", i)
		case p != "":
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("testvm: disk %d: %w", i, err)
			}
		case d.Size > 0:
			p = filepath.Join(vm.dir, fmt.Sprintf("disk%d.img", i))
			f, err := os.Create(p)
			if err != nil {
				return fmt.Errorf("testvm: disk %d: %w", i, err)
			}
			err = f.Truncate(d.Size)
			f.Close()
			if err != nil {
				return fmt.Errorf("testvm: disk %d: %w", i, err)
			}
		default:
			return fmt.Errorf("testvm: disk %d: needs a Size > 0 or a Path", i)
		}
		if len(d.Serial) > 20 {
			return fmt.Errorf("testvm: disk %d: serial %q is longer than 20 characters", i, d.Serial)
		}
		vm.disks = append(vm.disks, p)
	}
	return nil
}

// prepareInitrd returns the image's initramfs, or a copy of it with the
// ExtraFiles appended as one more archive: the kernel unpacks concatenated
// archives in order, so later files win.
func (vm *VM) prepareInitrd() (string, error) {
	if len(vm.opts.ExtraFiles) == 0 {
		return vm.img.Initrd, nil
	}
	t := tree{}
	for _, f := range vm.opts.ExtraFiles {
		if !strings.HasPrefix(f.GuestPath, "/") {
			return "", fmt.Errorf("testvm: extra file %q: guest path must be absolute", f.GuestPath)
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if f.HostPath != "" {
			if _, err := os.Stat(f.HostPath); err != nil {
				return "", fmt.Errorf("testvm: extra file %s: %w", f.GuestPath, err)
			}
			t.addFile(f.GuestPath, f.HostPath, mode)
		} else {
			t.addData(f.GuestPath, f.Data, mode)
		}
	}
	out := filepath.Join(vm.dir, "initrd.img")
	if err := copyFile(vm.img.Initrd, out, 0o644); err != nil {
		return "", fmt.Errorf("testvm: %w", err)
	}
	if err := appendArchive(out, t); err != nil {
		return "", fmt.Errorf("testvm: extra files: %w", err)
	}
	return out, nil
}

// appendArchive appends t as a cpio archive to the initrd file, after zero
// padding to a 4-byte boundary: the kernel finds an archive that follows a
// compressed one only at an aligned offset (init/initramfs.c), and an
// Image's initrd may be anyone's (installvm boots installer tarballs').
func appendArchive(initrd string, t tree) error {
	f, err := os.OpenFile(initrd, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := f.Write(make([]byte, (4-st.Size()%4)%4)); err != nil {
		return err
	}
	if err := t.writeCpio(f); err != nil {
		return err
	}
	return f.Close()
}

// qemuArgs is the qemu command line for the current port and boot mode.
func (vm *VM) qemuArgs(initrd string) []string {
	o := vm.opts
	args := append(slices.Clone(vm.machine.args), "-nographic", "-nodefaults", "-monitor", "none",
		"-smp", strconv.Itoa(o.CPUs), "-m", strconv.Itoa(o.MemoryMiB),
		"-chardev", "file,id=console,append=on,path="+vm.console, "-serial", "chardev:console",
		"-netdev", vm.netdev(),
		"-device", "virtio-net-pci,netdev=net0,romfile=",
		"-device", "virtio-rng-pci",
	)
	args = append(args, vm.machine.accelArgs(o.Accel)...)
	uefi := vm.mode == BootUEFI
	if uefi {
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+vm.firmware.code,
			"-drive", "if=pflash,format=raw,unit=1,file="+filepath.Join(vm.dir, "OVMF_VARS.fd"),
			// OVMF brings up its network stack for PXE unless told not to:
			// 5-10 s under TCG for a boot that never uses it.
			"-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n",
			"-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n")
	} else {
		args = append(args, "-no-reboot", "-kernel", vm.img.BootKernel, "-initrd", initrd)
	}
	cmdline := []string{"console=" + vm.machine.console, "panic=-1", "quiet", "loglevel=4", "no_timer_check"}
	if o.NoUdev {
		cmdline = append(cmdline, "testvm.udev=0")
	}
	for i, d := range o.Disks {
		format, cache := "raw", "unsafe" // a fresh scratch disk needs no durability
		if d.Path != "" {
			cache = "writeback"
			if d.Format != "" {
				format = d.Format
			}
		}
		drive := fmt.Sprintf("file=%s,format=%s,if=none,id=disk%d,cache=%s,discard=unmap", vm.disks[i], format, i, cache)
		if d.ReadOnly {
			drive += ",readonly=on"
		}
		serial := d.Serial
		if serial == "" {
			serial = fmt.Sprintf("testvm%d", i)
		}
		dev := fmt.Sprintf("virtio-blk-pci,drive=disk%d,serial=%s", i, serial)
		if uefi {
			dev += fmt.Sprintf(",bootindex=%d", i) // the firmware tries the disks in order
		}
		args = append(args, "-drive", drive, "-device", dev)
	}
	for i, s := range o.Shares {
		tag := fmt.Sprintf("share%d", i)
		args = append(args, "-virtfs", fmt.Sprintf("local,path=%s,mount_tag=%s,security_model=none,readonly=on", s.HostDir, tag))
		cmdline = append(cmdline, fmt.Sprintf("testvm.share=%s:%s", tag, s.GuestDir))
	}
	if uefi {
		return args // the boot loader on the disks has the command line
	}
	cmdline = append(cmdline, o.KernelArgs...)
	return append(args, "-append", strings.Join(cmdline, " "))
}

// netdev is the user-mode network: restricted (no way out), sshd forwarded
// from the host, and the GuestForwards.
func (vm *VM) netdev() string {
	s := fmt.Sprintf("user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22", vm.port)
	for _, f := range vm.opts.GuestForwards {
		s += fmt.Sprintf(",guestfwd=tcp:%s-tcp:%s", f.GuestAddr, f.HostAddr)
	}
	return s
}

// ovmf is the UEFI firmware: code (read-only) and a template of its NVRAM.
type ovmf struct{ code, vars string }

// ovmfDirEnv names a directory holding the UEFI firmware (OVMF_CODE.fd and
// OVMF_VARS.fd; AAVMF_CODE.fd and AAVMF_VARS.fd for aarch64): the Debian
// paths do not exist where the firmware comes from Nix (nixpkgs' OVMF.fd puts
// them in FV/), as in the module's installTest.
const ovmfDirEnv = "DISKOANYWHERE_OVMF_DIR"

// rebootMarker is what Linux prints on the console when it resets the machine.
const rebootMarker = "reboot: Restarting system"

func (vm *VM) launch(initrd string) error {
	for _, s := range vm.opts.Shares {
		if !filepath.IsAbs(s.GuestDir) || strings.ContainsAny(s.GuestDir, " \t\n,") || strings.ContainsAny(s.HostDir, ",") {
			return fmt.Errorf("testvm: share %q -> %q: guest dir must be absolute, without spaces or commas", s.HostDir, s.GuestDir)
		}
	}
	logf, err := os.Create(vm.qemuLog)
	if err != nil {
		return fmt.Errorf("testvm: %w", err)
	}
	defer logf.Close()
	vm.exited = make(chan struct{})
	vm.mu.Lock()
	vm.stopping = false
	vm.mu.Unlock()
	return vm.startQemu(initrd, logf)
}

// startQemu starts qemu in the current mode and watches it: when a
// BootKernel guest with OnReboot set reboots, qemu is started again in
// UEFI mode; any other exit is final and closes vm.exited.
func (vm *VM) startQemu(initrd string, logf *os.File) error {
	var since int64
	if st, err := os.Stat(vm.console); err == nil {
		since = st.Size()
	}
	cmd := exec.Command(vm.machine.qemu, vm.qemuArgs(initrd)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// qemu dies with the test process even when nobody calls Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testvm: start qemu: %w", err)
	}
	vm.mu.Lock()
	vm.cmd = cmd
	vm.mu.Unlock()
	go func() {
		err := cmd.Wait()
		vm.mu.Lock()
		restart := !vm.stopping && vm.opts.OnReboot == BootUEFI && vm.mode == BootKernel &&
			consoleHas(vm.console, since, rebootMarker)
		if restart {
			vm.mode = BootUEFI
		}
		vm.mu.Unlock()
		if restart {
			f, ferr := os.OpenFile(vm.qemuLog, os.O_APPEND|os.O_WRONLY, 0)
			if ferr == nil {
				fmt.Fprintf(f, "testvm: the guest rebooted: starting qemu again, booting the disks with UEFI\n")
				ferr = vm.startQemu("", f)
				f.Close()
			}
			if ferr == nil {
				return
			}
			err = ferr
		}
		vm.waitErr = err
		close(vm.exited)
	}()
	return nil
}

// waitSSH dials until the guest answers with the pinned host key and, when
// notBootID is set, a different boot ID (so a guest that is still going
// down is not mistaken for the one coming up).
// It gives up after limit (see waitOver); ctx can end it sooner.
func (vm *VM) waitSSH(ctx context.Context, limit time.Duration, notBootID string) error {
	start := time.Now()
	hardStop, hasHardStop := ctx.Deadline()
	cpu := vm.newCPUClock()
	var since int64 // only a marker printed during this wait counts
	if st, err := os.Stat(vm.console); err == nil {
		since = st.Size()
	}
	var lastErr error
	for {
		select {
		case <-vm.exited:
			return fmt.Errorf("testvm: qemu exited (%v) before the guest answered on ssh\n%s", vm.waitErr, vm.diagnostics())
		default:
		}
		if waitOver(time.Since(start), cpu.used(), limit) || (hasHardStop && time.Now().After(hardStop)) {
			return fmt.Errorf("testvm: guest did not answer ssh on %s within the boot timeout of %s (waited %.0fs, qemu ran %.0fs of CPU time; last error: %v)\n%s",
				vm.SSHAddr(), limit, time.Since(start).Seconds(), cpu.used().Seconds(), lastErr, vm.diagnostics())
		}
		// Until the guest's network is up, user-mode networking accepts a
		// connection and then holds it without an answer, so a dial would
		// wait out its whole timeout. Our guest says on the console when sshd
		// starts; another system (a kexec target) is dialed after 20 s.
		timeout := 10 * time.Second
		if !consoleHas(vm.console, since, sshdMarker) {
			if time.Since(start) < 20*time.Second {
				if err := sleepCtx(ctx, vm.exited, 100*time.Millisecond); err != nil {
					return fmt.Errorf("testvm: waiting for ssh on %s: %w\n%s", vm.SSHAddr(), err, vm.diagnostics())
				}
				continue
			}
			timeout = 5 * time.Second
		}
		client, err := vm.dial(timeout)
		if err == nil {
			var id string
			id, err = bootID(client, 10*time.Second)
			if err == nil && id != notBootID {
				vm.mu.Lock()
				vm.client, vm.bootID = client, id
				vm.mu.Unlock()
				if vm.BootTime == 0 || notBootID != "" {
					vm.BootTime = time.Since(start)
				}
				return nil
			}
			client.Close()
			if err == nil {
				err = errors.New("the old system still answers")
			}
		}
		lastErr = err
		if err := sleepCtx(ctx, vm.exited, 100*time.Millisecond); err != nil {
			return fmt.Errorf("testvm: waiting for ssh on %s: %w\n%s", vm.SSHAddr(), err, vm.diagnostics())
		}
	}
}

// waitOver tells whether a wait for the guest has lasted long enough to
// give up: limit of wall time in which qemu also ran limit of CPU time, or
// three times limit of wall time. Under TCG a guest boots only as fast as
// qemu gets the host's CPUs: on a busy machine a boot takes longer in wall
// time but not in CPU time, so the wait stretches (up to 3x) instead of
// failing a guest that was still booting. A guest that hangs idle uses
// little CPU and is given up on at 3x.
func waitOver(wall, cpu, limit time.Duration) bool {
	return (wall >= limit && cpu >= limit) || wall >= 3*limit
}

// cpuClock measures the CPU time qemu uses from its creation on, across a
// restart of qemu (the new process counts from zero).
type cpuClock struct {
	vm    *VM
	pid   int
	start time.Duration // what pid had used when the clock started
	last  time.Duration // pid's last reading
	prior time.Duration // used by earlier processes
}

func (vm *VM) newCPUClock() *cpuClock {
	c := &cpuClock{vm: vm}
	c.pid, c.start = vm.qemuCPU()
	c.last = c.start
	return c
}

func (c *cpuClock) used() time.Duration {
	pid, t := c.vm.qemuCPU()
	if pid != c.pid { // qemu was restarted
		c.prior += c.last - c.start
		c.pid, c.start, c.last = pid, 0, 0
	}
	c.last = max(c.last, t) // an exited process reads as 0
	return c.prior + c.last - c.start
}

// qemuCPU is the current qemu process and the CPU time (user and system,
// all threads) it has used, from /proc/PID/stat.
func (vm *VM) qemuCPU() (int, time.Duration) {
	vm.mu.Lock()
	cmd := vm.cmd
	vm.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return 0, 0
	}
	pid := cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := bytes.LastIndexByte(b, ')')
	if err != nil || i < 0 {
		return pid, 0
	}
	f := strings.Fields(string(b[i+1:])) // from field 3 (state) on
	if len(f) < 13 {
		return pid, 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14, in clock ticks of 1/100 s
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return pid, time.Duration(utime+stime) * 10 * time.Millisecond
}

// sshdMarker is what rc.sh prints on the console right before sshd starts.
const sshdMarker = "testvm: starting sshd"

// consoleHas tells whether the console log holds marker after offset since.
func consoleHas(console string, since int64, marker string) bool {
	f, err := os.Open(console)
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, since, 1<<40))
	return err == nil && bytes.Contains(b, []byte(marker))
}

// sleepCtx sleeps for d, returning early (nil) when qemu exits, or with
// ctx's error when it ends.
func sleepCtx(ctx context.Context, exited <-chan struct{}, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-exited:
	case <-time.After(d):
	}
	return nil
}

func (vm *VM) dial(timeout time.Duration) (*ssh.Client, error) {
	conn, err := net.DialTimeout("tcp", vm.SSHAddr(), timeout)
	if err != nil {
		return nil, err
	}
	// user-mode networking accepts the TCP connection even while nothing
	// listens in the guest; the deadline bounds the handshake.
	conn.SetDeadline(time.Now().Add(timeout))
	cfg := &ssh.ClientConfig{
		User:              "root",
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(vm.signer)},
		HostKeyCallback:   ssh.FixedHostKey(vm.HostKey()),
		HostKeyAlgorithms: []string{vm.HostKey().Type()},
		Timeout:           timeout,
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, vm.SSHAddr(), cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// bootID identifies the running kernel boot. A guest that goes away in a
// kexec never closes its TCP connections, so the wait is bounded.
func bootID(c *ssh.Client, timeout time.Duration) (string, error) {
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := c.NewSession()
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer s.Close()
		out, err := s.Output("cat /proc/sys/kernel/random/boot_id")
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		return strings.TrimSpace(string(r.out)), r.err
	case <-time.After(timeout):
		c.Close() // unblocks the session
		return "", errors.New("no answer to a command (guest going down?)")
	}
}

// diagnostics is the tail of the console and of qemu's own output, for errors.
func (vm *VM) diagnostics() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- console (%s), last lines:\n%s", vm.console, tailFile(vm.console, 40))
	if q := tailFile(vm.qemuLog, 10); strings.TrimSpace(q) != "" {
		fmt.Fprintf(&b, "--- qemu:\n%s", q)
	}
	return b.String()
}

// keepConsole copies the console log out of the VM's directory, which Stop
// (or a failed Start) removes, and returns the copy's path ("" if none).
func (vm *VM) keepConsole() string {
	b, err := os.ReadFile(vm.console)
	if err != nil || len(b) == 0 {
		return ""
	}
	f, err := os.CreateTemp("", "testvm-console-*.log")
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		return ""
	}
	return f.Name()
}

func tailFile(name string, lines int) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Sprintf("(%v)\n", err)
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n") + "\n"
}

// freePort picks the port for qemu's forward of the guest's sshd. qemu binds
// it only later, so it is drawn at random from below the kernel's ephemeral
// range (net.ipv4.ip_local_port_range): the kernel never gives those to
// other programs' connections or port-0 listeners, which would otherwise
// take it in between under load. Only a program that binds that very port
// can, and Start then tries another.
func freePort() (int, error) {
	const low = 10000
	ephemeral := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &ephemeral)
	}
	if ephemeral-low < 1000 { // an unusual range: let the kernel choose
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("testvm: find a free port: %w", err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	var err error
	for range 100 {
		port := low + rand.IntN(ephemeral-low)
		var l net.Listener
		if l, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("testvm: find a free port below %d: %w", ephemeral, err)
}

// SSHAddr is the host address forwarded to the guest's sshd (127.0.0.1:port).
func (vm *VM) SSHAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(vm.port)) }

// SSHPort is the port of SSHAddr.
func (vm *VM) SSHPort() int { return vm.port }

// HostKey is the guest's pinned SSH host key: the image's (the same for
// every boot of it), or Options.HostKey.
func (vm *VM) HostKey() ssh.PublicKey {
	if vm.opts.HostKey != nil {
		return vm.opts.HostKey
	}
	return vm.img.HostKey
}

// Mode is how the machine booted last: BootKernel or BootUEFI (after a
// reboot with OnReboot set).
func (vm *VM) Mode() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.mode
}

// ClientKeyPath is a private key file that logs in as root (for ssh -i, NIX_SSHOPTS).
func (vm *VM) ClientKeyPath() string { return vm.img.ClientKeyPath }

// KnownHostsPath is a known_hosts file pinning HostKey for SSHAddr.
func (vm *VM) KnownHostsPath() string { return vm.knownHosts }

// SSHArgs are OpenSSH client options that log in to the guest with the host
// key checked; append "root@127.0.0.1" (and a command) to use them.
func (vm *VM) SSHArgs() []string {
	return []string{"-p", strconv.Itoa(vm.port), "-i", vm.img.ClientKeyPath,
		"-o", "UserKnownHostsFile=" + vm.knownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"}
}

// ConsoleLog is the path of the guest's serial console log.
func (vm *VM) ConsoleLog() string { return vm.console }

// DiskPath is the host file behind the i-th disk (/dev/vda is 0).
func (vm *VM) DiskPath(i int) string { return vm.disks[i] }

// Image is the image the guest booted (its Kernel and Initrd can be copied
// into the guest to kexec into the same system).
func (vm *VM) Image() *Image { return vm.img }

// Dir holds the disks and logs of this guest.
func (vm *VM) Dir() string { return vm.dir }

// Client is the current SSH connection, for callers that need sessions of
// their own (port forwarding, sftp). It changes after Reconnect.
func (vm *VM) Client() *ssh.Client {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.client
}

// Reconnect drops the SSH connection and waits until the guest answers again
// as a new boot (another /proc/sys/kernel/random/boot_id) with the same host
// key: call it after starting a kexec or a reboot of the guest. ctx bounds
// the wait.
func (vm *VM) Reconnect(ctx context.Context) error {
	vm.mu.Lock()
	old, oldID := vm.client, vm.bootID
	vm.client = nil
	vm.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return vm.waitSSH(ctx, vm.opts.BootTimeout, oldID)
}

// Stop powers the guest off, kills qemu (by its PID) if it does not exit in
// time, and removes the VM's temporary directory. It is safe to call twice.
func (vm *VM) Stop() error {
	vm.stopOnce.Do(func() {
		vm.mu.Lock()
		vm.stopping = true
		vm.mu.Unlock()
		if c := vm.Client(); c != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			vm.Run(ctx, "sync; poweroff -f") // the connection drops: no useful result
			cancel()
			c.Close()
		}
		select {
		case <-vm.exited:
		case <-time.After(10 * time.Second):
			vm.kill()
		}
		if vm.ownDir {
			vm.stopErr = os.RemoveAll(vm.dir)
		}
	})
	return vm.stopErr
}

// kill ends qemu by PID (no restart) and waits for it.
func (vm *VM) kill() {
	vm.mu.Lock()
	vm.stopping = true
	cmd := vm.cmd
	vm.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	select {
	case <-vm.exited:
		return
	default:
	}
	cmd.Process.Kill()
	<-vm.exited
}

// Exited is closed when qemu has exited (after Stop, or a guest poweroff or
// panic).
func (vm *VM) Exited() <-chan struct{} { return vm.exited }
