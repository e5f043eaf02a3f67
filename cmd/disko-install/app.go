package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/diskoanywhere/diskoanywhere/internal/cliargs"
)

// pairFlags are disko-install's two-word flags. Their words may hold "=" (paths, Nix
// option values), so they are joined with a NUL, which argv cannot hold.
var pairFlags = map[string]cliargs.PairForm{"disk": cliargs.Pair, "extra-files": cliargs.Pair, "option": cliargs.Pair}

const pairSep = "\x00"

// defaultMountPoint is where disko-install mounts the new system.
const defaultMountPoint = "/mnt/disko-install-root"

func fail(format string, args ...any) error {
	return cliargs.ExitError{Code: 1, Msg: fmt.Sprintf(format, args...)}
}

// options are the command line, checked.
type options struct {
	flake, name     string // --flake REF#NAME
	disks           map[string]string
	diskOrder       []string // device paths in the order given (GRUB's devices)
	mode            string   // format or mount
	writeEFI        bool
	systemConfig    string // JSON object, "{}" when not given
	extraFiles      [][2]string
	nixOptions      [][2]string
	mountPoint      string
	dryRun, debug   bool
	showTrace       bool
	systemConfigSet bool
}

func run(ctx context.Context, args []string, e env) int {
	return cliargs.RunAsDisko(ctx, newApp(e), cliargs.Spec{Pairs: pairFlags, Sep: pairSep}, args, e.stderr)
}

func newApp(e env) *cli.App {
	return &cli.App{
		Name:      "disko-install",
		Usage:     "install a flake's NixOS configuration onto local disks (a USB stick, a second disk)",
		UsageText: "disko-install --flake FLAKE_URI#NAME --disk NAME DEVICE [--disk NAME DEVICE]... [OPTIONS]",
		Description: `The disks of nixosConfigurations.NAME's disko layout are mapped to devices with
--disk, wiped and formatted (or only mounted, with --mode mount), the system is built
and copied into the new store, installed (nixos-install, or the same steps in a
chroot where it is missing) and the disks are unmounted.

Examples:
  disko-install --flake .#mymachine --disk main /dev/sdb
  disko-install --flake .#mymachine --disk main /dev/sdb --write-efi-boot-entries
  disko-install --flake .#mymachine --disk main /dev/sdb --mode mount   # update, keep the data
  disko-install --flake .#mymachine --disk main /dev/sdb --extra-files ./ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key \
      --system-config '{"networking":{"hostName":"stick"}}'`,
		Reader:          e.stdin,
		Writer:          e.stdout,
		ErrWriter:       e.stderr,
		HideHelpCommand: true,
		OnUsageError:    cliargs.OnUsageError,
		ExitErrHandler:  func(*cli.Context, error) {},
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "flake", Aliases: []string{"f"}, Usage: "install nixosConfigurations.NAME of the flake `FLAKE_URI#NAME`"},
			&cli.StringSliceFlag{Name: "disk", Usage: "map disk `NAME DEVICE` of the layout (disko.devices.disk.NAME) to a device path; one for every disk"},
			&cli.StringFlag{Name: "mode", Value: "format", Usage: "`MODE`: format (wipe, format, mount, then install) or mount (mount an existing install and update it, keeping the data)"},
			&cli.BoolFlag{Name: "write-efi-boot-entries", Usage: "write EFI boot entries into this machine's NVRAM (boot.loader.efi.canTouchEfiVariables); leave it off for a disk that moves to another machine"},
			&cli.StringFlag{Name: "system-config", Usage: "merge the `JSON` object into the NixOS configuration, as one more module"},
			&cli.StringSliceFlag{Name: "extra-files", Usage: "copy `SOURCE DEST` from this machine to DEST in the new system (keeping permissions); repeatable"},
			&cli.StringSliceFlag{Name: "option", Usage: "pass `NAME VALUE` to Nix as --option NAME VALUE; repeatable"},
			&cli.StringFlag{Name: "mount-point", Value: defaultMountPoint, Usage: "mount the new system at `PATH`"},
			&cli.BoolFlag{Name: "dry-run", Usage: "build, then print what would run instead of running it (allowed without root)"},
			&cli.BoolFlag{Name: "show-trace", Usage: "show Nix's full trace on evaluation errors"},
			&cli.BoolFlag{Name: "debug", Aliases: []string{"d"}, Usage: "run the scripts with set -x and show Nix's messages"},
		},
		Action: func(c *cli.Context) error {
			o, err := parse(c, e)
			if err != nil {
				return err
			}
			if err := installFlake(c.Context, o, e); err != nil {
				if ee := (cliargs.ExitError{}); errors.As(err, &ee) {
					return err
				}
				fmt.Fprintln(e.stderr, "disko-install:", err)
				return fail("disko-install failed")
			}
			if !o.dryRun {
				fmt.Fprintln(e.stdout, "disko-install succeeded")
			}
			return nil
		},
	}
}

// parse checks the command line as disko-install does, with its messages.
func parse(c *cli.Context, e env) (*options, error) {
	if c.NArg() > 0 {
		return nil, fail("Unknown option: %s", c.Args().First())
	}
	o := &options{
		mode: c.String("mode"), writeEFI: c.Bool("write-efi-boot-entries"), mountPoint: c.String("mount-point"),
		dryRun: c.Bool("dry-run"), debug: c.Bool("debug"), showTrace: c.Bool("show-trace"),
		disks: map[string]string{}, systemConfig: "{}",
	}
	if o.mode != "format" && o.mode != "mount" {
		return nil, fail("Invalid mode: %s\nValid modes are: format, mount", o.mode)
	}
	pairs := func(flag, what string) ([][2]string, error) {
		var out [][2]string
		for _, v := range c.StringSlice(flag) {
			a, b, ok := strings.Cut(v, pairSep)
			if !ok {
				return nil, fail("Option --%s requires two arguments: %s", flag, what)
			}
			out = append(out, [2]string{a, b})
		}
		return out, nil
	}
	disks, err := pairs("disk", "disk_name, device_path")
	if err != nil {
		return nil, err
	}
	for _, d := range disks {
		if _, dup := o.disks[d[0]]; !dup {
			o.diskOrder = append(o.diskOrder, d[1])
		}
		o.disks[d[0]] = d[1]
	}
	if o.extraFiles, err = pairs("extra-files", "source, destination"); err != nil {
		return nil, err
	}
	if o.nixOptions, err = pairs("option", "key, value"); err != nil {
		return nil, err
	}
	if c.IsSet("system-config") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(c.String("system-config")), &obj); err != nil || obj == nil {
			return nil, fail("--system-config must be a JSON object, as '{\"networking\":{\"hostName\":\"x\"}}'")
		}
		o.systemConfig, o.systemConfigSet = c.String("system-config"), true
	}
	flake := c.String("flake")
	if flake == "" {
		return nil, fail("Please specify the flake-uri with --flake to use for installation.")
	}
	if e.geteuid() != 0 && !o.dryRun {
		return nil, fail("This script must be run as root")
	}
	i := strings.LastIndex(flake, "#")
	if i < 0 || flake[i+1:] == "" || strings.Contains(flake[i+1:], `"`) {
		return nil, fail("Please specify the name of the NixOS configuration to be installed, as a URI fragment in the flake-uri.\n" +
			`For example, to use the output nixosConfigurations.foo from the flake.nix, append "#foo" to the flake-uri.`)
	}
	o.flake, o.name = flake[:i], flake[i+1:]
	if o.mountPoint == "" {
		return nil, fail("--mount-point needs a path")
	}
	return o, nil
}
