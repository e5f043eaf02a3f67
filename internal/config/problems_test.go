package config

import (
	"errors"
	"strings"
	"testing"
)

// gptDisk wraps partitions (JSON) into a one-disk layout with a GPT.
func gptDisk(partitions string) string {
	return `{"disk":{"main":{"device":"/dev/sda","content":{"type":"gpt","partitions":` + partitions + `}}}}`
}

// onDisk wraps a content node (JSON) into a one-disk layout.
func onDisk(content string) string {
	return `{"disk":{"main":{"device":"/dev/sda","content":` + content + `}}}`
}

const (
	ext4Root = `{"type":"filesystem","format":"ext4","mountpoint":"/"}`
	p        = `disko.devices.disk.main.content.partitions`
)

// TestProblems checks the exact message and path of each kind of mistake, and that all
// problems of a layout are reported in one pass.
func TestProblems(t *testing.T) {
	tests := []struct {
		name, layout string
		want         []string
	}{
		{"not JSON", `{"disk":`, []string{`disko.devices: is not valid JSON: unexpected EOF`}},
		{"trailing data", `{} {}`, []string{`disko.devices: has trailing data after the JSON value`}},
		{"empty layout", `{}`, []string{`disko.devices.disk: no disks are defined (did you forget to import your disk layout, or is it under disko.devices?)`}},
		{"top level not a set", `[]`, []string{`disko.devices: must be an attribute set, not a list`}},
		{"unknown top-level key with hint", `{"disks":{}}`, []string{
			`disko.devices.disk: no disks are defined (did you forget to import your disk layout, or is it under disko.devices?)`,
			`disko.devices.disks: unknown option (did you mean "disk"?)`}},
		{"unknown key without hint", onDisk(`{"type":"filesystem","format":"ext4","zzzzzz":1}`), []string{
			`disko.devices.disk.main.content.zzzzzz: unknown option (known options here: type, device, format, extraArgs, mountOptions, mountpoint, preCreateHook, postCreateHook, preMountHook, postMountHook, preUnmountHook, postUnmountHook)`}},
		{"typo in option", onDisk(`{"type":"filesystem","format":"ext4","mountpoints":"/"}`), []string{
			`disko.devices.disk.main.content.mountpoints: unknown option (did you mean "mountpoint"?)`}},
		{"typo in case", onDisk(`{"type":"filesystem","format":"ext4","mountOption":["x"]}`), []string{
			`disko.devices.disk.main.content.mountOption: unknown option (did you mean "mountOptions"?)`}},
		{"internal keys ignored", onDisk(`{"type":"filesystem","format":"ext4","_index":1}`), nil},
		{"disk device required", `{"disk":{"main":{}}}`, []string{`disko.devices.disk.main.device: is required`}},
		{"disk device relative", `{"disk":{"main":{"device":"sda"}}}`, []string{`disko.devices.disk.main.device: "sda" is not a device path (for example /dev/sda or /dev/disk/by-id/...)`}},
		{"disk device wrong kind", `{"disk":{"main":{"device":5}}}`, []string{`disko.devices.disk.main.device: must be a string, not the number 5`}},
		{"destroy not a bool", `{"disk":{"main":{"device":"/dev/sda","destroy":"no"}}}`, []string{`disko.devices.disk.main.destroy: must be true or false, not the string "no"`}},
		{"image size", `{"disk":{"main":{"device":"/dev/sda","imageSize":"2 GB"}}}`, []string{`disko.devices.disk.main.imageSize: "2 GB" is not a size (examples: 2G, 512M)`}},
		{"content without type", onDisk(`{"format":"ext4"}`), []string{
			`disko.devices.disk.main.content.type: is required here: one of bcachefs, btrfs, filesystem, gpt, luks, lvm_pv, mdraid, swap, table, zfs`}},
		{"unknown content type with hint", onDisk(`{"type":"filesytem"}`), []string{
			`disko.devices.disk.main.content.type: "filesytem" is not a known type (did you mean "filesystem"?)`}},
		{"gpt in a partition", gptDisk(`{"a":{"size":"1G","content":{"type":"gpt"}}}`), []string{
			p + `.a.content.type: "gpt" cannot be used here (a partition, logical volume or zvol cannot hold a partition table); allowed here: bcachefs, btrfs, filesystem, luks, lvm_pv, mdraid, swap, zfs`}},
		{"table in an LV", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"lvm_pv","vg":"vg"}}},"lvm_vg":{"vg":{"type":"lvm_vg","lvs":{"x":{"size":"1G","content":{"type":"table"}}}}}}`, []string{
			`disko.devices.lvm_vg.vg.lvs.x.content.type: "table" cannot be used here (a partition, logical volume or zvol cannot hold a partition table); allowed here: bcachefs, btrfs, filesystem, luks, lvm_pv, mdraid, swap, zfs`}},
		{"filesystem as dataset", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"zfs","pool":"z"}}},"zpool":{"z":{"datasets":{"x":{"type":"filesystem"}}}}}`, []string{
			`disko.devices.zpool.z.datasets.x.type: "filesystem" cannot be used here (a zpool's datasets are zfs_fs or zfs_volume); allowed here: zfs_fs, zfs_volume`}},
		{"bad size unit", gptDisk(`{"ESP":{"size":"500X"}}`), []string{
			p + `.ESP.size: "500X" is not a size: use a whole number with an optional K, M, G, T or P suffix, or 100% (examples: 500M, 2G, 100%)`}},
		{"percent other than 100 on gpt", gptDisk(`{"a":{"size":"50%"}}`), []string{
			p + `.a.size: "50%" is not a size: use a whole number with an optional K, M, G, T or P suffix, or 100% (examples: 500M, 2G, 100%)`}},
		{"decimal size on gpt", gptDisk(`{"a":{"size":"1.5G"}}`), []string{
			p + `.a.size: "1.5G" is not a size: use a whole number with an optional K, M, G, T or P suffix, or 100% (examples: 500M, 2G, 100%)`}},
		{"bad start", gptDisk(`{"a":{"size":"1G","start":"1 M"}}`), []string{
			p + `.a.start: "1 M" is not a position sgdisk understands (examples: 0, 1M, +500M, -10M, 2048s)`}},
		{"bad end", gptDisk(`{"a":{"end":"end"}}`), []string{
			p + `.a.end: "end" is not a position sgdisk understands (examples: 0, 1M, +500M, -10M, 2048s)`}},
		{"two fillers", gptDisk(`{"a":{"size":"100%"},"b":{"size":"100%"}}`), []string{
			p + `: partitions a, b all have size 100%, but only one can fill the rest of the disk`}},
		{"bad type code", gptDisk(`{"a":{"size":"1G","type":"EFI"}}`), []string{
			p + `.a.type: "EFI" is not a partition type: use a 4-digit sgdisk code such as EF00, EF02, 8300, 8200 or a type GUID`}},
		{"bad partition uuid", gptDisk(`{"a":{"size":"1G","uuid":"1234"}}`), []string{
			p + `.a.uuid: "1234" is not a UUID (example: 809b3a2b-828a-4730-95e1-75b6343e415a)`}},
		{"label too long", gptDisk(`{"a":{"size":"1G","label":"0123456789012345678901234567890123456789"}}`), []string{
			p + `.a.label: "0123456789012345678901234567890123456789" is 40 characters long; a GPT partition name holds at most 36 (sgdisk would cut it, and the partition would not be found by its label)`}},
		{"duplicate label", gptDisk(`{"a":{"size":"1G","label":"x"},"b":{"size":"1G","label":"x"}}`), []string{
			p + `.b.label: "x" is also the label of ` + p + `.a: both partitions are addressed by it, and by-partlabel links would collide`}},
		{"duplicate label not used for addressing", gptDisk(`{"a":{"size":"1G","label":"x","uuid":"809b3a2b-828a-4730-95e1-75b6343e415a"},"b":{"size":"1G","label":"x","uuid":"809b3a2b-828a-4730-95e1-75b6343e415b"}}`), nil},
		{"attribute bit", gptDisk(`{"a":{"size":"1G","attributes":[64]}}`), []string{p + `.a.attributes[0]: 64 is not a GPT attribute bit (0 to 63)`}},
		{"sgdisk units as sgdisk reads them", gptDisk(`{"a":{"start":"1MiB","end":"+512m"},"b":{"end":"+2048S"},"c":{"size":"100%","type":"EF02"},"d":{"size":"1M","type":"EF02"}}`), nil},
		{"filesystem format required", onDisk(`{"type":"filesystem"}`), []string{`disko.devices.disk.main.content.format: is required`}},
		{"filesystem format empty", onDisk(`{"type":"filesystem","format":""}`), []string{`disko.devices.disk.main.content.format: must not be empty (for example ext4, xfs, vfat, btrfs)`}},
		{"relative mount point", onDisk(`{"type":"filesystem","format":"ext4","mountpoint":"home"}`), []string{
			`disko.devices.disk.main.content.mountpoint: "home" is not an absolute mount point such as /home`}},
		{"duplicate mount point", gptDisk(`{"a":{"size":"1G","content":` + ext4Root + `},"b":{"size":"1G","content":{"type":"filesystem","format":"xfs","mountpoint":"/"}}}`), []string{
			p + `.b.content.mountpoint: "/" is also the mount point of ` + p + `.a.content.mountpoint`}},
		{"duplicate mount point across types", `{"disk":{"main":{"device":"/dev/sda","content":{"type":"filesystem","format":"ext4","mountpoint":"/tmp"}}},"nodev":{"/tmp":{"fsType":"tmpfs"}}}`, []string{
			`disko.devices.nodev."/tmp".mountpoint: "/tmp" is also the mount point of disko.devices.disk.main.content.mountpoint`}},
		{"mount options not a list", onDisk(`{"type":"filesystem","format":"ext4","mountOptions":"noatime"}`), []string{
			`disko.devices.disk.main.content.mountOptions: must be a list, not the string "noatime"`}},
		{"discard policy enum", onDisk(`{"type":"swap","discardPolicy":"always"}`), []string{
			`disko.devices.disk.main.content.discardPolicy: "always" is not one of "once", "pages", "both"`}},
		{"random encryption and resume", onDisk(`{"type":"swap","randomEncryption":true,"resumeDevice":true}`), []string{
			`disko.devices.disk.main.content.resumeDevice: cannot resume from a swap with randomEncryption: its key is new at every boot`}},
		{"luks name required", onDisk(`{"type":"luks"}`), []string{`disko.devices.disk.main.content.name: is required`}},
		{"luks relative password file", onDisk(`{"type":"luks","name":"c","passwordFile":"secret.key"}`), []string{
			`disko.devices.disk.main.content.passwordFile: "secret.key" is not an absolute path`}},
		{"luks key through extra args, relative initrd key file", onDisk(`{"type":"luks","name":"c","askPassword":false,"extraFormatArgs":["--key-file=/tmp/k"],"settings":{"keyFile":"key"}}`), nil},
		{"luks gpt inside is fine", onDisk(`{"type":"luks","name":"c","content":{"type":"gpt","partitions":{"r":{"size":"100%","content":` + ext4Root + `}}}}`), nil},
		{"lvm_pv names no vg", onDisk(`{"type":"lvm_pv","vg":"pool"}`), []string{
			`disko.devices.disk.main.content.vg: "pool" names no entry of disko.devices.lvm_vg`}},
		{"lvm_pv typo in vg", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"lvm_pv","vg":"pol"}}},"lvm_vg":{"pool":{"type":"lvm_vg"}}}`, []string{
			`disko.devices.disk.d.content.vg: "pol" names no entry of disko.devices.lvm_vg (did you mean "pool"?)`,
			`disko.devices.lvm_vg.pool: no device is a member: add a content of type lvm_pv that names "pool"`}},
		{"lv size", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"lvm_pv","vg":"vg"}}},"lvm_vg":{"vg":{"lvs":{"x":{"size":"lots"}}}}}`, []string{
			`disko.devices.lvm_vg.vg.lvs.x.size: "lots" is not a size: use a number with an optional unit (10G, 512M) or a percentage (100%FREE, 50%VG)`}},
		{"lv size required", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"lvm_pv","vg":"vg"}}},"lvm_vg":{"vg":{"lvs":{"x":{}}}}}`, []string{
			`disko.devices.lvm_vg.vg.lvs.x.size: is required`}},
		{"lvm type enum", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"lvm_pv","vg":"vg"}}},"lvm_vg":{"vg":{"lvs":{"x":{"size":"1G","lvm_type":"raid10"}}}}}`, []string{
			`disko.devices.lvm_vg.vg.lvs.x.lvm_type: "raid10" is not one of "mirror", "raid0", "raid1", "raid4", "raid5", "raid6", "thin-pool", "thinlv" (did you mean "raid0"?)`}},
		{"thinlv without pool", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"lvm_pv","vg":"vg"}}},"lvm_vg":{"vg":{"lvs":{"x":{"size":"1G","lvm_type":"thinlv"}}}}}`, []string{
			`disko.devices.lvm_vg.vg.lvs.x.pool: is required for a thinlv: name the thin-pool LV it lives in`}},
		{"sizes as lvm reads them, pool on a thin pool", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"lvm_pv","vg":"vg"}}},"lvm_vg":{"vg":{"lvs":{"p":{"size":"50%PV","lvm_type":"thin-pool","pool":"p"},"a":{"size":"10GiB"},"b":{"size":"100%free"}}}}}`, nil},
		{"thinlv in a plain lv", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"lvm_pv","vg":"vg"}}},"lvm_vg":{"vg":{"lvs":{"p":{"size":"1G"},"x":{"size":"1G","lvm_type":"thinlv","pool":"p"}}}}}`, []string{
			`disko.devices.lvm_vg.vg.lvs.x.pool: "p" is not a logical volume of this group with lvm_type "thin-pool"`}},
		{"two LVs take everything", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"lvm_pv","vg":"vg"}}},"lvm_vg":{"vg":{"lvs":{"a":{"size":"100%"},"b":{"size":"100%FREE"}}}}}`, []string{
			`disko.devices.lvm_vg.vg.lvs: logical volumes a, b all take 100% of the free space; only the first created would get any`}},
		{"vg without members", `{"disk":{"d":{"device":"/dev/sda"}},"lvm_vg":{"vg":{}}}`, []string{
			`disko.devices.lvm_vg.vg: no device is a member: add a content of type lvm_pv that names "vg"`}},
		{"mdraid names no array", onDisk(`{"type":"mdraid","name":"raid1"}`), []string{
			`disko.devices.disk.main.content.name: "raid1" names no entry of disko.devices.mdadm`}},
		{"mdadm level enum", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"mdraid","name":"r"}}},"mdadm":{"r":{"level":3}}}`, []string{
			`disko.devices.mdadm.r.level: "3" is not one of "0", "1", "4", "5", "6", "10"`}},
		{"mdadm metadata enum", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"mdraid","name":"r"}}},"mdadm":{"r":{"metadata":"0.90"}}}`, []string{
			`disko.devices.mdadm.r.metadata: "0.90" is not one of "1", "1.0", "1.1", "1.2", "default", "ddf", "imsm"`}},
		{"zfs names no pool", onDisk(`{"type":"zfs","pool":"zroot"}`), []string{
			`disko.devices.disk.main.content.pool: "zroot" names no entry of disko.devices.zpool`}},
		{"zpool mode enum", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"zfs","pool":"z"}}},"zpool":{"z":{"mode":"raid5"}}}`, []string{
			`disko.devices.zpool.z.mode: "raid5" is not one of "", "mirror", "raidz", "raidz1", "raidz2", "raidz3" (did you mean "raidz"?)`}},
		{"zpool topology member unknown", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"zfs","pool":"z"}}},"zpool":{"z":{"mode":{"topology":{"vdev":[{"members":["/dev/sda","other"]}]}}}}}`, []string{
			`disko.devices.zpool.z.mode.topology.vdev[0].members[1]: "other" is not a device with a zfs content for pool "z" (members: /dev/sda)`}},
		{"zpool topology member missing", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"zfs","pool":"z"}},"e":{"device":"/dev/sdb","content":{"type":"zfs","pool":"z"}}},"zpool":{"z":{"mode":{"topology":{"vdev":[{"members":["/dev/sda"]}]}}}}}`, []string{
			`disko.devices.zpool.z.mode.topology: /dev/sdb is a member of pool "z" but appears nowhere in its topology`}},
		{"zpool topology shorthand and single special", `{"disk":{"a":{"device":"/dev/sda","content":{"type":"gpt","partitions":{"zfs":{"size":"100%","content":{"type":"zfs","pool":"z"}}}}},"b":{"device":"/dev/sdb","content":{"type":"zfs","pool":"z"}}},"zpool":{"z":{"mode":{"topology":{"type":"topology","vdev":[{"members":["a"]}],"special":{"members":["/dev/sdb"]}}}}}}`, nil},
		{"zpool root not mounted frees its mount point", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"zfs","pool":"z"}}},"zpool":{"z":{"mountpoint":"/","rootFsOptions":{"canmount":"off"},"datasets":{"root":{"type":"zfs_fs","mountpoint":"/"},"v":{"type":"zfs_volume","size":"10g"}}}}}`, nil},
		{"zpool mode wrong kind", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"zfs","pool":"z"}}},"zpool":{"z":{"mode":1}}}`, []string{
			`disko.devices.zpool.z.mode: must be a mode string or {topology = ...}, not the number 1`}},
		{"zvol size", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"zfs","pool":"z"}}},"zpool":{"z":{"datasets":{"v":{"type":"zfs_volume","size":"big"}}}}}`, []string{
			`disko.devices.zpool.z.datasets.v.size: "big" is not a size (examples: 10M, 4G)`}},
		{"dataset relative mount point", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"zfs","pool":"z"}}},"zpool":{"z":{"datasets":{"x":{"type":"zfs_fs","mountpoint":"x"}}}}}`, []string{
			`disko.devices.zpool.z.datasets.x.mountpoint: "x" is not an absolute mount point such as /home`}},
		{"bcachefs names no filesystem", onDisk(`{"type":"bcachefs","filesystem":"fs"}`), []string{
			`disko.devices.disk.main.content.filesystem: "fs" names no entry of disko.devices.bcachefs_filesystems`}},
		{"bcachefs uuid", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"bcachefs","filesystem":"fs"}}},"bcachefs_filesystems":{"fs":{"uuid":"nope"}}}`, []string{
			`disko.devices.bcachefs_filesystems.fs.uuid: "nope" is not a UUID (example: 809b3a2b-828a-4730-95e1-75b6343e415a)`}},
		{"btrfs swapfile size", onDisk(`{"type":"btrfs","mountpoint":"/","swap":{"swapfile":{"size":"1.5G"}}}`), []string{
			`disko.devices.disk.main.content.swap.swapfile.size: "1.5G" is not a swap file size: a whole number with a K, M, G, T or P suffix (examples: 512M, 4G)`}},
		{"btrfs duplicate subvolume mount", onDisk(`{"type":"btrfs","subvolumes":{"/a":{"mountpoint":"/x"},"/b":{"mountpoint":"/x"}}}`), []string{
			`disko.devices.disk.main.content.subvolumes."/b".mountpoint: "/x" is also the mount point of disko.devices.disk.main.content.subvolumes."/a".mountpoint`}},
		{"table format enum", onDisk(`{"type":"table","format":"mbr"}`), []string{
			`disko.devices.disk.main.content.format: "mbr" is not one of "gpt", "msdos"`}},
		{"table gpt partition needs a name", onDisk(`{"type":"table","format":"gpt","partitions":[{"part-type":"logical"}]}`), []string{
			`disko.devices.disk.main.content.partitions[0].name: is required in a gpt-format table (parted names every GPT partition)`}},
		{"table positions as parted reads them", onDisk(`{"type":"table","format":"msdos","partitions":[{"start":"1mib","end":"10cyl"},{"start":"1GB","end":"-1s"}]}`), nil},
		{"table part-type enum", onDisk(`{"type":"table","format":"msdos","partitions":[{"part-type":"primry"}]}`), []string{
			`disko.devices.disk.main.content.partitions[0].part-type: "primry" is not one of "primary", "logical", "extended" (did you mean "primary"?)`}},
		{"table logical without extended", onDisk(`{"type":"table","format":"msdos","partitions":[{"part-type":"logical"}]}`), []string{
			`disko.devices.disk.main.content.partitions[0].part-type: a logical partition must follow an extended partition`}},
		{"table too many primaries", onDisk(`{"type":"table","format":"msdos","partitions":[{},{},{},{},{}]}`), []string{
			`disko.devices.disk.main.content.partitions: an msdos table holds at most 4 primary and extended partitions, this one has 5 (use logical partitions inside an extended one)`}},
		{"table bad position", onDisk(`{"type":"table","partitions":[{"name":"a","start":"one"}]}`), []string{
			`disko.devices.disk.main.content.partitions[0].start: "one" is not a position parted understands (examples: 1MiB, 0%, 50%)`}},
		{"table device naming", `{"disk":{"main":{"device":"/dev/weird","content":{"type":"table","partitions":[{"name":"a"}]}}}}`, []string{
			`disko.devices.disk.main.content.partitions[0]: cannot name partition 1 of "/dev/weird": a legacy table needs a device named like /dev/sdX, /dev/vdX, /dev/xvdX, /dev/nvmeXnY, /dev/mmcblkX, /dev/loopX, /dev/md/X, /dev/mapper/X or /dev/disk/by-*/X (or set the partition's device)`}},
		{"null takes the default", `{"disk":{"main":{"device":"/dev/sda","destroy":null}}}`, nil},
		{"null on a required option", `{"disk":{"main":{"device":null}}}`, []string{`disko.devices.disk.main.device: is required and must not be null`}},
		{"nodev without mount point", `{"disk":{"d":{"device":"/dev/sda"}},"nodev":{"/tmp":{"fsType":"tmpfs","mountpoint":null}}}`, []string{
			`disko.devices.nodev."/tmp".mountpoint: must not be null (null would leave this entry without any effect: remove the entry instead)`}},
		{"nodev only", `{"nodev":{"/tmp":{"fsType":"tmpfs"}}}`, []string{
			`disko.devices.disk: no disks are defined: a layout needs at least one disk, as in disko (mounts without a device alone belong in fileSystems of the NixOS configuration)`}},
		{"null partition", gptDisk(`{"root":null}`), []string{p + `.root: must not be null (remove the entry instead)`}},
		{"null disk", `{"disk":{"d":null,"e":{"device":"/dev/sda"}}}`, []string{`disko.devices.disk.d: must not be null (remove the entry instead)`}},
		{"null lv, subvolume, swap file, array, dataset", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"gpt","partitions":{
			"a":{"size":"1G","content":{"type":"lvm_pv","vg":"vg"}},
			"b":{"size":"1G","content":{"type":"mdraid","name":"md"}},
			"c":{"size":"1G","content":{"type":"zfs","pool":"z"}},
			"e":{"size":"1G","content":{"type":"btrfs","swap":{"s":null},"subvolumes":{"x":null,"y":{"swap":{"t":null}}}}}}}}},
			"lvm_vg":{"vg":{"lvs":{"lv":null}}},"mdadm":{"md":null,"md2":{}},"zpool":{"z":{"datasets":{"ds":null},"options":{"ashift":null}}},
			"bcachefs_filesystems":{"b":{"subvolumes":{"s":null}}},"nodev":{"/n":null}}`, []string{
			`disko.devices.bcachefs_filesystems.b: no device is a member: add a content of type bcachefs that names "b"`,
			`disko.devices.bcachefs_filesystems.b.subvolumes.s: must not be null (remove the entry instead)`,
			`disko.devices.disk.d.content.partitions.b.content.name: "md" names no entry of disko.devices.mdadm (did you mean "md2"?)`,
			`disko.devices.disk.d.content.partitions.e.content.subvolumes.x: must not be null (remove the entry instead)`,
			`disko.devices.disk.d.content.partitions.e.content.subvolumes.y.swap.t: must not be null (remove the entry instead)`,
			`disko.devices.disk.d.content.partitions.e.content.swap.s: must not be null (remove the entry instead)`,
			`disko.devices.lvm_vg.vg.lvs.lv: must not be null (remove the entry instead)`,
			`disko.devices.mdadm.md: must not be null (remove the entry instead)`,
			`disko.devices.mdadm.md2: no device is a member: add a content of type mdraid that names "md2"`,
			`disko.devices.nodev."/n": must not be null (remove the entry instead)`,
			`disko.devices.zpool.z.datasets.ds: must not be null (remove the entry instead)`,
			`disko.devices.zpool.z.options.ashift: must not be null (remove the entry instead)`}},
		{"null list items", onDisk(`{"type":"table","partitions":[null,{"name":"a","flags":[null]}]}`), []string{
			`disko.devices.disk.main.content.partitions[0]: must not be null (remove the item instead)`,
			`disko.devices.disk.main.content.partitions[1].flags[0]: must not be null (remove the item instead)`}},
		{"names a tool would read as options", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"gpt","partitions":{
			"a":{"size":"1G","content":{"type":"luks","name":"--help","content":{"type":"lvm_pv","vg":"-f"}}},
			"b":{"size":"1G","content":{"type":"mdraid","name":"--help"}},
			"c":{"size":"1G","content":{"type":"zfs","pool":"z"}}}}}},
			"lvm_vg":{"-f":{"lvs":{"lv":{"name":"--help","size":"1G"},"-x":{"size":"1G"}}}},"mdadm":{"--help":{}},
			"zpool":{"z":{"name":"-f"}},"nodev":{"/n":{"fsType":"tmpfs","device":"-v"}}}`, []string{
			`disko.devices.disk.d.content.partitions.a.content.name: "--help" starts with "-", which cryptsetup would read as an option (use a name that starts with a letter or digit)`,
			`disko.devices.lvm_vg."-f": "-f" starts with "-", which vgcreate would read as an option (use a name that starts with a letter or digit)`,
			`disko.devices.lvm_vg."-f".lvs."-x": "-x" starts with "-", which lvcreate would read as an option (use a name that starts with a letter or digit)`,
			`disko.devices.lvm_vg."-f".lvs.lv.name: "--help" starts with "-", which lvcreate would read as an option (use a name that starts with a letter or digit)`,
			`disko.devices.mdadm."--help": "--help" starts with "-", which mdadm would read as an option (use a name that starts with a letter or digit)`,
			`disko.devices.nodev."/n".device: "-v" starts with "-", which mount would read as an option (use a name that starts with a letter or digit)`,
			`disko.devices.zpool.z.name: "-f" starts with "-", which zpool would read as an option (use a name that starts with a letter or digit)`}},
		{"subvolume names mount options cannot carry", onDisk(`{"type":"btrfs","subvolumes":{"@a\"b":{},"a,b":{},"x":{"name":"a\\b"},"../up":{},"/":{}}}`), []string{
			`disko.devices.disk.main.content.subvolumes."../up": "../up" has a ".." component: a subvolume must lie inside its filesystem`,
			`disko.devices.disk.main.content.subvolumes."/": "/" names the top level of the filesystem, not a subvolume`,
			`disko.devices.disk.main.content.subvolumes."@a\"b": "@a\"b" contains "\"", which the mount option subvol=NAME cannot carry (use letters, digits, spaces and other punctuation)`,
			`disko.devices.disk.main.content.subvolumes."a,b": "a,b" contains ",", which the mount option subvol=NAME cannot carry (use letters, digits, spaces and other punctuation)`,
			`disko.devices.disk.main.content.subvolumes.x.name: "a\\b" contains "\\", which the mount option subvol=NAME cannot carry (use letters, digits, spaces and other punctuation)`}},
		{"bcachefs subvolume names", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"bcachefs","filesystem":"b"}}},"bcachefs_filesystems":{"b":{"subvolumes":{"a,b":{}}}}}`, []string{
			`disko.devices.bcachefs_filesystems.b.subvolumes."a,b": "a,b" contains ",", which the mount option X-mount.subdir=NAME cannot carry (use letters, digits, spaces and other punctuation)`}},
		{"odd names that work", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"btrfs","subvolumes":{"@home dir/ünï 😀":{},"a-b_c.d@e'f$(g)":{}}}}}}`, nil},
		{"line break in a mount point", onDisk(`{"type":"filesystem","format":"ext4","mountpoint":"/a\nb"}`), []string{
			`disko.devices.disk.main.content.mountpoint: "/a\nb" contains a line break, which fstab and the scripts' messages cannot carry (an absolute mount point such as /home)`}},
		{"NUL bytes anywhere", `{"disk":{"d\u0000":{"device":"/dev/sda"},"e":{"device":"/dev/sdb","content":{"type":"filesystem","format":"ext4","mountpoint":"/\u0000","extraArgs":["-L","a\u0000"]}}}}`, []string{
			"disko.devices.disk.\"d\x00\": the name contains a NUL byte, which no command line or Nix string can carry",
			`disko.devices.disk.e.content.extraArgs[1]: "a\x00" contains a NUL byte, which no command line or Nix string can carry`,
			`disko.devices.disk.e.content.mountpoint: "/\x00" contains a NUL byte, which no command line or Nix string can carry`}},
		{"what the partition table cannot hold", gptDisk(`{"a":{"size":"99999999999999999999G"},"b":{"start":"16777216P","end":"+1"},"c":{"size":"1G","alignment":-1,"attributes":[10],"type":"ABCD"}}`), []string{
			p + `.a.size: "99999999999999999999G" is too large (at most 4 EiB)`,
			p + `.b.start: "16777216P" is too large (at most 4 EiB)`,
			p + `.c.alignment: -1 is not an alignment: use a number of sectors, or 0 for sgdisk's default`,
			p + `.c.attributes[0]: bit 10 is reserved by UEFI and cannot be set (use 0, 1, 2 or 48 to 63)`,
			p + `.c.type: "ABCD" is not a partition type code sgdisk knows (sgdisk -L lists them; or use a type GUID)`}},
		{"filesystem format that is no mkfs tool", onDisk(`{"type":"filesystem","format":"ext4😀"}`), []string{
			`disko.devices.disk.main.content.format: "ext4😀" is not a filesystem type with a mkfs tool: letters, digits and . _ + - after a letter or digit (for example ext4, xfs, vfat, btrfs)`}},
		{"what NixOS has one of", `{"disk":{"main":{"device":"/dev/sda","content":{"type":"gpt","partitions":{
			"a":{"size":"1G","content":{"type":"swap","resumeDevice":true}},"b":{"size":"1G","content":{"type":"swap","resumeDevice":true}},
			"c":{"size":"1G","content":{"type":"luks","name":"x","settings":{"header":1e999}}},"e":{"size":"1G","content":{"type":"luks","name":"x"}},
			"f":{"size":"1G","content":{"type":"luks","name":""}}}}}}}`, []string{
			p + `.b.content.resumeDevice: is also set at ` + p + `.a.content: NixOS has only one boot.resumeDevice`,
			p + `.c.content.settings.header: 1e999 is not a number Nix can hold`,
			p + `.e.content.name: "x" is also the name of the LUKS container at ` + p + `.c.content: device-mapper names must be unique`,
			p + `.f.content.name: must not be empty: it names the opened container /dev/mapper/NAME`}},
		{"swap file on an unmounted filesystem", onDisk(`{"type":"btrfs","subvolumes":{"/swap":{"swap":{"s":{"size":"1G"}}}}}`), []string{
			`disko.devices.disk.main.content.subvolumes."/swap".swap.s: a swap file needs its filesystem or subvolume to be mounted: set mountpoint at disko.devices.disk.main.content.subvolumes."/swap"`}},
		{"LUKS settings the scripts read", onDisk(`{"type":"luks","name":"c","settings":{"keyFile":["/k"],"keyFileSize":1.5,"keyFileOffset":-1,"allowDiscards":"yes","bypassWorkqueues":1}}`), []string{
			`disko.devices.disk.main.content.settings.allowDiscards: must be true or false, not the string "yes"`,
			`disko.devices.disk.main.content.settings.bypassWorkqueues: must be true or false, not the number 1`,
			`disko.devices.disk.main.content.settings.keyFile: must be a string (the key file's path), not a list`,
			`disko.devices.disk.main.content.settings.keyFileOffset: must be a whole number of bytes, not the number -1`,
			`disko.devices.disk.main.content.settings.keyFileSize: must be a whole number of bytes, not the number 1.5`}},
		{"devices built on each other", `{"disk":{
			"a":{"device":"/dev/vda","content":{"type":"luks","name":"x","content":{"type":"btrfs","extraArgs":["/dev/mapper/y"]}}},
			"b":{"device":"/dev/vdb","content":{"type":"luks","name":"y","content":{"type":"btrfs","extraArgs":["-d raid1 /dev/mapper/x"]}}},
			"c":{"device":"/dev/md/r","content":{"type":"mdraid","name":"r"}}},"mdadm":{"r":{}}}`, []string{
			`disko.devices.disk.a: the devices depend on each other in a cycle: disko.devices.disk.a -> disko.devices.disk.b -> disko.devices.disk.a (a device path in one's options names a device that another creates)`,
			`disko.devices.disk.c: the devices depend on each other in a cycle: disko.devices.disk.c -> disko.devices.mdadm.r -> disko.devices.disk.c (a device path in one's options names a device that another creates)`}},
		{"devices built on others", `{"disk":{
			"a":{"device":"/dev/vda","content":{"type":"luks","name":"x","content":{"type":"btrfs","extraArgs":["/dev/mapper/y"]}}},
			"b":{"device":"/dev/vdb","content":{"type":"luks","name":"y"}}}}`, nil},
		{"device paths set by hand", gptDisk(`{"a":{"size":"1G","device":"--help","content":{"type":"filesystem","format":"ext4","device":"-f"}}}`), []string{
			p + `.a.content.device: "-f" is not a device path (for example /dev/sda or /dev/disk/by-id/...)`,
			p + `.a.device: "--help" is not a device path (for example /dev/sda or /dev/disk/by-id/...)`}},
		{"table device set by hand", onDisk(`{"type":"table","partitions":[{"name":"a","device":"sda1"}]}`), []string{
			`disko.devices.disk.main.content.partitions[0].device: "sda1" is not a device path (for example /dev/sda or /dev/disk/by-id/...)`}},
		{"null in LUKS settings is a value", onDisk(`{"type":"luks","name":"c","settings":{"keyFile":null}}`), nil},
		{"computed device cannot be set", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"mdraid","name":"r"}}},"mdadm":{"r":{"device":"/dev/md0"}}}`, []string{
			`disko.devices.mdadm.r.device: is computed as "/dev/md/r" and cannot be set to "/dev/md0"`}},
		{"computed device may be restated", `{"disk":{"d":{"device":"/dev/sda","content":{"type":"mdraid","name":"r"}}},"mdadm":{"r":{"device":"/dev/md/r"}}}`, nil},
		{"empty swap option", onDisk(`{"type":"swap","mountOptions":[""]}`), []string{`disko.devices.disk.main.content.mountOptions[0]: must not be empty`}},
		{"subvolume types", onDisk(`{"type":"btrfs","subvolumes":{"/a":{"type":"btrfs_subvol"}}}`), nil},
		{"nodev fsType required", `{"disk":{"d":{"device":"/dev/sda"}},"nodev":{"/tmp":{}}}`, []string{`disko.devices.nodev."/tmp".fsType: is required`}},
		{"attribute names with spaces are quoted", `{"disk":{"my disk":{"device":"x"}}}`, []string{`disko.devices.disk."my disk".device: "x" is not a device path (for example /dev/sda or /dev/disk/by-id/...)`}},
		{"several problems in one pass", gptDisk(`{"ESP":{"size":"500X","type":"EF0"},"root":{"size":"100%","content":{"type":"filesystem","mountpoint":"/"}}}`), []string{
			p + `.ESP.size: "500X" is not a size: use a whole number with an optional K, M, G, T or P suffix, or 100% (examples: 500M, 2G, 100%)`,
			p + `.ESP.type: "EF0" is not a partition type: use a 4-digit sgdisk code such as EF00, EF02, 8300, 8200 or a type GUID`,
			p + `.root.content.format: is required`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.layout), LoadOptions{})
			var got []string
			if err != nil {
				var probs Problems
				if !errors.As(err, &probs) {
					t.Fatalf("error is not Problems: %v", err)
				}
				for _, pr := range probs {
					got = append(got, pr.String())
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n got: %q\nwant: %q", got, tt.want)
			}
		})
	}
}

func TestDiskOverride(t *testing.T) {
	layout := gptDisk(`{"root":{"size":"100%","content":` + ext4Root + `}}`)
	d, err := Load([]byte(layout), LoadOptions{DiskDevices: map[string]string{"main": "/dev/loop7"}})
	if err != nil {
		t.Fatal(err)
	}
	gpt := d.Disk["main"].Content.(*GPT)
	if d.Disk["main"].Device != "/dev/loop7" || gpt.Device != "/dev/loop7" {
		t.Errorf("override not applied: disk %q, gpt %q", d.Disk["main"].Device, gpt.Device)
	}
	_, err = Load([]byte(layout), LoadOptions{DiskDevices: map[string]string{"mian": "/dev/loop7"}})
	want := `disko.devices.disk: --disk mian=/dev/loop7 names no disk of this layout (did you mean "main"?)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
