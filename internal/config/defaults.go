package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/diskoanywhere/diskoanywhere/internal/lazyregexp"
)

// Computed defaults: the options whose default depends on other options or on where the
// node sits (the `defaultText` tags in model.go describe each of them). Device paths are
// computed here, exactly as disko names them, so that a machine installed with disko keeps
// booting after switching: every later stage reads Device and never recomputes it.

// owner is the named node a partition table sits in; partition labels are derived from it.
type owner struct {
	kind, name string
}

func applyDefaults(d *Devices, probs *Problems) {
	for _, key := range slices.Sorted(maps.Keys(d.Disk)) {
		disk := d.Disk[key]
		path := rootPath.Field("disk").Attr(key)
		if disk.Name == "" {
			disk.Name = strings.ReplaceAll(key, "/", "_")
		}
		if disk.ImageName == "" {
			disk.ImageName = disk.Name
		}
		defaultContent(probs, path.Field("content"), disk.Content, disk.Device, owner{"disk", disk.Name})
	}
	for _, key := range slices.Sorted(maps.Keys(d.MDADM)) {
		md := d.MDADM[key]
		if md.Name == "" {
			md.Name = key
		}
		md.Device = computedDevice(probs, rootPath.Field("mdadm").Attr(key).Field("device"), md.Device, "/dev/md/"+md.Name)
		defaultContent(probs, rootPath.Field("mdadm").Attr(key).Field("content"), md.Content, md.Device, owner{"mdadm", md.Name})
	}
	for _, key := range slices.Sorted(maps.Keys(d.LVMVG)) {
		vg := d.LVMVG[key]
		if vg.Name == "" {
			vg.Name = key
		}
		for _, lvKey := range slices.Sorted(maps.Keys(vg.LVs)) {
			lv := vg.LVs[lvKey]
			if lv.Name == "" {
				lv.Name = lvKey
			}
			if lv.Priority == nil {
				lv.Priority = ptr(lvPriority(lv))
			}
			lvPath := rootPath.Field("lvm_vg").Attr(key).Field("lvs").Attr(lvKey)
			lv.Device = computedDevice(probs, lvPath.Field("device"), lv.Device, "/dev/"+vg.Name+"/"+lv.Name)
			defaultContent(probs, lvPath.Field("content"), lv.Content, lv.Device, owner{"lvm_vg", vg.Name})
		}
	}
	for _, key := range slices.Sorted(maps.Keys(d.Zpool)) {
		pool := d.Zpool[key]
		if pool.Name == "" {
			pool.Name = key
		}
		for _, dsKey := range slices.Sorted(maps.Keys(pool.Datasets)) {
			dsPath := rootPath.Field("zpool").Attr(key).Field("datasets").Attr(dsKey)
			switch ds := pool.Datasets[dsKey].(type) {
			case *ZFSFS:
				if ds.Name == "" {
					ds.Name = dsKey
				}
			case *ZFSVolume:
				if ds.Name == "" {
					ds.Name = dsKey
				}
				ds.Device = computedDevice(probs, dsPath.Field("device"), ds.Device, "/dev/zvol/"+pool.Name+"/"+ds.Name)
				defaultContent(probs, dsPath.Field("content"), ds.Content, ds.Device, owner{"zfs_volume", ds.Name})
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(d.BcachefsFilesystems)) {
		fs := d.BcachefsFilesystems[key]
		if fs.Name == "" {
			fs.Name = key
		}
		if fs.UUID == "" {
			fs.UUID = nameUUID(fs.Name)
		}
		for _, svKey := range slices.Sorted(maps.Keys(fs.Subvolumes)) {
			sv := fs.Subvolumes[svKey]
			if sv.Name == "" {
				sv.Name = svKey
			}
			if sv.MountOptions == nil {
				// disko's default, so that config.disko.devices reads the same; the
				// generators put both options first anyway and drop duplicates.
				sv.MountOptions = []string{"X-mount.mkdir", "X-mount.subdir=" + strings.TrimPrefix(sv.Name, "/")}
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(d.Nodev)) {
		nd := d.Nodev[key]
		if nd.Mountpoint == "" {
			nd.Mountpoint = key
		}
		if nd.Device == "" {
			nd.Device = nodevDevice(nd.FSType)
		}
	}
}

// computedDevice returns the device path a node must have; disko has no option to set it,
// so a different value (a layout written for this tool by hand) is a problem rather than
// silently a second name for the same device.
func computedDevice(probs *Problems, path Path, set, computed string) string {
	if set != "" && set != computed {
		probs.add(path, "is computed as %q and cannot be set to %q", computed, set)
	}
	return computed
}

// defaultContent fills the computed defaults of a content node that sits on device.
func defaultContent(probs *Problems, path Path, node Node, device string, own owner) {
	switch n := node.(type) {
	case *GPT:
		n.Device = or(n.Device, device)
		defaultGPT(probs, path, n, own)
	case *Table:
		n.Device = or(n.Device, device)
		defaultTable(probs, path, n)
	case *LUKS:
		n.Device = or(n.Device, device)
		// A null setting is NixOS's default for the options that take one (keyFile,
		// keyFileSize, ...): the same as leaving it out, which is what the scripts read.
		maps.DeleteFunc(n.Settings, func(_ string, v any) bool { return v == nil })
		if n.AskPassword == nil {
			_, settingsKey := n.Settings["keyFile"]
			n.AskPassword = ptr(n.KeyFile == "" && n.PasswordFile == "" && !settingsKey)
		}
		defaultContent(probs, path.Field("content"), n.Content, "/dev/mapper/"+n.Name, owner{"luks", n.Name})
	case *Filesystem:
		n.Device = or(n.Device, device)
	case *Swap:
		n.Device = or(n.Device, device)
	case *LVMPV:
		n.Device = or(n.Device, device)
	case *MDRaid:
		n.Device = or(n.Device, device)
	case *ZFS:
		n.Device = or(n.Device, device)
	case *Bcachefs:
		n.Device = or(n.Device, device)
	case *BTRFS:
		n.Device = or(n.Device, device)
		defaultSwapfiles(n.Swap)
		for _, key := range slices.Sorted(maps.Keys(n.Subvolumes)) {
			sv := n.Subvolumes[key]
			sv.Name = or(sv.Name, key)
			defaultSwapfiles(sv.Swap)
		}
	}
}

func defaultSwapfiles(files map[string]*Swapfile) {
	for key, f := range files {
		f.Path = or(f.Path, key)
	}
}

// defaultGPT numbers the partitions (priority, then name) and names their devices.
func defaultGPT(probs *Problems, path Path, g *GPT, own owner) {
	for _, key := range slices.Sorted(maps.Keys(g.Partitions)) {
		p := g.Partitions[key]
		p.Name = or(p.Name, key)
		if p.Type == "" {
			p.Type = "8300"
			if _, swap := p.Content.(*Swap); swap {
				p.Type = "8200"
			}
		}
		if p.End == "" {
			p.End = "+" + p.Size
			if p.Size == "100%" {
				p.End = "-0"
			}
		}
		p.Start, p.End = canonicalPosition(p.Start), canonicalPosition(p.End)
		if p.Alignment == nil {
			p.Alignment = ptr(0)
			if strings.HasSuffix(p.Start, "s") || strings.HasSuffix(p.End, "s") {
				p.Alignment = ptr(1)
			}
		}
		if p.Priority == nil {
			p.Priority = ptr(gptPriority(p))
		}
		if p.Label == "" {
			p.Label = gptLabel(own.kind + "-" + own.name + "-" + p.Name)
		}
	}
	for i, key := range GPTOrder(g) {
		p := g.Partitions[key]
		if p.Device == "" {
			switch {
			case p.UUID != "":
				p.Device = "/dev/disk/by-partuuid/" + p.UUID
			case own.kind == "mdadm":
				p.Device = "/dev/disk/by-id/md-name-any:" + own.name + "-part" + strconv.Itoa(i+1)
			default:
				p.Device = "/dev/disk/by-partlabel/" + UdevEscape(p.Label)
			}
		}
		defaultContent(probs, path.Field("partitions").Attr(key).Field("content"), p.Content, p.Device, own)
	}
}

// GPTOrder returns the partition keys in creation order, which is also their numbering
// (the first is partition 1): by priority, then by name.
func GPTOrder(g *GPT) []string {
	keys := slices.Sorted(maps.Keys(g.Partitions))
	slices.SortStableFunc(keys, func(a, b string) int {
		return derefInt(g.Partitions[a].Priority) - derefInt(g.Partitions[b].Priority)
	})
	return keys
}

func gptPriority(p *GPTPartition) int {
	switch { // in disko's order: a filler is last even when it is a BIOS boot partition
	case p.Size == "100%":
		return 9001
	case p.Type == "EF02": // exactly as disko compares it; ef02 keeps priority 1000 there too
		return 100
	default:
		return 1000
	}
}

func lvPriority(lv *LV) int {
	prio := 1000
	if lv.LVMType == "thin-pool" {
		prio = 501
	}
	if strings.Contains(lv.Size, "100%") {
		prio += 251
	}
	return prio
}

// gptLabel keeps a label within GPT's 36 characters the way disko does, so that labels of
// long names match the ones disko wrote.
func gptLabel(label string) string {
	if len(label) <= 36 {
		return label
	}
	sum := sha256.Sum256([]byte(label))
	return hex.EncodeToString(sum[:])[:36]
}

// UdevEscape escapes a string the way udev escapes it in /dev/disk/by-* symlink names:
// valid UTF-8 beyond ASCII is kept, other bytes outside 0-9A-Za-z#+-.:=@_/ become \xhh.
// disko's version differs in ways that name links udev never creates (upper-case hex
// without padding, a comma left as is); here the link that exists on the machine wins.
func UdevEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			if r, size := utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError {
				b.WriteString(s[i : i+size])
				i += size
				continue
			}
		}
		switch {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', strings.IndexByte("#+-.:=@_/", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
		i++
	}
	return b.String()
}

// defaultTable numbers legacy-table partitions and names their devices in kernel numbering.
// MBR logical partitions are numbered from 5, whatever their position (disko numbers them
// by position, which names the wrong device).
func defaultTable(probs *Problems, path Path, t *Table) {
	numbers := TableNumbers(t)
	for i, p := range t.Partitions {
		pPath := path.Field("partitions").Index(i)
		if p.Device == "" {
			dev, err := partitionDevice(t.Device, numbers[i])
			if err != nil {
				probs.add(pPath, "%v", err)
			}
			p.Device = dev
		}
		defaultContent(probs, pPath.Field("content"), p.Content, p.Device, owner{})
	}
}

// TableNumbers returns the partition number of each entry of a legacy table.
func TableNumbers(t *Table) []int {
	numbers := make([]int, len(t.Partitions))
	primary, logical := 0, 4
	for i, p := range t.Partitions {
		if t.Format == "msdos" && p.PartType == "logical" {
			logical++
			numbers[i] = logical
			continue
		}
		primary++
		numbers[i] = primary
	}
	return numbers
}

// Patterns of disko's deviceNumbering, tried in this order.
var (
	appendNumber = lazyregexp.New(`^/dev/([vs]|xvd).+$`)
	dashPart     = lazyregexp.New(`^/dev/(disk|zvol)/.+$`)
	pNumber      = lazyregexp.New(`^/dev/((nvme|mmcblk).+|md/.*[0-9])$`)
	mdOrMapper   = lazyregexp.New(`^/dev/(md|mapper)/.+$`)
	loopDevice   = lazyregexp.New(`^/dev/loop[0-9]+$`)
)

// partitionDevice names partition number n of device in kernel numbering, as disko's
// deviceNumbering does.
func partitionDevice(device string, n int) (string, error) {
	num := strconv.Itoa(n)
	switch {
	case appendNumber.MatchString(device):
		return device + num, nil
	case dashPart.MatchString(device):
		return device + "-part" + num, nil
	case pNumber.MatchString(device):
		return device + "p" + num, nil
	case mdOrMapper.MatchString(device):
		return device + num, nil
	case loopDevice.MatchString(device):
		return device + "p" + num, nil
	default:
		return "", fmt.Errorf("cannot name partition %d of %q: a legacy table needs a device named like /dev/sdX, /dev/vdX, /dev/xvdX, /dev/nvmeXnY, /dev/mmcblkX, /dev/loopX, /dev/md/X, /dev/mapper/X or /dev/disk/by-*/X (or set the partition's device)", n, device)
	}
}

// nameUUID derives a filesystem UUID from a name, as disko does for bcachefs.
func nameUUID(name string) string {
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func nodevDevice(fsType string) string {
	switch fsType {
	case "proc", "sysfs", "tmpfs", "ramfs", "devtmpfs", "devpts":
		return fsType
	default:
		return "none"
	}
}

func or(value, fallback string) string {
	if value == "" {
		return fallback
	}
	return value
}

func ptr[T any](v T) *T { return &v }

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
