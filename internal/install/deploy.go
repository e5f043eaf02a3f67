package install

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// Deployed is what Deploy switched the machine to.
type Deployed struct {
	Toplevel string        // the system now active
	HostKey  ssh.PublicKey // the key the machine answered with
}

// Deploy switches a machine that already runs the installed NixOS to the
// system o describes, without touching its disks, as
// `nixos-rebuild switch --target-host` does: build (or take) the toplevel,
// copy its closure into the machine's store, point the system profile at it
// and run its switch-to-configuration switch. Only o's connection, system
// (Flake or StorePaths[1]), build and Nix options are used; phases, the
// layout and disk keys are not. The Terraform provider calls it when only
// the system of an installed machine changed.
func Deploy(ctx context.Context, o Options) (*Deployed, error) {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	o.Phases = []Phase{PhaseInstall}
	o.DiskoLayout, o.Disks, o.DiskEncryptionKeys = "", nil, nil
	if err := o.Check(); err != nil {
		return nil, err
	}
	outR, errR := NewRedactor(o.Stdout), NewRedactor(o.Stderr)
	defer outR.Flush()
	defer errR.Flush()
	for _, s := range []string{o.SSH.Password, o.SSH.SudoPassword, string(o.SSH.PrivateKey)} {
		outR.Add(s)
		errR.Add(s)
	}
	r := &run{o: &o, dial: dialSSH, stdout: outR, stderr: errR, keys: map[string][]byte{}}
	var events io.Writer
	if o.JSON {
		events = outR
	}
	r.rep = NewReporter(errR, events)
	defer r.rep.Close()
	r.nixLog = newOutputWriter(errR, "  nix| ")
	return r.deploy(ctx)
}

func (r *run) deploy(ctx context.Context) (*Deployed, error) {
	const phase = "deploy"
	start := time.Now()
	err := r.connect(ctx, false)
	if r.client != nil {
		defer r.client.Close()
	}
	if err != nil {
		return nil, err
	}

	a := &artifacts{buildOn: r.decideBuildOn(r.facts)}
	if err := r.build(ctx, a); err != nil {
		return nil, err
	}
	r.rep.Phase(phase, "switch the running system, disks untouched")
	toplevel := a.toplevel
	if a.toplevelDrv != "" {
		if toplevel, err = r.realiseRemote(ctx, phase, a.toplevelDrv, ""); err != nil {
			return nil, err
		}
	} else if err := r.copyTo(ctx, phase, "copy the system closure", a.closure, ""); err != nil {
		return nil, err
	}
	if err := r.rootRun(ctx, phase, "switch to the new system", SwitchScript(toplevel, r.nixOptionArgs()), nil); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	r.rep.PhaseDone(phase, time.Since(start))
	return &Deployed{Toplevel: toplevel, HostKey: r.hostKey}, nil
}

// SwitchScript makes toplevel, whose closure is already in the machine's
// store, the running system: the system profile's next generation, then its
// switch-to-configuration switch (what nixos-rebuild switch runs).
func SwitchScript(toplevel, nixOptionArgs string) string {
	return fmt.Sprintf(`set -eu
system=%[1]s
PATH="$PATH:/run/current-system/sw/bin"
nix-env%[2]s -p /nix/var/nix/profiles/system --set "$system"
if [ ! -x "$system/bin/switch-to-configuration" ]; then
  echo "$system/bin/switch-to-configuration does not exist: is this a NixOS system?" >&2
  exit 1
fi
"$system/bin/switch-to-configuration" switch
`, shell.Quote(toplevel), strings.TrimRight(nixOptionArgs, " "))
}

// SystemPath is the toplevel o installs, found without contacting the
// machine: StorePaths[1], or the output path Nix evaluates for the flake's
// system.build.toplevel (nothing is built). The provider records it as the
// installed system and compares it in the plan to see whether a deploy is due.
func SystemPath(ctx context.Context, o Options) (string, error) {
	if len(o.StorePaths) == 2 {
		return o.StorePaths[1], nil
	}
	if o.Flake == "" || !strings.Contains(o.Flake, "#") {
		return "", fmt.Errorf("no system: pass a flake REF#NAME or store paths")
	}
	r := &run{o: &o, nixLog: io.Discard}
	ref, attr, _ := configAttr(o.Flake)
	p, err := r.nixFor().EvalRaw(ctx, ref+"#"+attr+".system.build.toplevel.outPath")
	if err != nil {
		return "", fmt.Errorf("flake %s: evaluating the system: %w", o.Flake, err)
	}
	return strings.TrimSpace(p), nil
}
