package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
	"github.com/diskoanywhere/diskoanywhere/internal/tartree"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// vmRoot is where the build VM mounts the installed system.
const vmRoot = "/mnt"

// buildInVM builds the images of a layout that needs the kernel (LUKS, LVM, mdadm,
// btrfs subvolumes) the way disko's make-disk-image does: each image file, of its
// disk's size, is a virtio disk of a throwaway VM of internal/testvm (Debian's kernel
// and this machine's disk tools; KVM when it works, else TCG), the layout is loaded
// again with its disks on the VM's (/dev/vda, /dev/vdb, ... in disk-name order), and its
// own format,mount script runs there. opts.PreFiles are in the VM before the script
// runs (LUKS key files); opts.Files are copied under the mounted root. With
// --system (system is then the /nix tree stageSystem made on the build machine, as for
// the rootless path), as disko's installer does next: the closure, its Nix database and
// the system profile are copied under the mounted root, and the system's
// switch-to-configuration boot installs the bootloader in a chroot of it (installScript,
// over the real mounts).
// Then the unmount script runs and the VM powers off.
func buildInVM(ctx context.Context, disks []*diskPlan, system string, opts Options, log io.Writer) (paths []string, err error) {
	if len(disks) > 26 {
		return nil, fmt.Errorf("%d disks: the build VM has /dev/vda to /dev/vdz", len(disks))
	}
	devices := map[string]string{}
	for i, d := range disks {
		devices[d.name] = "/dev/vd" + string(rune('a'+i))
	}
	raw, err := opts.Layout(ctx)
	if err != nil {
		return nil, err
	}
	vmLayout, err := config.Load(raw, config.LoadOptions{DiskDevices: devices})
	if err != nil {
		return nil, err
	}
	scripts, err := codegen.Generate(vmLayout, codegen.Options{RootMountpoint: vmRoot})
	if err != nil {
		return nil, err
	}
	if opts.Format == "qcow2" {
		if _, err := toolPath("qemu-img"); err != nil {
			return nil, fmt.Errorf("cannot build the images: %w", err)
		}
	}
	var extra []testvm.File
	for _, f := range opts.PreFiles {
		fi, err := os.Stat(f.Source)
		if err != nil {
			return nil, fmt.Errorf("--pre-format-files: %w", err)
		}
		if !fi.Mode().IsRegular() || !path.IsAbs(f.Dest) {
			return nil, fmt.Errorf("--pre-format-files %s %s: the build VM takes regular files at absolute paths", f.Source, f.Dest)
		}
		extra = append(extra, testvm.File{GuestPath: f.Dest, HostPath: f.Source, Mode: fi.Mode().Perm()})
	}
	for _, f := range opts.Files {
		if _, err := os.Lstat(f.Source); err != nil {
			return nil, err
		}
		if !path.IsAbs(f.Dest) {
			return nil, fmt.Errorf("file destination %q is not an absolute path", f.Dest)
		}
	}

	var built []builtDisk
	defer func() {
		if err != nil {
			for _, b := range built {
				os.Remove(b.tmp)
			}
		}
	}()
	var specs []testvm.DiskSpec
	for i, d := range disks {
		f, err := os.CreateTemp(opts.OutDir, "."+d.imageName+".*.partial")
		if err != nil {
			return nil, err
		}
		built = append(built, builtDisk{d, f.Name()})
		err = f.Truncate(d.size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "  disk %s: %s (%s)\n", d.name, devices[d.name], humanSize(d.size))
		specs = append(specs, testvm.DiskSpec{Path: f.Name(), Serial: fmt.Sprintf("image%d", i)})
	}
	img, err := testvm.Build(ctx, testvm.BuildOptions{Log: log})
	if err != nil {
		return nil, fmt.Errorf("the build VM: %w", err)
	}
	memory := opts.MemoryMiB
	if memory == 0 {
		memory = 1024
	}
	vm, err := testvm.Start(ctx, testvm.Options{Image: img, Disks: specs, ExtraFiles: extra, MemoryMiB: memory, Log: log})
	if err != nil {
		return nil, fmt.Errorf("the build VM: %w", err)
	}
	defer vm.Stop()
	if _, _, err := vm.RunScript(ctx, scripts.FormatMount); err != nil {
		return nil, fmt.Errorf("the layout's format,mount script in the build VM (a LUKS container without keyFile or passwordFile asks for its passphrase: give it one and pass the file with --pre-format-files): %w", err)
	}
	for _, f := range opts.Files {
		if err := copyIntoVM(ctx, vm, f.Source, path.Join(vmRoot, f.Dest)); err != nil {
			return nil, fmt.Errorf("%s into the image: %w", f.Dest, err)
		}
	}
	if system != "" {
		if err := installSystemInVM(ctx, vm, system, opts.System, log); err != nil {
			return nil, err
		}
	}
	if _, _, err := vm.RunScript(ctx, scripts.Unmount); err != nil {
		return nil, fmt.Errorf("the layout's unmount script in the build VM: %w", err)
	}
	if err := vm.Stop(); err != nil {
		return nil, fmt.Errorf("the build VM: %w", err)
	}
	for _, b := range built {
		fmt.Fprintf(log, "built %s.%s (disk %s) in the VM\n", b.disk.imageName, opts.Format, b.disk.name)
	}
	return publish(ctx, built, opts)
}

// installSystemInVM copies the staged /nix tree (closure, Nix database, system profile)
// under the build VM's mounted root and, when toplevel is a NixOS system, runs its
// switch-to-configuration boot in a chroot of that root, in a mount and PID namespace
// of the VM's own so that nothing it mounts is left for the unmount script.
func installSystemInVM(ctx context.Context, vm *testvm.VM, staged, toplevel string, log io.Writer) error {
	if _, _, err := vm.Run(ctx, "mountpoint -q "+vmRoot); err != nil {
		return fmt.Errorf("--system: the layout has no filesystem mounted at /, where the closure goes")
	}
	start := time.Now()
	if err := copyIntoVM(ctx, vm, staged, path.Join(vmRoot, "nix")); err != nil {
		return fmt.Errorf("--system %s: the closure into the image: %w", toplevel, err)
	}
	fmt.Fprintf(log, "  copied the closure into %s/nix in %.1fs\n", vmRoot, time.Since(start).Seconds())
	if !hasBootloader(toplevel, log) {
		return nil
	}
	fmt.Fprintln(log, "installing the bootloader (switch-to-configuration boot) in the VM")
	empty := "/run/image-empty"
	cmd := fmt.Sprintf("mkdir -p %s && unshare --mount --propagation private --pid --fork --kill-child -- /bin/sh -c %s install-bootloader %s %s %s",
		empty, shell.Quote(installScript), vmRoot, empty, shell.Quote(toplevel))
	if err := vm.Exec(ctx, cmd, nil, nil, log); err != nil {
		return fmt.Errorf("--system %s: switch-to-configuration boot (the bootloader) failed in the build VM: %w", toplevel, err)
	}
	return nil
}

// copyIntoVM copies the file, symlink or directory tree src to dest in the VM as one tar
// stream over the VM's SSH connection: modes and hard links kept, everything owned by
// root (as disko's --post-format-files are, and a Nix store is).
func copyIntoVM(ctx context.Context, vm *testvm.VM, src, dest string) error {
	pr, pw := io.Pipe()
	written := make(chan error, 1)
	root := 0
	go func() {
		err := tartree.Write(pw, src, tartree.Options{Prefix: path.Base(dest), UID: &root, GID: &root})
		pw.CloseWithError(err)
		written <- err
	}()
	dir := shell.Quote(path.Dir(dest))
	_, _, err := vm.RunInput(ctx, fmt.Sprintf("mkdir -p %s && tar -x --numeric-owner -C %s -f -", dir, dir), pr)
	// The writer may still be blocked on a VM that stopped reading.
	pr.CloseWithError(io.ErrClosedPipe)
	if werr := <-written; werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
		return werr
	}
	return err
}
