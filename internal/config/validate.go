package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Validation checks what the decoder cannot: value formats, cross-references between
// nodes, and layouts that disko accepts but that can only fail once disks are being
// written. Every check reports at the option path and keeps going.

var (
	gptSize = regexp.MustCompile(`^(100%|[0-9]+[KMGTP]?)$`)
	// What sgdisk reads: whole numbers, a unit letter with an optional B or iB, or sectors
	// (decimals are refused: sgdisk silently reads +1.5G as one sector).
	sgdiskPos = regexp.MustCompile(`(?i)^[+-]?[0-9]+([KMGTP](i?B)?|s)?$`)
	// What parted reads: a number with a unit (B, s, kB..TB, KiB..TiB, %, cyl, chs).
	partedPos = regexp.MustCompile(`(?i)^-?[0-9]+(\.[0-9]+)?(%|s|b|[kmgt]i?b|[kmgt]|cyl|chs)?$`)
	// What lvcreate reads: -L sizes (the first unit letter counts) and -l percentages with
	// lvm's abbreviations of VG, LV, PVS, FREE and ORIGIN.
	lvSize = regexp.MustCompile(`(?i)^([0-9]+(\.[0-9]+)?([bskmgtpe][a-z]*)?|[0-9]+(\.[0-9]+)?%(v|vg|l|lv|p|pv|pvs|f|fr|fre|free|o|or|ori|orig|origi|origin)?)$`)
	// What zfs create -V reads: a number with an optional unit and B or iB.
	zvolSize      = regexp.MustCompile(`(?i)^[0-9]+(\.[0-9]+)?([bkmgtpez](i?b)?)?$`)
	imageSize     = regexp.MustCompile(`^[0-9]+[KMGTP]?$`)
	swapfileSize  = regexp.MustCompile(`^[0-9]+[KMGTP]$`)
	gptTypeCode   = regexp.MustCompile(`^[0-9A-Fa-f]{4}$`)
	guid          = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
	sizeExamples  = "(examples: 500M, 2G, 100%)"
	deviceExample = "(for example /dev/sda or /dev/disk/by-id/...)"
)

// validator carries what the checks of one layout share.
type validator struct {
	d     *Devices
	probs *Problems
	// mounts maps each mount point to the option path that first claimed it.
	mounts map[string]string
	// labels maps each GPT partition label to the option path that first claimed it.
	labels map[string]string
	// members lists, per aggregate kind and name, the devices that declared membership.
	members map[string]map[string][]string
}

func validate(d *Devices, probs *Problems) {
	v := &validator{d: d, probs: probs, mounts: map[string]string{}, labels: map[string]string{},
		members: map[string]map[string][]string{"lvm_vg": {}, "mdadm": {}, "zpool": {}, "bcachefs_filesystems": {}}}
	if len(d.Disk)+len(d.MDADM)+len(d.Zpool)+len(d.LVMVG)+len(d.Nodev)+len(d.BcachefsFilesystems) == 0 {
		probs.add(RootPath+".disk", "no disks are defined (did you forget to import your disk layout, or is it under disko.devices?)")
	}
	for _, key := range sortedMapKeys(d.Disk) {
		disk := d.Disk[key]
		path := attrPath(RootPath+".disk", key)
		v.absolute(path+".device", disk.Device, "a device path "+deviceExample)
		if !imageSize.MatchString(disk.ImageSize) {
			v.add(path+".imageSize", "%q is not a size (examples: 2G, 512M)", disk.ImageSize)
		}
		v.content(path+".content", disk.Content)
	}
	for _, key := range sortedMapKeys(d.MDADM) {
		v.content(attrPath(RootPath+".mdadm", key)+".content", d.MDADM[key].Content)
	}
	for _, key := range sortedMapKeys(d.LVMVG) {
		v.lvmVG(attrPath(RootPath+".lvm_vg", key), d.LVMVG[key])
	}
	for _, key := range sortedMapKeys(d.Zpool) {
		v.zpool(attrPath(RootPath+".zpool", key), d.Zpool[key])
	}
	for _, key := range sortedMapKeys(d.BcachefsFilesystems) {
		fs := d.BcachefsFilesystems[key]
		path := attrPath(RootPath+".bcachefs_filesystems", key)
		v.uuid(path+".uuid", fs.UUID)
		v.optionalAbsolute(path+".passwordFile", fs.PasswordFile)
		v.mountpoint(path+".mountpoint", fs.Mountpoint)
		for _, sv := range sortedMapKeys(fs.Subvolumes) {
			v.mountpoint(attrPath(path+".subvolumes", sv)+".mountpoint", fs.Subvolumes[sv].Mountpoint)
		}
	}
	for _, key := range sortedMapKeys(d.Nodev) {
		v.mountpoint(attrPath(RootPath+".nodev", key)+".mountpoint", d.Nodev[key].Mountpoint)
	}
	v.references()
}

func (v *validator) add(path, format string, args ...any) { v.probs.add(path, format, args...) }

// content checks a content node and everything below it.
func (v *validator) content(path string, node Node) {
	switch n := node.(type) {
	case *GPT:
		v.gpt(path, n)
	case *Table:
		v.table(path, n)
	case *Filesystem:
		if n.Format == "" {
			v.add(path+".format", "must not be empty (for example ext4, xfs, vfat, btrfs)")
		}
		v.mountpoint(path+".mountpoint", n.Mountpoint)
	case *Swap:
		v.nonEmpty(path+".mountOptions", n.MountOptions)
		if n.RandomEncryption && n.ResumeDevice {
			v.add(path+".resumeDevice", "cannot resume from a swap with randomEncryption: its key is new at every boot")
		}
	case *LUKS:
		v.luks(path, n)
	case *LVMPV:
		v.member("lvm_vg", n.VG, path+".vg", n.Device)
	case *MDRaid:
		v.member("mdadm", n.Name, path+".name", n.Device)
	case *ZFS:
		v.member("zpool", n.Pool, path+".pool", n.Device)
	case *Bcachefs:
		v.member("bcachefs_filesystems", n.Filesystem, path+".filesystem", n.Device)
	case *BTRFS:
		v.mountpoint(path+".mountpoint", n.Mountpoint)
		v.swapfiles(path+".swap", n.Swap)
		for _, key := range sortedMapKeys(n.Subvolumes) {
			sv := n.Subvolumes[key]
			svPath := attrPath(path+".subvolumes", key)
			v.mountpoint(svPath+".mountpoint", sv.Mountpoint)
			v.swapfiles(svPath+".swap", sv.Swap)
		}
	}
}

func (v *validator) gpt(path string, g *GPT) {
	var fillers []string
	for _, key := range sortedMapKeys(g.Partitions) {
		p := g.Partitions[key]
		pPath := attrPath(path+".partitions", key)
		sizeOK := gptSize.MatchString(p.Size)
		if !sizeOK {
			v.add(pPath+".size", "%q is not a size: use a whole number with an optional K, M, G, T or P suffix, or 100%% %s", p.Size, sizeExamples)
		}
		if p.Size == "100%" {
			fillers = append(fillers, key)
		}
		if !sgdiskPos.MatchString(p.Start) {
			v.add(pPath+".start", "%q is not a position sgdisk understands (examples: 0, 1M, 2048s)", p.Start)
		}
		if sizeOK && !sgdiskPos.MatchString(p.End) {
			v.add(pPath+".end", "%q is not a position sgdisk understands (examples: +500M, -10M, -0)", p.End)
		}
		if !gptTypeCode.MatchString(p.Type) && !guid.MatchString(p.Type) {
			v.add(pPath+".type", "%q is not a partition type: use a 4-digit sgdisk code such as EF00, EF02, 8300, 8200 or a type GUID", p.Type)
		}
		if p.UUID != "" {
			v.uuid(pPath+".uuid", p.UUID)
		}
		if n := len([]rune(p.Label)); n > 36 {
			v.add(pPath+".label", "%q is %d characters long; a GPT partition name holds at most 36 (sgdisk would cut it, and the partition would not be found by its label)", p.Label, n)
		} else if strings.HasPrefix(p.Device, "/dev/disk/by-partlabel/") {
			if first, dup := v.labels[p.Label]; dup {
				v.add(pPath+".label", "%q is also the label of %s: both partitions are addressed by it, and by-partlabel links would collide", p.Label, first)
			} else {
				v.labels[p.Label] = pPath
			}
		}
		for i, bit := range p.Attributes {
			if bit < 0 || bit > 63 {
				v.add(indexPath(pPath+".attributes", i), "%d is not a GPT attribute bit (0 to 63)", bit)
			}
		}
		v.content(pPath+".content", p.Content)
	}
	if len(fillers) > 1 {
		v.add(path+".partitions", "partitions %s all have size 100%%, but only one can fill the rest of the disk", strings.Join(fillers, ", "))
	}
}

func (v *validator) table(path string, t *Table) {
	primaries, extended := 0, 0
	for i, p := range t.Partitions {
		pPath := indexPath(path+".partitions", i)
		if !partedPos.MatchString(p.Start) {
			v.add(pPath+".start", "%q is not a position parted understands (examples: 1MiB, 0%%, 50%%)", p.Start)
		}
		if !partedPos.MatchString(p.End) {
			v.add(pPath+".end", "%q is not a position parted understands (examples: 512MiB, 100%%)", p.End)
		}
		switch {
		case t.Format == "gpt":
			if p.Name == "" {
				v.add(pPath+".name", "is required in a gpt-format table (parted names every GPT partition)")
			}
		case p.PartType == "extended":
			extended++
			primaries++
		case p.PartType == "primary":
			primaries++
		case p.PartType == "logical" && extended == 0:
			v.add(pPath+".part-type", "a logical partition must follow an extended partition")
		}
		v.content(pPath+".content", p.Content)
	}
	if t.Format == "msdos" && primaries > 4 {
		v.add(path+".partitions", "an msdos table holds at most 4 primary and extended partitions, this one has %d (use logical partitions inside an extended one)", primaries)
	}
	if extended > 1 {
		v.add(path+".partitions", "an msdos table holds at most one extended partition, this one has %d", extended)
	}
}

func (v *validator) luks(path string, l *LUKS) {
	v.optionalAbsolute(path+".passwordFile", l.PasswordFile)
	v.optionalAbsolute(path+".keyFile", l.KeyFile)
	for i, f := range l.AdditionalKeyFiles {
		v.absolute(indexPath(path+".additionalKeyFiles", i), f, "an absolute path")
	}
	v.content(path+".content", l.Content)
}

func (v *validator) lvmVG(path string, vg *LVMVG) {
	var fillers []string
	for _, key := range sortedMapKeys(vg.LVs) {
		lv := vg.LVs[key]
		lvPath := attrPath(path+".lvs", key)
		if !lvSize.MatchString(lv.Size) {
			v.add(lvPath+".size", "%q is not a size: use a number with an optional unit (10G, 512M) or a percentage (100%%FREE, 50%%VG)", lv.Size)
		}
		if (lv.Size == "100%" || strings.EqualFold(lv.Size, "100%FREE")) && lv.LVMType != "thinlv" {
			fillers = append(fillers, key)
		}
		switch {
		case lv.LVMType == "thinlv" && lv.Pool == "":
			v.add(lvPath+".pool", "is required for a thinlv: name the thin-pool LV it lives in")
		case lv.LVMType == "thinlv":
			if pool, ok := vg.LVs[lv.Pool]; !ok || pool.LVMType != "thin-pool" {
				v.add(lvPath+".pool", "%q is not a logical volume of this group with lvm_type \"thin-pool\"", lv.Pool)
			}
		}
		v.content(lvPath+".content", lv.Content)
	}
	if len(fillers) > 1 {
		v.add(path+".lvs", "logical volumes %s all take 100%% of the free space; only the first created would get any", strings.Join(fillers, ", "))
	}
}

func (v *validator) zpool(path string, pool *Zpool) {
	v.datasetMountpoint(path+".mountpoint", pool.Mountpoint, pool.RootFsOptions)
	for _, key := range sortedMapKeys(pool.Datasets) {
		dsPath := attrPath(path+".datasets", key)
		switch ds := pool.Datasets[key].(type) {
		case *ZFSFS:
			v.datasetMountpoint(dsPath+".mountpoint", ds.Mountpoint, ds.Options)
		case *ZFSVolume:
			if !zvolSize.MatchString(ds.Size) {
				v.add(dsPath+".size", "%q is not a size (examples: 10M, 4G)", ds.Size)
			}
			v.content(dsPath+".content", ds.Content)
		}
	}
}

// datasetMountpoint checks a ZFS dataset's mount point; one that ZFS will not mount
// (mountpoint=none or canmount=off) claims no mount point.
func (v *validator) datasetMountpoint(path, mp string, options map[string]string) {
	if options["mountpoint"] != "none" && options["canmount"] != "off" {
		v.mountpoint(path, mp)
	} else if mp != "" {
		v.absolute(path, mp, "an absolute mount point such as /home")
	}
}

func (v *validator) swapfiles(path string, files map[string]*Swapfile) {
	for _, key := range sortedMapKeys(files) {
		f := files[key]
		if !swapfileSize.MatchString(f.Size) {
			v.add(attrPath(path, key)+".size", "%q is not a swap file size: a whole number with a K, M, G, T or P suffix (examples: 512M, 4G)", f.Size)
		}
		v.nonEmpty(attrPath(path, key)+".options", f.Options)
	}
}

// nonEmpty reports empty strings in an option list where the tool would read them as a
// missing argument (swapon --options).
func (v *validator) nonEmpty(path string, list []string) {
	for i, item := range list {
		if item == "" {
			v.add(indexPath(path, i), "must not be empty")
		}
	}
}

// member records that device declared membership of an aggregate.
func (v *validator) member(kind, name, path, device string) {
	if name == "" {
		v.add(path, "must name an entry of %s", kind)
		return
	}
	v.members[kind][name] = append(v.members[kind][name], device)
	if _, ok := v.aggregates(kind)[name]; !ok {
		msg := fmt.Sprintf("%q names no entry of disko.devices.%s", name, kind)
		if s := suggest(name, v.aggregateNames(kind)); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		} else if names := v.aggregateNames(kind); len(names) > 0 {
			msg += " (defined: " + strings.Join(names, ", ") + ")"
		}
		v.add(path, "%s", msg)
	}
}

func (v *validator) aggregates(kind string) map[string]bool {
	out := map[string]bool{}
	for _, n := range v.aggregateNames(kind) {
		out[n] = true
	}
	return out
}

func (v *validator) aggregateNames(kind string) []string {
	switch kind {
	case "lvm_vg":
		return sortedMapKeys(v.d.LVMVG)
	case "mdadm":
		return sortedMapKeys(v.d.MDADM)
	case "zpool":
		return sortedMapKeys(v.d.Zpool)
	default:
		return sortedMapKeys(v.d.BcachefsFilesystems)
	}
}

// references checks that every aggregate has members, and that a zpool topology names
// exactly the devices that declared membership (disko only finds out when formatting).
func (v *validator) references() {
	for _, kind := range []string{"lvm_vg", "mdadm", "zpool", "bcachefs_filesystems"} {
		member := map[string]string{"lvm_vg": "lvm_pv", "mdadm": "mdraid", "zpool": "zfs", "bcachefs_filesystems": "bcachefs"}[kind]
		for _, name := range v.aggregateNames(kind) {
			if len(v.members[kind][name]) == 0 {
				v.add(attrPath(RootPath+"."+kind, name), "no device is a member: add a content of type %s that names %q", member, name)
			}
		}
	}
	for _, name := range sortedMapKeys(v.d.Zpool) {
		path := attrPath(RootPath+".zpool", name)
		declared := v.members["zpool"][name]
		var named []string
		for _, vd := range v.d.Zpool[name].Vdevs(declared) {
			for _, m := range vd.Members {
				named = append(named, m.Device)
				if !slices.Contains(declared, m.Device) {
					v.add(path+"."+m.Option, "%q is not a device with a zfs content for pool %q (members: %s)", m.Name, name, strings.Join(declared, ", "))
				}
			}
		}
		for _, dev := range declared {
			if !slices.Contains(named, dev) {
				v.add(path+".mode.topology", "%s is a member of pool %q but appears nowhere in its topology", dev, name)
			}
		}
	}
}

func (v *validator) mountpoint(path, mp string) {
	if mp == "" {
		return
	}
	if !v.absolute(path, mp, "an absolute mount point such as /home") {
		return
	}
	clean := strings.TrimSuffix(mp, "/")
	if clean == "" {
		clean = "/"
	}
	if first, dup := v.mounts[clean]; dup {
		v.add(path, "%q is also the mount point of %s", mp, first)
		return
	}
	v.mounts[clean] = path
}

func (v *validator) optionalAbsolute(path, value string) {
	if value != "" {
		v.absolute(path, value, "an absolute path")
	}
}

func (v *validator) absolute(path, value, what string) bool {
	if !strings.HasPrefix(value, "/") || strings.ContainsAny(value, "\x00\n") {
		v.add(path, "%q is not %s", value, what)
		return false
	}
	return true
}

func (v *validator) uuid(path, value string) {
	if !guid.MatchString(value) {
		v.add(path, "%q is not a UUID (example: 809b3a2b-828a-4730-95e1-75b6343e415a)", value)
	}
}
