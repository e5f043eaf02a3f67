package probe

import (
	"slices"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// The import of stacked devices: a LUKS container with what it holds while open, an LVM
// physical volume with its volume group and LVs, an md member with its array. Groups
// and arrays go to the layout's lvm_vg and mdadm once, when their first member is met.
// Whatever was not read (a closed container's inside, an inactive LV, an unassembled
// array) is left null with a note, so that the plan of the layout leaves it untouched.

// luks is a LUKS container: named as its open mapper device, holding what was read
// inside; a closed one is named luks-UUID (the NixOS convention) and holds null.
func (im *importer) luks(where string, c *Content) config.Node {
	l := &config.LUKS{Type: "luks", InitrdUnlock: true}
	switch {
	case c.Unreadable != "":
		im.note("%s: the LUKS container could not be read (%s); its content is left out (null: left untouched)", where, c.Unreadable)
		return nil
	case c.Opened == nil:
		l.Name = "luks-" + c.UUID
		im.note("%s: the LUKS container %s is closed, so what it holds is left out (null: left untouched); open it and import again to describe its inside", where, l.Name)
		return l
	}
	l.Name = strings.TrimPrefix(c.Opened.Mapper, "/dev/mapper/")
	if n := im.content(where+" in LUKS "+l.Name, c.Opened.Content); n != nil {
		l.Content = n.(config.DeviceNode)
	}
	return l
}

// pv is an LVM physical volume; its group goes to the layout's lvm_vg.
func (im *importer) pv(where string, c *Content) config.Node {
	vg := im.s.VGs[c.VG]
	switch {
	case c.Unreadable != "":
		im.note("%s: the LVM physical volume could not be read (%s); its content is left out (null: left untouched)", where, c.Unreadable)
		return nil
	case c.VG == "":
		im.note("%s: an LVM physical volume in no volume group; its content is left out (null: left untouched)", where)
		return nil
	case vg == nil || vg.Unreadable != "":
		im.note("%s: the volume group %s could not be read; the physical volume is left out (null: left untouched)", where, c.VG)
		return nil
	}
	im.vg(vg)
	return &config.LVMPV{Type: "lvm_pv", VG: c.VG}
}

// vg adds a volume group with its LVs to the layout: sizes in M (LVs are whole extents),
// linear LVs without a type, thin pools, thin LVs and RAID LVs with theirs.
func (im *importer) vg(vg *VG) {
	if im.d.LVMVG[vg.Name] != nil {
		return
	}
	g := &config.LVMVG{Type: "lvm_vg", LVs: map[string]*config.LV{}}
	im.d.LVMVG = ensureMap(im.d.LVMVG)
	im.d.LVMVG[vg.Name] = g
	for _, name := range sortedNames(vg.LVs) {
		lv := vg.LVs[name]
		where := "LV " + vg.Name + "/" + name
		l := &config.LV{Size: lvSize(lv.Size), LVMType: lvmType(lv.Segtype)}
		if l.LVMType == "thinlv" {
			l.Pool = lv.Pool
		}
		if l.LVMType == "" && lv.Segtype != "linear" {
			im.note("%s is %s, which the layout has no lvm_type for; it is described as a linear LV of its size", where, lv.Segtype)
		}
		if !lv.Active {
			im.note("%s is inactive, so what it holds is left out (null); plan refuses it until it is activated (vgchange -ay %s)", where, vg.Name)
		} else if n := im.content(where, lv.Content); n != nil {
			l.Content = n.(config.PartitionNode)
		}
		g.LVs[name] = l
	}
}

// lvSize writes an LV's size in bytes as lvcreate -L reads it.
func lvSize(b int64) string {
	if b%(1<<10) != 0 {
		return strconv.FormatInt(b, 10) + "b"
	}
	return sizeOf(b, 1)
}

// lvmType is the layout's lvm_type for an lvs segtype; "" for linear (and for segtypes
// the layout cannot name, such as striped).
func lvmType(segtype string) string {
	switch {
	case segtype == "thin-pool":
		return "thin-pool"
	case segtype == "thin":
		return "thinlv"
	case segtype == "mirror":
		return "mirror"
	}
	// lvs names RAID layouts raid5_ls, raid6_zr, ...; the layout names the level.
	level, _, _ := strings.Cut(segtype, "_")
	if slices.Contains([]string{"raid0", "raid1", "raid4", "raid5", "raid6"}, level) {
		return level
	}
	return ""
}

// mdMember is a member of an md array; the array goes to the layout's mdadm when it is
// assembled (else what it holds, even its level, is not known).
func (im *importer) mdMember(where string, c *Content) config.Node {
	a := im.s.Arrays[c.Array]
	switch {
	case c.Unreadable != "":
		im.note("%s: the md member could not be read (%s); its content is left out (null: left untouched)", where, c.Unreadable)
		return nil
	case a == nil || a.Unreadable != "":
		im.note("%s: the md array %s could not be read; the member is left out (null: left untouched)", where, c.Array)
		return nil
	case !a.Active:
		im.note("%s: the md array %s is not assembled, so the member is left out (null: left untouched); assemble it (mdadm --assemble --scan) and import again", where, c.Array)
		return nil
	}
	level, err := strconv.Atoi(strings.TrimPrefix(a.Level, "raid"))
	if err != nil || !slices.Contains([]int{0, 1, 4, 5, 6, 10}, level) {
		im.note("%s: the md array %s is %s, which the layout has no level for; the member is left out (null: left untouched)", where, c.Array, a.Level)
		return nil
	}
	if im.d.MDADM[a.Name] == nil {
		md := &config.MDADM{Type: "mdadm", Level: level, Metadata: a.Metadata}
		if !slices.Contains([]string{"1", "1.0", "1.1", "1.2", "ddf", "imsm"}, md.Metadata) {
			im.note("md array %s: metadata %q has no layout value; written as default", a.Name, a.Metadata)
			md.Metadata = "default"
		}
		im.d.MDADM = ensureMap(im.d.MDADM)
		im.d.MDADM[a.Name] = md
		switch pd := a.Partitioned; {
		case pd != nil && pd.Table != nil && pd.Table.Label == "gpt":
			md.Content = im.gpt("mdadm", a.Name, pd)
		default:
			if n := im.content("md array "+a.Name, a.Content); n != nil {
				md.Content = n.(config.DeviceNode)
			}
		}
	}
	return &config.MDRaid{Type: "mdraid", Name: c.Array}
}
