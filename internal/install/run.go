package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/closure"
	"github.com/diskoanywhere/diskoanywhere/internal/facts"
	"github.com/diskoanywhere/diskoanywhere/internal/nixcmd"
	"github.com/diskoanywhere/diskoanywhere/internal/progress"
	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// run is one invocation's working state.
type run struct {
	o      *Options
	rep    *Reporter
	stdout io.Writer // redacted
	stderr io.Writer // redacted
	nixLog io.Writer // local Nix output, prefixed

	target remote.Target
	client *remote.Client
	root   *remote.Shell
	facts  *facts.Facts
	state  *State

	keys    map[string][]byte // --disk-encryption-keys contents, read once
	workdir string            // per-run directory on the target

	kexecSrc   *kexecSource // the installer tarball, once resolved
	mountedNow bool         // the disko phase mounted the filesystems in this run
	hostKey    ssh.PublicKey
	bootID     string
}

// Run carries out an install as o describes. Errors are complete messages
// for the user, with a hint on how to resume when a phase failed.
func Run(ctx context.Context, o Options) (err error) {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Stdin == nil {
		o.Stdin = strings.NewReader("")
	}
	if o.RebootTimeout == 0 {
		o.RebootTimeout = DefaultRebootTimeout
	}
	if o.RebootDelay == 0 {
		o.RebootDelay = 3 * time.Second
	}
	if err := o.Check(); err != nil {
		return err
	}
	// A re-run that has only the password reaches the installer with the
	// key an earlier run made for it.
	o.addSavedInstallerKey()
	// Everything for stderr goes through one display, which keeps the
	// live status line (on a terminal) below the output.
	disp := progress.For(o.Stderr)
	if ask := o.SSH.HostKeyPrompt; ask != nil {
		o.SSH.HostKeyPrompt = func(q remote.HostKeyQuestion) (bool, error) {
			defer disp.Hold()()
			return ask(q)
		}
	}
	outR, errR := NewRedactor(o.Stdout), NewRedactor(disp)
	defer outR.Flush()
	defer errR.Flush()
	r := &run{o: &o, stdout: outR, stderr: errR, keys: map[string][]byte{}}
	var events io.Writer
	if o.JSON {
		events = outR
	}
	r.rep = NewReporter(errR, events)
	r.rep.Live(disp, errR.Redact)
	defer r.rep.Close()
	r.nixLog = newOutputWriter(errR, "  nix| ")

	// Secrets are read before anything else (a pipe such as <(pass x) can
	// be read once) and registered with the redactors.
	for _, s := range []string{o.SSH.Password, o.SSH.SudoPassword, string(o.SSH.PrivateKey)} {
		outR.Add(s)
		errR.Add(s)
	}
	for _, k := range o.DiskEncryptionKeys {
		b, err := os.ReadFile(k.Local)
		if err != nil {
			return fmt.Errorf("--disk-encryption-keys %s %s: %w", k.Remote, k.Local, err)
		}
		r.keys[k.Remote] = b
		outR.Add(string(b))
		errR.Add(string(b))
	}
	defer func() {
		if err != nil {
			r.rep.emit(Event{Event: "error", Error: err.Error()}, "")
		}
	}()

	return r.install(ctx)
}

func (r *run) install(ctx context.Context) error {
	o := r.o
	runStart := time.Now()
	t, err := remote.ParseTarget(o.Target)
	if err != nil {
		return err
	}
	r.target = t

	s := r.rep.Step("connect", "ssh "+t.String())
	r.client, err = remote.Dial(ctx, t, o.SSH)
	if err == nil {
		s.Detail(fmt.Sprintf("%s, host key %s", r.client.Config().Destination(), ssh.FingerprintSHA256(r.client.HostKey())), nil)
	}
	if err := s.Done(err); err != nil {
		return err
	}
	defer func() { r.client.Close() }()
	r.hostKey = r.client.HostKey()

	s = r.rep.Step("connect", "gather facts")
	r.facts, err = facts.Gather(ctx, r.client.User())
	if err == nil {
		r.client.SetPrivilege(r.facts.Privilege)
		r.bootID = r.facts.BootID
		s.Detail(describeFacts(r.facts), nil)
	}
	if err := s.Done(err); err != nil {
		return err
	}
	if r.facts.Kernel != "Linux" {
		return fmt.Errorf("%s runs %s, not Linux", t, r.facts.Kernel)
	}

	if !o.DryRun {
		s = r.rep.Step("connect", "become root")
		r.root, err = r.client.Root(ctx)
		if err == nil {
			s.Detail(string(r.root.Privilege().Method), nil)
		}
		if err := s.Done(err); err != nil {
			return err
		}
	}

	// The configuration is evaluated and built before any phase runs, but
	// with --generate-hardware-config it may import the hardware report,
	// which only the installer can make (the old system has neither
	// nixos-generate-config nor nixos-facter): then, as in nixos-anywhere,
	// it waits until the kexec phase is over (configureInInstaller).
	a := &artifacts{}
	a.buildOn = r.decideBuildOn(r.facts)
	configureLater := o.HardwareConfig != nil
	switch {
	case !configureLater:
		if err := r.configure(ctx, a); err != nil {
			return err
		}
	case o.DryRun:
		// Only the layout, for the plan's disks: without the report the
		// system may not evaluate, and a dry run does not make one.
		if err := r.loadLayout(ctx, a); err != nil {
			return err
		}
	}

	statePath := o.StateFile
	if statePath == "" {
		if statePath, err = DefaultStatePath(o.getenv, r.client.Config().Destination()); err != nil {
			return err
		}
	}
	st, note, err := LoadState(statePath, r.client.Config().Destination())
	if err != nil {
		return err
	}
	r.state = st

	plan, err := r.plan(ctx, a)
	if err != nil {
		return err
	}
	if o.DryRun {
		r.rep.Plan(plan)
		if !o.JSON {
			plan.Print(r.stdout)
		}
		return nil
	}
	if note != "" {
		r.rep.Warn("state", note)
	}
	if why := st.Reconcile(r.inputs(a), o.Restart); why != "" {
		r.rep.Warn("state", why)
	}
	if st.HostKey == "" {
		st.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(r.hostKey)))
	}
	if err := st.Save(); err != nil {
		return err
	}
	r.rep.Info("state", "state file: "+st.Path(), map[string]any{"path": st.Path()})
	defer r.cleanupWorkdir()

	if st.Done(PhaseKexec) && !r.facts.IsInstaller && o.has(PhaseKexec) {
		// The installer lives in RAM: a machine that restarted since runs
		// its old system again, and only a new kexec brings the installer
		// back (the disks keep what the disko phase made).
		r.rep.Warn(string(PhaseKexec), "the target no longer runs the installer (it restarted since the last run): kexec again")
		if err := st.Forget(PhaseKexec); err != nil {
			return err
		}
	}
	var times []string
	for _, p := range o.Phases {
		if configureLater && p != PhaseKexec {
			if err := r.configureInInstaller(ctx, a); err != nil {
				return err
			}
			configureLater = false
		}
		if st.Done(p) {
			r.rep.Skipped(string(p), "", fmt.Sprintf("done in a previous run at %s; --restart to redo", st.DoneAt(p).Local().Format(time.DateTime)))
			continue
		}
		start := time.Now()
		var err error
		switch p {
		case PhaseKexec:
			err = r.kexec(ctx)
			if errors.Is(err, errSkipped) {
				continue
			}
		case PhaseDisko:
			err = r.disko(ctx, a)
		case PhaseInstall:
			err = r.installPhase(ctx, a)
		case PhaseReboot:
			err = r.reboot(ctx, a)
		}
		var nothingChanged refusal
		switch {
		case errors.As(err, &nothingChanged), err != nil && r.o.Throwaway:
			return fmt.Errorf("%s phase: %w", p, err)
		case err != nil:
			return fmt.Errorf("%s phase: %w\n(state saved in %s: run the same command again to resume, or add --restart to start over)", p, err, st.Path())
		}
		took := time.Since(start)
		r.rep.PhaseDone(string(p), took)
		times = append(times, fmt.Sprintf("%s %s", p, progress.Duration(took)))
		if err := st.MarkDone(p, took, time.Now()); err != nil {
			return err
		}
	}
	if configureLater { // --phases kexec alone
		if err := r.configureInInstaller(ctx, a); err != nil {
			return err
		}
	}
	summary := "### Done"
	if len(times) > 0 {
		summary += fmt.Sprintf(" (%s; %s in all)", strings.Join(times, ", "), progress.Duration(time.Since(runStart)))
	}
	r.rep.emit(Event{Event: "done", Message: "installation finished", Duration: time.Since(runStart).Seconds()}, summary)
	return nil
}

var errSkipped = errors.New("skipped")

// configure evaluates the layout and builds what the phases ship, after
// writing the hardware report the configuration may import.
func (r *run) configure(ctx context.Context, a *artifacts) error {
	if r.o.HardwareConfig != nil {
		if err := r.generateHardwareConfig(ctx); err != nil {
			return err
		}
	}
	if err := r.loadLayout(ctx, a); err != nil {
		return err
	}
	return r.build(ctx, a)
}

// configureInInstaller is configure for --generate-hardware-config, once
// the target runs the installer: after the kexec phase, or before the first
// phase when the kexec phase is not selected. Only now are the disk script
// and the system known, so the state's inputs are compared again; the
// kexec phase's record is kept, as what the target runs does not depend on
// the configuration.
func (r *run) configureInInstaller(ctx context.Context, a *artifacts) error {
	if err := r.configure(ctx, a); err != nil {
		return err
	}
	st := r.state
	kexec := st.Phases[string(PhaseKexec)]
	if why := st.Reconcile(r.inputs(a), false); why != "" {
		r.rep.Warn("state", why)
	}
	if kexec != nil {
		st.Phases[string(PhaseKexec)] = kexec
	}
	return st.Save()
}

func describeFacts(f *facts.Facts) string {
	os := f.OS.PrettyName
	if os == "" {
		os = f.Kernel
	}
	parts := []string{os, f.Arch}
	if f.MemTotal > 0 {
		parts = append(parts, progress.Bytes(int64(f.MemTotal))+" RAM")
	}
	if f.IsInstaller {
		parts = append(parts, "NixOS installer")
	}
	return strings.Join(parts, ", ")
}

// rootRun runs a root shell command with its output shown, prefixed.
func (r *run) rootRun(ctx context.Context, phase, step, cmd string, stdin io.Reader) error {
	s := r.rep.Step(phase, step)
	w := newOutputWriter(r.stderr, "  "+phase+"| ")
	err := r.root.Run(ctx, cmd, stdin, w, w)
	w.Flush()
	return s.Done(err)
}

// rootOutput runs a root shell command and returns its stdout.
func (r *run) rootOutput(ctx context.Context, cmd string) (string, error) {
	out, err := r.root.Output(ctx, cmd)
	return string(out), err
}

// ensureWorkdir creates the per-run directory on the target (root only).
func (r *run) ensureWorkdir(ctx context.Context) (string, error) {
	if r.workdir != "" {
		return r.workdir, nil
	}
	out, err := r.rootOutput(ctx, "umask 077; d=/run; [ -d /run ] && [ -w /run ] || d=/tmp; mktemp -d \"$d/anywhere.XXXXXX\"")
	if err != nil {
		return "", fmt.Errorf("creating a work directory on the target: %w", err)
	}
	r.workdir = strings.TrimSpace(out)
	return r.workdir, nil
}

func (r *run) cleanupWorkdir() {
	if r.workdir == "" || r.root == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r.root.Run(ctx, "rm -rf -- "+shell.Quote(r.workdir), nil, nil, nil)
	r.workdir = ""
}

// nixOptionArgs renders --option pairs for a remote Nix command line.
func (r *run) nixOptionArgs() string {
	var b strings.Builder
	for _, kv := range r.o.NixOptions {
		fmt.Fprintf(&b, " --option %s %s", shell.Quote(kv[0]), shell.Quote(kv[1]))
	}
	return b.String()
}

// copyTo ships a closure into a store on the target.
func (r *run) copyTo(ctx context.Context, phase, step string, infos []nixcmd.PathInfo, store string) error {
	o := r.o
	var src closure.NARSource = closure.LocalStore{}
	if o.From != "" {
		src = closure.StoreCommand{Nix: r.nixFor(), Store: o.From}
	}
	s := r.rep.Step(phase, step)
	w := newOutputWriter(r.stderr, "  "+phase+"| ")
	st, err := closure.Copy(ctx, r.root, infos, closure.CopyOptions{
		Store:      store,
		Program:    o.storeSetting("remote-program"),
		NixOptions: o.NixOptions,
		Substitute: o.SubstituteOnDestination,
		Source:     src,
		Stderr:     w,
		Progress: func(p closure.Progress) {
			t := progress.Transfer{Bytes: p.BytesDone, TotalBytes: p.BytesTotal, Paths: p.PathsDone, TotalPaths: p.PathsTotal, Elapsed: p.Elapsed}
			s.Progress(t.String(), t.Data())
		},
	})
	w.Flush()
	if err == nil {
		detail := fmt.Sprintf("%d paths, %s sent", st.Paths, progress.Bytes(st.Bytes))
		if secs := st.Took.Seconds(); st.Bytes > 0 && secs > 0 {
			detail += fmt.Sprintf(" at %.0f MB/s", float64(st.Bytes)/1e6/secs)
		}
		if st.Present > 0 {
			detail += fmt.Sprintf("; %d already there", st.Present)
		}
		if st.Substituted > 0 {
			detail += fmt.Sprintf("; %d substituted by the target", st.Substituted)
		}
		s.Detail(detail, map[string]any{"paths": st.Paths, "bytes": st.Bytes, "present": st.Present, "substituted": st.Substituted, "seconds": st.Took.Seconds()})
	}
	return s.Done(err)
}

// realiseRemote copies a derivation's closure to the target and builds it
// there (--build-on remote): evaluation stayed local.
func (r *run) realiseRemote(ctx context.Context, phase, drv, store string) (string, error) {
	n := r.nixFor()
	infos, err := n.DerivationClosure(ctx, drv)
	if err != nil {
		return "", err
	}
	if err := r.copyTo(ctx, phase, "copy the derivations", infos, store); err != nil {
		return "", err
	}
	storeArg := ""
	if store != "" {
		storeArg = " --store " + shell.Quote(store)
	}
	s := r.rep.Step(phase, "build on the target")
	var out bytes.Buffer
	w := newOutputWriter(r.stderr, "  "+phase+"| ")
	err = r.root.Run(ctx, "nix-store"+storeArg+r.nixOptionArgs()+" --realise "+shell.Quote(drv), nil, &out, w)
	w.Flush()
	if err != nil {
		return "", s.Done(err)
	}
	paths := strings.Fields(out.String())
	if len(paths) == 0 {
		return "", s.Done(fmt.Errorf("nix-store --realise %s printed no output path", drv))
	}
	s.Detail(paths[0], nil)
	s.Done(nil)
	return paths[0], nil
}
