package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/diskoanywhere/diskoanywhere/internal/cliargs"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/eval"
	"github.com/diskoanywhere/diskoanywhere/internal/image"
)

// layoutJSON evaluates the layout again, for a build in a VM, which loads it onto the
// VM's disks.
func layoutJSON(ctx context.Context, c *cli.Context) ([]byte, error) {
	src, err := layoutSource(c, 0)
	if err != nil {
		return nil, err
	}
	return (&eval.Evaluator{}).Devices(ctx, src)
}

// imageCommand is `disko-compile image`: one disk image per disk of the layout, built as
// an ordinary user (see internal/image), with disko's image flags.
func imageCommand(load func(*cli.Context) (*config.Devices, error), stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "image",
		Usage:     "write a disk image of every disk (DIR/NAME.raw or .qcow2), without root and without a VM",
		ArgsUsage: "LAYOUT",
		Description: `Each image is the disk's imageSize (default 2G) and holds the partition table and the
   empty filesystems the format script would make, with the same partition names, type codes,
   labels and UUIDs. Layouts with LUKS, LVM, mdadm or btrfs subvolumes are built in a throwaway
   qemu VM instead (Debian's kernel, KVM when it works, else TCG), by the layout's own format
   script; ZFS and bcachefs are refused (not in Debian's kernel).
   With --system the image boots (on both paths): the system's closure, its Nix database, its profile and its
   bootloader (systemd-boot onto the ESP, for example) are in it.

   Examples:
      disko-compile image --out ./images ./disk-config.nix
      disko-compile image --format qcow2 --size main=8G --out ./images ./disk-config.nix
      disko-compile image --system /nix/store/...-nixos-system-host --out ./images ./disk-config.nix
      disko-compile image --post-format-files ./ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key --out ./images ./disk-config.nix`,
		Flags: append(layoutFlags(),
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "write the images into `DIR` (created if missing)"},
			&cli.StringFlag{Name: "format", Value: "raw", Usage: "image format: `raw` or qcow2 (through qemu-img convert)"},
			&cli.StringFlag{Name: "system", Usage: "copy the closure of NixOS system `TOPLEVEL` into the image, register it in the Nix database, set the system profile and install its bootloader (its switch-to-configuration boot, run in user namespaces over the staged filesystems, or in the build VM over the mounted layout)"},
			&cli.StringFlag{Name: "closure-info", Usage: "with --system: read the closure from `DIR` made by nixpkgs' closureInfo (store-paths, registration) instead of the Nix database, as in a Nix build"},
			&cli.StringSliceFlag{Name: "size", Usage: "make disk NAME's image `NAME=SIZE` (2G, 512M) instead of its imageSize; repeatable"},
			&cli.StringSliceFlag{Name: "pre-format-files", Usage: "`SRC DST`: a file the format script reads (a LUKS key file), put at DST in the build VM before the script runs; only layouts built in a VM read it; repeatable"},
			&cli.IntFlag{Name: "build-memory", Value: 1024, Usage: "the build VM's memory in `MiB` (layouts built in a VM only)"},
			&cli.StringSliceFlag{Name: "post-format-files", Usage: "`SRC DST`: copy file or directory SRC into the image at DST, an absolute path of the installed system; repeatable"},
		),
		OnUsageError: cliargs.OnUsageError,
		Action: func(c *cli.Context) error {
			sizes := map[string]string{}
			for _, s := range c.StringSlice("size") {
				name, size, ok := strings.Cut(s, "=")
				if !ok || name == "" || size == "" {
					return cliargs.UsageError{Err: fmt.Errorf("--size needs NAME=SIZE, got %q", s)}
				}
				sizes[name] = size
			}
			var pre, files []image.File
			for _, kind := range []string{"pre-format-files", "post-format-files"} {
				for _, f := range c.StringSlice(kind) {
					src, dst, ok := strings.Cut(f, "=")
					if !ok || src == "" || dst == "" {
						return cliargs.UsageError{Err: fmt.Errorf("--%s needs SRC and DST, got %q", kind, f)}
					}
					if kind == "post-format-files" {
						files = append(files, image.File{Source: src, Dest: dst})
					} else {
						pre = append(pre, image.File{Source: src, Dest: dst})
					}
				}
			}
			if c.String("format") != "raw" && c.String("format") != "qcow2" {
				return cliargs.UsageError{Err: fmt.Errorf("--format must be raw or qcow2, got %q", c.String("format"))}
			}
			d, err := load(c)
			if err != nil {
				return err
			}
			paths, err := image.Build(c.Context, d, image.Options{
				OutDir: c.String("out"), Format: c.String("format"), Sizes: sizes, Files: files, System: c.String("system"), ClosureInfo: c.String("closure-info"), Log: stderr,
				Layout:   func(ctx context.Context) ([]byte, error) { return layoutJSON(ctx, c) },
				PreFiles: pre, MemoryMiB: c.Int("build-memory"),
			})
			if err != nil {
				return err
			}
			for _, p := range paths {
				fmt.Fprintln(stdout, p)
			}
			return nil
		},
	}
}
