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

	dial   dialFunc // dialSSH, or a fake target's in tests
	target remote.Target
	client Conn
	root   Shell
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
func Run(ctx context.Context, o Options) error { return runWith(ctx, o, dialSSH) }

// runWith is Run reaching the target through dial (tests: a fake target).
func runWith(ctx context.Context, o Options, dial dialFunc) (err error) {
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
	r := &run{o: &o, dial: dial, stdout: outR, stderr: errR, keys: map[string][]byte{}}
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

// install is the run: connect, evaluate and build, load the state file,
// then either print the plan (--dry-run) or run the phases not done yet.
func (r *run) install(ctx context.Context) error {
	o := r.o
	runStart := time.Now()
	err := r.connect(ctx, o.DryRun)
	if r.client != nil {
		defer func() { r.client.Close() }()
	}
	if err != nil {
		return err
	}
	a, configureLater, err := r.prepare(ctx)
	if err != nil {
		return err
	}
	note, err := r.loadState()
	if err != nil {
		return err
	}
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
	if err := r.resume(note, a); err != nil {
		return err
	}
	defer r.cleanupWorkdir()
	times, err := r.runPhases(ctx, a, configureLater)
	if err != nil {
		return err
	}
	summary := "### Done"
	if len(times) > 0 {
		summary += fmt.Sprintf(" (%s; %s in all)", strings.Join(times, ", "), progress.Duration(time.Since(runStart)))
	}
	r.rep.emit(Event{Event: "done", Message: "installation finished", Duration: time.Since(runStart).Seconds()}, summary)
	return nil
}

// prepare evaluates and builds what the phases ship, before any phase
// runs. With --generate-hardware-config the configuration may import the
// hardware report, which only the installer can make (the old system has
// neither nixos-generate-config nor nixos-facter): then, as in
// nixos-anywhere, it waits until the kexec phase is over (configureLater,
// see configureInInstaller).
func (r *run) prepare(ctx context.Context) (a *artifacts, configureLater bool, err error) {
	a = &artifacts{buildOn: r.decideBuildOn(r.facts)}
	configureLater = r.o.HardwareConfig != nil
	switch {
	case !configureLater:
		err = r.configure(ctx, a)
	case r.o.DryRun:
		// Only the layout, for the plan's disks: without the report the
		// system may not evaluate, and a dry run does not make one.
		err = r.loadLayout(ctx, a)
	}
	return a, configureLater, err
}

// loadState reads the state file of this target (--state-file, else the
// default path for its destination) into r.state; the note says why a
// file found was not used.
func (r *run) loadState() (note string, err error) {
	dest := r.client.Config().Destination()
	path := r.o.StateFile
	if path == "" {
		if path, err = DefaultStatePath(r.o.getenv, dest); err != nil {
			return "", err
		}
	}
	r.state, note, err = LoadState(path, dest)
	return note, err
}

// resume decides what the recorded state still counts for: progress made
// with other inputs, or before --restart, is dropped. The host key first
// seen is recorded, and the state is saved before any phase runs.
func (r *run) resume(note string, a *artifacts) error {
	st := r.state
	if note != "" {
		r.rep.Warn("state", note)
	}
	if why := st.Reconcile(r.inputs(a), r.o.Restart); why != "" {
		r.rep.Warn("state", why)
	}
	if st.HostKey == "" {
		st.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(r.hostKey)))
	}
	if err := st.Save(); err != nil {
		return err
	}
	r.rep.Info("state", "state file: "+st.Path(), map[string]any{"path": st.Path()})
	if st.Done(PhaseKexec) && !r.facts.IsInstaller && r.o.has(PhaseKexec) {
		// The installer lives in RAM: a machine that restarted since runs
		// its old system again, and only a new kexec brings the installer
		// back (the disks keep what the disko phase made).
		r.rep.Warn(string(PhaseKexec), "the target no longer runs the installer (it restarted since the last run): kexec again")
		return st.Forget(PhaseKexec)
	}
	return nil
}

// runPhases runs the selected phases the state does not record as done,
// saving the state after each, and returns how long each took.
func (r *run) runPhases(ctx context.Context, a *artifacts, configureLater bool) ([]string, error) {
	st := r.state
	var times []string
	for _, p := range r.o.Phases {
		if configureLater && p != PhaseKexec {
			if err := r.configureInInstaller(ctx, a); err != nil {
				return nil, err
			}
			configureLater = false
		}
		if st.Done(p) {
			r.rep.Skipped(string(p), "", fmt.Sprintf("done in a previous run at %s; --restart to redo", st.DoneAt(p).Local().Format(time.DateTime)))
			continue
		}
		start := time.Now()
		err := r.runPhase(ctx, p, a)
		if errors.Is(err, errSkipped) {
			continue
		}
		var nothingChanged refusal
		switch {
		case errors.As(err, &nothingChanged), err != nil && r.o.Throwaway:
			return nil, fmt.Errorf("%s phase: %w", p, err)
		case err != nil:
			return nil, fmt.Errorf("%s phase: %w\n(state saved in %s: run the same command again to resume, or add --restart to start over)", p, err, st.Path())
		}
		took := time.Since(start)
		r.rep.PhaseDone(string(p), took)
		times = append(times, fmt.Sprintf("%s %s", p, progress.Duration(took)))
		if err := st.MarkDone(p, took, time.Now()); err != nil {
			return nil, err
		}
	}
	if configureLater { // --phases kexec alone
		if err := r.configureInInstaller(ctx, a); err != nil {
			return nil, err
		}
	}
	return times, nil
}

// runPhase runs one phase; errSkipped means it had nothing to do.
func (r *run) runPhase(ctx context.Context, p Phase, a *artifacts) error {
	switch p {
	case PhaseKexec:
		return r.kexec(ctx)
	case PhaseDisko:
		return r.disko(ctx, a)
	case PhaseInstall:
		return r.installPhase(ctx, a)
	case PhaseReboot:
		return r.reboot(ctx, a)
	}
	return fmt.Errorf("unknown phase %q", p)
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
