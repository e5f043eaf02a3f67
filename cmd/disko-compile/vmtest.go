package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/diskoanywhere/diskoanywhere/internal/cliargs"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/eval"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
	"github.com/diskoanywhere/diskoanywhere/internal/vmcycle"
)

// vmTestCommand runs disko's test cycle for a layout in a throwaway qemu guest, whose
// blank virtual disks stand in for the layout's disks: what `nix build .#checks` of
// disko's own tests does for its examples, for the user's layout.
func vmTestCommand(stdin io.Reader, stdout, stderr io.Writer) *cli.Command {
	var flags []cli.Flag
	for _, f := range layoutFlags() {
		if !slices.Contains(f.Names(), "disk") { // the guest's disks take the layout's places
			flags = append(flags, f)
		}
	}
	flags = append(flags,
		&cli.StringSliceFlag{Name: "disk-size", Usage: "make disk NAME's virtual disk `NAME=SIZE` big (e.g. main=768M) instead of its imageSize (default 2G); repeatable"},
		&cli.IntFlag{Name: "vm-memory", Value: 1024, Usage: "the guest's memory in `MiB`"},
	)
	return &cli.Command{
		Name:      "vm-test",
		Usage:     "run disko's test cycle for a layout in a throwaway qemu VM: format, mount twice, unmount twice, format again keeping the data, destroy; the state is checked after each step",
		ArgsUsage: "LAYOUT",
		Description: `Each disk of the layout becomes a blank virtual disk of the VM (in name order:
/dev/vda, /dev/vdb, ...), sized by its imageSize or --disk-size. The VM runs
Debian's kernel and this machine's disk tools (qemu-system-x86, linux-image-amd64,
and the tools the scripts call must be installed); KVM is used when it works,
else TCG (slower: minutes per layout). LUKS containers get a cheap key derivation
(PBKDF2, 1000 iterations) unless the layout chooses one: argon2id costs seconds
per unlock in a VM. Key files the layout names are created with test content.
ZFS and bcachefs layouts cannot run (not in Debian's kernel).

Example:
   disko-compile vm-test --disk-size main=768M ./disk-config.nix`,
		Flags:        flags,
		OnUsageError: cliargs.OnUsageError,
		Action: func(c *cli.Context) error {
			return runVMTest(c, stdin, stdout, stderr)
		},
	}
}

// runVMTest compiles the layout for the guest, boots the guest and runs the cycle.
// Steps go to stdout as they finish; the rig's progress and, on failure, the end of
// the guest's console go to stderr.
func runVMTest(c *cli.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	src, err := layoutSource(c, 0)
	if err != nil {
		return err
	}
	raw, err := (&eval.Evaluator{Stdin: stdin}).Devices(c.Context, src)
	if err != nil {
		return err
	}
	name := src.Flake
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(src.Path), filepath.Ext(src.Path))
	}
	l, err := vmcycle.Compile(name, raw, vmcycle.Options{FastLUKS: true})
	if err != nil {
		if errors.Is(err, vmcycle.ErrUnsupported) {
			return err
		}
		return fmt.Errorf("%s has problems:\n%w", name, err)
	}
	if l.DiskSizes, err = vmDiskSizes(l, c.StringSlice("disk-size")); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	var extra []string
	if l.NeedsF2FS() {
		extra = append(extra, "f2fs-tools")
	}
	img, err := testvm.Build(ctx, testvm.BuildOptions{ExtraPackages: extra, Log: stderr})
	if err != nil {
		return err
	}
	files, err := vmcycle.GuestFiles(img.KernelRelease, l)
	if err != nil {
		return err
	}
	var disks []testvm.DiskSpec
	var shown []string
	for i, s := range l.DiskSizes {
		disks = append(disks, testvm.DiskSpec{Size: s})
		shown = append(shown, fmt.Sprintf("%s=%s (%dM)", l.Disks[i], vmcycle.VirtioDisk(i), s>>20))
	}
	fmt.Fprintf(stderr, "vm-test: %s: disks %s\n", name, strings.Join(shown, ", "))
	vm, err := testvm.Start(ctx, testvm.Options{Image: img, Disks: disks, ExtraFiles: files, MemoryMiB: c.Int("vm-memory"), Log: stderr})
	if err != nil {
		return err // it carries the console's tail
	}
	defer vm.Stop()
	logf := func(format string, args ...any) { fmt.Fprintf(stdout, format+"\n", args...) }
	if err := vmcycle.Run(ctx, vm, l, logf); err != nil {
		if b, rerr := os.ReadFile(vm.ConsoleLog()); rerr == nil {
			fmt.Fprintf(stderr, "vm-test: the guest's console, last lines:\n%s\n", vmcycle.Tail(string(b), 40))
		}
		return fmt.Errorf("vm-test %s: %w", name, err)
	}
	fmt.Fprintf(stdout, "vm-test: %s passed in %.0fs\n", name, time.Since(start).Seconds())
	return nil
}

// vmDiskSizes are the bytes of the guest's disks: each disk's imageSize, or what
// --disk-size NAME=SIZE says.
func vmDiskSizes(l *vmcycle.Layout, flags []string) ([]int64, error) {
	sizes, err := l.ImageSizes()
	if err != nil {
		return nil, err
	}
	for _, f := range flags {
		name, size, ok := strings.Cut(f, "=")
		i := slices.Index(l.Disks, name)
		if !ok || name == "" {
			return nil, cliargs.UsageError{Err: fmt.Errorf("--disk-size needs NAME=SIZE, got %q", f)}
		}
		if i < 0 {
			return nil, cliargs.UsageError{Err: fmt.Errorf("--disk-size %s: the layout has no disk %q (disks: %s)", f, name, strings.Join(l.Disks, ", "))}
		}
		n, err := config.BinaryBytes(size)
		if err != nil || n < testvm.MiB {
			return nil, cliargs.UsageError{Err: fmt.Errorf("--disk-size %s: %q is not a size of at least 1M (examples: 768M, 2G)", f, size)}
		}
		sizes[i] = n
	}
	return sizes, nil
}
