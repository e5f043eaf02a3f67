package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/diskoanywhere/diskoanywhere/internal/cliargs"
	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/eval"
)

// ToolsPathEnv names the environment variable through which the Nix package gives the
// scripts their tools: colon-separated bin directories put first on the scripts' PATH.
// --no-deps ignores it, as disko's --no-deps uses the tools of the environment.
const ToolsPathEnv = "DISKO_TOOLS_PATH"

// mode is what a --mode value runs: a script of codegen.Scripts, by disko's name, and
// whether it always runs without asking (disko's legacy modes have no prompt).
type mode struct {
	script  string
	noAsk   bool
	destroy bool // the script asks before wiping unless given --yes-wipe-all-disks
}

// modes are the values disko's --mode accepts, mapped as disko maps them (cli.nix):
// the legacy "disko" and "zap_create_mount" are destroy,format,mount without the
// prompt, "create" is format.
var modes = map[string]mode{
	"destroy":              {script: "destroy", destroy: true},
	"format":               {script: "format"},
	"mount":                {script: "mount"},
	"unmount":              {script: "unmount"},
	"format,mount":         {script: "format,mount"},
	"destroy,format,mount": {script: "destroy,format,mount", destroy: true},
	"disko":                {script: "destroy,format,mount", destroy: true, noAsk: true},
	"zap_create_mount":     {script: "destroy,format,mount", destroy: true, noAsk: true},
	"create":               {script: "format"},
}

// Messages disko prints for a command line it cannot run.
const (
	errMode    = `mode must be one of "destroy", "format", "mount", "unmount", "format,mount" or "destroy,format,mount"`
	errNoInput = "disko config must be an existing file or flake must be set"
	errNoAttr  = "Please specify the name of the NixOS configuration to be installed, as a URI fragment in the flake-uri.\n" +
		`For example, to use the output diskoConfigurations.foo from the flake.nix, append "#foo" to the flake-uri.`
)

// aborted is disko's way to refuse a command line: "aborted: MSG", exit 1.
func aborted(msg string) error { return cliargs.ExitError{Code: 1, Msg: "aborted: " + msg} }

// pairFlags are disko's two-word flags, `--arg NAME EXPR` and `--argstr NAME VALUE`;
// the value may hold "=", so the words are joined with a NUL, which argv cannot hold.
var pairFlags = map[string]cliargs.PairForm{"arg": cliargs.Pair, "argstr": cliargs.Pair}

const pairSep = "\x00"

func run(ctx context.Context, args []string, e env) int {
	return cliargs.RunAsDisko(ctx, newApp(e), cliargs.Spec{Pairs: pairFlags, Sep: pairSep}, args, e.stderr)
}

func newApp(e env) *cli.App {
	return &cli.App{
		Name:      "disko",
		Usage:     "format, mount, unmount or destroy the disks of a disko layout",
		UsageText: "disko [options] disk-config.nix\ndisko [options] --flake github:somebody/somewhere#disk-config",
		Description: `The layout is compiled and its script for --mode is run. With --flake it is
diskoConfigurations.NAME, else the disko.devices of nixosConfigurations.NAME.

Modes (--mode):
destroy               unmount file systems and destroy the partition tables of the layout's disks
format                create partition tables, zpools, LVM, RAID and file systems if they don't exist yet
mount                 mount the file systems under --root-mountpoint (the default mode)
unmount               unmount them
format,mount          format, then mount
destroy,format,mount  all three in sequence (previously --mode disko)
Legacy names: disko and zap_create_mount (destroy,format,mount without asking), create (format).

Examples:
disko --mode destroy,format,mount ./disk-config.nix
disko --mode destroy,format,mount --yes-wipe-all-disks --arg disks '[ "/dev/vdb" ]' ./disk-config.nix
disko --mode mount --flake .#myhost
disko --dry-run --mode format ./disk-config.nix   # prints the script's path; read it, then run it`,
		Reader:          e.stdin,
		Writer:          e.stdout,
		ErrWriter:       e.stderr,
		HideHelpCommand: true,
		OnUsageError:    cliargs.OnUsageError,
		ExitErrHandler:  func(*cli.Context, error) {},
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "mode", Aliases: []string{"m"}, Value: "mount", Usage: "`MODE`: destroy, format, mount, unmount, format,mount or destroy,format,mount"},
			&cli.StringFlag{Name: "flake", Aliases: []string{"f"}, Usage: "read the layout from a flake: `URI#NAME`"},
			&cli.StringSliceFlag{Name: "arg", Usage: "pass `NAME EXPR` (a Nix expression) to a layout that is a function; repeatable"},
			&cli.StringSliceFlag{Name: "argstr", Usage: "pass `NAME VALUE` (a string) to a layout that is a function; repeatable"},
			&cli.StringFlag{Name: "root-mountpoint", Value: "/mnt", Usage: "mount the device tree under `DIR`"},
			&cli.BoolFlag{Name: "dry-run", Usage: "write the script and print its path instead of running it"},
			&cli.BoolFlag{Name: "no-deps", Usage: "use the tools on PATH instead of the package's own (" + ToolsPathEnv + ")"},
			&cli.BoolFlag{Name: "yes-wipe-all-disks", Usage: "destroy without asking (destroy and destroy,format,mount), for automation"},
			&cli.BoolFlag{Name: "debug", Usage: "run the script with set -x"},
			&cli.BoolFlag{Name: "show-trace", Usage: "show Nix's full trace on evaluation errors"},
			&cli.StringFlag{Name: "nixpkgs", Usage: "a nixpkgs (or nixpkgs.lib) at `PATH` whose lib a layout function gets; default: <nixpkgs> on NIX_PATH"},
			&cli.BoolFlag{Name: "version", Usage: "print the version and exit"},
		},
		Action: func(c *cli.Context) error { return action(c, e) },
	}
}

// version is the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

func action(c *cli.Context, e env) error {
	if c.Bool("version") {
		fmt.Fprintln(e.stdout, version())
		return nil
	}
	// disko prints its version first, to help with bug reports; on stderr here, so
	// that stdout holds only results (the --dry-run path).
	fmt.Fprintf(e.stderr, "disko version %s\n", version())
	m, ok := modes[c.String("mode")]
	if !ok {
		return aborted(errMode)
	}
	if c.NArg() > 1 {
		// disko: a second positional argument prints the usage and fails.
		cli.ShowAppHelp(c)
		return cliargs.ExitError{Code: 1}
	}
	src, err := source(c)
	if err != nil {
		return err
	}
	d, err := load(c, e, src)
	if err != nil {
		return err
	}
	opts := codegen.Options{RootMountpoint: c.String("root-mountpoint")}
	if !c.Bool("no-deps") {
		opts.PathDirs = e.getenv(ToolsPathEnv)
	}
	scripts, err := codegen.Generate(d, opts)
	if err != nil {
		return err
	}
	script, err := scripts.ByMode(m.script)
	if err != nil {
		return err
	}
	var args []string
	if m.destroy && (m.noAsk || c.Bool("yes-wipe-all-disks")) {
		args = append(args, "--yes-wipe-all-disks")
	}
	if c.Bool("dry-run") {
		file, err := writeScript(m.script, script, false)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, strings.Join(append([]string{file}, args...), " "))
		return nil
	}
	file, err := writeScript(m.script, script, true)
	if err != nil {
		return err
	}
	defer os.Remove(file)
	code, err := e.runScript(c.Context, e, file, args, c.Bool("debug"))
	if err != nil {
		return err
	}
	return cliargs.ExitError{Code: code}
}

// source is the layout the command line names: a file that exists, or --flake URI#NAME.
func source(c *cli.Context) (eval.Source, error) {
	src := eval.Source{Nixpkgs: c.String("nixpkgs"), ShowTrace: c.Bool("show-trace")}
	for _, kind := range []string{"arg", "argstr"} {
		for _, a := range c.StringSlice(kind) {
			name, value, ok := strings.Cut(a, pairSep)
			if !ok || name == "" {
				return src, aborted(fmt.Sprintf("--%s needs NAME and a value, as in --%s disks '[ \"/dev/vdb\" ]'", kind, kind))
			}
			src.Args = append(src.Args, eval.Arg{Name: name, Value: value, String: kind == "argstr"})
		}
	}
	if flake := c.String("flake"); c.IsSet("flake") {
		i := strings.LastIndex(flake, "#")
		if i < 0 || flake[i+1:] == "" || strings.ContainsAny(flake[i+1:], `"`) {
			return src, cliargs.ExitError{Code: 1, Msg: errNoAttr}
		}
		src.Flake = flake
		return src, nil
	}
	file := c.Args().First()
	if file == "" {
		return src, aborted(errNoInput)
	}
	if _, err := os.Stat(file); err != nil {
		return src, aborted(errNoInput)
	}
	src.Path = file
	return src, nil
}

// load evaluates the layout and checks it, naming every problem with its option path.
func load(c *cli.Context, e env, src eval.Source) (*config.Devices, error) {
	raw, err := (&eval.Evaluator{Stdin: e.stdin}).Devices(c.Context, src)
	if err != nil {
		return nil, err
	}
	d, err := config.Load(raw, config.LoadOptions{})
	if err != nil {
		name := src.Path
		if src.Flake != "" {
			name = src.Flake
		}
		return nil, fmt.Errorf("%s has problems:\n%w", name, err)
	}
	return d, nil
}

// writeScript writes the script of mode into a new file of the temporary directory and
// returns its path: "disko-destroy-format-mount-*.sh". A run's own copy is readable by
// its owner only; a --dry-run's copy stays for the user to read and run.
func writeScript(mode string, script []byte, private bool) (string, error) {
	f, err := os.CreateTemp("", "disko-"+strings.ReplaceAll(mode, ",", "-")+"-*.sh")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(script); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	perm := os.FileMode(0o755)
	if private {
		perm = 0o700
	}
	return f.Name(), os.Chmod(f.Name(), perm)
}
