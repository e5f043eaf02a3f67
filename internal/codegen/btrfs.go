package codegen

import (
	"maps"
	"slices"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// btrfs. mkfs.btrfs on a blank device (extraArgs split at whitespace like disko's, so
// ["-d raid1" "/dev/mapper/p1"] makes a two-device filesystem). Subvolumes and swap files
// are created through one temporary mount of the top level (subvol=/), each only when
// missing; the mount is undone even when a step fails. Subvolumes are created in name
// order, so a parent ("/home") comes before its child ("/home/user"). Swap files are
// made with `btrfs filesystem mkswapfile` and left to NixOS's swapDevices, as with disko.

func (g *gen) createBTRFS(w *writer, p optPath, n *config.BTRFS, dev sh) {
	w.block("if disko_want "+dev+" btrfs "+p.q()+"; then", "fi", func() {
		w.linef("mkfs.btrfs %s %s>/dev/null", dev, splitThen(n.ExtraArgs))
	})
	if len(n.Subvolumes) == 0 && len(n.Swap) == 0 {
		return
	}
	w.block("(", ")", func() {
		w.raw(`top=$(mktemp -d)`)
		w.raw(`trap 'umount "$top" 2>/dev/null || :; rmdir "$top" 2>/dev/null || :' EXIT`)
		w.linef(`mount -t btrfs -o subvol=/ %s "$top"`, dev)
		swapfiles(w, `"$top"`, n.Swap)
		for _, key := range slices.Sorted(maps.Keys(n.Subvolumes)) {
			sv := n.Subvolumes[key]
			w.comment(p.field("subvolumes").attr(key))
			w.linef(`sv="$top"/%s`, Q(sv.Name))
			w.block(`if ! btrfs subvolume show "$sv" >/dev/null 2>&1; then`, "fi", func() {
				w.raw(`mkdir -p "$(dirname "$sv")"`)
				w.linef(`btrfs subvolume create %s"$sv" >/dev/null`, splitThen(sv.ExtraArgs))
			})
			swapfiles(w, `"$sv"`, sv.Swap)
		}
		w.raw(`umount "$top"`)
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
