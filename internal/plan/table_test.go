package plan

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/probe"
)

var update = flag.Bool("update", false, "rewrite docs/incremental.md's table from Rows")

// Fake probe results: a 1 GiB disk of 512-byte sectors.
const (
	diskSectors = 1 << 21
	mib         = 2048 // sectors
	linuxGUID   = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	swapGUID    = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
)

func disk(table *probe.Table, content *probe.Content) *probe.State {
	return &probe.State{Disks: map[string]*probe.Disk{"main": {Name: "main", Device: "/dev/sdx", Path: "/dev/sdx",
		Size: diskSectors * 512, SectorSize: 512, Table: table, Content: content}}}
}

func gpt(parts ...*probe.Partition) *probe.State {
	return disk(&probe.Table{Label: "gpt", FirstLBA: 2048, LastLBA: diskSectors - 34, Partitions: parts}, nil)
}

// part is partition n labelled disk-main-KEY at startMiB with sizeMiB.
func part(n int, key string, startMiB, sizeMiB int64, c *probe.Content) *probe.Partition {
	return &probe.Partition{Number: n, Node: fmt.Sprintf("/dev/sdx%d", n), Start: startMiB * mib, Size: sizeMiB * mib,
		Type: linuxGUID, Name: "disk-main-" + key, Content: c}
}

func fs(t string) *probe.Content { return &probe.Content{Type: t} }

func layoutOf(t *testing.T, content string, extra string) *config.Devices {
	t.Helper()
	js := `{"disk": {"main": {"device": "/dev/sdx"` + content + `}}` + extra + `}`
	d, err := config.Load([]byte(js), config.LoadOptions{})
	if err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	return d
}

// gptLayout is a GPT layout with the given partitions (JSON members).
func gptLayout(parts string) string {
	return `, "content": {"type": "gpt", "partitions": {` + parts + `}}`
}

const (
	ext4Root = `"root": {"size": "100M", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}`
	rootPath = `disko.devices.disk.main.content.partitions.root`
)

// Stacked devices: a LUKS container with ext4, a PV of the volume group "pool" (1 GiB,
// 4 MiB extents), and a member of the md array "boot".
const (
	luksExt4 = `"root": {"size": "100M", "content": {"type": "luks", "name": "crypted", "content": {"type": "filesystem", "format": "ext4"}}}`
	pvPart   = `"pv": {"size": "100M", "content": {"type": "lvm_pv", "vg": "pool"}}`
	pvPath   = "disko.devices.disk.main.content.partitions.pv.content"
	vgPath   = "disko.devices.lvm_vg.pool"
	mdPart   = `"md": {"size": "100M", "content": {"type": "mdraid", "name": "boot"}}`
	mdBoot   = `, "mdadm": {"boot": {"level": 1, "content": {"type": "filesystem", "format": "vfat"}}}`
)

// More LVs and PVs: a new partition that is a PV of pool, a thin pool tp with a thin LV,
// and a raid1 LV.
const (
	pv2Part  = `, "pv2": {"size": "100M", "content": {"type": "lvm_pv", "vg": "pool"}}`
	thinPool = `, "tp": {"size": "64M", "lvm_type": "thin-pool"}`
	thinLV   = `, "thin": {"size": "32M", "lvm_type": "thinlv", "pool": "tp", "content": {"type": "filesystem", "format": "ext4"}}`
)

func raid1LV(size string) string {
	return `"r": {"size": "` + size + `", "lvm_type": "raid1", "content": {"type": "filesystem", "format": "ext4"}}`
}

// md2Part is a second member of the array boot, of the given size.
func md2Part(size string) string {
	return `, "md2": {"size": "` + size + `", "content": {"type": "mdraid", "name": "boot"}}`
}

// bootRaid1 is the array boot assembled as a RAID1 of two 100 MiB members (99 MiB of
// data each after a 1 MiB offset), with degraded of them missing.
func bootRaid1(degraded int) *probe.Array {
	return &probe.Array{Name: "boot", Active: true, Level: "raid1", Device: "/dev/md127", Devices: 2, Degraded: degraded, MemberBytes: 100 << 20, Content: fs("vfat")}
}

func vgPool(lvs string) string { return `, "lvm_vg": {"pool": {"lvs": {` + lvs + `}}}` }

func lvRoot(size string) string {
	return `"root": {"size": "` + size + `", "content": {"type": "filesystem", "format": "ext4"}}`
}

func activeLV(name string, sizeMiB int64, c *probe.Content) *probe.LV {
	return &probe.LV{Name: name, Size: sizeMiB << 20, Active: true, Path: "/dev/pool/" + name, DMPath: "/dev/mapper/pool-" + name, Content: c}
}

func lvs(ls ...*probe.LV) map[string]*probe.LV {
	m := map[string]*probe.LV{}
	for _, l := range ls {
		m[l.Name] = l
	}
	return m
}

// pvState is a disk whose partition pv is a PV of vg; the group "pool" has 500 MiB free.
func pvState(vg string, lvs map[string]*probe.LV) *probe.State {
	s := gpt(part(1, "pv", 1, 100, &probe.Content{Type: "LVM2_member", VG: vg}))
	s.VGs = map[string]*probe.VG{vg: {Name: vg, Size: 1 << 30, Free: 500 << 20, ExtentSize: 4 << 20, PVFree: []int64{500 << 20}, LVs: lvs}}
	return s
}

// mdGPT is an md array "boot" whose content is a GPT with one 50 MiB ext4 partition.
const mdGPT = `, "mdadm": {"boot": {"level": 1, "content": {"type": "gpt", "partitions": {"root": {"size": "50M", "content": {"type": "filesystem", "format": "ext4"}}}}}}`

// mdPartitioned is the assembled raid1 "boot" holding a GPT whose one partition, as the
// format script labels it (mdadm-boot-root), holds c.
func mdPartitioned(c *probe.Content) *probe.Array {
	const sectors = 100 * mib
	p := &probe.Partition{Number: 1, Node: "/dev/md127p1", Start: 1 * mib, Size: 50 * mib, Type: linuxGUID, Name: "mdadm-boot-root", Content: c}
	return &probe.Array{Name: "boot", Active: true, Level: "raid1", Device: "/dev/md127", Content: fs(probe.PartitionTable + "gpt"),
		Partitioned: &probe.Disk{Name: "boot", Device: "/dev/md127", Path: "/dev/md127", Size: sectors * 512, SectorSize: 512,
			Table: &probe.Table{Label: "gpt", FirstLBA: 2048, LastLBA: sectors - 34, Partitions: []*probe.Partition{p}}}}
}

// mdState is a disk whose partition md is a member of the array named member.
func mdState(a *probe.Array, member string) *probe.State {
	s := gpt(part(1, "md", 1, 100, &probe.Content{Type: "linux_raid_member", Array: member}))
	s.Arrays = map[string]*probe.Array{a.Name: a}
	return s
}

// rowCases has, for every row of the decision table, a layout and a fake probe result
// that reach it, and where the plan must report it.
var rowCases = []struct {
	row     Row
	content string // disk options after "device"
	extra   string // top-level members after "disk"
	state   *probe.State
	path    string // where the action or refusal is reported ("" for rows that change nothing)
}{
	{DiskUnreadable, gptLayout(ext4Root), "", &probe.State{Disks: map[string]*probe.Disk{"main": {Unreadable: "blockdev: cannot open /dev/sdx"}}}, "disko.devices.disk.main"},
	{DiskUntouched, "", "", gpt(), ""},
	{DiskBlank, gptLayout(ext4Root), "", disk(nil, nil), "disko.devices.disk.main"},
	{DiskBlankMember, `, "content": {"type": "lvm_pv", "vg": "pool"}`, `, "lvm_vg": {"pool": {"lvs": {}}}`, disk(nil, nil), "disko.devices.disk.main.content"},
	{TableDiffers, gptLayout(ext4Root), "", disk(nil, fs("ext4")), "disko.devices.disk.main.content.type"},
	{TableDiffers, `, "content": {"type": "table", "format": "msdos", "partitions": []}`, "", gpt(), "disko.devices.disk.main.content.format"},
	{WholeDiskHasTable, `, "content": {"type": "filesystem", "format": "ext4"}`, "", gpt(), "disko.devices.disk.main.content.type"},
	{PartSame, gptLayout(ext4Root), "", gpt(part(1, "root", 1, 100, fs("ext4"))), ""},
	{PartMissing, gptLayout(`"boot": {"size": "64M", "content": {"type": "filesystem", "format": "ext4"}}, "root": {"size": "100M", "priority": 2000}`), "",
		gpt(part(1, "boot", 1, 64, fs("ext4"))), rootPath},
	{PartMissingSwap, gptLayout(`"boot": {"size": "64M"}, "swap": {"size": "64M", "content": {"type": "swap"}}`), "", gpt(part(1, "boot", 1, 64, nil)), "disko.devices.disk.main.content.partitions.swap"},
	{PartNoRoom, gptLayout(`"root": {"size": "2G"}`), "", gpt(), rootPath},
	{PartNoRoom, gptLayout(`"a": {"size": "64M"}, "root": {"size": "64M"}`), "", gpt(part(1, "root", 1, 64, nil)), "disko.devices.disk.main.content.partitions.a"},
	{PartMoved, gptLayout(ext4Root), "", gpt(part(2, "root", 1, 100, fs("ext4"))), rootPath},
	{PartMoved, gptLayout(`"root": {"size": "100M", "start": "4M"}`), "", gpt(part(1, "root", 1, 100, nil)), rootPath + ".start"},
	{PartType, gptLayout(ext4Root), "", gpt(func() *probe.Partition { p := part(1, "root", 1, 100, fs("ext4")); p.Type = swapGUID; return p }()), rootPath + ".type"},
	{PartGrow, gptLayout(`"root": {"size": "200M", "content": {"type": "filesystem", "format": "ext4"}}`), "", gpt(part(1, "root", 1, 100, fs("ext4"))), rootPath + ".size"},
	{PartGrow, gptLayout(`"root": {"size": "100%", "content": {"type": "btrfs"}}`), "", gpt(part(1, "root", 1, 100, fs("btrfs"))), rootPath + ".size"},
	{PartGrowBlocked, gptLayout(`"root": {"size": "200M", "priority": 1}, "b": {"size": "100M", "priority": 2}`), "",
		gpt(part(1, "root", 1, 100, nil), part(2, "b", 101, 100, nil)), rootPath + ".size"},
	{PartGrowBlocked, gptLayout(`"root": {"size": "200M", "content": {"type": "swap"}}`), "", gpt(part(1, "root", 1, 100, fs("swap"))), rootPath + ".size"},
	{PartShrink, gptLayout(`"root": {"size": "50M"}`), "", gpt(part(1, "root", 1, 100, nil)), rootPath + ".size"},
	{PartExtra, gptLayout(ext4Root), "", gpt(part(1, "root", 1, 100, fs("ext4")), part(2, "foreign", 200, 10, nil)), "disko.devices.disk.main.content.partitions"},
	{ContentUntouched, gptLayout(`"root": {"size": "100M"}`), "", gpt(part(1, "root", 1, 100, fs("ext4"))), ""},
	{ContentBlank, gptLayout(ext4Root), "", gpt(part(1, "root", 1, 100, nil)), rootPath + ".content"},
	{ContentSame, gptLayout(ext4Root), "", gpt(part(1, "root", 1, 100, fs("ext4"))), ""},
	{ContentDiffers, gptLayout(ext4Root), "", gpt(part(1, "root", 1, 100, fs("xfs"))), rootPath + ".content.format"},
	{ContentDiffers, gptLayout(`"root": {"size": "100M", "content": {"type": "swap"}}`), "", gpt(part(1, "root", 1, 100, fs("ext4"))), rootPath + ".content.type"},
	{ContentUnreadable, gptLayout(`"root": {"size": "100M", "content": {"type": "btrfs"}}`), "", gpt(part(1, "root", 1, 100, &probe.Content{Type: "btrfs", Unreadable: "mount: permission denied"})), rootPath + ".content"},
	{ContentNoCreate, gptLayout(`"root": {"size": "100M", "content": {"type": "luks", "name": "crypted"}}`), "", gpt(part(1, "root", 1, 100, nil)), rootPath + ".content"},
	{LUKSSame, gptLayout(`"root": {"size": "100M", "content": {"type": "luks", "name": "crypted"}}`), "", gpt(part(1, "root", 1, 100, fs("crypto_LUKS"))), ""},
	{LUKSAdded, gptLayout(`"root": {"size": "100M", "content": {"type": "luks", "name": "crypted"}}`), "", gpt(part(1, "root", 1, 100, fs("ext4"))), rootPath + ".content.type"},
	{LUKSRemoved, gptLayout(ext4Root), "", gpt(part(1, "root", 1, 100, fs("crypto_LUKS"))), rootPath + ".content.type"},
	{LUKSClosed, gptLayout(luksExt4), "", gpt(part(1, "root", 1, 100, fs("crypto_LUKS"))), rootPath + ".content.content"},
	{LUKSSame, gptLayout(luksExt4), "", gpt(part(1, "root", 1, 100, &probe.Content{Type: "crypto_LUKS", Opened: &probe.Opened{Mapper: "/dev/mapper/crypted", Content: fs("ext4")}})), ""},
	{ContentDiffers, gptLayout(luksExt4), "", gpt(part(1, "root", 1, 100, &probe.Content{Type: "crypto_LUKS", Opened: &probe.Opened{Mapper: "/dev/mapper/crypted", Content: fs("xfs")}})), rootPath + ".content.content.format"},
	{ContentBlank, gptLayout(luksExt4), "", gpt(part(1, "root", 1, 100, &probe.Content{Type: "crypto_LUKS", Opened: &probe.Opened{Mapper: "/dev/mapper/crypted"}})), rootPath + ".content.content"},
	{ContentUnreadable, gptLayout(pvPart), vgPool(""), gpt(part(1, "pv", 1, 100, &probe.Content{Type: "LVM2_member", Unreadable: "pvs: no such device"})), pvPath},
	{MemberElsewhere, gptLayout(pvPart), vgPool(""), pvState("other", nil), pvPath + ".vg"},
	{MemberElsewhere, gptLayout(`"md": {"size": "100M", "content": {"type": "mdraid", "name": "boot"}}`), `, "mdadm": {"boot": {"level": 1}}`,
		mdState(&probe.Array{Name: "other"}, "other"), "disko.devices.disk.main.content.partitions.md.content.name"},
	{VGMissing, gptLayout(pvPart), vgPool(""), gpt(part(1, "pv", 1, 100, &probe.Content{Type: "LVM2_member", VG: "pool"})), vgPath},
	{VGMissing, gptLayout(pvPart), vgPool(""), func() *probe.State {
		s := pvState("pool", nil)
		s.VGs["pool"].Unreadable = "vgs: locking failed"
		return s
	}(), vgPath},
	{VGCreate, gptLayout(pvPart + `, "pv2": {"size": "100M", "content": {"type": "lvm_pv", "vg": "fresh"}}`), `, "lvm_vg": {"pool": {"lvs": {}}, "fresh": {"lvs": {` + lvRoot("20M") + `}}}`,
		pvState("pool", nil), "disko.devices.lvm_vg.fresh"},
	{VGExtend, gptLayout(pvPart + pv2Part), vgPool(""), pvState("pool", nil), "disko.devices.disk.main.content.partitions.pv2.content"},
	{LVSame, gptLayout(pvPart), vgPool(lvRoot("100M")), pvState("pool", lvs(activeLV("root", 100, fs("ext4")))), ""},
	{LVSame, gptLayout(pvPart), vgPool(lvRoot("100%FREE")), pvState("pool", lvs(activeLV("root", 100, fs("ext4")))), ""},
	{LVMissing, gptLayout(pvPart), vgPool(lvRoot("100M") + `, "data": {"size": "20M", "content": {"type": "filesystem", "format": "xfs"}}`), pvState("pool", lvs(activeLV("root", 100, fs("ext4")))), vgPath + ".lvs.data"},
	{LVMissing, gptLayout(pvPart), vgPool(lvRoot("100M") + `, "data": {"size": "100%", "content": {"type": "swap"}}`), pvState("pool", lvs(activeLV("root", 100, fs("ext4")))), vgPath + ".lvs.data"},
	{LVNoRoom, gptLayout(pvPart), vgPool(lvRoot("100M") + `, "data": {"size": "2G"}`), pvState("pool", lvs(activeLV("root", 100, fs("ext4")))), vgPath + ".lvs.data.size"},
	{LVMissing, gptLayout(pvPart), vgPool(lvRoot("100M") + thinPool + thinLV), pvState("pool", lvs(activeLV("root", 100, fs("ext4")))), vgPath + ".lvs.tp"},
	{LVMissing, gptLayout(pvPart), vgPool(lvRoot("100M") + thinPool + thinLV), pvState("pool", lvs(activeLV("root", 100, fs("ext4")))), vgPath + ".lvs.thin"},
	{LVMissing, gptLayout(pvPart), vgPool(lvRoot("100M") + thinPool + thinLV), pvState("pool", lvs(activeLV("root", 100, fs("ext4")), &probe.LV{Name: "tp", Segtype: "thin-pool", Active: true})), vgPath + ".lvs.thin"},
	{LVMissing, gptLayout(pvPart), vgPool(raid1LV("20M")), func() *probe.State {
		s := pvState("pool", nil)
		s.VGs["pool"].PVFree = []int64{250 << 20, 250 << 20}
		return s
	}(), vgPath + ".lvs.r"},
	{LVMissing, gptLayout(pvPart + pv2Part), vgPool(raid1LV("40M")), pvState("pool", nil), vgPath + ".lvs.r"},
	{LVNoRoom, gptLayout(pvPart), vgPool(raid1LV("20M")), pvState("pool", nil), vgPath + ".lvs.r.size"},
	{LVNoRoom, gptLayout(pvPart), vgPool(`"r": {"size": "20M", "lvm_type": "raid5"}`), pvState("pool", nil), vgPath + ".lvs.r.lvm_type"},
	{LVNoRoom, gptLayout(pvPart), vgPool(`"a": {"size": "20M", "lvm_type": "thinlv", "pool": "zz", "priority": 1}, "zz": {"size": "64M", "lvm_type": "thin-pool", "priority": 2}`), pvState("pool", nil), vgPath + ".lvs.a.pool"},
	{LVNoRoom, gptLayout(pvPart), vgPool(`"tp": {"size": "496M", "lvm_type": "thin-pool"}`), pvState("pool", nil), vgPath + ".lvs.tp.size"},
	{LVInactive, gptLayout(pvPart), vgPool(lvRoot("100M")), pvState("pool", lvs(&probe.LV{Name: "root", Size: 100 << 20})), vgPath + ".lvs.root"},
	{LVGrow, gptLayout(pvPart), vgPool(lvRoot("200M")), pvState("pool", lvs(activeLV("root", 100, fs("ext4")))), vgPath + ".lvs.root.size"},
	{LVGrowBlocked, gptLayout(pvPart), vgPool(lvRoot("900M")), pvState("pool", lvs(activeLV("root", 100, fs("ext4")))), vgPath + ".lvs.root.size"},
	{LVGrowBlocked, gptLayout(pvPart), vgPool(`"root": {"size": "200M", "content": {"type": "swap"}}`), pvState("pool", lvs(activeLV("root", 100, fs("swap")))), vgPath + ".lvs.root.size"},
	{LVShrink, gptLayout(pvPart), vgPool(lvRoot("50M")), pvState("pool", lvs(activeLV("root", 100, fs("ext4")))), vgPath + ".lvs.root.size"},
	{LVExtra, gptLayout(pvPart), vgPool(lvRoot("100M")), pvState("pool", lvs(activeLV("root", 100, fs("ext4")), activeLV("old", 10, nil))), vgPath + ".lvs"},
	{MDMissing, gptLayout(mdPart), mdBoot, gpt(part(1, "md", 1, 100, &probe.Content{Type: "linux_raid_member", Array: "boot"})), "disko.devices.mdadm.boot"},
	{MDCreate, gptLayout(`"ma": {"size": "100M", "content": {"type": "mdraid", "name": "fresh"}}, "mb": {"size": "100M", "content": {"type": "mdraid", "name": "fresh"}}`),
		`, "mdadm": {"fresh": {"level": 1, "content": {"type": "filesystem", "format": "ext4"}}}`, gpt(), "disko.devices.mdadm.fresh"},
	{MDAdd, gptLayout(mdPart + md2Part("100M")), mdBoot, mdState(bootRaid1(0), "boot"), "disko.devices.mdadm.boot"},
	{MDAddBlocked, gptLayout(mdPart + md2Part("50M")), mdBoot, mdState(bootRaid1(0), "boot"), "disko.devices.mdadm.boot"},
	{MDAddBlocked, gptLayout(mdPart + md2Part("100M")), mdBoot, mdState(bootRaid1(1), "boot"), "disko.devices.mdadm.boot"},
	{MDAddBlocked, gptLayout(mdPart + md2Part("100M")), `, "mdadm": {"boot": {"level": 0}}`, mdState(func() *probe.Array { a := bootRaid1(0); a.Level = "raid0"; return a }(), "boot"), "disko.devices.mdadm.boot"},
	{MDInactive, gptLayout(mdPart), mdBoot, mdState(&probe.Array{Name: "boot"}, "boot"), "disko.devices.mdadm.boot"},
	{MDLevel, gptLayout(mdPart), mdBoot, mdState(&probe.Array{Name: "boot", Active: true, Level: "raid0", Device: "/dev/md127", Content: fs("vfat")}, "boot"), "disko.devices.mdadm.boot.level"},
	{MDLevel, gptLayout(mdPart), mdBoot, mdState(&probe.Array{Name: "boot", Active: true, Level: "raid1", Device: "/dev/md127", Content: fs(probe.PartitionTable + "gpt")}, "boot"), "disko.devices.mdadm.boot.content"},
	{MDTable, gptLayout(mdPart), mdGPT, mdState(mdPartitioned(&probe.Content{Type: "ext4"}), "boot"), ""},
	{PartMissing, gptLayout(mdPart), `, "mdadm": {"boot": {"level": 1, "content": {"type": "gpt", "partitions": {"root": {"size": "50M", "content": {"type": "filesystem", "format": "ext4"}}, "srv": {"size": "20M"}}}}}`,
		mdState(mdPartitioned(&probe.Content{Type: "ext4"}), "boot"), "disko.devices.mdadm.boot.content.partitions.srv"},
	{TableDiffers, gptLayout(mdPart), mdGPT, mdState(&probe.Array{Name: "boot", Active: true, Level: "raid1", Device: "/dev/md127", Content: fs("vfat")}, "boot"), "disko.devices.mdadm.boot.content.type"},
	{MDSame, gptLayout(mdPart), mdBoot, mdState(&probe.Array{Name: "boot", Active: true, Level: "raid1", Device: "/dev/md127", Content: fs("vfat")}, "boot"), ""},
	{ContentDiffers, gptLayout(mdPart), mdBoot, mdState(&probe.Array{Name: "boot", Active: true, Level: "raid1", Device: "/dev/md127", Content: fs("ext4")}, "boot"), "disko.devices.mdadm.boot.content.format"},
	{SubvolSame, gptLayout(`"root": {"size": "100M", "content": {"type": "btrfs", "subvolumes": {"/home": {}}}}`), "", gpt(part(1, "root", 1, 100, &probe.Content{Type: "btrfs", Subvolumes: []string{"home"}})), ""},
	{SubvolMissing, gptLayout(`"root": {"size": "100M", "content": {"type": "btrfs", "subvolumes": {"/home": {}, "/nix": {}}}}`), "", gpt(part(1, "root", 1, 100, &probe.Content{Type: "btrfs", Subvolumes: []string{"home"}})), rootPath + `.content.subvolumes."/nix"`},
	{SubvolExtra, gptLayout(`"root": {"size": "100M", "content": {"type": "btrfs"}}`), "", gpt(part(1, "root", 1, 100, &probe.Content{Type: "btrfs", Subvolumes: []string{"old"}})), ""},
	{SwapfileMissing, gptLayout(`"root": {"size": "100M", "content": {"type": "btrfs", "subvolumes": {"/swap": {"mountpoint": "/.swapvol", "swap": {"swapfile": {"size": "16M"}}}}}}`), "", gpt(part(1, "root", 1, 100, &probe.Content{Type: "btrfs", Subvolumes: []string{"swap"}})), rootPath + `.content.subvolumes."/swap".swap.swapfile`},
	{SwapfileSame, gptLayout(`"root": {"size": "100M", "content": {"type": "btrfs", "mountpoint": "/top", "swap": {"swapfile": {"size": "16M"}}}}`), "", gpt(part(1, "root", 1, 100, &probe.Content{Type: "btrfs", Swapfiles: map[string]int64{"swapfile": 16 << 20}})), ""},
	{MountMoved, gptLayout(ext4Root), "", gpt(part(1, "root", 1, 100, &probe.Content{Type: "ext4", Mounts: []probe.Mount{{Target: "/mnt/old", FSRoot: "/"}}})), rootPath + ".content.mountpoint"},
	{MountOptions, gptLayout(`"root": {"size": "100M", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/", "mountOptions": ["noatime", "nofail"]}}`), "",
		gpt(part(1, "root", 1, 100, &probe.Content{Type: "ext4", Mounts: []probe.Mount{{Target: "/mnt", FSRoot: "/", Options: "rw,relatime"}}})), rootPath + ".content.mountOptions"},
	{MountOptions, gptLayout(`"root": {"size": "100M", "content": {"type": "btrfs", "subvolumes": {"/home": {"mountpoint": "/home", "mountOptions": ["compress=zstd", "noatime"]}}}}`), "",
		gpt(part(1, "root", 1, 100, &probe.Content{Type: "btrfs", Subvolumes: []string{"home"}, Mounts: []probe.Mount{{Target: "/mnt/home", FSRoot: "/home", Options: "rw,relatime,compress=zstd:3,subvol=/home"}}})), rootPath + `.content.subvolumes."/home".mountOptions`},
	{MountElsewhere, gptLayout(`"root": {"size": "100M", "content": {"type": "filesystem", "format": "xfs", "mountpoint": "/", "mountOptions": ["pquota", "noatime", "X-mount.mkdir"]}}`), "",
		gpt(part(1, "root", 1, 100, &probe.Content{Type: "xfs", Mounts: []probe.Mount{{Target: "/mnt", FSRoot: "/", Options: "rw,noatime,attr2,inode64,prjquota"}}})), ""},
	{MountElsewhere, gptLayout(ext4Root), "", gpt(part(1, "root", 1, 100, &probe.Content{Type: "ext4", Mounts: []probe.Mount{{Target: "/mnt", FSRoot: "/"}}})), ""},
}

// TestDecisionTable checks every row of the decision table with a fake probe result, and
// that every row has a case.
func TestDecisionTable(t *testing.T) {
	covered := map[string]bool{}
	for i, c := range rowCases {
		t.Run(fmt.Sprintf("%02d-%s", i, c.row.ID), func(t *testing.T) {
			d := layoutOf(t, c.content, c.extra)
			p, rows := rowsOf(d, c.state, Options{RootMountpoint: "/mnt"})
			if !slices.Contains(rows, c.row.ID) {
				t.Fatalf("row %s not reached; rows %v; plan %+v", c.row.ID, rows, p)
			}
			covered[c.row.ID] = true
			switch {
			case c.row.Refuse:
				if !slices.ContainsFunc(p.Refused, func(r Refusal) bool { return r.Row == c.row.ID && r.Path == c.path }) {
					t.Errorf("no refusal of row %s at %s: %+v", c.row.ID, c.path, p.Refused)
				}
				if len(p.Actions) > 0 && c.row.ID != PartNoRoom.ID {
					t.Logf("actions next to the refusal (apply runs none of them): %+v", p.Actions)
				}
			case c.row.Action != "":
				if !slices.ContainsFunc(p.Actions, func(a Action) bool { return a.Row == c.row.ID && a.Path == c.path && a.Action == c.row.Action }) {
					t.Errorf("no action %s of row %s at %s: %+v", c.row.Action, c.row.ID, c.path, p.Actions)
				}
				if len(p.Refused) > 0 {
					t.Errorf("unexpected refusals: %+v", p.Refused)
				}
				script := string(p.Script())
				if !strings.Contains(script, "# "+c.path+": "+c.row.Action) {
					t.Errorf("the apply script has no section for %s:\n%s", c.path, script)
				}
			default:
				if len(p.Actions)+len(p.Refused) > 0 {
					t.Errorf("row %s should change nothing: %+v", c.row.ID, p)
				}
			}
		})
	}
	for _, r := range Rows {
		if !covered[r.ID] {
			t.Errorf("row %s has no test case", r.ID)
		}
	}
}

// TestDocsTable checks that docs/incremental.md holds the decision table as Rows render
// it (go test -update rewrites it there).
func TestDocsTable(t *testing.T) {
	const file = "../../docs/incremental.md"
	const begin, end = "<!-- decision table: generated from internal/plan/table.go -->\n", "<!-- end of decision table -->\n"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no %q ... %q section", file, begin, end)
	}
	want := doc[:i+len(begin)] + markdown() + doc[j:]
	if *update {
		if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if doc != want {
		t.Errorf("%s's decision table differs from internal/plan/table.go; run go test ./internal/plan -run TestDocsTable -update", file)
	}
}

// TestRandomSwapBlank: a randomly encrypted swap partition is never formatted by the
// scripts, so a blank one is what the layout says.
func TestRandomSwapBlank(t *testing.T) {
	d := layoutOf(t, gptLayout(`"swap": {"size": "100M", "content": {"type": "swap", "randomEncryption": true}}`), "")
	blank := part(1, "swap", 1, 100, nil)
	blank.Type = swapGUID
	p := Make(d, gpt(blank), Options{})
	if len(p.Actions)+len(p.Refused) > 0 {
		t.Errorf("plan of a blank randomly encrypted swap: %+v", p)
	}
	p = Make(d, gpt(part(1, "swap", 1, 100, fs("ext4"))), Options{})
	if len(p.Refused) != 1 || p.Refused[0].Row != ContentDiffers.ID {
		t.Errorf("randomly encrypted swap over ext4 must be refused: %+v", p)
	}
}

// rowsOf is Make that also returns every row decided, for the decision table's tests.
func rowsOf(d *config.Devices, s *probe.State, opts Options) (*Plan, []string) {
	pl := &planner{p: &Plan{Actions: []Action{}, Refused: []Refusal{}}, opts: opts}
	pl.plan(d, s)
	return pl.p, pl.rows
}

// outcome is the row's last column as the docs show it.
func outcome(r Row) string {
	switch {
	case r.Refuse:
		return "refuse"
	case r.Action != "":
		return "action `" + r.Action + "`"
	}
	return "nothing to do"
}

// markdown renders the decision table as docs/incremental.md shows it.
func markdown() string {
	var b strings.Builder
	b.WriteString("| row | layout node | layout says | disk holds | plan |\n|---|---|---|---|---|\n")
	for _, r := range Rows {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", r.ID, r.Node, r.Desired, r.Actual, outcome(r))
	}
	return b.String()
}
