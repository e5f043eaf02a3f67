package codegen

import (
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// destroy wipes every disk of the layout whose `destroy` option is true (disko's
// disk-deactivate): after consent (typing yes on a terminal, or --yes-wipe-all-disks,
// which works for destroy alone too, unlike disko's), each disk's tree as lsblk shows it
// is torn down children first (unmount, swapoff, stop LVM, md and LUKS, destroy zpools),
// its signatures are wiped, the MBR boot code zeroed, and the disk checked to be blank.
// The layout's mounts without a device (tmpfs, bind) are unmounted last.
//
// Before any disk, everything below the root mount point is unmounted, as disko does
// (`umount -R <rootMountPoint>`): lsblk's tree does not show every mount of a btrfs
// filesystem (several subvolume mounts of a device opened by another path show as one;
// a filesystem over several devices shows its mounts on one of them), and a container
// whose filesystem is still mounted cannot be closed.

func (g *gen) destroyPhase(acts []*action) string {
	var disks []*unit
	for _, u := range g.units {
		if d, ok := u.node.(*config.Disk); ok && d.Destroy {
			disks = append(disks, u)
		}
	}
	g.vars = 0
	return function("disko_destroy", text(func(w *writer) {
		func() {
			confirm := sh("disko_confirm " + strconv.Itoa(len(disks)))
			for _, u := range disks {
				confirm += " " + Q(u.node.(*config.Disk).Device) + " " + u.path.q()
			}
			w.linef(`%s "$@"`, confirm)
			w.raw("disko_udev_known")
			if g.root != "" && len(disks) > 0 {
				w.linef("umount -R %s 2>/dev/null || :", Q(g.root))
			}
			for _, u := range g.units {
				d, ok := u.node.(*config.Disk)
				if !ok {
					continue
				}
				w.comment(u.path)
				if !d.Destroy {
					w.raw("# destroy = false: this disk is kept")
					continue
				}
				dev := g.resolve(w, &devRef{path: d.Device})
				w.linef("disko_destroy_disk %s %s", dev, u.path.q())
			}
			for i := len(acts) - 1; i >= 0; i-- {
				if _, ok := nodevOf(g, acts[i]); ok {
					w.raw(strings.TrimSuffix(acts[i].unmount, "\n"))
				}
			}
		}()
	}))
}

// nodevOf tells whether a mount step belongs to a nodev unit.
func nodevOf(g *gen, a *action) (*config.Nodev, bool) {
	n, ok := g.units[a.unitPos].node.(*config.Nodev)
	return n, ok
}
