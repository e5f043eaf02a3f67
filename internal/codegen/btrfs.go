package codegen

import (
	"maps"
	"path"
	"slices"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// btrfs. mkfs.btrfs on a blank device (extraArgs split at whitespace like disko's, so
// ["-d raid1" "/dev/mapper/p1"] makes a two-device filesystem). Subvolumes and swap files
// are created through one temporary mount of the top level (subvol=/), each only when
// missing (all of them, unasked, on a filesystem made in the same run); the mount is
// undone even when a step fails. Subvolumes are created in name
// order, so a parent ("/home") comes before its child ("/home/user"). Swap files are
// made with `btrfs filesystem mkswapfile` and left to NixOS's swapDevices, as with disko.

func (g *gen) createBTRFS(w *writer, p optPath, n *config.BTRFS, dev sh) {
	cond := "disko_want " + dev + " btrfs " + p.q()
	mkfs := func() { w.linef("mkfs.btrfs %s %s>/dev/null", dev, splitThen(n.ExtraArgs)) }
	if len(n.Subvolumes) == 0 && len(n.Swap) == 0 {
		w.block("if "+cond+"; then", "fi", mkfs)
		return
	}
	// A filesystem made now has no subvolumes yet: they are created without asking
	// btrfs first (a process each, which adds up under emulation); an existing one gets
	// only those it lacks.
	w.ifElse(cond, func() {
		mkfs()
		subvolumes(w, p, n, dev, true)
	}, func() {
		subvolumes(w, p, n, dev, false)
	})
}

// subvolumes creates n's subvolumes and swap files through a temporary mount of the top
// level; fresh: n was formatted just now, so no subvolume exists yet.
func subvolumes(w *writer, p optPath, n *config.BTRFS, dev sh, fresh bool) {
	w.block("(", ")", func() {
		w.raw(`top=$(mktemp -d)`)
		w.raw(`trap 'umount "$top" 2>/dev/null || :; rmdir "$top" 2>/dev/null || :' EXIT`)
		w.linef(`mount -t btrfs -o subvol=/ %s "$top"`, dev)
		swapfiles(w, `"$top"`, n.Swap)
		made := map[string]bool{"/": true}
		for _, key := range slices.Sorted(maps.Keys(n.Subvolumes)) {
			sv := n.Subvolumes[key]
			name := path.Clean("/" + sv.Name)
			w.comment(p.field("subvolumes").attr(key))
			w.linef(`sv="$top"/%s`, Q(sv.Name))
			create := func() {
				if parent := path.Dir(name); !made[parent] {
					w.linef(`mkdir -p "$top"%s`, Q(parent))
				}
				w.linef(`btrfs subvolume create %s"$sv" >/dev/null`, splitThen(sv.ExtraArgs))
			}
			if fresh {
				create()
			} else {
				w.block(`if ! btrfs subvolume show "$sv" >/dev/null 2>&1; then`, "fi", create)
			}
			made[name] = true
			swapfiles(w, `"$sv"`, sv.Swap)
		}
		w.raw(`umount "$top"`)
		// Unmounted: the trap is left with the directory, sparing a failing umount (a
		// process start, ~0.1 s under emulation) on every run that succeeds.
		w.raw(`trap 'rmdir "$top" 2>/dev/null || :' EXIT`)
	})
}

func swapfiles(w *writer, dir sh, files map[string]*config.Swapfile) {
	for _, key := range slices.Sorted(maps.Keys(files)) {
		f := files[key]
		w.block("if [ ! -e "+dir+"/"+Q(f.Path)+" ]; then", "fi", func() {
			w.linef("btrfs filesystem mkswapfile --size %s %s/%s >/dev/null", Q(f.Size), dir, Q(f.Path))
		})
	}
}

func (g *gen) mountBTRFS(p optPath, n *config.BTRFS, ref *devRef, owners []*hooked) {
	add := func(mp string, opts []string) {
		target := g.target(mp)
		g.addAction(&action{phase: phaseFS, mnt: mp, fsDev: n.Device, owners: owners,
			mount: g.text(func(w *writer) {
				w.comment(p)
				dev := g.resolve(w, ref)
				w.block("if ! disko_mounted "+dev+" "+Q(target)+"; then", "fi", func() {
					w.linef("mount -t btrfs %s-o X-mount.mkdir %s %s", mountOpts(opts), dev, Q(target))
				})
			}),
			unmount: g.umountText(p, ref, target)})
	}
	if n.Mountpoint != "" {
		add(n.Mountpoint, n.MountOptions)
	}
	for _, key := range slices.Sorted(maps.Keys(n.Subvolumes)) {
		sv := n.Subvolumes[key]
		if sv.Mountpoint != "" {
			add(sv.Mountpoint, append(append([]string{}, sv.MountOptions...), "subvol="+sv.Name))
		}
	}
}
