package docs

import (
	"reflect"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// prose is what the reference says about a type beyond its options: what it is for, the
// device paths it creates, the NixOS options it emits, and a short example. It is prose,
// not option data, so it lives here rather than in model.go's tags. Its text is markup
// (see markup.go); its example is JSON, shown as Nix and checked against the schema.
type prose struct {
	t reflect.Type
	// title heads the section of a part of another type; typed nodes are headed by their
	// `type` value.
	title   string
	summary string
	paths   string
	nixos   string
	// exampleAt is the Nix attribute path the example is assigned to; a trailing [] shows it
	// as the element of a list.
	exampleAt string
	example   string
	// exampleOf is the type the example is an instance of, when it is not t (the hooks).
	exampleOf reflect.Type
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// proseTable is in the order the reference presents the types: down the tree, each
// aggregate next to its members.
var proseTable = []prose{
	{
		t:         typeOf[config.Disk](),
		summary:   "A block device, the root of a tree. Everything on it is described by its `content`.",
		paths:     "The `device` you give, as it is: prefer a stable `/dev/disk/by-id/…` path (by-path and by-diskseq work too) over `/dev/sda`, whose name can change between boots. Its content sees this path.",
		nixos:     "Nothing itself; its content does.",
		exampleAt: "disko.devices.disk.main",
		example: `{"type": "disk", "device": "/dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S64ANS0T123456",
			"content": {"type": "gpt", "partitions": {"root": {"size": "100%",
				"content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}}`,
	},
	{
		t:         typeOf[config.GPT](),
		summary:   "A GUID partition table, written with sgdisk. Partitions are numbered by `priority`, then by name; an optional hybrid MBR makes chosen partitions visible to MBR-only firmware.",
		paths:     "Nothing itself; see [gpt partition](#gpt-partition) for the path of each partition.",
		nixos:     "`boot.loader.grub.devices = [ DEVICE ]` (the table's device) when a partition has type `EF02` (BIOS boot).",
		exampleAt: "content",
		example: `{"type": "gpt", "partitions": {
			"ESP": {"size": "512M", "type": "EF00",
				"content": {"type": "filesystem", "format": "vfat", "mountpoint": "/boot", "mountOptions": ["umask=0077"]}},
			"root": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}`,
	},
	{
		t:       typeOf[config.GPTPartition](),
		title:   "gpt partition",
		summary: "One partition of a [`gpt`](#gpt) table, keyed by name. Its number is its position when the partitions are sorted by `priority`, then by name.",
		paths: "The first rule that applies: " +
			"(1) `uuid` set: `/dev/disk/by-partuuid/UUID`; " +
			"(2) the table sits in an [`mdadm`](#mdadm) array: `/dev/disk/by-id/md-name-any:ARRAY-partN` (md partitions have no by-partlabel links); " +
			"(3) otherwise `/dev/disk/by-partlabel/LABEL`. " +
			"The default label is `PARENTTYPE-PARENTNAME-PARTNAME` where the parent is the named node the table sits in: `disk-main-ESP`, `mdadm-raid1-primary`, `luks-crypted-root`. " +
			"A label longer than 36 characters (the GPT limit) is replaced by the first 36 hex digits of its SHA-256. " +
			"In the by-partlabel path the label is escaped as udev escapes link names: `0-9 A-Z a-z # + - . : = @ _ /` are kept, every other byte becomes `\\xHH`, so `my disk` is found at `/dev/disk/by-partlabel/my\\x20disk`; the GPT name itself keeps the original characters.",
		nixos:     "Nothing itself; its content does.",
		exampleAt: "partitions.ESP",
		example: `{"size": "512M", "type": "EF00", "priority": 1,
			"content": {"type": "filesystem", "format": "vfat", "mountpoint": "/boot", "mountOptions": ["umask=0077"]}}`,
	},
	{
		t:         typeOf[config.Hybrid](),
		title:     "hybrid MBR entry",
		summary:   "Puts a [gpt partition](#gpt-partition) into a hybrid MBR as well, for firmware that only reads MBR (older Raspberry Pi boot loaders, some BIOSes).",
		exampleAt: "hybrid",
		example:   `{"mbrPartitionType": "0x0c", "mbrBootableFlag": true}`,
	},
	{
		t:         typeOf[config.Table](),
		summary:   "A partition table written with parted: deprecated in disko in favour of [`gpt`](#gpt), but the only way to get an MBR (`msdos`) table with primary, extended and logical partitions.",
		paths:     "Nothing itself; see [table partition](#table-partition).",
		nixos:     "Nothing itself; its partitions' contents do.",
		exampleAt: "content",
		example: `{"type": "table", "format": "msdos", "partitions": [
			{"part-type": "primary", "start": "1M", "end": "512M", "bootable": true,
				"content": {"type": "filesystem", "format": "vfat", "mountpoint": "/boot"}},
			{"part-type": "primary", "start": "512M", "end": "100%",
				"content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}]}`,
	},
	{
		t:       typeOf[config.TablePartition](),
		title:   "table partition",
		summary: "One partition of a legacy [`table`](#table). Its position in the list is its number; with `msdos`, logical partitions are numbered from 5.",
		paths: "Kernel numbering of the table's device and the partition number N: " +
			"`/dev/sdX`, `/dev/vdX`, `/dev/hdX`, `/dev/xvdX` get N appended (`/dev/sda1`); " +
			"`/dev/nvme…`, `/dev/mmcblk…`, `/dev/loop…` and `/dev/md/NAME` ending in a digit get `pN` (`/dev/nvme0n1p1`); " +
			"`/dev/disk/…` and `/dev/zvol/…` get `-partN`; other `/dev/md/…` and `/dev/mapper/…` names get N appended. " +
			"Any other device name is an error: set the partition's `device` then.",
		exampleAt: "partitions[]",
		example: `{"part-type": "primary", "start": "1M", "end": "100%", "flags": ["boot"],
			"content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}`,
	},
	{
		t:         typeOf[config.Filesystem](),
		summary:   "A filesystem made with `mkfs.FORMAT`, mounted at `mountpoint`. It is made only when the device holds no filesystem yet.",
		paths:     "Uses the device of the node it sits in.",
		nixos:     "`fileSystems.\"MOUNTPOINT\" = { device; fsType = format; options = mountOptions; }` when `mountpoint` is set.",
		exampleAt: "content",
		example:   `{"type": "filesystem", "format": "ext4", "extraArgs": ["-L", "nixos"], "mountpoint": "/", "mountOptions": ["noatime"]}`,
	},
	{
		t:         typeOf[config.Swap](),
		summary:   "A swap device. For encrypted swap with a persistent key, put it inside a [`luks`](#luks); for a fresh key at every boot, set `randomEncryption`.",
		paths:     "Uses the device of the node it sits in.",
		nixos:     "An entry of `swapDevices` (`device`, `discardPolicy`, `priority`, `options`, `randomEncryption = { enable; allowDiscards; }`); `boot.resumeDevice` when `resumeDevice` is true.",
		exampleAt: "content",
		example:   `{"type": "swap", "discardPolicy": "both", "resumeDevice": true}`,
	},
	{
		t:         typeOf[config.LUKS](),
		summary:   "A dm-crypt LUKS container. Its `content` sits on the opened container. The key comes from `settings.keyFile`, else an interactive password (`askPassword`), else `passwordFile`.",
		paths:     "The opened container is `/dev/mapper/NAME`; a gpt inside it labels its partitions `luks-NAME-PART`.",
		nixos:     "`boot.initrd.luks.devices.NAME = { device; } // settings`, unless `initrdUnlock` is false.",
		exampleAt: "content",
		example: `{"type": "luks", "name": "crypted", "passwordFile": "/tmp/secret.key", "settings": {"allowDiscards": true},
			"content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}`,
	},
	{
		t:         typeOf[config.LVMPV](),
		summary:   "Makes its device an LVM physical volume of the [`lvm_vg`](#lvm_vg) named by `vg`.",
		paths:     "Uses the device of the node it sits in.",
		nixos:     "Nothing; see [`lvm_vg`](#lvm_vg).",
		exampleAt: "content",
		example:   `{"type": "lvm_pv", "vg": "pool"}`,
	},
	{
		t:         typeOf[config.LVMVG](),
		summary:   "An LVM volume group, made of every [`lvm_pv`](#lvm_pv) that names it, and its logical volumes (plain, thin pools and thin volumes, raid and mirror).",
		paths:     "Logical volumes are `/dev/VG/LV`.",
		nixos:     "`boot.initrd.kernelModules`: `dm-snapshot`; for each logical volume with an `lvm_type`, `dm-LVMTYPE` (except thinlv) and `dm-mirror` for mirror or `dm-raid` for the others, plus `raid0`, `raid1` or `raid456` for the raid levels.",
		exampleAt: "disko.devices.lvm_vg.pool",
		example: `{"type": "lvm_vg", "lvs": {
			"root": {"size": "100%FREE", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}`,
	},
	{
		t:         typeOf[config.LV](),
		title:     "logical volume",
		summary:   "A logical volume of an [`lvm_vg`](#lvm_vg), keyed by name, created in order of `priority`. An existing volume is never resized.",
		paths:     "`/dev/VG/NAME`.",
		exampleAt: "lvs.home",
		example: `{"size": "10G", "lvm_type": "raid1",
			"content": {"type": "filesystem", "format": "xfs", "mountpoint": "/home"}}`,
	},
	{
		t:         typeOf[config.MDRaid](),
		summary:   "Makes its device a member of the [`mdadm`](#mdadm) array named by `name`.",
		paths:     "Uses the device of the node it sits in.",
		nixos:     "Nothing; see [`mdadm`](#mdadm).",
		exampleAt: "content",
		example:   `{"type": "mdraid", "name": "boot"}`,
	},
	{
		t:         typeOf[config.MDADM](),
		summary:   "A Linux software RAID array, made of every [`mdraid`](#mdraid) that names it. It may hold a [`gpt`](#gpt) itself.",
		paths:     "`/dev/md/NAME`; partitions of a gpt inside it are `/dev/disk/by-id/md-name-any:NAME-partN`.",
		nixos:     "`boot.swraid.enable = true`.",
		exampleAt: "disko.devices.mdadm.boot",
		example: `{"type": "mdadm", "level": 1, "metadata": "1.0",
			"content": {"type": "filesystem", "format": "vfat", "mountpoint": "/boot"}}`,
	},
	{
		t:         typeOf[config.ZFS](),
		summary:   "Makes its device a member of the [`zpool`](#zpool) named by `pool`.",
		paths:     "Uses the device of the node it sits in.",
		nixos:     "Nothing; see [`zpool`](#zpool).",
		exampleAt: "content",
		example:   `{"type": "zfs", "pool": "zroot"}`,
	},
	{
		t:         typeOf[config.Zpool](),
		summary:   "A ZFS pool, made of every [`zfs`](#zfs) member that names it, laid out by `mode`, with its datasets and volumes. An existing pool is imported, not created again.",
		paths:     "Datasets are named `POOL/NAME` (not block devices); volumes are `/dev/zvol/POOL/NAME`. In a topology a member may be a disk name, standing for `/dev/disk/by-partlabel/disk-NAME-zfs`.",
		nixos:     "`fileSystems.\"MOUNTPOINT\"` for the root dataset when `mountpoint` is set, like a [`zfs_fs`](#zfs_fs). Not emitted: `networking.hostId`, `boot.zfs.*` (set them yourself).",
		exampleAt: "disko.devices.zpool.zroot",
		example: `{"type": "zpool", "mode": "mirror", "options": {"ashift": "12"},
			"rootFsOptions": {"compression": "zstd", "mountpoint": "none"},
			"datasets": {"root": {"type": "zfs_fs", "mountpoint": "/", "options": {"mountpoint": "legacy"}}}}`,
	},
	{
		t:         typeOf[config.Topology](),
		title:     "topology",
		summary:   "An explicit vdev layout for a [`zpool`](#zpool), written as `mode = { topology = … }`. Every member of the pool must appear in it.",
		exampleAt: "mode.topology",
		example: `{"vdev": [{"mode": "mirror", "members": ["data1", "data2"]}],
			"special": {"mode": "mirror", "members": ["fast1", "fast2"]}, "cache": ["cache"]}`,
	},
	{
		t:         typeOf[config.Vdev](),
		title:     "vdev",
		summary:   "One virtual device of a [topology](#topology): a redundancy mode and its members.",
		exampleAt: "vdev[]",
		example:   `{"mode": "raidz1", "members": ["/dev/disk/by-id/ata-A", "/dev/disk/by-id/ata-B", "/dev/disk/by-id/ata-C"]}`,
	},
	{
		t:         typeOf[config.ZFSFS](),
		summary:   "A ZFS filesystem dataset of a [`zpool`](#zpool). Properties of an existing dataset are updated in place (except those ZFS only accepts at creation).",
		paths:     "The dataset `POOL/NAME`.",
		nixos:     "`fileSystems.\"MOUNTPOINT\" = { device = \"POOL/NAME\"; fsType = \"zfs\"; options = mountOptions ++ [ \"zfsutil\" ]; }` when `mountpoint` is set; no `zfsutil` when `options.mountpoint` is `legacy`.",
		exampleAt: "datasets.home",
		example:   `{"type": "zfs_fs", "mountpoint": "/home", "options": {"com.sun:auto-snapshot": "true"}}`,
	},
	{
		t:         typeOf[config.ZFSVolume](),
		summary:   "A ZFS volume (zvol) of a [`zpool`](#zpool): a block device inside the pool, with its own `content`.",
		paths:     "`/dev/zvol/POOL/NAME`.",
		nixos:     "Nothing itself; its content does.",
		exampleAt: "datasets.swap",
		example:   `{"type": "zfs_volume", "size": "8G", "options": {"volblocksize": "4096"}, "content": {"type": "swap"}}`,
	},
	{
		t:         typeOf[config.BTRFS](),
		summary:   "A btrfs filesystem with subvolumes and swap files. For a multi-device filesystem, pass the other devices in `extraArgs` (`-d raid1 /dev/…`).",
		paths:     "Uses the device of the node it sits in.",
		nixos:     "`fileSystems.\"MOUNTPOINT\"` for the top level when `mountpoint` is set and for each mounted subvolume (`options = mountOptions ++ [ \"subvol=NAME\" ]`); a `swapDevices` entry `MOUNTPOINT/PATH` for each swap file.",
		exampleAt: "content",
		example: `{"type": "btrfs", "extraArgs": ["-f"], "subvolumes": {
			"/root": {"mountpoint": "/"},
			"/nix": {"mountpoint": "/nix", "mountOptions": ["compress=zstd", "noatime"]}}}`,
	},
	{
		t:         typeOf[config.Subvolume](),
		title:     "btrfs subvolume",
		summary:   "A subvolume of a [`btrfs`](#btrfs) filesystem, keyed by its path; parents are created as needed.",
		paths:     "Mounted from the filesystem's device with `subvol=NAME`.",
		exampleAt: "subvolumes.\"/swap\"",
		example:   `{"mountpoint": "/.swapvol", "swap": {"swapfile": {"size": "8G"}}}`,
	},
	{
		t:         typeOf[config.Swapfile](),
		title:     "btrfs swap file",
		summary:   "A swap file on [`btrfs`](#btrfs), at the top level or in a [btrfs subvolume](#btrfs-subvolume), keyed by its path.",
		paths:     "The file `MOUNTPOINT/PATH` of the filesystem or subvolume it is in.",
		exampleAt: "swap.swapfile",
		example:   `{"size": "8G", "priority": 10}`,
	},
	{
		t:         typeOf[config.Bcachefs](),
		summary:   "Makes its device a member of the [`bcachefs_filesystem`](#bcachefs_filesystem) named by `filesystem`.",
		paths:     "Uses the device of the node it sits in.",
		nixos:     "Nothing; see [`bcachefs_filesystem`](#bcachefs_filesystem).",
		exampleAt: "content",
		example:   `{"type": "bcachefs", "filesystem": "pool", "label": "group_a.nvme0", "extraFormatArgs": ["--discard"]}`,
	},
	{
		t:         typeOf[config.BcachefsFilesystem](),
		summary:   "A multi-device bcachefs filesystem, made of every [`bcachefs`](#bcachefs) member that names it, with its subvolumes.",
		paths:     "`/dev/disk/by-uuid/UUID`.",
		nixos:     "`fileSystems.\"MOUNTPOINT\" = { device = \"/dev/disk/by-uuid/UUID\"; fsType = \"bcachefs\"; options; neededForBoot = true; }` for the filesystem and each mounted subvolume.",
		exampleAt: "disko.devices.bcachefs_filesystems.pool",
		example: `{"type": "bcachefs_filesystem", "extraFormatArgs": ["--compression=lz4"],
			"subvolumes": {"subvolumes/root": {"mountpoint": "/"}}}`,
	},
	{
		t:         typeOf[config.BcachefsSubvolume](),
		title:     "bcachefs subvolume",
		summary:   "A subvolume of a [`bcachefs_filesystem`](#bcachefs_filesystem), keyed by its path.",
		paths:     "Mounted from the filesystem's `/dev/disk/by-uuid/UUID` with `X-mount.subdir=NAME`.",
		exampleAt: "subvolumes.\"subvolumes/home\"",
		example:   `{"mountpoint": "/home", "mountOptions": ["noatime"]}`,
	},
	{
		t:         typeOf[config.Nodev](),
		summary:   "A mount without a block device: tmpfs or ramfs (a root on tmpfs), a bind mount, a pseudo filesystem. Nothing is created; it is only mounted.",
		paths:     "`device` is `fsType` for proc, sysfs, tmpfs, ramfs, devtmpfs and devpts, else `none`.",
		nixos:     "`fileSystems.\"MOUNTPOINT\" = { device; fsType; options = mountOptions; }`.",
		exampleAt: "disko.devices.nodev.\"/\"",
		example:   `{"fsType": "tmpfs", "mountOptions": ["size=2G", "mode=755"]}`,
	},
	{
		t:     typeOf[config.Hooks](),
		title: "hooks",
		summary: "Every typed node (all sections headed by a `type` value) accepts these shell snippets. " +
			"Before a hook runs, the node's options are in its environment as shell variables (`device`, `name`, `mountpoint`, …). " +
			"A mount hook of a node runs around each mount below it.",
		exampleAt: "disko.devices.zpool.zroot",
		exampleOf: typeOf[config.Zpool](),
		example: `{"type": "zpool", "mountpoint": "/",
			"postCreateHook": "zfs list -t snapshot -H -o name | grep -q '^zroot@blank$' || zfs snapshot zroot@blank"}`,
	},
}
