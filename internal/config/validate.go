package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/lazyregexp"
)

// Validation checks what the decoder cannot: value formats, cross-references between
// nodes, and layouts that disko accepts but that can only fail once disks are being
// written. Every check reports at the option path and keeps going.

// SgdiskTypes (parttypes.go) is asked from sgdisk itself.
//go:generate sh parttypes_gen.sh

var (
	// What may follow "mkfs." in a tool name.
	fsFormat      = lazyregexp.WithMatcher(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`, isFormatName)
	gptTypeCode   = lazyregexp.WithMatcher(`^[0-9A-Fa-f]{4}$`, isTypeCode)
	guid          = lazyregexp.WithMatcher(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`, isGUID)
	sizeExamples  = "(examples: 500M, 2G, 100%)"
	deviceExample = "(for example /dev/sda or /dev/disk/by-id/...)"
)

// validator carries what the checks of one layout share.
type validator struct {
	d     *Devices
	probs *Problems
	// mounts maps each mount point to the option path that first claimed it.
	mounts map[string]Path
	// labels maps each GPT partition label to the option path that first claimed it.
	labels map[string]Path
	// members lists, per aggregate kind and name, the devices that declared membership.
	members map[string]map[string][]string
	// luksNames maps each LUKS device-mapper name to the option path that first claimed it.
	luksNames map[string]Path
	// resume is the option path of the swap that is the resume device, and its device.
	resume       Path
	resumeDevice string
}

func validate(d *Devices, probs *Problems) {
	v := &validator{d: d, probs: probs, mounts: map[string]Path{}, labels: map[string]Path{}, luksNames: map[string]Path{},
		members: map[string]map[string][]string{"lvm_vg": {}, "mdadm": {}, "zpool": {}, "bcachefs_filesystems": {}}}
	switch {
	case len(d.Disk)+len(d.MDADM)+len(d.Zpool)+len(d.LVMVG)+len(d.Nodev)+len(d.BcachefsFilesystems) == 0:
		probs.add(rootPath.Field("disk"), "no disks are defined (did you forget to import your disk layout, or is it under disko.devices?)")
	case len(d.Disk) == 0:
		// disko's scripts stop the same way: without a disk there is nothing to format, and
		// every array, group, pool or filesystem is built from disks.
		probs.add(rootPath.Field("disk"), "no disks are defined: a layout needs at least one disk, as in disko (mounts without a device alone belong in fileSystems of the NixOS configuration)")
	}
	for _, key := range slices.Sorted(maps.Keys(d.Disk)) {
		disk := d.Disk[key]
		path := rootPath.Field("disk").Attr(key)
		v.absolute(path.Field("device"), disk.Device, "a device path "+deviceExample)
		if !patterns["imageSize"].MatchString(disk.ImageSize) {
			v.add(path.Field("imageSize"), "%q is not a size (examples: 2G, 512M)", disk.ImageSize)
		}
		v.content(path.Field("content"), disk.Content)
	}
	for _, key := range slices.Sorted(maps.Keys(d.MDADM)) {
		path := rootPath.Field("mdadm").Attr(key)
		v.toolName(namePath(path, key, d.MDADM[key].Name), d.MDADM[key].Name, "mdadm")
		v.content(path.Field("content"), d.MDADM[key].Content)
	}
	for _, key := range slices.Sorted(maps.Keys(d.LVMVG)) {
		v.lvmVG(rootPath.Field("lvm_vg").Attr(key), key, d.LVMVG[key])
	}
	for _, key := range slices.Sorted(maps.Keys(d.Zpool)) {
		v.zpool(rootPath.Field("zpool").Attr(key), key, d.Zpool[key])
	}
	for _, key := range slices.Sorted(maps.Keys(d.BcachefsFilesystems)) {
		fs := d.BcachefsFilesystems[key]
		path := rootPath.Field("bcachefs_filesystems").Attr(key)
		v.uuid(path.Field("uuid"), fs.UUID)
		v.optionalAbsolute(path.Field("passwordFile"), fs.PasswordFile)
		v.mountpoint(path.Field("mountpoint"), fs.Mountpoint)
		for _, key := range slices.Sorted(maps.Keys(fs.Subvolumes)) {
			sv := fs.Subvolumes[key]
			svPath := path.Field("subvolumes").Attr(key)
			v.subvolumeName(namePath(svPath, key, sv.Name), sv.Name, "X-mount.subdir=")
			v.mountpoint(svPath.Field("mountpoint"), sv.Mountpoint)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(d.Nodev)) {
		path := rootPath.Field("nodev").Attr(key)
		v.toolName(path.Field("device"), d.Nodev[key].Device, "mount")
		v.mountpoint(path.Field("mountpoint"), d.Nodev[key].Mountpoint)
	}
	v.references()
	v.cycles()
	v.noNUL(rootPath, reflect.ValueOf(d))
}

// namePath is the option path to report a node's name at: the name option when it was
// set to something else than the attribute name, else the entry itself.
func namePath(entry Path, key, name string) Path {
	if name == key {
		return entry
	}
	return entry.Field("name")
}

func (v *validator) add(path Path, format string, args ...any) {
	v.probs.add(path, format, args...)
}

// content checks a content node and everything below it.
func (v *validator) content(path Path, node Node) {
	if node != nil {
		// Every content node may name its device itself; the scripts pass it to the
		// tools as a plain argument.
		v.optionalDevice(path.Field("device"), reflect.ValueOf(node).Elem().FieldByName("Device").String())
	}
	switch n := node.(type) {
	case *GPT:
		v.gpt(path, n)
	case *Table:
		v.table(path, n)
	case *Filesystem:
		if n.Format == "" {
			v.add(path.Field("format"), "must not be empty (for example ext4, xfs, vfat, btrfs)")
		} else if !fsFormat.MatchString(n.Format) {
			v.add(path.Field("format"), "%q is not a filesystem type with a mkfs tool: letters, digits and . _ + - after a letter or digit (for example ext4, xfs, vfat, btrfs)", n.Format)
		}
		v.mountpoint(path.Field("mountpoint"), n.Mountpoint)
	case *Swap:
		v.nonEmpty(path.Field("mountOptions"), n.MountOptions)
		switch {
		case n.RandomEncryption && n.ResumeDevice:
			v.add(path.Field("resumeDevice"), "cannot resume from a swap with randomEncryption: its key is new at every boot")
		case n.ResumeDevice && !v.resume.IsZero() && v.resumeDevice != n.Device:
			v.add(path.Field("resumeDevice"), "is also set at %s: NixOS has only one boot.resumeDevice", v.resume)
		case n.ResumeDevice:
			v.resume, v.resumeDevice = path, n.Device
		}
	case *LUKS:
		v.luks(path, n)
	case *LVMPV:
		v.member("lvm_vg", n.VG, path.Field("vg"), n.Device)
	case *MDRaid:
		v.member("mdadm", n.Name, path.Field("name"), n.Device)
	case *ZFS:
		v.member("zpool", n.Pool, path.Field("pool"), n.Device)
	case *Bcachefs:
		v.member("bcachefs_filesystems", n.Filesystem, path.Field("filesystem"), n.Device)
	case *BTRFS:
		v.mountpoint(path.Field("mountpoint"), n.Mountpoint)
		v.swapfiles(path, n.Mountpoint, n.Swap)
		for _, key := range slices.Sorted(maps.Keys(n.Subvolumes)) {
			sv := n.Subvolumes[key]
			svPath := path.Field("subvolumes").Attr(key)
			v.subvolumeName(namePath(svPath, key, sv.Name), sv.Name, "subvol=")
			v.mountpoint(svPath.Field("mountpoint"), sv.Mountpoint)
			v.swapfiles(svPath, sv.Mountpoint, sv.Swap)
		}
	}
}

func (v *validator) gpt(path Path, g *GPT) {
	var fillers []string
	for _, key := range slices.Sorted(maps.Keys(g.Partitions)) {
		p := g.Partitions[key]
		pPath := path.Field("partitions").Attr(key)
		v.optionalDevice(pPath.Field("device"), p.Device)
		sizeOK := patterns["gptSize"].MatchString(p.Size)
		if !sizeOK {
			v.add(pPath.Field("size"), "%q is not a size: use a whole number with an optional K, M, G, T or P suffix, or 100%% %s", p.Size, sizeExamples)
		}
		if p.Size == "100%" {
			fillers = append(fillers, key)
		}
		if _, err := ParsePosition(p.Start); err != nil {
			v.add(pPath.Field("start"), "%v", err)
		}
		if _, err := ParsePosition(p.End); err != nil && sizeOK {
			if p.End == "+"+p.Size { // the end was derived from the size
				v.add(pPath.Field("size"), "%q is too large (at most 4 EiB)", p.Size)
			} else {
				v.add(pPath.Field("end"), "%v", err)
			}
		}
		if p.Alignment != nil && *p.Alignment < 0 {
			v.add(pPath.Field("alignment"), "%d is not an alignment: use a number of sectors, or 0 for sgdisk's default", *p.Alignment)
		}
		if !gptTypeCode.MatchString(p.Type) && !guid.MatchString(p.Type) {
			v.add(pPath.Field("type"), "%q is not a partition type: use a 4-digit sgdisk code such as EF00, EF02, 8300, 8200 or a type GUID", p.Type)
		} else if _, known := SgdiskTypes[strings.ToUpper(p.Type)]; gptTypeCode.MatchString(p.Type) && !known {
			v.add(pPath.Field("type"), "%q is not a partition type code sgdisk knows (sgdisk -L lists them; or use a type GUID)", p.Type)
		}
		if p.UUID != "" {
			v.uuid(pPath.Field("uuid"), p.UUID)
		}
		if n := len([]rune(p.Label)); n > 36 {
			v.add(pPath.Field("label"), "%q is %d characters long; a GPT partition name holds at most 36 (sgdisk would cut it, and the partition would not be found by its label)", p.Label, n)
		} else if strings.HasPrefix(p.Device, "/dev/disk/by-partlabel/") {
			if first, dup := v.labels[p.Label]; dup {
				v.add(pPath.Field("label"), "%q is also the label of %s: both partitions are addressed by it, and by-partlabel links would collide", p.Label, first)
			} else {
				v.labels[p.Label] = pPath
			}
		}
		for i, bit := range p.Attributes {
			switch {
			case bit < 0 || bit > 63:
				v.add(pPath.Field("attributes").Index(i), "%d is not a GPT attribute bit (0 to 63)", bit)
			case bit > 2 && bit < 48:
				v.add(pPath.Field("attributes").Index(i), "bit %d is reserved by UEFI and cannot be set (use 0, 1, 2 or 48 to 63)", bit)
			}
		}
		v.content(pPath.Field("content"), p.Content)
	}
	if len(fillers) > 1 {
		v.add(path.Field("partitions"), "partitions %s all have size 100%%, but only one can fill the rest of the disk", strings.Join(fillers, ", "))
	}
}

func (v *validator) table(path Path, t *Table) {
	primaries, extended := 0, 0
	for i, p := range t.Partitions {
		pPath := path.Field("partitions").Index(i)
		v.optionalDevice(pPath.Field("device"), p.Device)
		if !patterns["partedPosition"].MatchString(p.Start) {
			v.add(pPath.Field("start"), "%q is not a position parted understands (examples: 1MiB, 0%%, 50%%)", p.Start)
		}
		if !patterns["partedPosition"].MatchString(p.End) {
			v.add(pPath.Field("end"), "%q is not a position parted understands (examples: 512MiB, 100%%)", p.End)
		}
		switch {
		case t.Format == "gpt":
			if p.Name == "" {
				v.add(pPath.Field("name"), "is required in a gpt-format table (parted names every GPT partition)")
			}
		case p.PartType == "extended":
			extended++
			primaries++
		case p.PartType == "primary":
			primaries++
		case p.PartType == "logical" && extended == 0:
			v.add(pPath.Field("part-type"), "a logical partition must follow an extended partition")
		}
		v.content(pPath.Field("content"), p.Content)
	}
	if t.Format == "msdos" && primaries > 4 {
		v.add(path.Field("partitions"), "an msdos table holds at most 4 primary and extended partitions, this one has %d (use logical partitions inside an extended one)", primaries)
	}
	if extended > 1 {
		v.add(path.Field("partitions"), "an msdos table holds at most one extended partition, this one has %d", extended)
	}
}

func (v *validator) luks(path Path, l *LUKS) {
	if l.Name == "" {
		v.add(path.Field("name"), "must not be empty: it names the opened container /dev/mapper/NAME")
	}
	v.toolName(path.Field("name"), l.Name, "cryptsetup")
	if first, dup := v.luksNames[l.Name]; dup && l.Name != "" {
		v.add(path.Field("name"), "%q is also the name of the LUKS container at %s: device-mapper names must be unique", l.Name, first)
	} else {
		v.luksNames[l.Name] = path
	}
	for _, key := range slices.Sorted(maps.Keys(l.Settings)) {
		sPath := path.Field("settings").Attr(key)
		value := l.Settings[key]
		v.nixNumbers(sPath, value)
		// The settings the scripts read as well, with the types NixOS gives them.
		switch key {
		case "keyFile":
			if _, ok := value.(string); !ok {
				v.add(sPath, "must be a string (the key file's path), not %s", describe(value))
			}
		case "keyFileSize", "keyFileOffset":
			if n, ok := value.(json.Number); !ok || !wholeNumber(n) {
				v.add(sPath, "must be a whole number of bytes, not %s", describe(value))
			}
		case "allowDiscards", "bypassWorkqueues":
			if _, ok := value.(bool); !ok {
				v.add(sPath, "must be true or false, not %s", describe(value))
			}
		}
	}
	v.optionalAbsolute(path.Field("passwordFile"), l.PasswordFile)
	v.optionalAbsolute(path.Field("keyFile"), l.KeyFile)
	for i, f := range l.AdditionalKeyFiles {
		v.absolute(path.Field("additionalKeyFiles").Index(i), f, "an absolute path")
	}
	v.content(path.Field("content"), l.Content)
}

func (v *validator) lvmVG(path Path, key string, vg *LVMVG) {
	v.toolName(namePath(path, key, vg.Name), vg.Name, "vgcreate")
	var fillers []string
	for _, key := range slices.Sorted(maps.Keys(vg.LVs)) {
		lv := vg.LVs[key]
		lvPath := path.Field("lvs").Attr(key)
		v.toolName(namePath(lvPath, key, lv.Name), lv.Name, "lvcreate")
		if !patterns["lvSize"].MatchString(lv.Size) {
			v.add(lvPath.Field("size"), "%q is not a size: use a number with an optional unit (10G, 512M) or a percentage (100%%FREE, 50%%VG)", lv.Size)
		}
		if (lv.Size == "100%" || strings.EqualFold(lv.Size, "100%FREE")) && lv.LVMType != "thinlv" {
			fillers = append(fillers, key)
		}
		switch {
		case lv.LVMType == "thinlv" && lv.Pool == "":
			v.add(lvPath.Field("pool"), "is required for a thinlv: name the thin-pool LV it lives in")
		case lv.LVMType == "thinlv":
			if pool, ok := vg.LVs[lv.Pool]; !ok || pool.LVMType != "thin-pool" {
				v.add(lvPath.Field("pool"), "%q is not a logical volume of this group with lvm_type \"thin-pool\"", lv.Pool)
			}
		}
		v.content(lvPath.Field("content"), lv.Content)
	}
	if len(fillers) > 1 {
		v.add(path.Field("lvs"), "logical volumes %s all take 100%% of the free space; only the first created would get any", strings.Join(fillers, ", "))
	}
}

func (v *validator) zpool(path Path, key string, pool *Zpool) {
	v.toolName(namePath(path, key, pool.Name), pool.Name, "zpool")
	v.datasetMountpoint(path.Field("mountpoint"), pool.Mountpoint, pool.RootFsOptions)
	for _, key := range slices.Sorted(maps.Keys(pool.Datasets)) {
		dsPath := path.Field("datasets").Attr(key)
		switch ds := pool.Datasets[key].(type) {
		case *ZFSFS:
			v.datasetMountpoint(dsPath.Field("mountpoint"), ds.Mountpoint, ds.Options)
		case *ZFSVolume:
			if !patterns["zvolSize"].MatchString(ds.Size) {
				v.add(dsPath.Field("size"), "%q is not a size (examples: 10M, 4G)", ds.Size)
			}
			v.content(dsPath.Field("content"), ds.Content)
		}
	}
}

// datasetMountpoint checks a ZFS dataset's mount point; one that ZFS will not mount
// (mountpoint=none or canmount=off) claims no mount point.
func (v *validator) datasetMountpoint(path Path, mp string, options map[string]string) {
	if options["mountpoint"] != "none" && options["canmount"] != "off" {
		v.mountpoint(path, mp)
	} else if mp != "" {
		v.absolute(path, mp, "an absolute mount point such as /home")
	}
}

// swapfiles checks the swap files of the filesystem or subvolume at path, mounted at
// mountpoint.
func (v *validator) swapfiles(path Path, mountpoint string, files map[string]*Swapfile) {
	for _, key := range slices.Sorted(maps.Keys(files)) {
		f := files[key]
		fPath := path.Field("swap").Attr(key)
		if !patterns["swapfileSize"].MatchString(f.Size) {
			v.add(fPath.Field("size"), "%q is not a swap file size: a whole number with a K, M, G, T or P suffix (examples: 512M, 4G)", f.Size)
		}
		if mountpoint == "" {
			// NixOS finds a swap file by its path in the mounted system.
			v.add(fPath, "a swap file needs its filesystem or subvolume to be mounted: set mountpoint at %s", path)
		}
		v.nonEmpty(fPath.Field("options"), f.Options)
	}
}

// nonEmpty reports empty strings in an option list where the tool would read them as a
// missing argument (swapon --options).
func (v *validator) nonEmpty(path Path, list []string) {
	for i, item := range list {
		if item == "" {
			v.add(path.Index(i), "must not be empty")
		}
	}
}

// member records that device declared membership of an aggregate.
func (v *validator) member(kind, name string, path Path, device string) {
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
		return slices.Sorted(maps.Keys(v.d.LVMVG))
	case "mdadm":
		return slices.Sorted(maps.Keys(v.d.MDADM))
	case "zpool":
		return slices.Sorted(maps.Keys(v.d.Zpool))
	default:
		return slices.Sorted(maps.Keys(v.d.BcachefsFilesystems))
	}
}

// references checks that every aggregate has members, and that a zpool topology names
// exactly the devices that declared membership (disko only finds out when formatting).
func (v *validator) references() {
	for _, kind := range []string{"lvm_vg", "mdadm", "zpool", "bcachefs_filesystems"} {
		member := map[string]string{"lvm_vg": "lvm_pv", "mdadm": "mdraid", "zpool": "zfs", "bcachefs_filesystems": "bcachefs"}[kind]
		for _, name := range v.aggregateNames(kind) {
			if len(v.members[kind][name]) == 0 {
				v.add(rootPath.Field(kind).Attr(name), "no device is a member: add a content of type %s that names %q", member, name)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(v.d.Zpool)) {
		path := rootPath.Field("zpool").Attr(name)
		declared := v.members["zpool"][name]
		var named []string
		for _, vd := range v.d.Zpool[name].Vdevs(declared) {
			for _, m := range vd.Members {
				named = append(named, m.Device)
				if !slices.Contains(declared, m.Device) {
					v.add(path.Field(m.Option), "%q is not a device with a zfs content for pool %q (members: %s)", m.Name, name, strings.Join(declared, ", "))
				}
			}
		}
		for _, dev := range declared {
			if !slices.Contains(named, dev) {
				v.add(path.Field("mode.topology"), "%s is a member of pool %q but appears nowhere in its topology", dev, name)
			}
		}
	}
}

func (v *validator) mountpoint(path Path, mp string) {
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

// optionalDevice checks a device path that may be left to its default.
func (v *validator) optionalDevice(path Path, value string) {
	if value != "" {
		v.absolute(path, value, "a device path "+deviceExample)
	}
}

func (v *validator) optionalAbsolute(path Path, value string) {
	if value != "" {
		v.absolute(path, value, "an absolute path")
	}
}

func (v *validator) absolute(path Path, value, what string) bool {
	switch {
	case strings.ContainsRune(value, 0):
		return false // noNUL reports it
	case strings.ContainsAny(value, "\n\r"):
		v.add(path, "%q contains a line break, which fstab and the scripts' messages cannot carry (%s)", value, what)
	case !strings.HasPrefix(value, "/"):
		v.add(path, "%q is not %s", value, what)
	default:
		return true
	}
	return false
}

// toolName refuses a name that a tool would read as an option: the scripts pass names
// such as a LUKS, volume group or pool name as plain arguments (cryptsetup open DEV NAME,
// vgcreate NAME PVS, zpool create NAME ...), where "-f" or "--help" changes what the tool
// does instead of naming something.
func (v *validator) toolName(path Path, name, tool string) {
	if strings.HasPrefix(name, "-") {
		v.add(path, "%q starts with \"-\", which %s would read as an option (use a name that starts with a letter or digit)", name, tool)
	}
}

// subvolumeName refuses a subvolume name that the mount option carrying it (subvol= for
// btrfs, X-mount.subdir= for bcachefs) cannot hold: mount splits options at commas and
// reads double quotes as quoting, so `@a"b` silently mounts the top level instead, and a
// "." or ".." component would create the subvolume outside the filesystem's mount.
func (v *validator) subvolumeName(path Path, name, option string) {
	if i := strings.IndexAny(name, "\",\\"); i >= 0 {
		v.add(path, "%q contains %q, which the mount option %sNAME cannot carry (use letters, digits, spaces and other punctuation)", name, name[i:i+1], option)
	}
	for _, c := range strings.Split(name, "/") {
		if c == "." || c == ".." {
			v.add(path, "%q has a %q component: a subvolume must lie inside its filesystem", name, c)
			break
		}
	}
	if strings.Trim(name, "/") == "" {
		v.add(path, "%q names the top level of the filesystem, not a subvolume", name)
	}
}

// nixNumbers refuses numbers in a free-form value (LUKS settings) that Nix cannot hold:
// whole numbers beyond 64 bits are written as floats, and floats beyond float64 not at all.
func (v *validator) nixNumbers(path Path, value any) {
	switch val := value.(type) {
	case json.Number:
		if _, err := val.Float64(); err != nil {
			v.add(path, "%s is not a number Nix can hold", val)
		}
	case []any:
		for i, item := range val {
			v.nixNumbers(path.Index(i), item)
		}
	case map[string]any:
		for _, key := range slices.Sorted(maps.Keys(val)) {
			v.nixNumbers(path.Attr(key), val[key])
		}
	}
}

// wholeNumber reports whether n is a whole number that is not negative.
func wholeNumber(n json.Number) bool {
	i, err := n.Int64()
	return err == nil && i >= 0
}

// noNUL refuses NUL bytes in every string of the layout: no command line, fstab or Nix
// string can hold one.
func (v *validator) noNUL(path Path, val reflect.Value) {
	switch val.Kind() {
	case reflect.String:
		if strings.ContainsRune(val.String(), 0) {
			v.add(path, "%q contains a NUL byte, which no command line or Nix string can carry", val.String())
		}
	case reflect.Pointer, reflect.Interface:
		if !val.IsNil() {
			v.noNUL(path, val.Elem())
		}
	case reflect.Slice:
		for i := range val.Len() {
			v.noNUL(path.Index(i), val.Index(i))
		}
	case reflect.Map:
		keys := val.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			kp := path.Attr(k.String())
			if strings.ContainsRune(k.String(), 0) {
				v.add(kp, "the name contains a NUL byte, which no command line or Nix string can carry")
				continue
			}
			v.noNUL(kp, val.MapIndex(k))
		}
	case reflect.Struct:
		if val.Type() == reflect.TypeFor[ZpoolMode]() {
			v.noNUL(path, reflect.ValueOf(val.Interface().(ZpoolMode).Topology))
			return
		}
		for _, f := range jsonFields(val.Type()) {
			if fv := val.FieldByIndex(f.index); mayHoldNUL(fv) {
				v.noNUL(path.Field(f.name), fv)
			}
		}
	}
}

// mayHoldNUL says whether noNUL has anything to look at in val; it saves building the
// option path of every clean option.
func mayHoldNUL(val reflect.Value) bool {
	switch val.Kind() {
	case reflect.String:
		return strings.ContainsRune(val.String(), 0)
	case reflect.Pointer, reflect.Interface:
		return !val.IsNil()
	case reflect.Slice, reflect.Map:
		return val.Len() > 0
	case reflect.Struct:
		return true
	}
	return false
}

func (v *validator) uuid(path Path, value string) {
	if !guid.MatchString(value) {
		v.add(path, "%q is not a UUID (example: 809b3a2b-828a-4730-95e1-75b6343e415a)", value)
	}
}
