package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/eval"
	"github.com/diskoanywhere/diskoanywhere/internal/facts"
	"github.com/diskoanywhere/diskoanywhere/internal/nixcmd"
	"github.com/diskoanywhere/diskoanywhere/internal/progress"
)

// artifacts are what the phases ship: the disk script (a store path, or a
// script compiled in-process), the system's toplevel and their closures.
type artifacts struct {
	// The disk layout, when known (always with --disko-layout; from the
	// flake's disko.devices otherwise, if it evaluates). layoutNote says
	// why it is unknown.
	layout     *config.Devices
	layoutNote string

	// Disk script: exactly one of compiled (in-process) and diskoScript
	// (a store path; diskoDrv when built on the target).
	diskoSource  string
	compiled     *codegen.Scripts
	diskoScript  string
	diskoDrv     string
	diskoClosure []nixcmd.PathInfo

	// System: toplevel (toplevelDrv when built on the target).
	toplevel    string
	toplevelDrv string
	closure     []nixcmd.PathInfo

	buildOn string // local or remote
}

// configAttr turns the --flake fragment into the attribute path of the
// NixOS configuration, as nixos-anywhere does: NAME becomes
// nixosConfigurations."NAME".config; a fragment that starts with
// nixosConfigurations. is used verbatim.
func configAttr(flake string) (ref, attr, name string) {
	i := strings.LastIndex(flake, "#")
	ref, frag := flake[:i], flake[i+1:]
	if strings.HasPrefix(frag, "nixosConfigurations.") {
		return ref, frag, ""
	}
	return ref, "nixosConfigurations." + strconv.Quote(frag) + ".config", frag
}

func (o *Options) diskoAttr() string {
	a := DiskoModes[o.diskoMode()].Attr
	if o.NoDiskoDeps {
		a += "NoDeps"
	}
	return a
}

// nixFor is the local Nix with the run's options.
func (r *run) nixFor() *nixcmd.Nix {
	return &nixcmd.Nix{
		BinDir:         r.o.NixBinDir,
		Env:            r.o.Env,
		Options:        r.o.NixOptions,
		PrintBuildLogs: r.o.PrintBuildLogs || r.o.Debug,
		ShowTrace:      r.o.ShowTrace,
		Stderr:         r.nixLog,
	}
}

// nixSystem maps `uname -m` to Nix's system name.
func nixSystem(arch string) string {
	switch arch {
	case "x86_64", "amd64":
		return "x86_64-linux"
	case "aarch64", "arm64":
		return "aarch64-linux"
	case "i686", "i386":
		return "i686-linux"
	case "riscv64":
		return "riscv64-linux"
	}
	return arch + "-linux"
}

// localSystem is the Nix system of this machine.
func localSystem() string {
	if runtime.GOOS != "linux" {
		return runtime.GOARCH + "-" + runtime.GOOS
	}
	return nixSystem(runtime.GOARCH)
}

// decideBuildOn resolves --build-on auto: build locally when this machine
// has the target's architecture, else on the target.
func (r *run) decideBuildOn(f *facts.Facts) string {
	switch r.o.BuildOn {
	case "local", "remote":
		return r.o.BuildOn
	}
	if len(r.o.StorePaths) > 0 || f == nil {
		return "local"
	}
	if nixSystem(f.Arch) == localSystem() {
		return "local"
	}
	return "remote"
}

// loadLayout evaluates and compiles --disko-layout, or (without it) tries
// to evaluate the flake's disko.devices so the plan can name the disks.
func (r *run) loadLayout(ctx context.Context, a *artifacts) error {
	o := r.o
	ev := &eval.Evaluator{Env: nixcmd.ChildEnv(o.Env), NixBinDir: o.NixBinDir}
	if o.DiskoLayout != "" {
		src := eval.Source{Path: o.DiskoLayout, ShowTrace: o.ShowTrace}
		if strings.Contains(o.DiskoLayout, "#") {
			src = eval.Source{Flake: o.DiskoLayout, ShowTrace: o.ShowTrace}
		}
		raw, err := ev.Devices(ctx, src)
		if err != nil {
			return fmt.Errorf("--disko-layout %s: %w", o.DiskoLayout, err)
		}
		d, err := config.Load(raw, config.LoadOptions{DiskDevices: o.Disks})
		if err != nil {
			return fmt.Errorf("--disko-layout %s: %w", o.DiskoLayout, err)
		}
		scripts, err := codegen.Generate(d, codegen.Options{RootMountpoint: o.mountPoint()})
		if err != nil {
			return fmt.Errorf("--disko-layout %s: %w", o.DiskoLayout, err)
		}
		a.layout, a.compiled = d, scripts
		a.diskoSource = "compiled in-process from " + o.DiskoLayout
		return nil
	}
	if o.Flake == "" {
		a.layoutNote = "prebuilt disk script; pass --disko-layout to have the disks listed and checked"
		return nil
	}
	_, _, name := configAttr(o.Flake)
	if name == "" {
		a.layoutNote = "the --flake fragment is an attribute path; the layout is not evaluated"
		return nil
	}
	raw, err := ev.Devices(ctx, eval.Source{Flake: o.Flake})
	if err != nil {
		a.layoutNote = "the layout did not evaluate: " + firstLine(err.Error())
		return nil
	}
	d, err := config.Load(raw, config.LoadOptions{})
	if err != nil {
		a.layoutNote = "the layout has problems: " + firstLine(err.Error())
		return nil
	}
	a.layout = d
	return nil
}

// build produces the store paths the phases need: with --store-paths they
// are given; with --flake they are built locally, or (build on the target)
// only their derivations are evaluated here.
func (r *run) build(ctx context.Context, a *artifacts) error {
	o := r.o
	n := r.nixFor()
	needDisko := o.has(PhaseDisko) && a.compiled == nil
	needSystem := o.has(PhaseInstall)

	if len(o.StorePaths) == 2 {
		for i, p := range o.StorePaths {
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("--store-paths %s: %w (both paths must exist locally)", p, err)
			}
			if !strings.HasPrefix(real, "/nix/store/") {
				return fmt.Errorf("--store-paths %s: %s is not in /nix/store", p, real)
			}
			if i == 0 {
				a.diskoScript = real
			} else {
				a.toplevel = real
			}
		}
		a.diskoSource = "prebuilt " + a.diskoScript
	} else {
		ref, attr, _ := configAttr(o.Flake)
		var attrs []string
		var targets []*string
		if needDisko {
			attrs = append(attrs, ref+"#"+attr+".system.build."+o.diskoAttr())
			a.diskoSource = "system.build." + o.diskoAttr() + " of " + o.Flake
		}
		if needSystem {
			attrs = append(attrs, ref+"#"+attr+".system.build.toplevel")
		}
		if a.buildOn == "remote" {
			if needDisko {
				targets = append(targets, &a.diskoDrv)
			}
			if needSystem {
				targets = append(targets, &a.toplevelDrv)
			}
			for i, inst := range attrs {
				s := r.rep.Step("build", "evaluate "+strings.TrimPrefix(inst, ref+"#"))
				drv, err := n.EvalRaw(ctx, inst+".drvPath")
				if err := s.Done(err); err != nil {
					return err
				}
				*targets[i] = drv
			}
			return nil
		}
		if needDisko {
			targets = append(targets, &a.diskoScript)
		}
		if needSystem {
			targets = append(targets, &a.toplevel)
		}
		if len(attrs) > 0 {
			s := r.rep.Step("build", "build "+strings.Join(trimRefs(ref, attrs), " and "))
			res, err := n.Build(ctx, attrs...)
			if err := s.Done(err); err != nil {
				return err
			}
			for i, b := range res {
				*targets[i] = b.Out()
			}
		}
	}

	src := o.From
	if needSystem && a.toplevel != "" {
		s := r.rep.Step("build", "list the system closure")
		infos, err := n.Closure(ctx, src, a.toplevel)
		if err == nil {
			s.Detail(fmt.Sprintf("%d paths, %s", len(infos), progress.Bytes(nixcmd.Size(infos))), nil)
		}
		if err := s.Done(err); err != nil {
			return err
		}
		a.closure = infos
	}
	if needDisko && a.diskoScript != "" {
		infos, err := n.Closure(ctx, src, a.diskoScript)
		if err != nil {
			return err
		}
		a.diskoClosure = infos
	}
	return nil
}

func trimRefs(ref string, attrs []string) []string {
	out := slices.Clone(attrs)
	for i := range out {
		out[i] = strings.TrimPrefix(out[i], ref+"#")
	}
	return out
}

// inputs are what a resumed run must match (see State.Reconcile).
func (r *run) inputs(a *artifacts) map[string]string {
	in := map[string]string{"mountPoint": r.o.mountPoint()}
	switch {
	case a.compiled != nil:
		script, _ := a.compiled.ByMode(DiskoModes[r.o.diskoMode()].Mode)
		sum := sha256.Sum256(script)
		in["disko"] = "compiled:" + r.o.diskoMode() + ":sha256-" + hex.EncodeToString(sum[:])
	case a.diskoScript != "":
		in["disko"] = a.diskoScript
	case a.diskoDrv != "":
		in["disko"] = a.diskoDrv
	}
	switch {
	case a.toplevel != "":
		in["system"] = a.toplevel
	case a.toplevelDrv != "":
		in["system"] = a.toplevelDrv
	}
	return in
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
