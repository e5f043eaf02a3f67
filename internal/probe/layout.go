package probe

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// Layout describes the probed disks as a layout (what `disko-compile import` prints), so
// that planning that layout against the same disks finds nothing to do. Partitions keep
// their exact start and size (in sectors where MiB do not divide them), names and type
// codes; filesystems their current mount point below rootMountpoint and their mount
// options; open LUKS containers, LVM volume groups and md arrays with what they hold.
// What the probe could not read (a closed LUKS container's inside, an inactive LV or
// array or ZFS pool, bcachefs members, unreadable disks) is left out with a note: a layout
// never claims what was not read.
func (s *State) Layout(rootMountpoint string) (*config.Devices, []string) {
	im := &importer{s: s, root: rootMountpoint, d: &config.Devices{Disk: map[string]*config.Disk{}}}
	for _, name := range sortedNames(s.Disks) {
		pd := s.Disks[name]
		if pd.Unreadable != "" {
			im.note("disk %s (%s) left out: %s", name, pd.Device, pd.Unreadable)
			continue
		}
		disk := &config.Disk{Type: "disk", Device: pd.Device, Destroy: true, ImageSize: "2G"}
		im.d.Disk[name] = disk
		switch {
		case pd.Table != nil && pd.Table.Label == "gpt":
			disk.Content = im.gpt("disk", name, pd)
		case pd.Table != nil && pd.Table.Label == "dos":
			disk.Content = im.mbr(name, pd)
		case pd.Table != nil:
			im.note("disk %s: a %s partition table has no layout type; its content is left out", name, pd.Table.Label)
		default:
			if n := im.content("disk "+name, pd.Content); n != nil {
				disk.Content = n.(config.DeviceNode)
			}
		}
	}
	return im.d, im.notes
}

// importer builds the layout of a probed State: the disks, and the volume groups and
// arrays their members belong to, each added once when a member is met.
type importer struct {
	s     *State
	root  string // mounts below it become the layout's mount points
	d     *config.Devices
	notes []string
}

func (im *importer) note(format string, args ...any) {
	im.notes = append(im.notes, fmt.Sprintf(format, args...))
}

// gpt describes the GPT of d, the disk (kind "disk") or md array (kind "mdadm") called
// name: a partition labelled as the format script labels it (KIND-NAME-KEY) gets KEY as
// its attribute name and no label of its own.
func (im *importer) gpt(kind, name string, d *Disk) *config.GPT {
	g := &config.GPT{Type: "gpt", EFIGPTPartitionFirst: true, Partitions: map[string]*config.GPTPartition{}}
	last := lastPartition(d.Table)
	prefix := kind + "-" + name + "-"
	for _, p := range d.Table.Partitions {
		key := strings.TrimPrefix(p.Name, prefix)
		if key == "" || g.Partitions[key] != nil {
			key = "part" + strconv.Itoa(p.Number)
		}
		gp := &config.GPTPartition{Start: strconv.FormatInt(p.Start, 10) + "s", Priority: ptr(p.Number)}
		if p.Name != prefix+key {
			gp.Label = p.Name
		}
		gp.Size = sizeOf(p.Size, d.SectorSize)
		if p == last && d.Table.LastLBA-p.End() < alignSectors(d.SectorSize) {
			gp.Size = "100%"
		}
		if code := codegen.PartitionTypeCode(p.Type); code != "" {
			gp.Type = code
		} else {
			gp.Type = p.Type
		}
		if n := im.content(fmt.Sprintf("%s %s partition %d", kind, name, p.Number), p.Content); n != nil {
			gp.Content = n.(config.PartitionNode)
		}
		g.Partitions[key] = gp
	}
	return g
}

func (im *importer) mbr(disk string, d *Disk) *config.Table {
	t := &config.Table{Type: "table", Format: "msdos"}
	parts := slices.Clone(d.Table.Partitions)
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	for _, p := range parts {
		tp := &config.TablePartition{PartType: "primary", Bootable: p.Bootable,
			Start: strconv.FormatInt(p.Start, 10) + "s", End: strconv.FormatInt(p.End(), 10) + "s"}
		switch {
		case isExtended(p.Type):
			tp.PartType = "extended"
		case p.Number > 4:
			tp.PartType = "logical"
		}
		if n := im.content(fmt.Sprintf("disk %s partition %d", disk, p.Number), p.Content); n != nil {
			tp.Content = n.(config.PartitionNode)
		}
		t.Partitions = append(t.Partitions, tp)
	}
	return t
}

// isExtended reports whether an MBR type byte is an extended partition.
func isExtended(t string) bool {
	switch strings.ToLower(t) {
	case "5", "f", "85":
		return true
	}
	return false
}

// content is the layout node of what blkid found, or nil (with a note when something
// was found that the layout cannot describe from what was read).
func (im *importer) content(where string, c *Content) config.Node {
	if c == nil {
		return nil
	}
	root := im.root
	mp, opts := mountOf(c, "/", root)
	switch c.Type {
	case "swap":
		return &config.Swap{Type: "swap", MountOptions: []string{"defaults"}}
	case "btrfs":
		b := &config.BTRFS{Type: "btrfs", Mountpoint: mp, MountOptions: opts}
		if c.Unreadable != "" {
			im.note("%s: btrfs subvolumes not read: %s", where, c.Unreadable)
		}
		for _, sv := range c.Subvolumes {
			smp, sopts := mountOf(c, "/"+sv, root)
			b.Subvolumes = ensureMap(b.Subvolumes)
			b.Subvolumes["/"+sv] = &config.Subvolume{Type: "btrfs_subvol", Mountpoint: smp, MountOptions: sopts}
		}
		for _, file := range sortedNames(c.Swapfiles) {
			sw := &config.Swapfile{Size: swapSize(c.Swapfiles[file]), Options: []string{"defaults"}}
			owner := ""
			for _, sv := range c.Subvolumes {
				if strings.HasPrefix(file, sv+"/") && len(sv) > len(owner) {
					owner = sv
				}
			}
			// A swap file is used through the mount point of what holds it; unmounted,
			// the layout could not say where it is.
			if (owner == "" && b.Mountpoint == "") || (owner != "" && b.Subvolumes["/"+owner].Mountpoint == "") {
				im.note("%s: swap file %s left out: what holds it is not mounted below the root mount point", where, file)
				continue
			}
			if owner == "" {
				b.Swap = ensureMap(b.Swap)
				b.Swap[file] = sw
				continue
			}
			s := b.Subvolumes["/"+owner]
			s.Swap = ensureMap(s.Swap)
			s.Swap[strings.TrimPrefix(file, owner+"/")] = sw
		}
		return b
	case "crypto_LUKS":
		return im.luks(where, c)
	case "LVM2_member":
		return im.pv(where, c)
	case "linux_raid_member":
		return im.mdMember(where, c)
	case "zfs_member":
		return im.zfsMember(where, c)
	case "bcachefs":
		im.note("%s holds %s, which import does not read yet; its content is left out (null: left untouched)", where, c.Type)
		return nil
	}
	if strings.HasPrefix(c.Type, PartitionTable) {
		im.note("%s holds a %s, which import does not describe inside a LUKS container, LV or array; its content is left out (null: left untouched)", where, c.Type)
		return nil
	}
	return &config.Filesystem{Type: "filesystem", Format: c.Type, Mountpoint: mp, MountOptions: opts}
}

// mountOf is where the directory fsroot of the filesystem is mounted below root (as a
// mount point of the installed system), and its mount options without the ones the kernel
// adds by itself. Nothing mounted below root: no mount point and the default options.
func mountOf(c *Content, fsroot, root string) (string, []string) {
	for _, m := range c.Mounts {
		if m.FSRoot != fsroot {
			continue
		}
		mp, ok := below(m.Target, root)
		if !ok {
			continue
		}
		var opts []string
		for _, o := range strings.Split(m.Options, ",") {
			if !kernelOption(o) {
				opts = append(opts, o)
			}
		}
		if len(opts) == 0 {
			opts = []string{"defaults"}
		}
		return mp, opts
	}
	return "", []string{"defaults"}
}

// below is target as a path of the installed system when it lies under root.
func below(target, root string) (string, bool) {
	root = path.Clean(root)
	if root == "/" {
		return target, true
	}
	if target == root {
		return "/", true
	}
	if rest, ok := strings.CutPrefix(target, root+"/"); ok {
		return "/" + rest, true
	}
	return "", false
}

// kernelOption reports whether the kernel shows a mount option whether or not it was
// asked for (defaults, or values it records about the mount itself).
func kernelOption(o string) bool {
	switch {
	case o == "rw", o == "relatime", o == "seclabel", o == "attr2", o == "inode64", o == "noquota",
		o == "ssd", o == "space_cache", o == "discard=async", o == "errors=remount-ro":
		return true
	case strings.HasPrefix(o, "subvol="), strings.HasPrefix(o, "subvolid="), strings.HasPrefix(o, "space_cache="),
		strings.HasPrefix(o, "logbufs="), strings.HasPrefix(o, "logbsize="), strings.HasPrefix(o, "sunit="), strings.HasPrefix(o, "swidth="):
		return true
	}
	return false
}

// lastPartition is the partition that ends last.
func lastPartition(t *Table) *Partition {
	var last *Partition
	for _, p := range t.Partitions {
		if last == nil || p.End() > last.End() {
			last = p
		}
	}
	return last
}

// alignSectors is one MiB in sectors: the alignment partitioning tools use, and so the
// tolerance within which a partition "fills" the disk or "has" a size.
func alignSectors(ss int64) int64 { return (1 << 20) / ss }

// sizeOf writes a size in sectors as an sgdisk size: in M, K, or (when neither divides
// it) plain sectors.
func sizeOf(sectors, ss int64) string {
	b := sectors * ss
	switch {
	case b%(1<<20) == 0:
		return strconv.FormatInt(b>>20, 10) + "M"
	case b%(1<<10) == 0:
		return strconv.FormatInt(b>>10, 10) + "K"
	}
	return strconv.FormatInt(sectors, 10)
}

func swapSize(b int64) string {
	if b%(1<<20) == 0 {
		return strconv.FormatInt(b>>20, 10) + "M"
	}
	return strconv.FormatInt((b+1023)>>10, 10) + "K"
}

func ensureMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

func sortedNames[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ptr[T any](v T) *T { return &v }
