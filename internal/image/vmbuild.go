package image

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
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
// runs (LUKS key files); opts.Files are copied under the mounted root; then the unmount
// script runs and the VM powers off.
func buildInVM(ctx context.Context, disks []*diskPlan, opts Options, log io.Writer) (paths []string, err error) {
	if opts.System != "" {
		return nil, fmt.Errorf("--system: a layout built in a VM does not take a system yet (only the kernel-free layouts do)")
	}
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

// copyIntoVM copies the file, symlink or directory tree src to dest in the VM, owned by
// root with src's modes. Each file is one command over the VM's SSH connection: meant
// for host keys and configuration, not for a system closure.
func copyIntoVM(ctx context.Context, vm *testvm.VM, src, dest string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := path.Join(dest, filepath.ToSlash(rel))
		fi, err := e.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			_, _, err = vm.Run(ctx, fmt.Sprintf("mkdir -p %s && chmod %o %s", shell.Quote(target), fi.Mode().Perm(), shell.Quote(target)))
		case fi.Mode()&fs.ModeSymlink != 0:
			var link string
			if link, err = os.Readlink(p); err == nil {
				_, _, err = vm.Run(ctx, fmt.Sprintf("mkdir -p %s && ln -sfn %s %s", shell.Quote(path.Dir(target)), shell.Quote(link), shell.Quote(target)))
			}
		case fi.Mode().IsRegular():
			err = vm.CopyIn(ctx, p, target, fi.Mode().Perm())
		default:
			err = fmt.Errorf("%s: a %s cannot be copied into the build VM", p, fi.Mode().Type())
		}
		return err
	})
}
