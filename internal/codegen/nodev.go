package codegen

import (
	"slices"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// nodev: tmpfs, bind mounts and other mounts without a device. Nothing to create. A bind
// mount's source lies inside the root mount point. Whether it is mounted is judged by the
// mount point (and the filesystem type, except for bind mounts, whose type is that of
// their source).

func (g *gen) mountNodev(u *unit, n *config.Nodev, owners []*hooked) {
	if n.Mountpoint == "" {
		return
	}
	target := g.target(n.Mountpoint)
	bind := slices.Contains(n.MountOptions, "bind")
	source := n.Device
	check := "findmnt --mountpoint " + Q(target) + " --types " + Q(n.FSType) + " >/dev/null 2>&1"
	if bind {
		source = g.target(n.Device)
		check = "findmnt --mountpoint " + Q(target) + " >/dev/null 2>&1"
	}
	g.addAction(&action{phase: phaseFS, mnt: n.Mountpoint, fsDev: n.Device, owners: owners,
		mount: g.text(func(w *writer) {
			w.comment(u.path)
			w.block("if ! "+check+"; then", "fi", func() {
				w.linef("mount -t %s %s-o X-mount.mkdir %s %s", Q(n.FSType), mountOpts(n.MountOptions), Q(source), Q(target))
			})
		}),
		unmount: g.text(func(w *writer) {
			w.comment(u.path)
			w.block("if "+check+"; then", "fi", func() {
				w.linef("umount %s", Q(target))
			})
		})})
}
