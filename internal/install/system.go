package install

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// installPhase copies the system into the mount point's store, places the
// extra files and host keys, and installs the system (nixos-install where
// the target has it, else the same steps done directly).
func (r *run) installPhase(ctx context.Context, a *artifacts) error {
	o := r.o
	phase := string(PhaseInstall)
	mnt := o.mountPoint()
	r.rep.Phase(phase, "install the system into "+mnt)
	if err := r.ensureMounted(ctx, phase, a); err != nil {
		return err
	}
	if o.Flake != "" && o.SubstituteOnDestination && o.UseMachineSubstituters {
		r.machineSubstituters(ctx)
	}

	store := r.chrootStore()
	toplevel := a.toplevel
	if a.toplevelDrv != "" {
		out, err := r.realiseRemote(ctx, phase, a.toplevelDrv, store)
		if err != nil {
			return err
		}
		toplevel = out
	} else if err := r.copyTo(ctx, phase, "copy the system closure", a.closure, store); err != nil {
		return err
	}

	if o.ExtraFiles != "" {
		opts := remote.TreeOptions{}
		if os.Geteuid() != 0 {
			// The files are owned by whoever runs anywhere; on the target
			// they belong to root, as with nixos-anywhere (fix owners with
			// --chown). Run as root to keep the owners of a prepared tree.
			zero := 0
			opts.UID, opts.GID = &zero, &zero
		}
		s := r.rep.Step(phase, "copy the extra files from "+o.ExtraFiles)
		if err := s.Done(r.root.UploadTree(ctx, o.ExtraFiles, mnt, opts)); err != nil {
			return err
		}
	}
	if len(o.Chown) > 0 {
		var cmd strings.Builder
		cmd.WriteString("set -e\n")
		for _, c := range o.Chown {
			p := path.Join(mnt, path.Clean("/"+c.Path))
			fmt.Fprintf(&cmd, "chown -R -- %s %s\n", shell.Quote(c.Owner), shell.Quote(p))
		}
		if err := r.rootRun(ctx, phase, "chown", cmd.String(), nil); err != nil {
			return err
		}
	}
	if o.CopyHostKeys {
		cmd := fmt.Sprintf(`set -e
mnt=%s
mkdir -p "$mnt/etc/ssh"
chmod 755 "$mnt/etc" "$mnt/etc/ssh"
for f in /etc/ssh/ssh_host_*; do
  [ -e "$f" ] || continue
  t="$mnt/etc/ssh/${f##*/}"
  if [ -e "$t" ]; then echo "keeping $t"; else cp -p "$f" "$t"; echo "copied $f"; fi
done
`, shell.Quote(mnt))
		if err := r.rootRun(ctx, phase, "copy the host keys", cmd, nil); err != nil {
			return err
		}
	}
	return r.rootRun(ctx, phase, "install the system", r.installScript(toplevel), nil)
}

// chrootStore is the store inside the mount point: --ssh-store-setting
// remote-store (URL-encoded, as nixos-anywhere takes it) or local?root=MNT.
func (r *run) chrootStore() string {
	if s := r.o.storeSetting("remote-store"); s != "" {
		if u, err := url.QueryUnescape(s); err == nil {
			return u
		}
		return s
	}
	return "local?root=" + r.o.mountPoint()
}

// installScript is nixos-install, or what it does when the target lacks it.
func (r *run) installScript(toplevel string) string {
	var env string
	if v := r.o.getenv("NIXOS_NO_CHECK"); v != "" {
		env = "export NIXOS_NO_CHECK=" + shell.Quote(v) + "\n"
	}
	return SystemInstallScript(r.o.mountPoint(), toplevel, env, r.nixOptionArgs())
}

// SystemInstallScript is the shell script that installs the system toplevel, whose
// closure is already in the store under mnt, onto the file systems mounted at mnt:
// nixos-install where it is on PATH, else its steps (set the system profile, run the
// activation and `switch-to-configuration boot` with NIXOS_INSTALL_BOOTLOADER=1 in a
// chroot). env is shell run first (exports); nixOptionArgs are " --option K V" words
// for Nix. Exported for disko-install, which installs onto a local disk the same way.
func SystemInstallScript(mnt, toplevel, env, nixOptionArgs string) string {
	opts := nixOptionArgs
	return fmt.Sprintf(`set -eu
mnt=%[1]s
system=%[2]s
PATH="$PATH:/run/current-system/sw/bin"
%[3]smkdir -p "$mnt/tmp"
chmod 1777 "$mnt/tmp"
if command -v nixos-install >/dev/null 2>&1; then
  nixos-install --root "$mnt" --no-root-passwd --no-channel-copy --system "$system"%[4]s
  exit
fi
echo "nixos-install is not on the target: setting the system profile and running switch-to-configuration in a chroot"
nix-env --store "$mnt"%[4]s -p "$mnt/nix/var/nix/profiles/system" --set "$system"
mkdir -p "$mnt/dev" "$mnt/proc" "$mnt/sys" "$mnt/run" "$mnt/etc"
ln -sfn /proc/mounts "$mnt/etc/mtab"
cleanup() {
  for d in run sys proc dev; do
    if mountpoint -q "$mnt/$d"; then umount -R "$mnt/$d" || umount -R -l "$mnt/$d"; fi
  done
}
trap cleanup EXIT
mount --rbind /dev "$mnt/dev"
mount -t proc proc "$mnt/proc"
mount --rbind /sys "$mnt/sys"
mount -t tmpfs -o mode=0755 tmpfs "$mnt/run"
if [ -x "$mnt$system/activate" ]; then
  LOCALE_ARCHIVE="$system/sw/lib/locale/locale-archive" IN_NIXOS_ENTER=1 chroot "$mnt" "$system/activate" 1>&2 || true
fi
if [ -x "$mnt$system/bin/switch-to-configuration" ]; then
  NIXOS_INSTALL_BOOTLOADER=1 chroot "$mnt" "$system/bin/switch-to-configuration" boot
else
  echo "warning: $system/bin/switch-to-configuration does not exist; no boot loader was installed" >&2
fi
`, shell.Quote(mnt), shell.Quote(toplevel), env, opts)
}

// machineSubstituters copies the configuration's nix.settings.substituters
// and trusted-public-keys into root's nix.conf on the target, so that it
// substitutes from the same caches (nixos-anywhere does this by default).
// The lines sit between markers and are replaced, not appended again, on
// every run. Failures only warn, as there.
func (r *run) machineSubstituters(ctx context.Context) {
	phase := string(PhaseInstall)
	ref, attr, _ := configAttr(r.o.Flake)
	n := r.nixFor()
	n.Stderr = nil
	var subs, keys []string
	if err := n.EvalJSON(ctx, ref+"#"+attr+".nix.settings.substituters", &subs); err != nil {
		r.rep.Skipped(phase, "substituters", "the configuration's nix.settings.substituters did not evaluate")
		return
	}
	if err := n.EvalJSON(ctx, ref+"#"+attr+".nix.settings.trusted-public-keys", &keys); err != nil {
		keys = nil
	}
	var good []string
	for _, s := range subs {
		// A cache on the operator's machine or behind ssh is not reachable from the target.
		if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") &&
			u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1" && u.Hostname() != "::1" {
			good = append(good, s)
		}
	}
	if len(good) == 0 {
		r.rep.Skipped(phase, "substituters", "the configuration names no http(s) binary cache")
		return
	}
	block := "# anywhere: begin\nextra-substituters = " + strings.Join(good, " ") + "\n"
	if len(keys) > 0 {
		block += "extra-trusted-public-keys = " + strings.Join(keys, " ") + "\n"
	}
	block += "# anywhere: end\n"
	cmd := fmt.Sprintf(`set -e
home=$(getent passwd root | cut -d: -f6); home=${home:-/root}
f="$home/.config/nix/nix.conf"
mkdir -p "$(dirname "$f")"
touch "$f"
sed -i '/^# anywhere: begin$/,/^# anywhere: end$/d' "$f"
printf '%%s' %s >> "$f"
`, shell.Quote(block))
	if err := r.rootRun(ctx, phase, "use the configuration's binary caches", cmd, nil); err != nil {
		r.rep.Warn(phase, "could not set the target's substituters: "+err.Error())
	}
}

// generateHardwareConfig runs nixos-facter or nixos-generate-config on the
// target (in the installer: see configureInInstaller) and writes the report
// to the local path, adding it to git (as intent-to-add) so a flake sees it.
func (r *run) generateHardwareConfig(ctx context.Context) error {
	hc := r.o.HardwareConfig
	s := r.rep.Step("hardware", "generate the hardware configuration with "+hc.Kind)
	out, err := r.root.Output(ctx, hardwareCommand(hc.Kind, r.nixOptionArgs()))
	if err == nil {
		err = checkHardwareReport(hc.Kind, out)
	}
	if err == nil {
		if err = os.MkdirAll(filepath.Dir(hc.Path), 0o755); err == nil {
			err = os.WriteFile(hc.Path, out, 0o644)
		}
	}
	if err := s.Done(err); err != nil {
		return fmt.Errorf("--generate-hardware-config: %w", err)
	}
	gitAddIntent(hc.Path)
	return nil
}

// hardwareCommand prints the hardware report of kind on the target. A
// target without nixos-facter runs it from nixpkgs with `nix shell`, as
// nixos-anywhere does (custom installer images often lack it).
func hardwareCommand(kind, nixOptionArgs string) string {
	cmd := "nixos-generate-config --show-hardware-config --no-filesystems"
	if kind == "nixos-facter" {
		cmd = "if command -v nixos-facter >/dev/null 2>&1; then nixos-facter; else nix --extra-experimental-features 'nix-command flakes'" +
			nixOptionArgs + " shell nixpkgs#nixos-facter -c nixos-facter; fi"
	}
	return "PATH=\"$PATH:/run/current-system/sw/bin\"; " + cmd
}

// checkHardwareReport refuses output that cannot be the report, before it
// overwrites the file the configuration imports: nothing at all, or, from
// nixos-facter, anything but JSON (Nix's progress text can end up in it,
// nixos-anywhere#665).
func checkHardwareReport(kind string, out []byte) error {
	if len(strings.TrimSpace(string(out))) == 0 {
		return fmt.Errorf("%s printed nothing", kind)
	}
	if kind == "nixos-facter" && !json.Valid(out) {
		return fmt.Errorf("nixos-facter's output is not JSON (begins %q)", firstLine(string(out)))
	}
	return nil
}
