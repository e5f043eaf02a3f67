package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/closure"
	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/eval"
	"github.com/diskoanywhere/diskoanywhere/internal/install"
	"github.com/diskoanywhere/diskoanywhere/internal/nixcmd"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// ToolsPathEnv names the environment variable through which the Nix package gives the
// disk scripts their tools (colon-separated bin directories put first on PATH), as
// for the disko command.
const ToolsPathEnv = "DISKO_TOOLS_PATH"

//go:embed toplevel.nix
var toplevelNix string

// installFlake runs disko-install's steps.
func installFlake(ctx context.Context, o *options, e env) (err error) {
	nixLog := io.Discard
	if o.debug {
		nixLog = e.stderr
	}
	step := func(what string) func(error) error {
		fmt.Fprintf(e.stderr, "disko-install: %s\n", what)
		start := time.Now()
		return func(err error) error {
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			fmt.Fprintf(e.stderr, "disko-install: %s: done in %.1fs\n", what, time.Since(start).Seconds())
			return nil
		}
	}

	mnt := o.mountPoint
	if !o.dryRun {
		// bcachefs wants 755; Nix refuses a store under a symlink, so the real path.
		if err := os.MkdirAll(mnt, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(mnt, 0o755); err != nil {
			return err
		}
	}
	if abs, err := filepath.Abs(mnt); err == nil {
		mnt = abs
	}
	if real, err := filepath.EvalSymlinks(mnt); err == nil {
		mnt = real
	}

	done := step("compile the disk layout of nixosConfigurations." + o.name)
	scripts, err := compileLayout(ctx, o, mnt, e)
	if err = done(err); err != nil {
		return err
	}
	script, args := scripts.Mount, []string(nil)
	if o.mode == "format" {
		// disko-install's format mode wipes without asking, as disko's legacy script.
		script, args = scripts.DestroyFormatMount, []string{"--yes-wipe-all-disks"}
	}

	done = step("build the system")
	toplevel, err := buildToplevel(ctx, o, nixLog)
	if err = done(err); err != nil {
		return err
	}

	scriptFile, err := writeTemp("disko-install-"+o.mode+"-*.sh", script)
	if err != nil {
		return err
	}
	if o.dryRun {
		fmt.Fprintf(e.stdout, "Would run: %s\n", strings.Join(append([]string{scriptFile}, args...), " "))
		fmt.Fprintf(e.stdout, "Would run: nixos-install --system '%s' --root '%s'\n", toplevel, mnt)
		return nil
	}
	defer os.Remove(scriptFile)
	defer func() {
		if cerr := cleanup(ctx, o, e, mnt, scripts.Unmount); err == nil {
			err = cerr
		}
	}()

	done = step(map[string]string{"format": "wipe, format and mount the disks", "mount": "mount the disks"}[o.mode])
	// Swap on a disk that is about to be unplugged would break this machine.
	if err = done(runBash(ctx, o, e, scriptFile, args, "DISKO_SKIP_SWAP=1")); err != nil {
		return err
	}

	for _, f := range o.extraFiles {
		done = step("copy " + f[0] + " to " + f[1])
		dst := filepath.Join(mnt, filepath.Clean("/"+f[1]))
		err := os.MkdirAll(filepath.Dir(dst), 0o755)
		if err == nil {
			err = command(ctx, e, "cp", "-a", "-r", "--", f[0], dst)
		}
		if err = done(err); err != nil {
			return err
		}
	}

	done = step("copy the system closure into " + mnt + "/nix/store")
	if err = done(copyClosure(ctx, o, toplevel, mnt, nixLog)); err != nil {
		return err
	}

	done = step("install the system")
	installFile, err := writeTemp("disko-install-system-*.sh", []byte(install.SystemInstallScript(mnt, toplevel, "", nixOptionArgs(o))))
	if err != nil {
		return err
	}
	defer os.Remove(installFile)
	return done(runBash(ctx, o, e, installFile, nil))
}

// compileLayout evaluates the configuration's disko.devices, maps every disk to its
// --disk device and compiles the scripts for the mount point.
func compileLayout(ctx context.Context, o *options, mnt string, e env) (*codegen.Scripts, error) {
	ev := &eval.Evaluator{Stdin: e.stdin, Env: nixcmd.ChildEnv(nil)}
	raw, err := ev.Devices(ctx, eval.Source{Flake: o.flake + "#" + o.name, ShowTrace: o.showTrace})
	if err != nil {
		return nil, err
	}
	var top struct {
		Disk map[string]json.RawMessage `json:"disk"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, err
	}
	var missing []string
	for name := range top.Disk {
		if _, ok := o.disks[name]; !ok {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		var msg []string
		for _, name := range missing {
			msg = append(msg, fmt.Sprintf("No device passed for disk '%s'. Pass `--disk %s /dev/name` via commandline", name, name))
		}
		return nil, errors.New(strings.Join(msg, "\n"))
	}
	d, err := config.Load(raw, config.LoadOptions{DiskDevices: o.disks})
	if err != nil {
		return nil, fmt.Errorf("%s#%s has problems:\n%w", o.flake, o.name, err)
	}
	return codegen.Generate(d, codegen.Options{RootMountpoint: mnt, PathDirs: e.getenv(ToolsPathEnv)})
}

// buildToplevel builds the configuration's system.build.toplevel, extended as
// disko-install extends it, and returns its store path.
func buildToplevel(ctx context.Context, o *options, nixLog io.Writer) (string, error) {
	// builtins.getFlake wants a locked or absolute reference: resolve it to its store
	// path as disko-install does (a git work tree keeps its untracked files out).
	meta, err := nixCommand(ctx, o, nixLog, "nix", append([]string{"flake", "metadata", "--json", "--no-write-lock-file"}, nixArgs(o)...), o.flake)
	if err != nil {
		return "", fmt.Errorf("resolving the flake %s: %w", o.flake, err)
	}
	var m struct {
		Path string `json:"path"`
	}
	if err := json.Unmarshal(meta, &m); err != nil || m.Path == "" {
		return "", fmt.Errorf("resolving the flake %s: no store path in `nix flake metadata --json`", o.flake)
	}
	disks, _ := json.Marshal(o.diskOrder)
	if o.diskOrder == nil {
		disks = []byte("[]")
	}
	efi := "false"
	if o.writeEFI {
		efi = "true"
	}
	common := append(nixArgs(o), "-E", toplevelNix,
		"--argstr", "flake", m.Path, "--argstr", "name", o.name, "--arg", "efi", efi,
		"--argstr", "disks", string(disks), "--argstr", "systemConfig", o.systemConfig)
	out, err := nixCommand(ctx, o, nixLog, "nix-instantiate", append([]string{"--eval", "--json", "--strict"}, common...), "-A", "info")
	if err != nil {
		return "", fmt.Errorf("evaluating nixosConfigurations.%s: %w", o.name, err)
	}
	var info struct {
		Extendable bool    `json:"extendable"`
		Prebuilt   *string `json:"prebuilt"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("evaluating nixosConfigurations.%s: %w", o.name, err)
	}
	if !info.Extendable && (o.writeEFI || o.systemConfigSet) {
		return "", fmt.Errorf("nixosConfigurations.%s has no extendModules (it is not made by nixpkgs.lib.nixosSystem), so --write-efi-boot-entries and --system-config cannot change it", o.name)
	}
	if info.Prebuilt != nil {
		if _, err := os.Stat(*info.Prebuilt); err != nil || !strings.HasPrefix(*info.Prebuilt, "/nix/store/") {
			return "", fmt.Errorf("nixosConfigurations.%s.config.system.build.toplevel is %q, neither a derivation nor a store path of this machine", o.name, *info.Prebuilt)
		}
		return *info.Prebuilt, nil
	}
	out, err = nixCommand(ctx, o, nixLog, "nix-build", append([]string{"--no-out-link"}, common...), "-A", "toplevel")
	if err != nil {
		return "", fmt.Errorf("building nixosConfigurations.%s.config.system.build.toplevel: %w", o.name, err)
	}
	toplevel := strings.TrimSpace(string(out))
	if !strings.HasPrefix(toplevel, "/nix/store/") || strings.Contains(toplevel, "\n") {
		return "", fmt.Errorf("nix-build printed %q, not one store path", toplevel)
	}
	return toplevel, nil
}

// nixArgs are the flags every Nix call gets: flakes on, --option pairs, --show-trace.
func nixArgs(o *options) []string {
	args := []string{"--extra-experimental-features", "nix-command flakes"}
	for _, kv := range o.nixOptions {
		args = append(args, "--option", kv[0], kv[1])
	}
	if o.showTrace {
		args = append(args, "--show-trace")
	}
	return args
}

// nixOptionArgs are the --option pairs as shell words for the install script.
func nixOptionArgs(o *options) string {
	var b strings.Builder
	for _, kv := range o.nixOptions {
		fmt.Fprintf(&b, " --option %s %s", shell.Quote(kv[0]), shell.Quote(kv[1]))
	}
	return b.String()
}

// nixCommand runs a Nix tool and returns its stdout; the tail of its stderr is in the
// error, and all of it goes to nixLog.
func nixCommand(ctx context.Context, o *options, nixLog io.Writer, tool string, args []string, more ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, tool, append(args, more...)...)
	cmd.Env = nixcmd.ChildEnv(nil)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(&stderr, nixLog)
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 4000 {
			msg = "…" + msg[len(msg)-4000:]
		}
		return nil, fmt.Errorf("%s: %w\n%s", tool, err, msg)
	}
	return stdout.Bytes(), nil
}

// copyClosure copies the system's closure into the store under mnt, skipping paths it
// already holds (so --mode mount on an installed disk copies only what changed).
func copyClosure(ctx context.Context, o *options, toplevel, mnt string, nixLog io.Writer) error {
	n := &nixcmd.Nix{Options: o.nixOptions, ShowTrace: o.showTrace, Stderr: nixLog}
	infos, err := n.Closure(ctx, "", toplevel)
	if err != nil {
		return err
	}
	_, err = closure.Copy(ctx, localShell{}, infos, closure.CopyOptions{Store: "local?root=" + mnt, NixOptions: o.nixOptions, Stderr: nixLog})
	return err
}

// localShell runs the copy's nix-store on this machine.
type localShell struct{}

func (localShell) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Env = nixcmd.ChildEnv(nil)
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	return c.Run()
}

// runBash runs a script file with bash (with -x under --debug), its output on stderr
// so that stdout only says the result.
func runBash(ctx context.Context, o *options, e env, file string, args []string, extraEnv ...string) error {
	bashArgs := []string{file}
	if o.debug {
		bashArgs = []string{"-x", file}
	}
	cmd := exec.CommandContext(ctx, "bash", append(bashArgs, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stderr, e.stderr
	cmd.Env = append(os.Environ(), extraEnv...)
	return cmd.Run()
}

// command runs a program with its output on stderr.
func command(ctx context.Context, e env, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = e.stderr, e.stderr
	return cmd.Run()
}

// cleanup unmounts what the install mounted (the layout's unmount script closes LUKS
// and exports pools too; `umount -R` catches anything left) and removes the mount
// point, as disko-install does on exit.
func cleanup(ctx context.Context, o *options, e env, mnt string, unmount []byte) error {
	ctx = context.WithoutCancel(ctx)
	fmt.Fprintln(e.stderr, "disko-install: unmount "+mnt)
	var errs []error
	if f, err := writeTemp("disko-install-unmount-*.sh", unmount); err == nil {
		if err := runBash(ctx, o, e, f, nil); err != nil {
			errs = append(errs, fmt.Errorf("the unmount script: %w", err))
		}
		os.Remove(f)
	}
	if exec.CommandContext(ctx, "mountpoint", "-q", mnt).Run() == nil {
		if err := command(ctx, e, "umount", "-R", mnt); err != nil {
			errs = append(errs, fmt.Errorf("umount -R %s: %w", mnt, err))
		}
	}
	if err := os.Remove(mnt); err != nil && !os.IsNotExist(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// writeTemp writes data into a new file of the temporary directory named after
// pattern and returns its path; a --dry-run's script stays there for the user to read.
func writeTemp(pattern string, data []byte) (string, error) {
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return f.Name(), os.Chmod(f.Name(), 0o755)
}
