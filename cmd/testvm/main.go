// Command testvm builds and boots the project's test guests by hand: to warm
// the image cache, to poke at a guest with a shell, or to try a command on
// fresh virtio disks the way the VM tests do.
//
//	go run ./cmd/testvm build
//	go run ./cmd/testvm shell --disks 1G,1G
//	go run ./cmd/testvm run --disks 2G -- lsblk --json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: testvm COMMAND [flags]

Commands:
  build                      build the guest image (or find it cached) and print where it is
  installer                  build the kexec installer tarball (nixos-images layout) and print its path
  system [flags]             build the stand-in NixOS system for a layout; print DISKO_SCRIPT TOPLEVEL
  serve [flags]              boot a guest, write how to reach it (--env FILE), run until SIGTERM/Ctrl-C
  shell [flags]              boot a guest and open an ssh shell in it (or print the ssh command)
  run [flags] -- CMD [ARG..] boot a guest, run CMD in it, exit with its status

Flags of system:
  --nixos-config FILE   the layout's NixOS configuration (disko-compile nixos-config LAYOUT)
  --disko-script FILE   its destroy,format,mount script (disko-compile script destroy,format,mount LAYOUT)
  --initrd-secret DEST=SRC  a file copied from the installed root into the initrd (boot.initrd.secrets; repeatable)
  --hostname NAME       (default demo)
  root may log in with the rig's client key

Flags of shell, run and serve:
  --disks 1G,512M   virtio disks (/dev/vda, /dev/vdb, ...): sizes of new sparse files, or paths of image files
  --cpus N          virtual CPUs (default 2)
  --memory MiB      guest memory (default 1024)
  --no-udev         boot without systemd-udevd
  --packages a,b    more installed Debian packages to put in the guest (e.g. nix-bin)
  --append ARGS     more kernel command line arguments
  --print           (shell) print the ssh command and wait for Ctrl-C instead of running ssh
  --on-reboot uefi  a guest reboot restarts the machine with UEFI firmware, booting its disks
  --boot uefi       boot the disks with UEFI firmware (an installed system) instead of the rig's kernel
  --env FILE        (serve) write TESTVM_PORT, TESTVM_KEY, TESTVM_KNOWN_HOSTS, TESTVM_CONSOLE to FILE

Environment: DISKOANYWHERE_TESTVM_CACHE overrides the image cache directory.

Example:
  go run ./cmd/testvm run --disks 1G -- sgdisk -n1:0:0 /dev/vda
`

// run is main without the process: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	status := 0
	switch args[0] {
	case "build":
		err = cmdBuild(ctx, args[1:], stdout, stderr)
	case "installer":
		err = cmdInstaller(ctx, args[1:], stdout, stderr)
	case "system":
		err = cmdSystem(ctx, args[1:], stdout, stderr)
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "shell":
		err = cmdShell(ctx, args[1:], stdout, stderr)
	case "run":
		status, err = cmdRun(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "testvm: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		if status == 0 {
			status = 1
		}
	}
	return status
}

func cmdBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Now()
	img, err := testvm.Build(ctx, testvm.BuildOptions{Log: stderr})
	if err != nil {
		return err
	}
	state := "cached"
	if img.Built {
		state = "built"
	}
	fmt.Fprintf(stderr, "testvm: image %s in %.2fs\n", state, time.Since(start).Seconds())
	fmt.Fprintf(stdout, "kernel: %s\ninitrd: %s\nclient key: %s\nhost key: %s", img.Kernel, img.Initrd,
		img.ClientKeyPath, ssh.MarshalAuthorizedKey(img.HostKey))
	return nil
}

func cmdInstaller(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("installer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Now()
	inst, err := testvm.BuildInstaller(ctx, testvm.BuildOptions{Log: stderr})
	if err != nil {
		return err
	}
	state := "cached"
	if inst.Image.Built {
		state = "built"
	}
	fmt.Fprintf(stderr, "testvm: installer %s in %.2fs\n", state, time.Since(start).Seconds())
	fmt.Fprintln(stdout, inst.Tarball)
	return nil
}

// vmFlags are the flags shared by shell, run and serve.
type vmFlags struct {
	disks    string
	cpus     int
	memory   int
	noUdev   bool
	packages string
	append   string
	onReboot string
	boot     string
}

func (f *vmFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.disks, "disks", "", "comma-separated disk sizes (1G, 512M) or image paths")
	fs.IntVar(&f.cpus, "cpus", 0, "virtual CPUs")
	fs.IntVar(&f.memory, "memory", 0, "guest memory in MiB")
	fs.BoolVar(&f.noUdev, "no-udev", false, "boot without systemd-udevd")
	fs.StringVar(&f.packages, "packages", "", "comma-separated extra installed Debian packages to put in the guest")
	fs.StringVar(&f.append, "append", "", "more kernel command line arguments")
	fs.StringVar(&f.onReboot, "on-reboot", "", "uefi: a guest reboot restarts the machine booting its disks with UEFI")
	fs.StringVar(&f.boot, "boot", "", "uefi: boot the disks with UEFI firmware instead of the rig's kernel")
}

func (f *vmFlags) options(stderr io.Writer) (testvm.Options, error) {
	disks, err := parseDisks(f.disks)
	if err != nil {
		return testvm.Options{}, err
	}
	opts := testvm.Options{Disks: disks, CPUs: f.cpus, MemoryMiB: f.memory, NoUdev: f.noUdev, Log: stderr,
		OnReboot: f.onReboot, Boot: f.boot}
	if f.boot == testvm.BootUEFI || f.onReboot == testvm.BootUEFI {
		opts.BootTimeout = 4 * time.Minute // firmware under TCG is slow
	}
	opts.KernelArgs = strings.Fields(f.append)
	if f.packages != "" {
		opts.ExtraPackages = strings.Split(f.packages, ",")
	}
	return opts, nil
}

// parseDisks reads "1G,512M,/path/img": a size makes a new sparse disk, a
// path uses that image file.
func parseDisks(s string) ([]testvm.DiskSpec, error) {
	if s == "" {
		return nil, nil
	}
	var disks []testvm.DiskSpec
	for _, d := range strings.Split(s, ",") {
		if strings.ContainsRune(d, '/') {
			disks = append(disks, testvm.DiskSpec{Path: d})
			continue
		}
		size, err := config.BinaryBytes(d)
		if err != nil || size == 0 {
			return nil, fmt.Errorf("--disks %q: %q is not a size (examples: 512M, 2G) or an image path", s, d)
		}
		disks = append(disks, testvm.DiskSpec{Size: size})
	}
	return disks, nil
}

func cmdShell(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shell", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var vf vmFlags
	vf.register(fs)
	printOnly := fs.Bool("print", false, "print the ssh command and wait for Ctrl-C")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts, err := vf.options(stderr)
	if err != nil {
		return err
	}
	vm, err := testvm.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer vm.Stop()
	sshArgs := append(vm.SSHArgs(), "root@127.0.0.1")
	fmt.Fprintf(stderr, "testvm: console log %s\n", vm.ConsoleLog())
	if _, err := exec.LookPath("ssh"); err != nil || *printOnly {
		fmt.Fprintf(stdout, "ssh %s\n", strings.Join(sshArgs, " "))
		fmt.Fprintln(stderr, "testvm: guest runs until Ctrl-C")
		select {
		case <-ctx.Done():
		case <-vm.Exited():
		}
		return nil
	}
	cmd := exec.Command("ssh", sshArgs...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	signal.Ignore(os.Interrupt) // Ctrl-C belongs to the guest's shell
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil // the shell's last status is not ours
	}
	return err
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var vf vmFlags
	vf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() == 0 {
		return 2, errors.New("run: no command; usage: testvm run [--disks 1G] -- CMD [ARG...]")
	}
	opts, err := vf.options(stderr)
	if err != nil {
		return 2, err
	}
	vm, err := testvm.Start(ctx, opts)
	if err != nil {
		return 1, err
	}
	defer vm.Stop()
	words := make([]string, fs.NArg())
	for i, a := range fs.Args() {
		words[i] = shell.Quote(a)
	}
	if fs.NArg() == 1 {
		words[0] = fs.Arg(0) // one argument is a shell command line
	}
	err = vm.Exec(ctx, strings.Join(words, " "), nil, stdout, stderr)
	var ce *testvm.CommandError
	if errors.As(err, &ce) && ce.ExitStatus > 0 {
		return ce.ExitStatus, nil
	}
	return 0, err
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func cmdSystem(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("system", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("nixos-config", "", "the layout's NixOS configuration (JSON)")
	disko := fs.String("disko-script", "", "the layout's destroy,format,mount script")
	hostname := fs.String("hostname", "demo", "host name")
	var secrets multiFlag
	fs.Var(&secrets, "initrd-secret", "DEST=SRC (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *config == "" || *disko == "" {
		return errors.New("system: --nixos-config and --disko-script are required")
	}
	cfg, err := os.ReadFile(*config)
	if err != nil {
		return err
	}
	script, err := os.ReadFile(*disko)
	if err != nil {
		return err
	}
	img, err := testvm.Build(ctx, testvm.BuildOptions{Log: stderr})
	if err != nil {
		return err
	}
	pub, err := os.ReadFile(img.ClientKeyPath + ".pub")
	if err != nil {
		return err
	}
	o := testvm.SystemOptions{NixOSConfig: cfg, DiskoScript: script, Hostname: *hostname, Log: stderr,
		AuthorizedKeys: []string{strings.TrimSpace(string(pub))}, InitrdSecrets: map[string]string{}}
	for _, sec := range secrets {
		dest, src, ok := strings.Cut(sec, "=")
		if !ok {
			return fmt.Errorf("--initrd-secret %q: want DEST=SRC", sec)
		}
		o.InitrdSecrets[dest] = src
	}
	sys, err := testvm.BuildSystem(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s\n", sys.DiskoScript, sys.Toplevel)
	return nil
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var vf vmFlags
	vf.register(fs)
	env := fs.String("env", "", "write the guest's connection details to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts, err := vf.options(stderr)
	if err != nil {
		return err
	}
	vm, err := testvm.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer vm.Stop()
	details := fmt.Sprintf("TESTVM_PORT=%d\nTESTVM_KEY=%s\nTESTVM_KNOWN_HOSTS=%s\nTESTVM_CONSOLE=%s\n",
		vm.SSHPort(), shell.Quote(vm.ClientKeyPath()), shell.Quote(vm.KnownHostsPath()), shell.Quote(vm.ConsoleLog()))
	if *env != "" {
		tmp := *env + ".tmp"
		if err := os.WriteFile(tmp, []byte(details), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, *env); err != nil {
			return err
		}
	} else {
		fmt.Fprint(stdout, details)
	}
	fmt.Fprintln(stderr, "testvm: guest runs until SIGTERM or Ctrl-C")
	select {
	case <-ctx.Done():
	case <-vm.Exited():
		// Stop removes the console log with the VM's directory: show its end now.
		return fmt.Errorf("testvm: the guest powered off; its console, last lines:\n%s", consoleTail(vm.ConsoleLog(), 40))
	}
	return nil
}

// consoleTail is the last n lines of a console log, without carriage returns.
func consoleTail(name string, n int) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(b), "\r", ""), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
