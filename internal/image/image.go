// Package image builds disk images of a layout as an ordinary user: no root, no loop
// devices, no VM. Each disk becomes a sparse file of the disk's imageSize; its partition
// table is written into the file by sfdisk (or parted, for the legacy table type). An
// ext4 filesystem is made by mke2fs in place where it can, at its partition's offset,
// with the large files' bytes copied straight into their blocks (ext4data.go); any
// other filesystem is made in a file of its own by its mkfs tool, then copied in at its
// partition's offset. Tables, partition names, type codes and the mkfs arguments are the
// ones the format script uses (taken from internal/codegen), so a NixOS configuration
// made from the same layout finds the disks.
//
// Layouts that need the kernel (LUKS, LVM, mdadm, btrfs subvolumes) are built in a VM
// of internal/testvm instead, by the layout's own format script (buildInVM); ZFS and
// bcachefs are refused (Debian's kernel, which the VM runs, has neither).
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// Options say where and how to build the images.
type Options struct {
	// OutDir receives one image per disk, NAME.raw or NAME.qcow2 (NAME is the disk's
	// imageName). It is created when missing.
	OutDir string
	// Format is "raw" (the default) or "qcow2".
	Format string
	// Sizes overrides disk.NAME.imageSize, by disk attribute name.
	Sizes map[string]string
	// Files are copied into the filesystems before the images are written: each
	// destination is an absolute path in the installed system (disko's
	// --pre-format-files / --post-format-files).
	Files []File
	// System is a NixOS system (a toplevel store path) whose closure is copied into the
	// filesystem mounted at /nix/store, registered in the Nix database, and made the
	// system profile; its bootloader is then installed by its own
	// bin/switch-to-configuration boot (see installBootloader, and installSystemInVM on
	// the VM path).
	System string
	// ClosureInfo is a directory made by nixpkgs' closureInfo for System (store-paths,
	// registration); without it the closure is read from the Nix database.
	ClosureInfo string
	// Log receives progress lines; nil discards them.
	Log io.Writer

	// Layout returns the JSON of disko.devices as the user wrote it. A layout that needs
	// the kernel (LUKS, LVM, mdadm, btrfs subvolumes) is built in a VM, whose disks the
	// layout is loaded again onto; only then is Layout called. Without it such a layout
	// is refused.
	Layout func(context.Context) ([]byte, error)
	// PreFiles are put into the build VM before its format script runs (disko's
	// --pre-format-files: LUKS key files); only the VM path reads them.
	PreFiles []File
	// MemoryMiB is the build VM's memory (--build-memory, as disko's diskoImagesScript
	// takes it); default 1024.
	MemoryMiB int
}

// File is a file or directory to copy from the build machine (Source) into the image,
// at the absolute path Dest of the installed system.
type File struct {
	Source string
	Dest   string
}

// Build writes an image of every disk of d into opts.OutDir and returns their paths,
// sorted. Images are written under temporary names in OutDir and renamed only when
// every disk is done; on failure nothing of this run is left in OutDir.
func Build(ctx context.Context, d *config.Devices, opts Options) (paths []string, err error) {
	if opts.Format == "" {
		opts.Format = "raw"
	}
	if opts.Format != "raw" && opts.Format != "qcow2" {
		return nil, fmt.Errorf("image format %q is not supported (use raw or qcow2)", opts.Format)
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	disks, kernelOnly, err := plan(d, opts.Sizes)
	if err != nil {
		return nil, err
	}
	if len(kernelOnly) > 0 && opts.Layout == nil {
		return nil, fmt.Errorf("cannot build images of this layout without a VM (and the layout's JSON, Options.Layout, was not given):\n  %s", strings.Join(kernelOnly, "\n  "))
	}
	// Absolute: nix-store --store local?root= and the build VM's disks need it.
	if opts.OutDir, err = filepath.Abs(opts.OutDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, err
	}
	defer func() { err = withSpaceHint(opts.OutDir, err) }()
	// The staged /nix of --system: closure, Nix database, system profile.
	var system string
	if opts.System != "" {
		fmt.Fprintf(log, "copying the closure of %s\n", opts.System)
		sys, err := stageSystem(ctx, opts.OutDir, opts.System, opts.ClosureInfo)
		if err != nil {
			return nil, err
		}
		defer removeTree(sys)
		system = filepath.Join(sys, "nix")
	}
	if len(kernelOnly) > 0 {
		fmt.Fprintf(log, "building the images in a VM: the layout's format script runs there, because\n  %s\n", strings.Join(kernelOnly, "\n  "))
		return buildInVM(ctx, disks, system, opts, log)
	}
	files := opts.Files
	if system != "" {
		files = append([]File{{Source: system, Dest: "/nix"}}, files...)
	}
	trees, err := stageFiles(opts.OutDir, disks, files)
	if err != nil {
		return nil, err
	}
	defer trees.remove()
	bootable := false
	if opts.System != "" && hasBootloader(opts.System, log) {
		bootable = true
		if err := trees.addMounted(opts.OutDir, disks); err != nil {
			return nil, err
		}
	}
	populated := map[string]bool{}
	for path := range trees {
		populated[path] = true
	}
	if err := checkTools(disks, opts.Format, populated); err != nil {
		return nil, err
	}
	// The image files and their tables are made, and mke2fs is asked its version (which
	// the ext4 volumes need next), while the bootloader is installed.
	tables := make(chan []newImage, 1)
	go func() {
		images := newImages(ctx, opts.OutDir, disks)
		mke2fsPrezeroed()
		tables <- images
	}()
	var bootErr error
	if bootable {
		fmt.Fprintln(log, "installing the bootloader (switch-to-configuration boot)")
		bootErr = installBootloader(ctx, opts.OutDir, disks, trees, opts.System, log)
	}
	images := <-tables
	var built []builtDisk
	defer func() {
		if err != nil {
			for _, b := range built {
				os.Remove(b.tmp)
			}
		}
	}()
	for i, img := range images {
		if img.tmp != "" {
			built = append(built, builtDisk{disks[i], img.tmp})
		}
	}
	if bootErr != nil {
		return nil, bootErr
	}
	for i, disk := range disks {
		for _, h := range disk.skippedHooks {
			fmt.Fprintf(log, "warning: %s: preCreateHook and postCreateHook are not run (nothing is mounted while an image is built)\n", h)
		}
		fmt.Fprintf(log, "building %s.%s (disk %s, %s)\n", disk.imageName, opts.Format, disk.name, humanSize(disk.size))
		err := images[i].err
		if err == nil {
			err = fillImage(ctx, opts.OutDir, disk, images[i], trees, log)
		}
		if err != nil {
			return nil, fmt.Errorf("image of disk %s: %w", disk.name, err)
		}
	}
	return publish(ctx, built, opts)
}

// builtDisk is a disk's raw image under its temporary name.
type builtDisk struct {
	disk *diskPlan
	tmp  string
}

// publish converts the raw images to opts.Format and renames them to their final names
// (OutDir/IMAGENAME.FORMAT), all or none: on failure every file is removed.
func publish(ctx context.Context, built []builtDisk, opts Options) (paths []string, err error) {
	var temps []string
	for _, b := range built {
		temps = append(temps, b.tmp)
	}
	defer func() {
		if err != nil {
			for _, t := range temps {
				os.Remove(t)
			}
		}
	}()
	finals := map[string]string{}
	for _, b := range built {
		tmp := b.tmp
		if opts.Format == "qcow2" {
			q, err := toQcow2(ctx, tmp)
			if q != "" {
				temps = append(temps, q)
			}
			if err != nil {
				return nil, fmt.Errorf("image of disk %s: %w", b.disk.name, err)
			}
			os.Remove(tmp)
			tmp = q
		}
		if err := os.Chmod(tmp, 0o644); err != nil {
			return nil, err
		}
		finals[tmp] = filepath.Join(opts.OutDir, b.disk.imageName+"."+opts.Format)
	}
	for tmp, final := range finals {
		if err := os.Rename(tmp, final); err != nil {
			for _, f := range finals {
				os.Remove(f)
			}
			return nil, err
		}
		paths = append(paths, final)
	}
	sort.Strings(paths)
	return paths, nil
}

// toQcow2 converts the raw image at raw into a qcow2 file next to it.
func toQcow2(ctx context.Context, raw string) (string, error) {
	q := raw + ".qcow2"
	if err := run(ctx, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, q); err != nil {
		return q, err
	}
	return q, nil
}

// run runs a tool with no input, returning its output in the error when it fails.
func run(ctx context.Context, name string, args ...string) error {
	_, err := output(ctx, name, args...)
	return err
}

// output runs a tool with no input and returns its standard output.
func output(ctx context.Context, name string, args ...string) ([]byte, error) {
	path, err := toolPath(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return out, fmt.Errorf("%s failed (%v): %s", name, err, stderr.String())
		}
		return out, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// fullError is a failure while the output directory was full: the error a tool or a
// write gave, and the hint that says what to do.
type fullError struct {
	err error
	dir string
}

func (e *fullError) Error() string {
	return fmt.Sprintf("%v\nhint: the output directory %s is full: free space there or pass another --out (each image is a sparse file of its disk's size, and its filesystems are built beside it first)", e.err, e.dir)
}

func (e *fullError) Unwrap() error { return e.err }

// withSpaceHint adds the full-disk hint to err when the output directory dir ran out of
// space: a write failed with ENOSPC, a tool said so, or (since a tool may not: mkfs.vfat
// reports only "failed whilst writing") dir has less than 1 MiB free now. Call it before
// the failed step's scratch files are removed.
func withSpaceHint(dir string, err error) error {
	var full *fullError
	if err == nil || errors.As(err, &full) {
		return err
	}
	var st syscall.Statfs_t
	if errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "No space left on device") ||
		(syscall.Statfs(dir, &st) == nil && st.Bavail*uint64(st.Bsize) < 1<<20) {
		return &fullError{err, dir}
	}
	return err
}

// limitedBuffer keeps the first 4 KiB written to it: enough of a tool's error output.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
