package codegen

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// blkidType is the TYPE blkid reports for a filesystem made by mkfs.FORMAT.
func blkidType(format string) string {
	switch format {
	case "vfat", "fat", "msdos", "fat12", "fat16", "fat32":
		return "vfat"
	case "ntfs", "ntfs3":
		return "ntfs"
	}
	return format
}

// filesystem: mkfs.FORMAT on a blank device (disko: `blkid` finds no TYPE), kept when the
// device already holds that filesystem, refused when it holds anything else.
func (g *gen) createFilesystem(w *writer, p optPath, n *config.Filesystem, dev sh) error {
	if !config.IsFormatName(n.Format) {
		return fmt.Errorf("%s: %q is not a filesystem type with a mkfs tool (examples: ext4, xfs, vfat)", p.field("format"), n.Format)
	}
	w.block(sh("if disko_want "+string(dev)+" ")+Q(blkidType(n.Format))+" "+p.q()+"; then", "fi", func() {
		w.linef("%s %s%s", Q("mkfs."+n.Format), wordsThen(n.ExtraArgs), dev)
	})
	return nil
}

func (g *gen) mountFilesystem(p optPath, n *config.Filesystem, ref *devRef, owners []*hooked) {
	if n.Mountpoint == "" {
		return
	}
	target := g.target(n.Mountpoint)
	g.addAction(&action{phase: phaseFS, mnt: n.Mountpoint, fsDev: n.Device, owners: owners,
		mount: g.text(func(w *writer) {
			w.comment(p)
			dev := g.resolve(w, ref)
			w.block(sh("if ! disko_mounted "+string(dev)+" ")+Q(target)+"; then", "fi", func() {
				w.linef("mount -t %s %s-o X-mount.mkdir %s %s", Q(n.Format), mountOpts(n.MountOptions), dev, Q(target))
			})
		}),
		unmount: g.umountText(p, ref, target)})
}

// umountText unmounts target when the device of ref is mounted there.
func (g *gen) umountText(p optPath, ref *devRef, target string) string {
	return g.text(func(w *writer) {
		w.comment(p)
		cond, dev := g.resolveNow(ref)
		w.block("if "+cond+" && disko_mounted "+dev+" "+Q(target)+"; then", "fi", func() {
			w.linef("umount %s", Q(target))
		})
	})
}

// mountOpts is "-o A -o B " for each mount option.
func mountOpts(opts []string) sh {
	var b strings.Builder
	for _, o := range opts {
		b.WriteString("-o " + string(Q(o)) + " ")
	}
	return sh(b.String())
}

// wordsThen is the quoted words followed by a space, or nothing for an empty list.
func wordsThen(list []string) sh {
	if len(list) == 0 {
		return ""
	}
	return words(list) + " "
}

// splitThen is splitWords followed by a space, or nothing.
func splitThen(list []string) sh {
	s := splitWords(list)
	if s == "" {
		return ""
	}
	return s + " "
}

// swap: mkswap on a blank device; swapon when mounting (unless DISKO_SKIP_SWAP=1, which
// disko-install sets), swapoff when unmounting. A randomly encrypted swap is left to
// NixOS entirely, as disko does.
func (g *gen) createSwap(w *writer, p optPath, n *config.Swap, dev sh) {
	if n.RandomEncryption {
		w.raw("# randomEncryption: NixOS sets this swap up with a new key at every boot")
		return
	}
	w.block("if disko_want "+dev+" swap "+p.q()+"; then", "fi", func() {
		w.linef("mkswap %s%s", splitThen(n.ExtraArgs), dev)
	})
}

func (g *gen) mountSwap(p optPath, n *config.Swap, ref *devRef, owners []*hooked) {
	if n.RandomEncryption {
		return
	}
	var args []string
	switch n.DiscardPolicy {
	case "":
	case "both":
		args = append(args, "--discard")
	default:
		args = append(args, "--discard="+n.DiscardPolicy)
	}
	if n.Priority != nil {
		args = append(args, "--priority="+strconv.Itoa(*n.Priority))
	}
	args = append(args, "--options="+strings.Join(n.MountOptions, ","))
	g.addAction(&action{phase: phaseSwap, owners: owners,
		mount: g.text(func(w *writer) {
			w.comment(p)
			dev := g.resolve(w, ref)
			w.block(`if [ "${DISKO_SKIP_SWAP:-}" != 1 ] && ! disko_swap_active `+dev+"; then", "fi", func() {
				w.linef("swapon %s %s", words(args), dev)
			})
		}),
		unmount: g.text(func(w *writer) {
			w.comment(p)
			cond, dev := g.resolveNow(ref)
			w.block("if "+cond+" && disko_swap_active "+dev+"; then", "fi", func() {
				w.linef("swapoff %s", dev)
			})
		})})
}
