package install

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// disko runs the disk script: it wipes (in disko mode), formats and mounts
// the layout under the mount point, with the disk encryption keys present
// on the target only while it runs.
func (r *run) disko(ctx context.Context, a *artifacts) error {
	mode := r.o.diskoMode()
	r.rep.Phase(string(PhaseDisko), DiskoModes[mode].What)
	if err := r.checkDisks(a); err != nil {
		return err
	}
	if mode == "plan" || mode == "apply" {
		return r.incremental(ctx, a, mode)
	}
	cmd, err := r.diskoCommand(ctx, string(PhaseDisko), a, DiskoModes[mode].Mode)
	if err != nil {
		return err
	}
	// The install must not continue into a system of an earlier run.
	if err := r.state.Forget(PhaseInstall, PhaseReboot); err != nil {
		return err
	}
	err = r.withKeys(ctx, func() error {
		return r.rootRun(ctx, string(PhaseDisko), "run the disk script", cmd, nil)
	})
	if err != nil {
		return err
	}
	// A format script that only formats (some builds of formatScript do)
	// leaves the mounting to the mount script.
	if err := r.ensureMounted(ctx, string(PhaseDisko), a); err != nil {
		return fmt.Errorf("after the disk script: %w", err)
	}
	r.mountedNow = true
	return nil
}

// checkDisks asks Options.CheckDisk about every disk the layout writes. A
// refused disk is a refusal: nothing was written, and running the same command
// again would be refused again, so no resume is offered.
func (r *run) checkDisks(a *artifacts) error {
	if r.o.CheckDisk == nil {
		return nil
	}
	if a.layout == nil {
		return fmt.Errorf("refusing to run a disk script whose disks are unknown (%s)", a.layoutNote)
	}
	var names []string
	for n := range a.layout.Disk {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := r.o.CheckDisk(a.layout.Disk[n].Device); err != nil {
			return refusal{fmt.Errorf("disk %s: %w", n, err)}
		}
	}
	return nil
}

// diskoCommand puts the script of mode on the target and returns the
// command line that runs it: a compiled script is uploaded, a built one is
// copied (with its closure) into the target's store, or built there.
func (r *run) diskoCommand(ctx context.Context, phase string, a *artifacts, mode string) (string, error) {
	switch {
	case a.compiled != nil:
		script, err := a.compiled.ByMode(mode)
		if err != nil {
			return "", err
		}
		dir, err := r.ensureWorkdir(ctx)
		if err != nil {
			return "", err
		}
		p := path.Join(dir, "disko-"+strings.ReplaceAll(mode, ",", "-")+".sh")
		s := r.rep.Step(phase, "upload the "+mode+" script")
		err = r.root.Upload(ctx, bytes.NewReader(script), p, 0o700, 0, 0)
		if err := s.Done(err); err != nil {
			return "", err
		}
		cmd := shell.Quote(p)
		if strings.HasPrefix(mode, "destroy") {
			// nixos-anywhere never asks: the plan names the disks instead.
			cmd += " --yes-wipe-all-disks"
		}
		return cmd, nil
	case a.diskoDrv != "":
		out, err := r.realiseRemote(ctx, phase, a.diskoDrv, "")
		if err != nil {
			return "", err
		}
		return shell.Quote(out), nil
	default:
		if err := r.copyTo(ctx, phase, "copy the disk script", a.diskoClosure, ""); err != nil {
			return "", err
		}
		return shell.Quote(a.diskoScript), nil
	}
}

// withKeys writes the disk encryption keys on the target (mode 0600, owned
// by root; the content travels on stdin only), runs fn, and removes them
// again whatever happened.
func (r *run) withKeys(ctx context.Context, fn func() error) error {
	if len(r.o.DiskEncryptionKeys) == 0 {
		return fn()
	}
	var written []string
	defer func() {
		if len(written) == 0 {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		var cmd strings.Builder
		cmd.WriteString("rm -f --")
		for _, p := range written {
			cmd.WriteString(" " + shell.Quote(p))
		}
		s := r.rep.Step(string(PhaseDisko), "remove the disk keys")
		s.Done(r.root.Run(cctx, cmd.String(), nil, nil, nil))
	}()
	s := r.rep.Step(string(PhaseDisko), fmt.Sprintf("upload %d disk key(s)", len(r.o.DiskEncryptionKeys)))
	for _, k := range r.o.DiskEncryptionKeys {
		if err := r.root.Upload(ctx, bytes.NewReader(r.keys[k.Remote]), k.Remote, 0o600, 0, 0); err != nil {
			return s.Done(err)
		}
		written = append(written, k.Remote)
	}
	s.Done(nil)
	var check strings.Builder
	for _, p := range written {
		fmt.Fprintf(&check, "printf '%%s %%s\\n' %s \"$(stat -f -c %%T -- %s)\"\n", shell.Quote(p), shell.Quote(path.Dir(p)))
	}
	if out, err := r.rootOutput(ctx, check.String()); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			p, fs, _ := strings.Cut(line, " ")
			if fs != "tmpfs" && fs != "ramfs" {
				r.rep.Warn(string(PhaseDisko), fmt.Sprintf("disk key %s is on a %s filesystem, not in memory (tmpfs); it is removed after the disko phase", p, fs))
			}
		}
	}
	return fn()
}

// checkMounted fails unless the mount point is a mount point.
func (r *run) checkMounted(ctx context.Context) error {
	mnt := r.o.mountPoint()
	out, err := r.rootOutput(ctx, "if mountpoint -q "+shell.Quote(mnt)+"; then echo yes; else echo no; fi")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "yes" {
		return fmt.Errorf("%s is not a mount point on the target", mnt)
	}
	return nil
}

// ensureMounted mounts the layout again when an earlier run formatted the
// disks and the filesystems are no longer mounted (the connection dropped
// and the target was restarted, or the phases run one at a time).
func (r *run) ensureMounted(ctx context.Context, phase string, a *artifacts) error {
	if r.mountedNow || r.checkMounted(ctx) == nil {
		return nil
	}
	mnt := r.o.mountPoint()
	r.rep.Info(phase, mnt+" is not mounted: running the mount script", nil)
	var cmd string
	switch {
	case a.compiled != nil:
		c, err := r.diskoCommand(ctx, phase, a, "mount")
		if err != nil {
			return err
		}
		cmd = c
	case r.o.Flake != "":
		ref, attr, _ := configAttr(r.o.Flake)
		inst := ref + "#" + attr + ".system.build.mountScript"
		if r.o.NoDiskoDeps {
			inst += "NoDeps"
		}
		mount := &artifacts{buildOn: a.buildOn}
		n := r.nixFor()
		if a.buildOn == "remote" {
			drv, err := n.EvalRaw(ctx, inst+".drvPath")
			if err != nil {
				return err
			}
			mount.diskoDrv = drv
		} else {
			s := r.rep.Step(phase, "build the mount script")
			res, err := n.Build(ctx, inst)
			if err := s.Done(err); err != nil {
				return err
			}
			mount.diskoScript = res[0].Out()
			if mount.diskoClosure, err = n.Closure(ctx, r.o.From, mount.diskoScript); err != nil {
				return err
			}
		}
		c, err := r.diskoCommand(ctx, phase, mount, "mount")
		if err != nil {
			return err
		}
		cmd = c
	default:
		return fmt.Errorf("%s is not mounted and --store-paths gives no mount script: mount the filesystems on the target, or re-run with --restart to format again", mnt)
	}
	err := r.withKeys(ctx, func() error {
		return r.rootRun(ctx, phase, "mount the filesystems", cmd, nil)
	})
	if err != nil {
		return err
	}
	if err := r.checkMounted(ctx); err != nil {
		return fmt.Errorf("after the mount script, %w", err)
	}
	return nil
}
