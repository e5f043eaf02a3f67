package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/cliargs"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/eval"
	"github.com/diskoanywhere/diskoanywhere/internal/install"
	"github.com/diskoanywhere/diskoanywhere/internal/installvm"
	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
	"github.com/diskoanywhere/diskoanywhere/internal/vmcycle"
)

// vmTestFlags are the flags only --vm-test reads.
func vmTestFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Category: catInput, Name: "vm-memory", Value: 2048, Usage: "with --vm-test: the VM's memory in `MB` (the installer runs from RAM)"},
		&cli.IntFlag{Category: catInput, Name: "vm-cpus", Value: 2, Usage: "with --vm-test: the VM's `N` CPUs"},
		&cli.BoolFlag{Category: catInput, Name: "interactive", Usage: "with --vm-test: once the installed system is checked, open an SSH shell in it; the VM is removed when the shell exits"},
	}
}

// vmTestExcluded are flags that make no sense with --vm-test: it makes its own
// machine, logs in with its own keys and runs the phases disko, install, reboot.
var vmTestExcluded = []string{"target-host", "i", "ssh-port", "ssh-option", "env-password", "ssh-config",
	"phases", "state-file", "dry-run", "force-kexec", "kexec-extra-flags", "post-kexec-ssh-port",
	"build-on-remote", "stop-after-disko", "no-reboot", "disk", "copy-host-keys"}

// vmTest installs the configuration into a throwaway local VM booted from the
// installer tarball, with one blank disk per disk of the layout, through the phases
// disko, install and reboot; then checks that the installed system answers with the
// expected host key and mounts what the layout says, and removes the VM.
func vmTest(c *cli.Context, d deps) error {
	if c.NArg() > 0 {
		return cliargs.UsageError{Err: fmt.Errorf("--vm-test installs into a local VM: no target host (got %s)", strings.Join(c.Args().Slice(), " "))}
	}
	for _, name := range vmTestExcluded {
		if c.IsSet(name) {
			return cliargs.UsageError{Err: fmt.Errorf("--vm-test makes its own VM and logins: --%s does not apply", name)}
		}
	}
	// The layout gives the VM's disks: --disko-layout, else the flake's configuration.
	layoutRef := c.String("disko-layout")
	if layoutRef == "" {
		layoutRef = c.String("flake")
	}
	if layoutRef == "" {
		return cliargs.UsageError{Err: errors.New("--vm-test --store-paths needs --disko-layout FILE: the layout the disk script was built from (its disks and imageSize make the VM's disks, /dev/vda, /dev/vdb, ... in name order)")}
	}
	storePaths := c.IsSet("store-paths")
	// The options the install runs with, checked before a VM boots: as for a target
	// (the VM's address is filled in once it runs), without --vm-test.
	for name, value := range map[string]string{"vm-test": "false", "target-host": "root@127.0.0.1"} {
		if err := c.Set(name, value); err != nil {
			return err
		}
	}
	if storePaths {
		if err := c.Set("disko-layout", ""); err != nil { // it only names the disks
			return err
		}
	}
	o, err := options(c, d)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	say := func(format string, args ...any) { fmt.Fprintf(d.stderr, "vm-test: "+format+"\n", args...) }
	start := time.Now()
	layout, disks, sizes, err := vmLayout(ctx, d.stdin, layoutRef, c.String("nixpkgs"))
	if err != nil {
		return err
	}
	if !storePaths {
		// The disk script is compiled for the VM's disks, as disko's installTest
		// points the layout's disks at the test VM's.
		o.DiskoLayout = layoutRef
		o.Disks = map[string]string{}
		for i, name := range disks {
			o.Disks[name] = vmcycle.VirtioDisk(i)
		}
	} else {
		for i, name := range disks {
			if dev := layout.Disk[name].Device; dev != vmcycle.VirtioDisk(i) {
				say("warning: disk %s is %s in %s, but the VM's disk is %s: the disk script must have been built for the VM's disks", name, dev, layoutRef, vmcycle.VirtioDisk(i))
			}
		}
	}
	want, err := installvm.LayoutMounts(layout)
	if err != nil {
		return err
	}
	tarball, cleanup, err := localTarball(ctx, c.String("kexec"), say)
	if err != nil {
		return err
	}
	defer cleanup()

	var shown []string
	for i, name := range disks {
		shown = append(shown, fmt.Sprintf("%s=%s (%s)", name, vmcycle.VirtioDisk(i), formatMiB(sizes[i])))
	}
	say("booting the installer %s in a local VM with disks %s", tarball, strings.Join(shown, ", "))
	bootStart := time.Now()
	m, err := installvm.Start(ctx, installvm.Options{Tarball: tarball, DiskSizes: sizes,
		MemoryMiB: c.Int("vm-memory"), CPUs: c.Int("vm-cpus"), Log: d.stderr})
	if err != nil {
		return err // a VM that did not come up: the error has the console's end
	}
	defer m.Stop()
	boot := time.Since(bootStart)
	say("the %s installer answers over SSH after %s (host key %s)", m.Arch, boot.Round(100*time.Millisecond), ssh.FingerprintSHA256(m.HostKey))
	failed := func(err error) error {
		fmt.Fprintf(d.stderr, "vm-test: the VM's console, last 40 lines:\n%s\n", m.ConsoleTail(40))
		return err
	}

	o.Target = "root@127.0.0.1"
	o.SSH = remote.Options{UserConfigFile: "none", SystemConfigFile: "none", Home: o.SSH.Home,
		Port: m.SSHPort(), IdentityFiles: []string{m.Key}, ExpectHostKey: m.HostKey, Logger: o.SSH.Logger}
	o.Phases = []install.Phase{install.PhaseDisko, install.PhaseInstall, install.PhaseReboot}
	o.CopyHostKeys = true // the installed system answers with the installer's key, which is known
	o.StateFile = filepath.Join(m.Dir, "state.json")
	o.Throwaway = true
	if o.ExtraFiles, err = vmExtraFiles(o.ExtraFiles, m); err != nil {
		return err
	}
	o.Kexec = ""
	installStart := time.Now()
	run := install.Run
	if d.install != nil {
		run = d.install
	}
	if err := run(ctx, *o); err != nil {
		return failed(fmt.Errorf("vm-test: %w", err))
	}
	took := time.Since(installStart)

	checkStart := time.Now()
	if err := m.Reconnect(ctx); err != nil { // the new boot, with the host key pinned
		return failed(fmt.Errorf("vm-test: the installed system: %w", err))
	}
	if err := m.CheckMounts(ctx, want); err != nil {
		return failed(fmt.Errorf("vm-test: %w", err))
	}
	var mps []string
	for _, w := range want {
		mps = append(mps, w.Mountpoint)
	}
	say("the installed system answers with the expected host key %s and mounts %s as the layout says", ssh.FingerprintSHA256(m.HostKey), strings.Join(mps, ", "))
	say("passed in %s: VM boot %s, disko+install+reboot %s, check %s", time.Since(start).Round(time.Second),
		boot.Round(100*time.Millisecond), took.Round(100*time.Millisecond), time.Since(checkStart).Round(100*time.Millisecond))
	if c.Bool("interactive") {
		return vmShell(ctx, m, d, say)
	}
	return nil
}

// vmLayout evaluates the layout (a .nix or .json file, or REF#NAME of a flake) and
// returns it with disk i on the VM's i-th disk, the disk names in that order and
// their sizes (imageSize).
func vmLayout(ctx context.Context, stdin io.Reader, ref, nixpkgs string) (*config.Devices, []string, []int64, error) {
	src := eval.Source{Path: ref, Nixpkgs: nixpkgs}
	if strings.Contains(ref, "#") {
		src = eval.Source{Flake: ref, Nixpkgs: nixpkgs}
	}
	raw, err := (&eval.Evaluator{Stdin: stdin}).Devices(ctx, src)
	if err != nil {
		return nil, nil, nil, err
	}
	plain, err := config.Load(raw, config.LoadOptions{})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the layout %s has problems:\n%w", ref, err)
	}
	disks := slices.Sorted(maps.Keys(plain.Disk))
	devices := map[string]string{}
	var sizes []int64
	for i, name := range disks {
		devices[name] = vmcycle.VirtioDisk(i)
		s, err := config.BinaryBytes(plain.Disk[name].ImageSize)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: disko.devices.disk.%s.imageSize: %w", ref, name, err)
		}
		sizes = append(sizes, s)
	}
	d, err := config.Load(raw, config.LoadOptions{DiskDevices: devices})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the layout %s has problems:\n%w", ref, err)
	}
	return d, disks, sizes, nil
}

// localTarball is the installer tarball as a local file: --kexec's file, or its URL
// (default: nixos-images' for this machine's architecture, which KVM can run)
// downloaded into a temporary file.
func localTarball(ctx context.Context, kexec string, say func(string, ...any)) (string, func(), error) {
	if kexec == "" {
		u, err := install.DefaultKexecURL(testvm.HostArch())
		if err != nil {
			return "", nil, err
		}
		kexec = u
	}
	if !strings.HasPrefix(kexec, "http://") && !strings.HasPrefix(kexec, "https://") {
		return kexec, func() {}, nil
	}
	say("downloading %s", kexec)
	f, err := os.CreateTemp("", "anywhere-vm-test-*.tar.gz")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.Remove(f.Name()) }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, kexec, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = http.DefaultClient.Do(req); err == nil {
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("HTTP %s", resp.Status)
			} else {
				_, err = io.Copy(f, resp.Body)
			}
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("--kexec %s: %w (download it and pass the file)", kexec, err)
	}
	return f.Name(), cleanup, nil
}

// vmShell opens an SSH shell in the installed system (OpenSSH's client, with the
// VM's key and its host key pinned); the VM is removed when it exits.
func vmShell(ctx context.Context, m *installvm.Machine, d deps, say func(string, ...any)) error {
	if _, err := exec.LookPath("ssh"); err != nil {
		return fmt.Errorf("--interactive needs OpenSSH's ssh (Debian: openssh-client): %w", err)
	}
	say("opening a shell in the installed system; exit it to remove the VM")
	cmd := exec.CommandContext(ctx, "ssh", append(slices.Clone(m.SSHArgs()), "-F", "none", "-t", "root@127.0.0.1")...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = d.stdin, d.stdout, d.stderr
	err := cmd.Run()
	say("removing the VM")
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil // the shell's own exit status is the user's business
	}
	return err
}

// vmExtraFiles is the --extra-files tree with root's authorized_keys added, so that the
// checks can log in to the installed system with the VM's key: a copy of the user's
// tree (if any) in the VM's directory.
func vmExtraFiles(user string, m *installvm.Machine) (string, error) {
	dir := filepath.Join(m.Dir, "extra-files")
	if err := os.MkdirAll(filepath.Join(dir, "root/.ssh"), 0o700); err != nil {
		return "", err
	}
	if user != "" {
		if out, err := exec.Command("cp", "-a", "--", filepath.Clean(user)+"/.", dir).CombinedOutput(); err != nil {
			return "", fmt.Errorf("--extra-files %s: copying it: %v: %s", user, err, out)
		}
	}
	keys := filepath.Join(dir, "root/.ssh/authorized_keys")
	f, err := os.OpenFile(keys, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(m.AuthorizedKey); err != nil {
		f.Close()
		return "", err
	}
	return dir, f.Close()
}

// formatMiB shows a disk size: 768M, 2G.
func formatMiB(b int64) string {
	if b%(1<<30) == 0 {
		return fmt.Sprintf("%dG", b>>30)
	}
	return fmt.Sprintf("%dM", b>>20)
}
