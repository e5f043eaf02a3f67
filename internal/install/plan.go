package install

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/facts"
	"github.com/diskoanywhere/diskoanywhere/internal/nixcmd"
	"github.com/diskoanywhere/diskoanywhere/internal/progress"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// Plan is what a run is about to do, printed by --dry-run (and as a JSON
// event with --json) before anything on the target changes.
type Plan struct {
	Target      string      `json:"target"`
	HostKey     string      `json:"hostKey"`
	OS          string      `json:"os"`
	Arch        string      `json:"arch"`
	Memory      int64       `json:"memoryBytes"`
	Installer   bool        `json:"installer"`
	Login       string      `json:"login"`
	Privilege   string      `json:"privilege"`
	Phases      []PlanPhase `json:"phases"`
	DiskoMode   string      `json:"diskoMode,omitempty"`
	DiskoScript string      `json:"diskoScript,omitempty"`
	Disks       []PlanDisk  `json:"disks,omitempty"`
	DisksNote   string      `json:"disksNote,omitempty"`
	MountPoint  string      `json:"mountPoint"`
	System      string      `json:"system,omitempty"`
	BuildOn     string      `json:"buildOn"`
	Closure     *PlanSize   `json:"closure,omitempty"`
	Files       []string    `json:"files,omitempty"`
	StateFile   string      `json:"stateFile"`

	// HardwareConfig says when --generate-hardware-config runs: a dry run
	// makes no report, so the disk script and the system built from a
	// configuration that imports it are not known yet.
	HardwareConfig string `json:"hardwareConfig,omitempty"`
}

// PlanPhase is one phase and what will happen to it.
type PlanPhase struct {
	Name   string `json:"name"`
	Action string `json:"action"` // run, skip, done, fail
	Why    string `json:"why,omitempty"`
}

// PlanDisk is a disk of the layout and what the target says about it now.
type PlanDisk struct {
	Name     string `json:"name"`
	Device   string `json:"device"`
	Resolved string `json:"resolved,omitempty"`
	Size     int64  `json:"sizeBytes"`
	Model    string `json:"model,omitempty"`
	Holds    string `json:"holds,omitempty"` // what is on it now
	Action   string `json:"action"`          // wipe, format, mount, keep
	Found    bool   `json:"found"`
}

// PlanSize is a closure's size.
type PlanSize struct {
	Paths int   `json:"paths"`
	Bytes int64 `json:"bytes"`
}

// plan gathers the plan; it only reads from the target.
func (r *run) plan(ctx context.Context, a *artifacts) (*Plan, error) {
	o, f := r.o, r.facts
	p := &Plan{
		Target:     r.client.Config().Destination(),
		HostKey:    fingerprint(r.hostKey),
		OS:         describeOS(f),
		Arch:       f.Arch,
		Memory:     int64(f.MemTotal),
		Installer:  f.IsInstaller,
		Login:      f.Privilege.User,
		Privilege:  string(f.Privilege.Method),
		MountPoint: o.mountPoint(),
		System:     or(a.toplevel, a.toplevelDrv),
		BuildOn:    a.buildOn,
		StateFile:  r.state.Path(),
	}
	if f.Privilege.NeedsPassword {
		p.Privilege += " (password)"
	}
	if hc := o.HardwareConfig; hc != nil {
		p.HardwareConfig = hc.Kind + " on the target once the kexec phase is over, written to " + hc.Path +
			"; the configuration is evaluated and built after it"
	}
	if a.closure != nil {
		p.Closure = &PlanSize{Paths: len(a.closure), Bytes: nixcmd.Size(a.closure)}
	}
	for _, ph := range o.Phases {
		pp := PlanPhase{Name: string(ph), Action: "run"}
		switch {
		case r.state.Done(ph) && !o.Restart && r.sameInputs(a) && (ph != PhaseKexec || f.IsInstaller):
			pp.Action, pp.Why = "done", "finished in a previous run at "+r.state.DoneAt(ph).Local().Format(time.DateTime)
		case ph == PhaseKexec && f.IsInstaller && !o.ForceKexec:
			pp.Action, pp.Why = "skip", "the target already runs a NixOS installer"
		case ph == PhaseKexec:
			pp.Why = r.planKexec(ctx)
			if strings.HasPrefix(pp.Why, "refused: ") {
				pp.Action, pp.Why = "fail", strings.TrimPrefix(pp.Why, "refused: ")
			}
		case ph == PhaseDisko:
			pp.Why = DiskoModes[o.diskoMode()].What
		case ph == PhaseInstall:
			pp.Why = "copy the system into " + o.mountPoint() + " and install its boot loader"
		case ph == PhaseReboot:
			pp.Why = "unmount, reboot, and check that the new system answers"
		}
		p.Phases = append(p.Phases, pp)
	}
	if o.has(PhaseDisko) {
		p.DiskoMode = o.diskoMode()
		p.DiskoScript = or(a.diskoSource, "built after the hardware configuration")
		if a.layout == nil {
			p.DisksNote = "disks unknown: " + a.layoutNote
		} else {
			disks, err := r.planDisks(ctx, a)
			if err != nil {
				return nil, err
			}
			p.Disks = disks
		}
	}
	if o.ExtraFiles != "" {
		p.Files = append(p.Files, "extra files from "+o.ExtraFiles+" into "+o.mountPoint())
	}
	for _, c := range o.Chown {
		p.Files = append(p.Files, fmt.Sprintf("chown -R %s %s", c.Owner, o.mountPoint()+"/"+strings.TrimPrefix(c.Path, "/")))
	}
	if o.CopyHostKeys {
		p.Files = append(p.Files, "the target's /etc/ssh/ssh_host_* into "+o.mountPoint()+"/etc/ssh")
	}
	for _, k := range o.DiskEncryptionKeys {
		p.Files = append(p.Files, fmt.Sprintf("disk key %s -> %s (mode 0600, during the disko phase only)", k.Local, k.Remote))
	}
	return p, nil
}

// sameInputs reports whether this run would resume the recorded state.
func (r *run) sameInputs(a *artifacts) bool {
	for k, v := range r.inputs(a) {
		if old, ok := r.state.Inputs[k]; ok && old != v {
			return false
		}
	}
	return true
}

// planDisks maps the layout's disks to the target's block devices
// (resolving /dev/disk/by-* links on the target) with their size and model.
func (r *run) planDisks(ctx context.Context, a *artifacts) ([]PlanDisk, error) {
	names := make([]string, 0, len(a.layout.Disk))
	for n := range a.layout.Disk {
		names = append(names, n)
	}
	slices.Sort(names)
	var script strings.Builder
	for _, n := range names {
		dev := a.layout.Disk[n].Device
		fmt.Fprintf(&script, "printf '%%s\\n' \"$(readlink -f -- %s 2>/dev/null)\"\n", shell.Quote(dev))
	}
	out, err := r.client.User().Output(ctx, script.String())
	if err != nil {
		return nil, fmt.Errorf("resolving the layout's disks on the target: %w", err)
	}
	resolved := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	mode := r.o.diskoMode()
	var disks []PlanDisk
	for i, n := range names {
		d := a.layout.Disk[n]
		pd := PlanDisk{Name: n, Device: d.Device}
		if i < len(resolved) {
			pd.Resolved = resolved[i]
		}
		switch {
		case mode == "disko" && d.Destroy:
			pd.Action = "wipe"
		case mode == "disko" || mode == "format":
			pd.Action = "format"
		case mode == "plan" || mode == "apply":
			pd.Action = mode
		default:
			pd.Action = "mount"
		}
		if fd := findDisk(r.facts.Disks, pd.Resolved, d.Device); fd != nil {
			pd.Found, pd.Size, pd.Model, pd.Holds = true, int64(fd.Size), strings.TrimSpace(fd.Model), holds(fd)
		}
		disks = append(disks, pd)
	}
	return disks, nil
}

func findDisk(ds []facts.Disk, paths ...string) *facts.Disk {
	for i := range ds {
		for _, p := range paths {
			if p != "" && (ds[i].Path == p || "/dev/"+ds[i].KName == p) {
				return &ds[i]
			}
		}
		if d := findDisk(ds[i].Children, paths...); d != nil {
			return d
		}
	}
	return nil
}

// holds describes what is on a disk now: its partition table, filesystem,
// partitions and mounts.
func holds(d *facts.Disk) string {
	var parts []string
	if d.PTType != "" {
		parts = append(parts, d.PTType+" partition table")
	}
	if d.FSType != "" {
		parts = append(parts, d.FSType)
	}
	if n := len(d.Children); n > 0 {
		parts = append(parts, fmt.Sprintf("%d partitions/volumes", n))
	}
	var mounts []string
	var walk func(d facts.Disk)
	walk = func(d facts.Disk) {
		mounts = append(mounts, d.Mountpoints...)
		for _, c := range d.Children {
			walk(c)
		}
	}
	walk(*d)
	if len(mounts) > 0 {
		parts = append(parts, "mounted at "+strings.Join(mounts, ", "))
	}
	if len(parts) == 0 {
		return "empty"
	}
	return strings.Join(parts, ", ")
}

func describeOS(f *facts.Facts) string {
	if f.OS.PrettyName != "" {
		return f.OS.PrettyName
	}
	return f.Kernel + " " + f.KernelRelease
}

// Print writes the plan for people.
func (p *Plan) Print(w io.Writer) {
	fmt.Fprintf(w, "Plan for %s\n", p.Target)
	fmt.Fprintf(w, "  target:      %s, %s, %s RAM%s\n", p.OS, p.Arch, progress.Bytes(p.Memory), map[bool]string{true: ", NixOS installer", false: ""}[p.Installer])
	fmt.Fprintf(w, "  host key:    %s\n", p.HostKey)
	fmt.Fprintf(w, "  login:       %s (%s)\n", p.Login, p.Privilege)
	fmt.Fprintf(w, "  phases:\n")
	for _, ph := range p.Phases {
		fmt.Fprintf(w, "    %-8s %-5s %s\n", ph.Name, ph.Action, ph.Why)
	}
	if p.HardwareConfig != "" {
		fmt.Fprintf(w, "  hardware:    %s\n", p.HardwareConfig)
	}
	if p.DiskoMode != "" {
		fmt.Fprintf(w, "  disk script: %s (--disko-mode %s)\n", p.DiskoScript, p.DiskoMode)
		if p.DisksNote != "" {
			fmt.Fprintf(w, "  disks:       %s\n", p.DisksNote)
		}
		for _, d := range p.Disks {
			dev := d.Device
			if d.Resolved != "" && d.Resolved != d.Device {
				dev += " -> " + d.Resolved
			}
			action := map[string]string{"wipe": "WILL BE WIPED", "format": "will be formatted", "mount": "will be mounted"}[d.Action]
			if !d.Found {
				fmt.Fprintf(w, "  disk %s: %s %s (not found on the target!)\n", d.Name, dev, action)
				continue
			}
			model := d.Model
			if model == "" {
				model = "no model"
			}
			fmt.Fprintf(w, "  disk %s: %s %s: %s, %s; holds %s\n", d.Name, dev, action, progress.Bytes(d.Size), model, d.Holds)
		}
	}
	fmt.Fprintf(w, "  mount point: %s\n", p.MountPoint)
	if p.System != "" {
		fmt.Fprintf(w, "  system:      %s\n", p.System)
	}
	switch {
	case p.Closure != nil:
		fmt.Fprintf(w, "  closure:     %d paths, %s (built %s)\n", p.Closure.Paths, progress.Bytes(p.Closure.Bytes), p.BuildOn+"ly")
	case p.BuildOn == "remote":
		fmt.Fprintf(w, "  closure:     built on the target; size known after the build\n")
	}
	for _, f := range p.Files {
		fmt.Fprintf(w, "  files:       %s\n", f)
	}
	fmt.Fprintf(w, "  state file:  %s\n", p.StateFile)
	fmt.Fprintf(w, "Dry run: nothing was changed.\n")
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func fingerprint(k ssh.PublicKey) string {
	if k == nil {
		return ""
	}
	return k.Type() + " " + ssh.FingerprintSHA256(k)
}
