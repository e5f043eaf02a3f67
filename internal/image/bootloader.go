package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// switchToConfiguration is where a NixOS toplevel keeps the program that installs its
// bootloader; a toplevel without it is not a NixOS system, and gets no bootloader.
const switchToConfiguration = "bin/switch-to-configuration"

// hasBootloader reports whether toplevel has a switch-to-configuration, and warns on log
// when it has not.
func hasBootloader(toplevel string, log io.Writer) bool {
	if _, err := os.Stat(filepath.Join(toplevel, switchToConfiguration)); err != nil {
		fmt.Fprintf(log, "warning: %s has no %s (not a NixOS system): no bootloader is installed\n", toplevel, switchToConfiguration)
		return false
	}
	return true
}

// installScript runs in new user, mount and PID namespaces: it assembles the installed
// system's file hierarchy from the staged trees and runs the system's
// `switch-to-configuration boot` in a chroot of it, as nixos-install does through
// nixos-enter (NIXOS_INSTALL_BOOTLOADER=1, /etc/NIXOS, the system's activate script
// first, its failure ignored). Every volume but the root is an overlay whose upper
// directory is the volume's tree: what the bootloader writes to /boot lands in the ESP's
// tree, and /boot is a mount point of its own device, as bootctl and
// switch-to-configuration check. /dev is a tmpfs with only the character devices a
// program needs: no block device of the build machine is reachable. Empty files are
// made by the shell's own redirection, not touch: a process start costs 1-2 ms.
//
// Arguments: ROOT EMPTY TOPLEVEL, then MOUNTPOINT UPPER WORK for each other volume,
// parents first. The build VM of the VM path runs it too, with its root the mounted
// layout and no overlays (installSystemInVM).
const installScript = `set -eu
root=$1 empty=$2 top=$3
shift 3
while [ $# -gt 0 ]; do
	mkdir -p "$root$1"
	mount -t overlay overlay -o "lowerdir=$empty,upperdir=$2,workdir=$3" "$root$1"
	shift 3
done
mkdir -p "$root/dev" "$root/proc" "$root/run" "$root/etc"
[ -d "$root/tmp" ] || mkdir -m 1777 "$root/tmp"
mount -t tmpfs -o mode=755 dev "$root/dev"
for d in null zero full random urandom tty; do
	: >"$root/dev/$d"
	mount --bind "/dev/$d" "$root/dev/$d"
done
ln -s /proc/self/fd "$root/dev/fd"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=755 run "$root/run"
mount -t tmpfs -o mode=1777 tmp "$root/tmp"
: >>"$root/etc/NIXOS"
ln -s "$top" "$root/run/current-system"
chroot=$(command -v chroot)
env="PATH=$top/sw/bin:$top/sw/sbin HOME=/root TMPDIR=/tmp IN_NIXOS_ENTER=1 NIXOS_INSTALL_BOOTLOADER=1 SYSTEMD_RELAX_ESP_CHECKS=1"
if [ -x "$root$top/activate" ]; then
	env -i $env "$chroot" "$root" "$top/activate" >&2 || echo "warning: $top/activate failed (ignored, as nixos-enter does)" >&2
fi
env -i $env "$chroot" "$root" "$top/bin/switch-to-configuration" boot >&2
`

// installBootloader runs the system's `switch-to-configuration boot` over the staged
// trees of the disks' volumes (see installScript), as an ordinary user: the namespaces
// are the user's own. Every mounted volume that can be filled gets a tree, so that the
// bootloader's files reach the ESP.
// What the system's programs print goes to log.
func installBootloader(ctx context.Context, dir string, disks []*diskPlan, trees stagedTrees, toplevel string, log io.Writer) error {
	var rootTree string
	type mount struct{ point, tree string }
	var mounts []mount
	for _, d := range disks {
		for _, v := range d.volumes {
			if v.mountpoint == "" || trees[v.path] == "" {
				continue
			}
			if filepath.Clean(v.mountpoint) == "/" {
				rootTree = trees[v.path]
				continue
			}
			mounts = append(mounts, mount{filepath.Clean(v.mountpoint), trees[v.path]})
		}
	}
	if rootTree == "" {
		return fmt.Errorf("--system: the layout has no filesystem mounted at / that files can be put into")
	}
	sort.Slice(mounts, func(i, j int) bool {
		return strings.Count(mounts[i].point, "/") < strings.Count(mounts[j].point, "/")
	})
	scratch, err := os.MkdirTemp(dir, ".overlays.*.partial")
	if err != nil {
		return err
	}
	defer removeTree(scratch)
	empty := filepath.Join(scratch, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		return err
	}
	args := []string{rootTree, empty, toplevel}
	for i, m := range mounts {
		work := filepath.Join(scratch, fmt.Sprintf("work%d", i))
		if err := os.Mkdir(work, 0o755); err != nil {
			return err
		}
		args = append(args, m.point, m.tree, work)
	}
	ns := []string{"--mount", "--pid", "--fork", "--kill-child"}
	if os.Geteuid() != 0 {
		if !userNamespaces() {
			return fmt.Errorf("--system: installing the bootloader as an ordinary user needs user namespaces, which this kernel refuses (sysctl kernel.unprivileged_userns_clone=1, or build as root)")
		}
		ns = append([]string{"--user", "--map-root-user"}, ns...)
	}
	unshare, err := toolPath("unshare")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, unshare, append(append(ns, "--", "/bin/sh", "-c", installScript, "install-bootloader"), args...)...)
	var stderr limitedBuffer
	cmd.Stdout, cmd.Stderr = log, io.MultiWriter(log, &stderr)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("--system %s: switch-to-configuration boot (the bootloader) failed (%v): %s(GRUB on a BIOS disk needs the disk itself, which an image build does not have)", toplevel, err, stderr.String())
	}
	return nil
}
