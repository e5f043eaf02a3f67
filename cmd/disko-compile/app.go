package main

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/diskoanywhere/diskoanywhere/internal/cliargs"
	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/codegen/nixos"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/docs"
	"github.com/diskoanywhere/diskoanywhere/internal/eval"
	"github.com/diskoanywhere/diskoanywhere/schema"
)

// exampleLayout is the built-in example that `disko-compile` with no argument runs on: an
// ESP and an ext4 root, the layout most users start from.
//
//go:embed example.nix
var exampleLayout []byte

// layoutFlags are the flags of every command that reads a layout, named as in disko.
func layoutFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "flake", Aliases: []string{"f"}, Usage: "read the layout from a flake: `REF#NAME` (diskoConfigurations.NAME, else nixosConfigurations.NAME.config.disko.devices)"},
		&cli.StringSliceFlag{Name: "arg", Usage: "pass `NAME EXPR` (a Nix expression) to a layout that is a function; repeatable"},
		&cli.StringSliceFlag{Name: "argstr", Usage: "pass `NAME VALUE` (a string) to a layout that is a function; repeatable"},
		&cli.StringFlag{Name: "nixpkgs", Usage: "a nixpkgs (or nixpkgs.lib) checkout at `PATH` whose lib a layout of `lib` gets; default: <nixpkgs> on NIX_PATH"},
		&cli.StringSliceFlag{Name: "disk", Usage: "use `NAME=DEVICE` as the device of disk NAME (also NAME DEVICE, as disko-install takes it); repeatable"},
		&cli.BoolFlag{Name: "show-trace", Usage: "show Nix's full trace on evaluation errors"},
	}
}

// scriptFlags are the flags of commands that generate scripts.
func scriptFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "root-mountpoint", Value: "/mnt", Usage: "mount the layout under `DIR`"},
		&cli.StringFlag{Name: "path", Usage: "colon-separated bin `DIRS` (Nix store paths) the scripts put first on PATH; default: tools by plain name"},
	}
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	load := func(c *cli.Context) (*config.Devices, error) { return loadLayout(c, stdin) }
	return &cli.App{
		Name:      "disko-compile",
		Usage:     "compile a disko layout into disk scripts, NixOS config, docs and schema",
		UsageText: "disko-compile [COMMAND] [FLAGS] LAYOUT\n\nLAYOUT is a .nix file, a .json file, - (JSON on stdin), or --flake REF#NAME.\nWith no command and no layout, it runs on a built-in example.",
		Description: `Examples:
   disko-compile validate ./disk-config.nix
   disko-compile scripts --out ./out ./disk-config.nix
   disko-compile script format,mount --disk main=/dev/vdb ./disk-config.nix
   disko-compile nixos-config --nix --flake ./examples#demo > disk-config.generated.nix
   disko-compile docs --format html --out ./docs`,
		Reader:          stdin,
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		OnUsageError:    cliargs.OnUsageError,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "docs", Usage: "write the options reference (same as the docs command)"},
		}, layoutFlags()...),
		Action: func(c *cli.Context) error {
			switch {
			case c.Bool("docs"):
				return writeDocs(c, "markdown", "")
			case c.NArg() > 0 || c.IsSet("flake"):
				d, err := load(c)
				if err != nil {
					return err
				}
				return printSummary(stdout, d)
			default:
				return runExample(c, stdout)
			}
		},
		Commands: []*cli.Command{
			planCommand(load, stdout), applyCommand(load, stdout, stderr), importCommand(stdout, stderr),
			imageCommand(load, stdout, stderr),
			vmTestCommand(stdin, stdout, stderr),
			{
				Name:         "validate",
				Usage:        "check a layout; print every problem with its option path",
				ArgsUsage:    "LAYOUT",
				Flags:        layoutFlags(),
				OnUsageError: cliargs.OnUsageError,
				Action: func(c *cli.Context) error {
					d, err := load(c)
					if err != nil {
						return err
					}
					return printSummary(stdout, d)
				},
			},
			{
				Name:         "json",
				Usage:        "print the layout as JSON with every default applied",
				ArgsUsage:    "LAYOUT",
				Flags:        layoutFlags(),
				OnUsageError: cliargs.OnUsageError,
				Action: func(c *cli.Context) error {
					d, err := load(c)
					if err != nil {
						return err
					}
					return writeJSON(stdout, d)
				},
			},
			{
				Name:         "scripts",
				Usage:        "write format.sh, mount.sh, unmount.sh, destroy.sh, format-mount.sh and destroy-format-mount.sh",
				ArgsUsage:    "LAYOUT",
				Flags:        append(append(layoutFlags(), scriptFlags()...), &cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "write the scripts into `DIR` (created if missing)"}),
				OnUsageError: cliargs.OnUsageError,
				Action: func(c *cli.Context) error {
					d, err := load(c)
					if err != nil {
						return err
					}
					scripts, err := codegen.Generate(d, scriptOptions(c))
					if err != nil {
						return err
					}
					return writeFiles(c.String("out"), scripts.Files(), 0o755)
				},
			},
			{
				Name:         "script",
				Usage:        "print the script of one MODE: destroy, format, mount, unmount, format,mount or destroy,format,mount",
				ArgsUsage:    "MODE LAYOUT",
				Flags:        append(layoutFlags(), scriptFlags()...),
				OnUsageError: cliargs.OnUsageError,
				Action: func(c *cli.Context) error {
					if c.NArg() < 1 {
						return cliargs.UsageError{Err: errors.New("script needs a MODE: destroy, format, mount, unmount, format,mount or destroy,format,mount")}
					}
					d, err := loadLayoutAt(c, stdin, 1)
					if err != nil {
						return err
					}
					scripts, err := codegen.Generate(d, scriptOptions(c))
					if err != nil {
						return err
					}
					script, err := scripts.ByMode(c.Args().First())
					if err != nil {
						return cliargs.UsageError{Err: err}
					}
					_, err = stdout.Write(script)
					return err
				},
			},
			{
				Name:         "nixos-config",
				Usage:        "print the NixOS configuration the layout implies (fileSystems, swapDevices, boot.*)",
				ArgsUsage:    "LAYOUT",
				Flags:        append(layoutFlags(), &cli.BoolFlag{Name: "nix", Usage: "print a Nix expression to import instead of JSON"}),
				OnUsageError: cliargs.OnUsageError,
				Action: func(c *cli.Context) error {
					d, err := load(c)
					if err != nil {
						return err
					}
					render := nixos.JSON
					if c.Bool("nix") {
						render = nixos.Nix
					}
					out, err := render(d)
					if err != nil {
						return err
					}
					_, err = stdout.Write(out)
					return err
				},
			},
			{
				Name:         "schema",
				Usage:        "print the JSON Schema of layouts (committed as schema/disko.schema.json)",
				OnUsageError: cliargs.OnUsageError,
				Action: func(c *cli.Context) error {
					_, err := stdout.Write(schema.JSON)
					return err
				},
			},
			{
				Name:  "docs",
				Usage: "write the options reference of every type and option",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "format", Value: "markdown", Usage: "`markdown` or html"},
					&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write into `DIR` instead of stdout"},
				},
				OnUsageError: cliargs.OnUsageError,
				Action: func(c *cli.Context) error {
					return writeDocs(c, c.String("format"), c.String("out"))
				},
			},
		},
	}
}

// loadLayout evaluates and loads the layout named by the first argument or --flake.
func loadLayout(c *cli.Context, stdin io.Reader) (*config.Devices, error) {
	return loadLayoutAt(c, stdin, 0)
}

// loadLayoutAt evaluates and loads the layout named by argument n or --flake.
func loadLayoutAt(c *cli.Context, stdin io.Reader, n int) (*config.Devices, error) {
	src, err := layoutSource(c, n)
	if err != nil {
		return nil, err
	}
	disks := map[string]string{}
	for _, m := range c.StringSlice("disk") {
		name, dev, ok := strings.Cut(m, "=")
		if !ok || name == "" || dev == "" {
			return nil, cliargs.UsageError{Err: fmt.Errorf("--disk needs NAME=DEVICE, got %q", m)}
		}
		disks[name] = dev
	}
	raw, err := (&eval.Evaluator{Stdin: stdin}).Devices(c.Context, src)
	if err != nil {
		return nil, err
	}
	d, err := config.Load(raw, config.LoadOptions{DiskDevices: disks})
	if err != nil {
		name := src.Path
		if src.Flake != "" {
			name = src.Flake
		}
		return nil, fmt.Errorf("%s has problems:\n%w", name, err)
	}
	return d, nil
}

// layoutSource is the layout source named by argument n or --flake, with its --arg and
// --argstr values.
func layoutSource(c *cli.Context, n int) (eval.Source, error) {
	src := eval.Source{Path: c.Args().Get(n), Flake: c.String("flake"), Nixpkgs: c.String("nixpkgs"), ShowTrace: c.Bool("show-trace")}
	if c.NArg() > n+1 {
		return src, cliargs.UsageError{Err: fmt.Errorf("unexpected arguments after the layout: %s", strings.Join(c.Args().Slice()[n+1:], " "))}
	}
	for _, kind := range []string{"arg", "argstr"} {
		for _, a := range c.StringSlice(kind) {
			name, value, ok := strings.Cut(a, "=")
			if !ok || name == "" {
				return src, cliargs.UsageError{Err: fmt.Errorf("--%s needs NAME and a value, got %q", kind, a)}
			}
			src.Args = append(src.Args, eval.Arg{Name: name, Value: value, String: kind == "argstr"})
		}
	}
	return src, nil
}

func scriptOptions(c *cli.Context) codegen.Options {
	return codegen.Options{RootMountpoint: c.String("root-mountpoint"), PathDirs: c.String("path")}
}

// runExample loads the built-in example, prints what it compiles to, and says how to run
// the command on a layout of one's own.
func runExample(c *cli.Context, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "disko-compile-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "example.nix")
	if err := os.WriteFile(file, exampleLayout, 0o644); err != nil {
		return err
	}
	raw, err := (&eval.Evaluator{}).Devices(c.Context, eval.Source{Path: file})
	if err != nil {
		return err
	}
	d, err := config.Load(raw, config.LoadOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Built-in example layout:\n\n%s\n", exampleLayout)
	if err := printSummary(stdout, d); err != nil {
		return err
	}
	conf, err := nixos.JSON(d)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nNixOS configuration it implies (disko-compile nixos-config):\n%s", conf)
	scripts, err := codegen.Generate(d, codegen.Options{RootMountpoint: "/mnt"})
	if err != nil {
		return err
	}
	format, _ := scripts.ByMode("format")
	fmt.Fprintf(stdout, "\nIts format script (disko-compile script format) has %d lines; the scripts are:\n", strings.Count(string(format), "\n"))
	files := scripts.Files()
	for _, name := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(stdout, "  %-26s %6d bytes\n", name, len(files[name]))
	}
	fmt.Fprint(stdout, `
Run it on your own layout:
  disko-compile validate ./disk-config.nix
  disko-compile scripts --out ./out ./disk-config.nix
  disko-compile --help
`)
	return nil
}

// printSummary says that the layout is valid and what it holds, one line per top-level
// device.
func printSummary(w io.Writer, d *config.Devices) error {
	fmt.Fprintln(w, "layout is valid:")
	line := func(kind, name, detail string) { fmt.Fprintf(w, "  %-22s %-16s %s\n", kind, name, detail) }
	for _, name := range slices.Sorted(maps.Keys(d.Disk)) {
		line("disk", name, d.Disk[name].Device+contentKind(d.Disk[name].Content))
	}
	for _, name := range slices.Sorted(maps.Keys(d.MDADM)) {
		line("mdadm", name, fmt.Sprintf("RAID%d%s", d.MDADM[name].Level, contentKind(d.MDADM[name].Content)))
	}
	for _, name := range slices.Sorted(maps.Keys(d.LVMVG)) {
		line("lvm_vg", name, fmt.Sprintf("%d logical volumes", len(d.LVMVG[name].LVs)))
	}
	for _, name := range slices.Sorted(maps.Keys(d.Zpool)) {
		line("zpool", name, fmt.Sprintf("%d datasets", len(d.Zpool[name].Datasets)))
	}
	for _, name := range slices.Sorted(maps.Keys(d.BcachefsFilesystems)) {
		line("bcachefs_filesystem", name, fmt.Sprintf("%d subvolumes", len(d.BcachefsFilesystems[name].Subvolumes)))
	}
	for _, name := range slices.Sorted(maps.Keys(d.Nodev)) {
		line("nodev", name, d.Nodev[name].FSType+" on "+d.Nodev[name].Mountpoint)
	}
	return nil
}

func contentKind(n config.Node) string {
	if n == nil {
		return ""
	}
	return " (" + n.Kind() + ")"
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeFiles writes each file into dir with mode.
func writeFiles(dir string, files map[string][]byte, mode os.FileMode) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, data := range files {
		if err := overwrite(filepath.Join(dir, name), data, mode); err != nil {
			return err
		}
	}
	return nil
}

// overwrite makes path hold data, with exactly mode (whatever the umask). An existing
// file is written over and then cut to length, never truncated to nothing first: ext4
// (auto_da_alloc) writes a file truncated to zero and rewritten out to disk when it is
// closed, which made rewriting a layout's six scripts cost about 0.55 ms of CPU and
// 1-4 ms of waiting instead of 0.2 ms (issue 18 item 1).
func overwrite(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Truncate(int64(len(data)))
	}
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeDocs(c *cli.Context, format, out string) error {
	files, err := docs.Render(format)
	if err != nil {
		return cliargs.UsageError{Err: err}
	}
	if out == "" {
		for _, name := range slices.Sorted(maps.Keys(files)) {
			if _, err := c.App.Writer.Write(files[name]); err != nil {
				return err
			}
		}
		return nil
	}
	return writeFiles(out, files, 0o644)
}
