package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"strings"

	"github.com/urfave/cli/v2"

	"github.com/diskoanywhere/diskoanywhere/internal/cliargs"
	"github.com/diskoanywhere/diskoanywhere/internal/install"
	"github.com/diskoanywhere/diskoanywhere/internal/progress"
	"github.com/diskoanywhere/diskoanywhere/internal/remote"
)

// Exit codes: 0 only on success.
const (
	exitOK      = 0
	exitFailed  = 1
	exitBadArgs = 2
)

// deps are what run takes from the process; tests replace them.
type deps struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            []string
	// checkDisk is install.Options.CheckDisk (tests: only their loop devices).
	checkDisk func(string) error
	// install runs the parsed options; nil means install.Run.
	install func(context.Context, install.Options) error
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env []string) int {
	return runWith(ctx, deps{stdin: stdin, stdout: stdout, stderr: stderr, env: env}, args)
}

func runWith(ctx context.Context, d deps, args []string) int {
	// All of stderr passes through one display, so that the live status
	// line of a running step stays below warnings, logs and prompts.
	d.stderr = progress.For(d.stderr)
	app := newApp(d)
	err := app.RunContext(ctx, normalizeArgs(app.Flags, args))
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(d.stderr, "anywhere:", err)
	if cliargs.IsUsageError(err) {
		fmt.Fprintln(d.stderr, "Run anywhere --help for the flags and examples.")
		return exitBadArgs
	}
	return exitFailed
}

const (
	catInput   = "What to install"
	catSSH     = "Target and SSH"
	catPhases  = "Phases and resuming"
	catDisko   = "Disks"
	catFiles   = "Files, keys and secrets"
	catNix     = "Nix"
	catKexec   = "Kexec (into a nixos-images installer tarball)"
	catOutput  = "Output"
	catCompat  = "Deprecated (nixos-anywhere compatibility)"
	descExamps = `Install a NixOS configuration onto a machine reachable over SSH: format its disks
with the configuration's disko layout, copy the system, install it, reboot, and check
that the new system answers with the expected host key.

The flags are nixos-anywhere's. Unlike it: an unknown flag is an error, flags may come
after the host, --ssh-option overrides every default, host keys are always verified
(accept a new one with --ssh-option StrictHostKeyChecking=accept-new), and a failed
run resumes where it stopped when run again (--restart starts over).

Examples:
  # Install the flake's nixosConfigurations.myhost onto a running NixOS installer
  anywhere --flake .#myhost root@192.0.2.10

  # First look at the plan: the disks that will be wiped, the closure size, the phases
  anywhere --flake .#myhost root@192.0.2.10 --dry-run

  # Any Linux with the disk tools and Nix, as a sudo user, without kexec
  anywhere --flake .#myhost --phases disko,install,reboot admin@server

  # Prebuilt store paths, a LUKS key that only lives on the target during disko
  anywhere --store-paths ./result-disko ./result-system \
    --disk-encryption-keys /tmp/secret.key ./secret.key root@server

  # Compile the disk script from a layout (no NixOS build), on other devices
  anywhere --flake .#myhost --disko-layout ./disk-config.nix --disk main /dev/vdb root@server

  # Host keys for sops/agenix and a user's files, with their owner
  anywhere --flake .#myhost --extra-files ./extra --chown /home/alice 1000:100 root@server

Environment: SSH_PRIVATE_KEY (a key, when -i is not given), SSHPASS (with --env-password),
SSH_AUTH_SOCK (agent), SUDO_PASSWORD (for sudo on the target), NIXOS_NO_CHECK (passed to
nixos-install), XDG_STATE_HOME (where state files go).`
)

func newApp(d deps) *cli.App {
	return &cli.App{
		Name:                      "anywhere",
		Usage:                     "install NixOS onto a machine over SSH (nixos-anywhere compatible)",
		UsageText:                 "anywhere [flags] [user@]host[:port]",
		Description:               descExamps,
		HideHelpCommand:           true,
		DisableSliceFlagSeparator: true,
		Reader:                    d.stdin,
		Writer:                    d.stdout,
		ErrWriter:                 d.stderr,
		ExitErrHandler:            func(*cli.Context, error) {},
		OnUsageError:              cliargs.OnUsageError,
		Flags:                     append(flags(), vmTestFlags()...),
		Action: func(c *cli.Context) error {
			if c.Bool("vm-test") {
				return vmTest(c, d)
			}
			o, err := options(c, d)
			if err != nil {
				return err
			}
			if d.install != nil {
				return d.install(c.Context, *o)
			}
			return install.Run(c.Context, *o)
		},
	}
}

func flags() []cli.Flag {
	return []cli.Flag{
		// What to install.
		&cli.StringFlag{Category: catInput, Name: "flake", Aliases: []string{"f"}, Usage: "the flake and NixOS configuration to install: `REF#NAME` (nixosConfigurations.NAME), or REF#nixosConfigurations.… verbatim"},
		&cli.StringSliceFlag{Category: catInput, Name: "store-paths", Aliases: []string{"s"}, Usage: "prebuilt store paths instead of a flake: `DISKO_SCRIPT TOPLEVEL` (two words)"},
		&cli.BoolFlag{Category: catInput, Name: "vm-test", Usage: "install into a throwaway local qemu VM instead of a host: boot the installer tarball (--kexec), one blank disk per layout disk (imageSize), phases disko, install, reboot (UEFI), then check the host key and mounts and remove the VM; with --store-paths give the layout with --disko-layout"},

		// Target and SSH.
		&cli.StringFlag{Category: catSSH, Name: "target-host", Usage: "the SSH destination `[user@]host[:port]`, or an ssh_config alias (same as the argument)"},
		&cli.StringSliceFlag{Category: catSSH, Name: "i", Usage: "private key `FILE` to log in with (repeatable); default: ssh_config, the agent, SSH_PRIVATE_KEY"},
		&cli.IntFlag{Category: catSSH, Name: "ssh-port", Aliases: []string{"p"}, Usage: "SSH `PORT` (a port in the destination wins)"},
		&cli.StringSliceFlag{Category: catSSH, Name: "ssh-option", Usage: "an ssh_config `KEY=VALUE` for every connection; overrides every default (repeatable). Honoured: " + strings.Join(remote.SupportedSSHOptions(), ", ") +
			". OpenSSH options without effect for the built-in client (ControlMaster, LogLevel, ForwardAgent, …) are accepted with a warning; " +
			strings.Join(remote.RefusedSSHOptions(), ", ") + " are refused"},
		&cli.BoolFlag{Category: catSSH, Name: "env-password", Usage: "log in with the password in SSHPASS"},
		&cli.StringFlag{Category: catSSH, Name: "ssh-config", Usage: "read this ssh_config `FILE` instead of ~/.ssh/config (\"none\" for none)"},

		// Phases and resuming.
		&cli.StringFlag{Category: catPhases, Name: "phases", Value: "kexec,disko,install,reboot", Usage: "the phases to run, comma-separated: `LIST` of kexec, disko, install, reboot"},
		&cli.StringFlag{Category: catPhases, Name: "state-file", Usage: "where progress is recorded for resuming (`FILE`); default $XDG_STATE_HOME/anywhere/<target>.json"},
		&cli.BoolFlag{Category: catPhases, Name: "restart", Usage: "ignore the recorded progress and run every selected phase again"},
		&cli.BoolFlag{Category: catPhases, Name: "dry-run", Usage: "print the plan (target, disks that will be wiped, closure size, phases) and stop; changes nothing"},
		&cli.DurationFlag{Category: catPhases, Name: "reboot-timeout", Value: install.DefaultRebootTimeout, Usage: "how long to wait for the target to go down, and again to come back, after the reboot"},

		// Disks.
		&cli.StringFlag{Category: catDisko, Name: "disko-mode", Value: "disko", Usage: "`MODE`: disko (wipe, format, mount), format (format what is missing, mount), mount (mount only, e.g. to repair), plan (print what apply would change on the disks, change nothing; with --phases disko) or apply (only the changes that keep all data, then mount; see docs/incremental.md)"},
		&cli.BoolFlag{Category: catDisko, Name: "no-disko-deps", Usage: "use the disk script variant that relies on the target's own tools (saves RAM on the installer)"},
		&cli.StringFlag{Category: catDisko, Name: "disko-layout", Usage: "compile the disk script in-process from this layout (`FILE` .nix/.json, or REF#NAME of a flake) instead of building system.build.diskoScript"},
		&cli.StringSliceFlag{Category: catDisko, Name: "disk", Usage: "with --disko-layout: use `NAME DEVICE` as the device of disk NAME (repeatable)"},
		&cli.StringFlag{Category: catDisko, Name: "mount-point", Value: "/mnt", Usage: "where the new system is mounted on the target (`DIR`); a built disk script must have been built for it"},

		// Files, keys and secrets.
		&cli.StringFlag{Category: catFiles, Name: "extra-files", Usage: "copy this `DIR`'s tree into the new system's root, modes kept (owned by root, unless anywhere runs as root: then owners are kept)"},
		&cli.StringSliceFlag{Category: catFiles, Name: "chown", Usage: "`PATH OWNER`: chown -R OWNER (uid:gid) of PATH in the new system, after --extra-files (repeatable)"},
		&cli.BoolFlag{Category: catFiles, Name: "copy-host-keys", Usage: "copy the target's /etc/ssh/ssh_host_* into the new system (keys from --extra-files are kept)"},
		&cli.StringSliceFlag{Category: catFiles, Name: "disk-encryption-keys", Usage: "`REMOTE LOCAL`: put the local file (or pipe) at REMOTE on the target, mode 0600, for the disko phase only (repeatable)"},

		// Nix.
		&cli.StringFlag{Category: catNix, Name: "build-on", Value: "auto", Usage: "where to build: `WHERE` is auto (here if this machine has the target's architecture), local or remote (evaluate here, build on the target)"},
		&cli.BoolFlag{Category: catNix, Name: "print-build-logs", Aliases: []string{"L"}, Usage: "print full build logs"},
		&cli.BoolFlag{Category: catNix, Name: "show-trace", Usage: "show Nix's evaluation traces"},
		&cli.StringSliceFlag{Category: catNix, Name: "option", Usage: "`KEY VALUE`: a Nix option for every Nix command, here and on the target (repeatable)"},
		&cli.StringFlag{Category: catNix, Name: "from", Usage: "copy the closure from this store `URI` instead of the local store"},
		&cli.StringSliceFlag{Category: catNix, Name: "ssh-store-setting", Usage: "`KEY VALUE` of the target store: remote-store (URL-encoded store URI), remote-program; compress is accepted and ignored"},
		&cli.BoolFlag{Category: catNix, Name: "no-substitute-on-destination", Usage: "do not let the target fetch paths from its binary caches itself"},
		&cli.BoolFlag{Category: catNix, Name: "no-use-machine-substituters", Usage: "do not give the target the configuration's nix.settings.substituters"},
		&cli.StringSliceFlag{Category: catNix, Name: "generate-hardware-config", Usage: "`KIND PATH`: once the target runs the installer (after the kexec phase), run nixos-facter or nixos-generate-config there and write its report to PATH; the configuration is built after it"},

		// Kexec.
		&cli.StringFlag{Category: catKexec, Name: "kexec", Usage: "installer tarball `PATH|URL` (nixos-images layout kexec/{run,kexec,bzImage,initrd,ip}); a file is uploaded, a URL downloaded by the target (or here and streamed up); default: nixos-images' " + install.DefaultKexecRelease + " image for the target's architecture"},
		&cli.StringFlag{Category: catKexec, Name: "kexec-extra-flags", Usage: "extra `FLAGS` for kexec --load and kexec -e"},
		&cli.BoolFlag{Category: catKexec, Name: "force-kexec", Usage: "kexec even when the target already runs a NixOS installer"},
		&cli.IntFlag{Category: catKexec, Name: "post-kexec-ssh-port", Usage: "SSH `PORT` after kexec (works without -p)"},
		&cli.DurationFlag{Category: catKexec, Name: "kexec-timeout", Value: install.DefaultKexecTimeout, Usage: "how long to wait for the installer to answer SSH after the kexec (the old system must stop answering within 3 minutes of it)"},

		// Output.
		&cli.BoolFlag{Category: catOutput, Name: "json", Usage: "write one JSON event per line on stdout (progress stays on stderr)"},
		&cli.BoolFlag{Category: catOutput, Name: "debug", Usage: "log every SSH command and print full build logs"},

		// Deprecated.
		&cli.BoolFlag{Category: catCompat, Name: "build-on-remote", Usage: "same as --build-on remote"},
		&cli.BoolFlag{Category: catCompat, Name: "stop-after-disko", Usage: "same as --phases kexec,disko"},
		&cli.BoolFlag{Category: catCompat, Name: "no-reboot", Usage: "same as --phases kexec,disko,install"},
		&cli.BoolFlag{Category: catCompat, Name: "tty", Aliases: []string{"t"}, Usage: "no effect (a TTY is detected automatically)"},
	}
}

// pairs reads a repeatable two-word flag.
func pairs(c *cli.Context, name, want string) ([][2]string, error) {
	var out [][2]string
	for _, v := range c.StringSlice(name) {
		a, b, ok := splitPair(v)
		if !ok || a == "" {
			return nil, cliargs.UsageError{Err: fmt.Errorf("--%s needs two values: %s", name, want)}
		}
		out = append(out, [2]string{a, b})
	}
	return out, nil
}

// options turns the parsed flags into install.Options.
func options(c *cli.Context, d deps) (*install.Options, error) {
	getenv := envLookup(d.env)
	warn := func(format string, args ...any) { fmt.Fprintf(d.stderr, "warning: "+format+"\n", args...) }
	o := &install.Options{
		Flake:                   c.String("flake"),
		DiskoLayout:             c.String("disko-layout"),
		DiskoMode:               c.String("disko-mode"),
		NoDiskoDeps:             c.Bool("no-disko-deps"),
		MountPoint:              c.String("mount-point"),
		ExtraFiles:              c.String("extra-files"),
		CopyHostKeys:            c.Bool("copy-host-keys"),
		SubstituteOnDestination: !c.Bool("no-substitute-on-destination"),
		UseMachineSubstituters:  !c.Bool("no-use-machine-substituters") && !c.Bool("no-substitute-on-destination"),
		From:                    c.String("from"),
		PrintBuildLogs:          c.Bool("print-build-logs"),
		ShowTrace:               c.Bool("show-trace"),
		Debug:                   c.Bool("debug"),
		BuildOn:                 c.String("build-on"),
		Kexec:                   c.String("kexec"),
		KexecExtraFlags:         c.String("kexec-extra-flags"),
		ForceKexec:              c.Bool("force-kexec"),
		PostKexecSSHPort:        c.Int("post-kexec-ssh-port"),
		KexecTimeout:            c.Duration("kexec-timeout"),
		DryRun:                  c.Bool("dry-run"),
		StateFile:               c.String("state-file"),
		Restart:                 c.Bool("restart"),
		RebootTimeout:           c.Duration("reboot-timeout"),
		Env:                     d.env,
		Stdin:                   d.stdin,
		Stdout:                  d.stdout,
		Stderr:                  d.stderr,
		JSON:                    c.Bool("json"),
		CheckDisk:               d.checkDisk,
	}

	// The destination: the argument or --target-host, not both, at most one.
	args := c.Args().Slice()
	switch {
	case len(args) > 1:
		return nil, cliargs.UsageError{Err: fmt.Errorf("one target host expected, got %d arguments: %s", len(args), strings.Join(args, " "))}
	case len(args) == 1 && c.String("target-host") != "" && args[0] != c.String("target-host"):
		return nil, cliargs.UsageError{Err: fmt.Errorf("two target hosts: %s and --target-host %s", args[0], c.String("target-host"))}
	case len(args) == 1:
		o.Target = args[0]
	default:
		o.Target = c.String("target-host")
	}

	// Two-word flags.
	for _, v := range c.StringSlice("store-paths") {
		a, b, ok := splitPair(v)
		if !ok || len(o.StorePaths) > 0 {
			return nil, cliargs.UsageError{Err: errors.New("--store-paths takes two store paths, once: DISKO_SCRIPT TOPLEVEL")}
		}
		o.StorePaths = []string{a, b}
	}
	ps, err := pairs(c, "chown", "PATH OWNER")
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		o.Chown = append(o.Chown, install.Chown{Path: p[0], Owner: p[1]})
	}
	if ps, err = pairs(c, "disk-encryption-keys", "REMOTE_PATH LOCAL_PATH"); err != nil {
		return nil, err
	}
	for _, p := range ps {
		o.DiskEncryptionKeys = append(o.DiskEncryptionKeys, install.DiskKey{Remote: p[0], Local: p[1]})
	}
	if o.NixOptions, err = pairs(c, "option", "KEY VALUE"); err != nil {
		return nil, err
	}
	if o.StoreSettings, err = pairs(c, "ssh-store-setting", "KEY VALUE"); err != nil {
		return nil, err
	}
	if ps, err = pairs(c, "disk", "NAME DEVICE"); err != nil {
		return nil, err
	}
	for _, p := range ps {
		if o.Disks == nil {
			o.Disks = map[string]string{}
		}
		o.Disks[p[0]] = p[1]
	}
	if ps, err = pairs(c, "generate-hardware-config", "nixos-facter|nixos-generate-config PATH"); err != nil {
		return nil, err
	}
	for _, p := range ps {
		o.HardwareConfig = &install.HardwareConfig{Kind: p[0], Path: p[1]}
	}

	// Phases, with the deprecated spellings.
	phases := c.String("phases")
	if c.Bool("stop-after-disko") {
		warn("--stop-after-disko is deprecated; use --phases kexec,disko")
		phases = "kexec,disko"
	}
	if c.Bool("no-reboot") {
		warn("--no-reboot is deprecated; use --phases kexec,disko,install")
		phases = "kexec,disko,install"
	}
	if o.Phases, err = install.ParsePhases(phases); err != nil {
		return nil, cliargs.UsageError{Err: err}
	}
	if c.Bool("build-on-remote") {
		warn("--build-on-remote is deprecated; use --build-on remote")
		if c.IsSet("build-on") && o.BuildOn != "remote" {
			return nil, cliargs.UsageError{Err: fmt.Errorf("--build-on-remote conflicts with --build-on %s", o.BuildOn)}
		}
		o.BuildOn = "remote"
	}
	if c.Bool("tty") {
		warn("-t/--tty has no effect: a terminal is detected automatically")
	}

	// SSH.
	o.SSH = remote.Options{
		UserConfigFile: c.String("ssh-config"),
		SSHOptions:     c.StringSlice("ssh-option"),
		Port:           c.Int("ssh-port"),
		IdentityFiles:  c.StringSlice("i"),
		Home:           getenv("HOME"),
	}
	// --ssh-option is checked before anything runs: a refused option is a
	// usage error, and each one without effect here warns once, however
	// often the run connects.
	host := ""
	if t, err := remote.ParseTarget(o.Target); err == nil {
		host = t.Host
	}
	ws, err := remote.CheckSSHOptions(o.SSH.SSHOptions, host)
	if err != nil {
		return nil, cliargs.UsageError{Err: err}
	}
	for _, w := range ws {
		warn("%s", w)
	}
	o.SSH.FromEnv(getenv, c.Bool("env-password"))
	if c.Bool("env-password") && o.SSH.Password == "" {
		return nil, cliargs.UsageError{Err: errors.New("--env-password: SSHPASS is empty")}
	}
	if o.Debug {
		o.SSH.Logger = slog.New(slog.NewTextHandler(d.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if f, ok := d.stdin.(*os.File); ok && isTerminal(f) {
		o.SSH.HostKeyPrompt = hostKeyPrompt(f, d.stderr)
	}
	if err := o.Check(); err != nil {
		return nil, cliargs.UsageError{Err: err}
	}
	return o, nil
}

// envLookup reads an environment given as KEY=VALUE lines (the last wins).
func envLookup(env []string) func(string) string {
	return func(key string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
				return v
			}
		}
		return ""
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// hostKeyPrompt asks on the terminal whether to trust an unknown host key.
func hostKeyPrompt(in *os.File, out io.Writer) func(remote.HostKeyQuestion) (bool, error) {
	return func(q remote.HostKeyQuestion) (bool, error) {
		fmt.Fprintf(out, "The authenticity of host %s (%s) can't be established.\n%s key fingerprint is %s.\n"+
			"Accept it and add it to %s? [yes/no]: ", q.Host, q.Addr, strings.ToUpper(strings.TrimPrefix(q.Key.Type(), "ssh-")), q.Fingerprint, q.File)
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && line == "" {
			return false, err
		}
		ans := strings.ToLower(strings.TrimSpace(line))
		return ans == "yes" || ans == "y", nil
	}
}
