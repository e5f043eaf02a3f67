package codegen

import (
	"maps"
	"slices"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// bcachefs. The filesystem is formatted once from all its members (each member's
// --label and format arguments before its device, as disko orders them) unless a
// bcachefs with the layout's UUID exists; members holding anything else are refused.
// A member's format arguments are one word each: disko writes them to a file a line
// apiece and reads every line back as one argument. The filesystem-wide ones are split
// at whitespace, as disko splices them unquoted into the command.
// Subvolumes are created through a temporary mount when missing. Mounts use
// /dev/disk/by-uuid/UUID, unlocking first when the filesystem is encrypted.

func (g *gen) createBcachefs(w *writer, u *unit, fs *config.BcachefsFilesystem) error {
	var args []string
	var devs []sh
	for _, m := range g.members[memberKey{"bcachefs_filesystems", u.name}] {
		b := m.(*config.Bcachefs)
		dev := g.resolve(w, g.info[m].ref)
		devs = append(devs, dev)
		args = append(args, string(Q("--label="+b.Label)))
		if len(b.ExtraFormatArgs) > 0 {
			args = append(args, string(words(b.ExtraFormatArgs)))
		}
		args = append(args, string(dev))
	}
	uuidDev := "/dev/disk/by-uuid/" + fs.UUID
	w.block("if ! disko_bcachefs_exists "+Q(fs.UUID)+"; then", "fi", func() {
		for _, d := range devs {
			w.linef("disko_want %s bcachefs %s || disko_refuse %s bcachefs %s %s", d, u.path.q(), d, u.path.q(), Q("a bcachefs filesystem that is not "+fs.UUID))
		}
		encrypted := sh("")
		if fs.PasswordFile != "" {
			encrypted = " --encrypted <" + Q(fs.PasswordFile)
		}
		w.linef("bcachefs format %s --uuid=%s %s%s >/dev/null", sh(strings.Join(args, " ")), Q(fs.UUID), splitWords(fs.ExtraFormatArgs), encrypted)
	})
	if len(fs.Subvolumes) == 0 {
		return nil
	}
	w.block("(", ")", func() {
		dev := g.resolve(w, &devRef{path: uuidDev})
		g.bcachefsUnlock(w, fs, dev)
		w.raw(`top=$(mktemp -d)`)
		w.raw(`trap 'umount "$top" 2>/dev/null || :; rmdir "$top" 2>/dev/null || :' EXIT`)
		w.linef(`mount -t bcachefs -o %s %s "$top"`, Q(strings.Join(uniq(append([]string{"X-mount.mkdir"}, fs.MountOptions...)), ",")), dev)
		for _, key := range slices.Sorted(maps.Keys(fs.Subvolumes)) {
			sv := fs.Subvolumes[key]
			w.comment(u.path.field("subvolumes").attr(key))
			w.linef(`sv="$top"/%s`, Q(sv.Name))
			w.block(`if [ ! -e "$sv" ]; then`, "fi", func() {
				w.raw(`mkdir -p "$(dirname "$sv")"`)
				w.raw(`bcachefs subvolume create "$sv"`)
			})
		}
		w.raw(`umount "$top"`)
	})
	return nil
}

func (g *gen) bcachefsUnlock(w *writer, fs *config.BcachefsFilesystem, dev sh) {
	if fs.PasswordFile != "" {
		w.linef("bcachefs unlock -k session %s <%s", dev, Q(fs.PasswordFile))
	}
}

func (g *gen) mountBcachefs(u *unit, fs *config.BcachefsFilesystem, owners []*hooked) {
	uuidDev := "/dev/disk/by-uuid/" + fs.UUID
	add := func(p optPath, mp string, opts []string) {
		target := g.target(mp)
		g.addAction(&action{phase: phaseFS, mnt: mp, fsDev: uuidDev, owners: owners,
			mount: g.text(func(w *writer) {
				w.comment(p)
				w.block("if ! findmnt --mountpoint "+Q(target)+" >/dev/null 2>&1; then", "fi", func() {
					dev := g.resolve(w, &devRef{path: uuidDev})
					w.linef("mkdir -p %s", Q(target))
					g.bcachefsUnlock(w, fs, dev)
					w.linef("mount -t bcachefs -o %s %s %s", Q(strings.Join(uniq(opts), ",")), dev, Q(target))
				})
			}),
			unmount: g.text(func(w *writer) {
				w.comment(p)
				w.block("if findmnt --source "+Q("UUID="+fs.UUID)+" --mountpoint "+Q(target)+" >/dev/null 2>&1; then", "fi", func() {
					w.linef("umount %s", Q(target))
				})
			})})
	}
	if fs.Mountpoint != "" {
		add(u.path, fs.Mountpoint, append([]string{"X-mount.mkdir"}, fs.MountOptions...))
	}
	for _, key := range slices.Sorted(maps.Keys(fs.Subvolumes)) {
		sv := fs.Subvolumes[key]
		if sv.Mountpoint != "" {
			opts := append([]string{"X-mount.mkdir", "X-mount.subdir=" + strings.TrimPrefix(sv.Name, "/")}, sv.MountOptions...)
			add(u.path.field("subvolumes").attr(key), sv.Mountpoint, opts)
		}
	}
}

func uniq(list []string) []string {
	var out []string
	for _, s := range list {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
