// Package config is the typed model of a disko layout (the `disko.devices` tree).
//
// The Go types in this file are the single source of truth for option names, accepted
// values, defaults and descriptions: the decoder, the validator, the JSON Schema and the
// options reference are all derived from them by reflection, so an option is defined,
// validated, documented and rendered from one place.
//
// Struct tags carry everything the derived outputs need:
//
//   - `json`: the option name as disko spells it;
//   - `jsonschema_description`: the option's description (required on every option);
//   - `jsonschema`: accepted values (`enum=`), simple defaults (`default=`, applied by the
//     decoder when the key is absent) and `required`;
//   - `defaultText`: a human description of a default that is computed from other options
//     (applied by the defaulting pass in defaults.go);
//   - `pattern`: the name of the pattern (patterns.go) a string option must match; the
//     validator checks it and the JSON Schema carries it.
//
// The `content` slots are tagged unions on the `type` key. Which types may sit in which slot
// is expressed in the type system: a slot's Go type is an interface (DeviceNode,
// PartitionNode, DatasetNode) and only the node types allowed there implement it.
package config

// Devices is `disko.devices`: six collections of top-level devices, each keyed by name.
type Devices struct {
	Disk                map[string]*Disk               `json:"disk,omitempty" jsonschema_description:"Block devices (whole disks) and what they contain."`
	MDADM               map[string]*MDADM              `json:"mdadm,omitempty" jsonschema_description:"Linux software RAID arrays, built from the devices that declare an mdraid content with this array's name."`
	Zpool               map[string]*Zpool              `json:"zpool,omitempty" jsonschema_description:"ZFS pools, built from the devices that declare a zfs content with this pool's name."`
	LVMVG               map[string]*LVMVG              `json:"lvm_vg,omitempty" jsonschema_description:"LVM volume groups, built from the devices that declare an lvm_pv content with this group's name."`
	Nodev               map[string]*Nodev              `json:"nodev,omitempty" jsonschema_description:"Mounts without a block device: tmpfs, ramfs, bind mounts and pseudo filesystems. The attribute name is the default mount point."`
	BcachefsFilesystems map[string]*BcachefsFilesystem `json:"bcachefs_filesystems,omitempty" jsonschema_description:"Multi-device bcachefs filesystems, built from the devices that declare a bcachefs content with this filesystem's name."`
}

// Node is a typed node of the tree; Kind is the value of its `type` key.
type Node interface {
	Kind() string
}

// DeviceNode may fill a whole device: disk.content, luks.content and mdadm.content.
// Partition tables are allowed here and only here.
type DeviceNode interface {
	Node
	deviceSlot()
}

// PartitionNode may fill a partition, a logical volume or a zvol: everything a device may
// hold except a partition table.
type PartitionNode interface {
	Node
	partitionSlot()
}

// DatasetNode may be an entry of zpool.datasets.
type DatasetNode interface {
	Node
	datasetSlot()
}

// Hooks are shell snippets that every typed node accepts, run where disko runs them.
type Hooks struct {
	PreCreateHook   string `json:"preCreateHook,omitempty" jsonschema:"default=" jsonschema_description:"Shell commands run before this node is created, with the node's options in the environment."`
	PostCreateHook  string `json:"postCreateHook,omitempty" jsonschema:"default=" jsonschema_description:"Shell commands run after this node and everything inside it were created."`
	PreMountHook    string `json:"preMountHook,omitempty" jsonschema:"default=" jsonschema_description:"Shell commands run before this node's mounts (and device activation)."`
	PostMountHook   string `json:"postMountHook,omitempty" jsonschema:"default=" jsonschema_description:"Shell commands run after this node's mounts (and device activation)."`
	PreUnmountHook  string `json:"preUnmountHook,omitempty" jsonschema:"default=" jsonschema_description:"Shell commands run before this node is unmounted or deactivated."`
	PostUnmountHook string `json:"postUnmountHook,omitempty" jsonschema:"default=" jsonschema_description:"Shell commands run after this node is unmounted or deactivated."`
}

// Disk is a block device, the root of a tree.
type Disk struct {
	Type      string     `json:"type" jsonschema:"enum=disk,default=disk" jsonschema_description:"Always \"disk\"."`
	Name      string     `json:"name,omitempty" defaultText:"the attribute name, with / replaced by _" jsonschema_description:"Name used in partition labels (disk-NAME-PART) and image file names."`
	Device    string     `json:"device" jsonschema:"required" jsonschema_description:"Path of the block device, for example /dev/sda or (better, stable across boots) /dev/disk/by-id/..."`
	Destroy   bool       `json:"destroy" jsonschema:"default=true" jsonschema_description:"Whether destroy mode wipes this disk. Set to false to keep a disk out of destroy."`
	ImageName string     `json:"imageName,omitempty" defaultText:"the disk's name" jsonschema_description:"File name (without extension) of this disk's image when building disk images."`
	ImageSize string     `json:"imageSize" pattern:"imageSize" jsonschema:"default=2G" jsonschema_description:"Size of this disk's image when building disk images: a number with an optional K, M, G, T or P suffix."`
	Content   DeviceNode `json:"content,omitempty" jsonschema_description:"What the disk holds: a partition table, or a whole-disk filesystem, LUKS container, pool member and so on. Null leaves the disk untouched."`
	Hooks
}

// GPT is a GUID partition table, written with one partition-table write per disk.
type GPT struct {
	Type                 string                   `json:"type" jsonschema:"enum=gpt" jsonschema_description:"Always \"gpt\"."`
	Device               string                   `json:"device,omitempty" defaultText:"the device of the enclosing node" jsonschema_description:"Device the table is written to."`
	EFIGPTPartitionFirst bool                     `json:"efiGptPartitionFirst" jsonschema:"default=true" jsonschema_description:"With a hybrid MBR: put the protective 0xEE entry first (what GRUB expects); false puts it last."`
	Partitions           map[string]*GPTPartition `json:"partitions,omitempty" jsonschema_description:"The partitions, keyed by name. They are numbered in order of priority, then name."`
	Hooks
}

// GPTPartition is one entry of a GPT.
type GPTPartition struct {
	Name       string        `json:"name,omitempty" defaultText:"the attribute name" jsonschema_description:"Partition name, used in the default label."`
	Type       string        `json:"type,omitempty" defaultText:"8200 when the content is swap, else 8300" jsonschema_description:"Partition type: a 4-digit sgdisk type code (EF00 ESP, EF02 BIOS boot, 8300 Linux, 8200 swap, FD00 RAID, 8E00 LVM) or a full type GUID."`
	Size       string        `json:"size" pattern:"gptSize" jsonschema:"default=0" jsonschema_description:"Size: a number with a K, M, G, T or P suffix, or 100% for the rest of the disk. \"0\" means: from start to end."`
	Start      string        `json:"start" pattern:"gptPosition" jsonschema:"default=0" jsonschema_description:"Start in sgdisk syntax (\"0\" is the next free aligned sector, or for example 1M or 2048s)."`
	End        string        `json:"end,omitempty" pattern:"gptPosition" defaultText:"-0 when size is 100%, else +SIZE" jsonschema_description:"End in sgdisk syntax; a negative value counts from the end of the disk (-10M)."`
	Alignment  *int          `json:"alignment,omitempty" defaultText:"1 when start or end is in sectors (ends in s), else 0 (sgdisk's default)" jsonschema_description:"Sector alignment passed to sgdisk --set-alignment; 0 keeps sgdisk's default."`
	Priority   *int          `json:"priority,omitempty" defaultText:"100 for EF02, 9001 when size is 100%, else 1000" jsonschema_description:"Creation order and hence partition number: lower first, ties broken by name."`
	UUID       string        `json:"uuid,omitempty" jsonschema_description:"Partition GUID. When set, the partition is addressed by /dev/disk/by-partuuid/UUID; when unset a random GUID is used."`
	Label      string        `json:"label,omitempty" defaultText:"PARENTTYPE-PARENTNAME-PART, for example disk-main-ESP or luks-crypted-root; the first 36 hex digits of its SHA-256 when longer than 36 characters" jsonschema_description:"GPT partition name (at most 36 characters), by which the partition is found in /dev/disk/by-partlabel."`
	Attributes []int         `json:"attributes,omitempty" jsonschema_description:"GPT attribute bits to set (0 required, 1 no block IO, 2 legacy BIOS bootable, 60 read-only, 62 hidden, 63 no automount)."`
	Hybrid     *Hybrid       `json:"hybrid,omitempty" jsonschema_description:"Add this partition to a hybrid MBR (for firmware that only reads MBR)."`
	Device     string        `json:"device,omitempty" defaultText:"/dev/disk/by-partuuid/UUID when uuid is set; /dev/disk/by-id/md-name-any:ARRAY-partN inside an mdadm array; else /dev/disk/by-partlabel/LABEL" jsonschema_description:"Device path of the partition, as its content sees it."`
	Content    PartitionNode `json:"content,omitempty" jsonschema_description:"What the partition holds. Null leaves it unformatted."`
}

// Hybrid places a GPT partition in a hybrid MBR.
type Hybrid struct {
	MBRPartitionType string `json:"mbrPartitionType,omitempty" jsonschema_description:"MBR partition type byte for this entry, for example 0x0c (FAT32 LBA). Unset keeps sgdisk's choice."`
	MBRBootableFlag  bool   `json:"mbrBootableFlag" jsonschema:"default=false" jsonschema_description:"Mark this MBR entry bootable (active)."`
}

// Table is disko's deprecated partition table type, written with parted. It is the only
// way to get an MBR (msdos) table, with primary, extended and logical partitions.
type Table struct {
	Type       string            `json:"type" jsonschema:"enum=table" jsonschema_description:"Always \"table\" (deprecated in disko in favour of gpt, but the only MBR type)."`
	Device     string            `json:"device,omitempty" defaultText:"the device of the enclosing node" jsonschema_description:"Device the table is written to."`
	Format     string            `json:"format" jsonschema:"enum=gpt,enum=msdos,default=gpt" jsonschema_description:"Partition table format."`
	Partitions []*TablePartition `json:"partitions,omitempty" jsonschema_description:"The partitions, in order: the list position is the partition number (MBR logical partitions are numbered from 5)."`
	Hooks
}

// TablePartition is one entry of a legacy table.
type TablePartition struct {
	Name     string        `json:"name,omitempty" jsonschema_description:"GPT partition name; required in a gpt-format table, unused in msdos."`
	PartType string        `json:"part-type" jsonschema:"enum=primary,enum=logical,enum=extended,default=primary" jsonschema_description:"MBR partition kind (msdos format only)."`
	FSType   string        `json:"fs-type,omitempty" jsonschema:"enum=bcachefs,enum=btrfs,enum=ext2,enum=ext3,enum=ext4,enum=fat16,enum=fat32,enum=hfs,enum=hfs+,enum=linux-swap,enum=ntfs,enum=reiserfs,enum=udf,enum=xfs" jsonschema_description:"Filesystem type hint written into the table by parted; it does not format anything."`
	Start    string        `json:"start" pattern:"partedPosition" jsonschema:"default=0%" jsonschema_description:"Start in parted units (1MiB, 50%, ...)."`
	End      string        `json:"end" pattern:"partedPosition" jsonschema:"default=100%" jsonschema_description:"End in parted units (1GiB, 100%, ...)."`
	Flags    []string      `json:"flags,omitempty" jsonschema_description:"parted flags to set, for example bios_grub or esp."`
	Bootable bool          `json:"bootable" jsonschema:"default=false" jsonschema_description:"Set the boot flag."`
	Device   string        `json:"device,omitempty" defaultText:"the disk's device with the partition number, in kernel naming (sda1, nvme0n1p1, by-id/...-part1)" jsonschema_description:"Device path of the partition, as its content sees it. Setting it is an extension of this tool (disko always computes it), for devices whose partitions the kernel names in another way."`
	Content  PartitionNode `json:"content,omitempty" jsonschema_description:"What the partition holds. Null leaves it unformatted."`
}

// Filesystem is any filesystem made with mkfs.FORMAT.
type Filesystem struct {
	Type         string   `json:"type" jsonschema:"enum=filesystem" jsonschema_description:"Always \"filesystem\"."`
	Device       string   `json:"device,omitempty" defaultText:"the device of the enclosing node" jsonschema_description:"Device to format."`
	Format       string   `json:"format" jsonschema:"required" jsonschema_description:"Filesystem type: anything with a mkfs.FORMAT tool (ext4, xfs, vfat, btrfs, f2fs, exfat, ...)."`
	ExtraArgs    []string `json:"extraArgs,omitempty" jsonschema_description:"Extra arguments to mkfs.FORMAT, each passed as one word (this is how labels are set: [\"-L\" \"root\"])."`
	MountOptions []string `json:"mountOptions" jsonschema:"default=defaults" jsonschema_description:"Mount options."`
	Mountpoint   string   `json:"mountpoint,omitempty" jsonschema_description:"Absolute mount point in the installed system. Null formats without mounting."`
	Hooks
}

// Swap is a swap device.
type Swap struct {
	Type             string   `json:"type" jsonschema:"enum=swap" jsonschema_description:"Always \"swap\"."`
	Device           string   `json:"device,omitempty" defaultText:"the device of the enclosing node" jsonschema_description:"Device to use as swap."`
	DiscardPolicy    string   `json:"discardPolicy,omitempty" jsonschema:"enum=once,enum=pages,enum=both" jsonschema_description:"Discard (TRIM) policy for swapon; null disables discard."`
	ExtraArgs        []string `json:"extraArgs,omitempty" jsonschema_description:"Extra arguments to mkswap."`
	MountOptions     []string `json:"mountOptions" jsonschema:"default=defaults" jsonschema_description:"Options for swapon --options."`
	Priority         *int     `json:"priority,omitempty" jsonschema_description:"Swap priority; null keeps the kernel's default."`
	RandomEncryption bool     `json:"randomEncryption" jsonschema:"default=false" jsonschema_description:"Encrypt with a random key at each boot (NixOS randomEncryption); the device is then neither formatted nor activated by the scripts."`
	ResumeDevice     bool     `json:"resumeDevice" jsonschema:"default=false" jsonschema_description:"Use this swap for hibernation (sets boot.resumeDevice)."`
	Hooks
}

// LUKS is a dm-crypt LUKS container.
type LUKS struct {
	Type               string         `json:"type" jsonschema:"enum=luks" jsonschema_description:"Always \"luks\"."`
	Device             string         `json:"device,omitempty" defaultText:"the device of the enclosing node" jsonschema_description:"Device to encrypt."`
	Name               string         `json:"name" jsonschema:"required" jsonschema_description:"Device-mapper name: the opened container is /dev/mapper/NAME. It must not start with - (cryptsetup would read it as an option)."`
	PasswordFile       string         `json:"passwordFile,omitempty" jsonschema_description:"File holding the passphrase used when formatting (the machine then asks for it at boot). Read at format time on the machine that runs the script."`
	KeyFile            string         `json:"keyFile,omitempty" jsonschema_description:"Deprecated: use passwordFile, or settings.keyFile for a key file that is also used at boot."`
	AskPassword        *bool          `json:"askPassword,omitempty" defaultText:"true when none of keyFile, passwordFile and settings.keyFile is set" jsonschema_description:"Ask for the passphrase interactively (twice when formatting, once when opening). The scripts then need a terminal: without one they stop before changing anything."`
	Settings           map[string]any `json:"settings,omitempty" jsonschema_description:"Copied into boot.initrd.luks.devices.NAME. keyFile, keyFileSize, keyFileOffset, allowDiscards and bypassWorkqueues are also used when formatting and opening."`
	AdditionalKeyFiles []string       `json:"additionalKeyFiles,omitempty" jsonschema_description:"Key files added to the container with cryptsetup luksAddKey after formatting."`
	InitrdUnlock       bool           `json:"initrdUnlock" jsonschema:"default=true" jsonschema_description:"Unlock this container in the initrd (emit boot.initrd.luks.devices.NAME)."`
	ExtraFormatArgs    []string       `json:"extraFormatArgs,omitempty" jsonschema_description:"Extra arguments to cryptsetup luksFormat, for example [\"--pbkdf\" \"argon2id\"]."`
	ExtraOpenArgs      []string       `json:"extraOpenArgs,omitempty" jsonschema_description:"Extra arguments to cryptsetup open."`
	Content            DeviceNode     `json:"content,omitempty" jsonschema_description:"What the opened container holds."`
	Hooks
}

// LVMPV makes its device a physical volume of an LVM volume group.
type LVMPV struct {
	Type   string `json:"type" jsonschema:"enum=lvm_pv" jsonschema_description:"Always \"lvm_pv\"."`
	Device string `json:"device,omitempty" defaultText:"the device of the enclosing node" jsonschema_description:"Device to make a physical volume."`
	VG     string `json:"vg" jsonschema:"required" jsonschema_description:"Name of the volume group (an entry of lvm_vg) this physical volume belongs to."`
	Hooks
}

// LVMVG is an LVM volume group and its logical volumes.
type LVMVG struct {
	Type string         `json:"type" jsonschema:"enum=lvm_vg,default=lvm_vg" jsonschema_description:"Always \"lvm_vg\"."`
	Name string         `json:"name,omitempty" defaultText:"the attribute name" jsonschema_description:"Volume group name: logical volumes are /dev/NAME/LV. It must not start with - (vgcreate would read it as an option)."`
	LVs  map[string]*LV `json:"lvs,omitempty" jsonschema_description:"Logical volumes, keyed by name, created in order of priority."`
	Hooks
}

// LV is a logical volume of an LVM volume group.
type LV struct {
	Name      string        `json:"name,omitempty" defaultText:"the attribute name" jsonschema_description:"Logical volume name. It must not start with - (lvcreate would read it as an option)."`
	Size      string        `json:"size" pattern:"lvSize" jsonschema:"required" jsonschema_description:"Size: 10G (lvcreate -L), a percentage such as 100%FREE or 50%VG (-l; a bare 100% means 100%FREE), or the virtual size of a thin volume."`
	LVMType   string        `json:"lvm_type,omitempty" jsonschema:"enum=mirror,enum=raid0,enum=raid1,enum=raid4,enum=raid5,enum=raid6,enum=thin-pool,enum=thinlv" jsonschema_description:"Logical volume type (lvcreate --type); thinlv creates a thin volume in pool."`
	Pool      string        `json:"pool,omitempty" jsonschema_description:"Thin pool (another LV of this group with lvm_type thin-pool) that a thinlv lives in."`
	ExtraArgs []string      `json:"extraArgs,omitempty" jsonschema_description:"Extra arguments to lvcreate."`
	Priority  *int          `json:"priority,omitempty" defaultText:"1000; 501 for a thin-pool; 251 more when size contains 100%" jsonschema_description:"Creation order: lower first, ties broken by name."`
	Device    string        `json:"device,omitempty" defaultText:"/dev/VG/LV" jsonschema_description:"Device path of the logical volume, as its content sees it. Computed: it cannot be set to anything else."`
	Content   PartitionNode `json:"content,omitempty" jsonschema_description:"What the logical volume holds. Null leaves it unformatted."`
}

// MDRaid makes its device a member of an mdadm array.
type MDRaid struct {
	Type   string `json:"type" jsonschema:"enum=mdraid" jsonschema_description:"Always \"mdraid\"."`
	Device string `json:"device,omitempty" defaultText:"the device of the enclosing node" jsonschema_description:"Device to add to the array."`
	Name   string `json:"name" jsonschema:"required" jsonschema_description:"Name of the array (an entry of mdadm) this device belongs to."`
	Hooks
}

// MDADM is a Linux software RAID array.
type MDADM struct {
	Type      string     `json:"type" jsonschema:"enum=mdadm,default=mdadm" jsonschema_description:"Always \"mdadm\"."`
	Name      string     `json:"name,omitempty" defaultText:"the attribute name" jsonschema_description:"Array name: the array is /dev/md/NAME. It must not start with - (mdadm would read it as an option)."`
	Level     int        `json:"level" jsonschema:"enum=0,enum=1,enum=4,enum=5,enum=6,enum=10,default=1" jsonschema_description:"RAID level."`
	Metadata  string     `json:"metadata" jsonschema:"enum=1,enum=1.0,enum=1.1,enum=1.2,enum=default,enum=ddf,enum=imsm,default=default" jsonschema_description:"Superblock format. Use 1.0 for an ESP on RAID1 so that firmware sees a plain FAT filesystem."`
	ExtraArgs []string   `json:"extraArgs,omitempty" jsonschema_description:"Extra arguments to mdadm --create, for example [\"--assume-clean\"]."`
	Device    string     `json:"device,omitempty" defaultText:"/dev/md/NAME" jsonschema_description:"Device path of the array, as its content sees it. Computed: it cannot be set to anything else."`
	Content   DeviceNode `json:"content,omitempty" jsonschema_description:"What the array holds, a GPT included."`
	Hooks
}

// ZFS makes its device a member of a ZFS pool.
type ZFS struct {
	Type   string `json:"type" jsonschema:"enum=zfs" jsonschema_description:"Always \"zfs\"."`
	Device string `json:"device,omitempty" defaultText:"the device of the enclosing node" jsonschema_description:"Device to add to the pool."`
	Pool   string `json:"pool" jsonschema:"required" jsonschema_description:"Name of the pool (an entry of zpool) this device belongs to."`
	Hooks
}

// Zpool is a ZFS pool with its datasets.
type Zpool struct {
	Type          string                 `json:"type" jsonschema:"enum=zpool,default=zpool" jsonschema_description:"Always \"zpool\"."`
	Name          string                 `json:"name,omitempty" defaultText:"the attribute name" jsonschema_description:"Pool name. It must not start with - (zpool would read it as an option)."`
	Mode          ZpoolMode              `json:"mode" jsonschema:"default=" jsonschema_description:"Redundancy: a string applied to all members (\"\" for a stripe, mirror, raidz, raidz1, raidz2, raidz3), or {topology = {...}} for an explicit vdev layout."`
	Options       map[string]string      `json:"options,omitempty" jsonschema_description:"Pool properties (zpool create -o), for example ashift = \"12\"."`
	RootFsOptions map[string]string      `json:"rootFsOptions,omitempty" jsonschema_description:"Properties of the pool's root dataset (zpool create -O), for example compression = \"zstd\"."`
	Mountpoint    string                 `json:"mountpoint,omitempty" jsonschema_description:"Where the pool's root dataset is mounted. Null leaves it unmounted."`
	MountOptions  []string               `json:"mountOptions" jsonschema:"default=defaults" jsonschema_description:"Mount options of the root dataset."`
	Datasets      map[string]DatasetNode `json:"datasets,omitempty" jsonschema_description:"Datasets and volumes, keyed by name relative to the pool (\"root/nix\" nests)."`
	Hooks
}

// ZpoolMode is either a mode string for all members or an explicit topology.
type ZpoolMode struct {
	Mode     string    `json:"-" jsonschema:"enum=,enum=mirror,enum=raidz,enum=raidz1,enum=raidz2,enum=raidz3" jsonschema_description:"Redundancy applied to all members."`
	Topology *Topology `json:"topology,omitempty" jsonschema_description:"Explicit vdev layout."`
}

// Topology is an explicit ZFS vdev layout.
type Topology struct {
	Type    string   `json:"type" jsonschema:"enum=topology,default=topology" jsonschema_description:"Always \"topology\"."`
	Vdev    []Vdev   `json:"vdev,omitempty" jsonschema_description:"Data vdevs."`
	Spare   []string `json:"spare,omitempty" jsonschema_description:"Hot spares: device paths, or a disk name standing for its partition labelled zfs."`
	Log     []Vdev   `json:"log,omitempty" jsonschema_description:"Separate intent log (SLOG) vdevs."`
	Dedup   []Vdev   `json:"dedup,omitempty" jsonschema_description:"Deduplication table vdevs."`
	Special []Vdev   `json:"special,omitempty" decode:"oneOrMany" jsonschema_description:"Special allocation class vdevs (a single vdev is accepted too)."`
	Cache   []string `json:"cache,omitempty" jsonschema_description:"L2ARC cache devices."`
}

// Vdev is one virtual device of a pool topology.
type Vdev struct {
	Mode    string   `json:"mode" jsonschema:"enum=,enum=mirror,enum=raidz,enum=raidz1,enum=raidz2,enum=raidz3,default=" jsonschema_description:"Redundancy of this vdev; \"\" stripes its members."`
	Members []string `json:"members" jsonschema:"required" jsonschema_description:"Member devices: absolute paths, or a disk name standing for /dev/disk/by-partlabel/disk-NAME-zfs."`
}

// ZFSFS is a ZFS filesystem dataset.
type ZFSFS struct {
	Type         string            `json:"type" jsonschema:"enum=zfs_fs" jsonschema_description:"Always \"zfs_fs\"."`
	Name         string            `json:"name,omitempty" defaultText:"the attribute name" jsonschema_description:"Dataset name relative to the pool; the full name is POOL/NAME."`
	Options      map[string]string `json:"options,omitempty" jsonschema_description:"ZFS properties (zfs create -o), for example mountpoint = \"legacy\", canmount = \"off\", encryption, keyformat, keylocation. Mutable ones are updated in place on an existing dataset."`
	Mountpoint   string            `json:"mountpoint,omitempty" jsonschema_description:"Mount point in the installed system; also the dataset's mountpoint property unless options.mountpoint is set."`
	MountOptions []string          `json:"mountOptions" jsonschema:"default=defaults" jsonschema_description:"Mount options."`
	Hooks
}

// ZFSVolume is a ZFS volume (zvol), a block device inside a pool.
type ZFSVolume struct {
	Type         string            `json:"type" jsonschema:"enum=zfs_volume" jsonschema_description:"Always \"zfs_volume\"."`
	Name         string            `json:"name,omitempty" defaultText:"the attribute name" jsonschema_description:"Volume name relative to the pool; the device is /dev/zvol/POOL/NAME."`
	Size         string            `json:"size" pattern:"zvolSize" jsonschema:"required" jsonschema_description:"Volume size (zfs create -V), a number with a K, M, G, T or P suffix."`
	Options      map[string]string `json:"options,omitempty" jsonschema_description:"ZFS properties (zfs create -o), for example volblocksize or compression."`
	ExtraArgs    []string          `json:"extraArgs,omitempty" jsonschema_description:"Extra arguments to zfs create."`
	MountOptions []string          `json:"mountOptions" jsonschema:"default=defaults" jsonschema_description:"Unused; kept for compatibility with disko."`
	Device       string            `json:"device,omitempty" defaultText:"/dev/zvol/POOL/NAME" jsonschema_description:"Device path of the volume, as its content sees it. Computed: it cannot be set to anything else."`
	Content      PartitionNode     `json:"content,omitempty" jsonschema_description:"What the volume holds."`
	Hooks
}

// BTRFS is a btrfs filesystem with subvolumes and swap files.
type BTRFS struct {
	Type         string                `json:"type" jsonschema:"enum=btrfs" jsonschema_description:"Always \"btrfs\"."`
	Device       string                `json:"device,omitempty" defaultText:"the device of the enclosing node" jsonschema_description:"Device to format."`
	ExtraArgs    []string              `json:"extraArgs,omitempty" jsonschema_description:"Extra arguments to mkfs.btrfs (-f, -L LABEL, or -d raid1 /dev/mapper/other for a multi-device filesystem)."`
	MountOptions []string              `json:"mountOptions" jsonschema:"default=defaults" jsonschema_description:"Mount options of the top-level volume."`
	Mountpoint   string                `json:"mountpoint,omitempty" jsonschema_description:"Where the top-level volume (subvolid 5) is mounted. Null leaves it unmounted."`
	Swap         map[string]*Swapfile  `json:"swap,omitempty" jsonschema_description:"Swap files at the top level of the filesystem, keyed by path."`
	Subvolumes   map[string]*Subvolume `json:"subvolumes,omitempty" jsonschema_description:"Subvolumes, keyed by path (\"/home\", \"@root\", \"SYSTEM/rootfs\")."`
	Hooks
}

// Subvolume is a btrfs subvolume.
type Subvolume struct {
	Type         string               `json:"type" jsonschema:"enum=btrfs_subvol,default=btrfs_subvol" jsonschema_description:"Always \"btrfs_subvol\"."`
	Name         string               `json:"name,omitempty" defaultText:"the attribute name" jsonschema_description:"Subvolume path inside the filesystem. It cannot hold a double quote, a comma or a backslash (mount -o subvol=NAME cannot carry them), nor . or .. components."`
	ExtraArgs    []string             `json:"extraArgs,omitempty" jsonschema_description:"Extra arguments to btrfs subvolume create."`
	MountOptions []string             `json:"mountOptions" jsonschema:"default=defaults" jsonschema_description:"Mount options (subvol=NAME is added)."`
	Mountpoint   string               `json:"mountpoint,omitempty" jsonschema_description:"Mount point. Null leaves the subvolume unmounted (it is still reachable through a mounted parent)."`
	Swap         map[string]*Swapfile `json:"swap,omitempty" jsonschema_description:"Swap files inside this subvolume, keyed by path."`
}

// Swapfile is a swap file on btrfs.
type Swapfile struct {
	Size     string   `json:"size" pattern:"swapfileSize" jsonschema:"required" jsonschema_description:"Swap file size, a number with a K, M, G, T or P suffix."`
	Path     string   `json:"path,omitempty" defaultText:"the attribute name" jsonschema_description:"Path of the file, relative to the filesystem or subvolume."`
	Priority *int     `json:"priority,omitempty" jsonschema_description:"Swap priority; null keeps the kernel's default."`
	Options  []string `json:"options" jsonschema:"default=defaults" jsonschema_description:"swapon options."`
}

// Bcachefs makes its device a member of a bcachefs filesystem.
type Bcachefs struct {
	Type            string   `json:"type" jsonschema:"enum=bcachefs" jsonschema_description:"Always \"bcachefs\"."`
	Device          string   `json:"device,omitempty" defaultText:"the device of the enclosing node" jsonschema_description:"Device to add to the filesystem."`
	Filesystem      string   `json:"filesystem" jsonschema:"required" jsonschema_description:"Name of the filesystem (an entry of bcachefs_filesystems) this device belongs to."`
	Label           string   `json:"label,omitempty" jsonschema:"default=" jsonschema_description:"Per-device label (bcachefs format --label), for example group_a.sda2; used by target options."`
	ExtraFormatArgs []string `json:"extraFormatArgs,omitempty" jsonschema_description:"Per-device format arguments, each passed as one word, for example [\"--discard\"] or [\"--durability=2\"]."`
	Hooks
}

// BcachefsFilesystem is a multi-device bcachefs filesystem.
type BcachefsFilesystem struct {
	Type            string                        `json:"type" jsonschema:"enum=bcachefs_filesystem,default=bcachefs_filesystem" jsonschema_description:"Always \"bcachefs_filesystem\"."`
	Name            string                        `json:"name,omitempty" defaultText:"the attribute name" jsonschema_description:"Filesystem name, referred to by its members."`
	ExtraFormatArgs []string                      `json:"extraFormatArgs,omitempty" jsonschema_description:"Filesystem-wide format arguments (--compression=lz4, --replicas=2, ...), split at whitespace as disko does."`
	MountOptions    []string                      `json:"mountOptions" jsonschema:"default=X-mount.mkdir" jsonschema_description:"Mount options."`
	Mountpoint      string                        `json:"mountpoint,omitempty" jsonschema_description:"Where the filesystem's root is mounted. Null leaves it unmounted."`
	UUID            string                        `json:"uuid,omitempty" defaultText:"derived from the SHA-256 of the name" jsonschema_description:"Filesystem UUID; mounts use /dev/disk/by-uuid/UUID."`
	PasswordFile    string                        `json:"passwordFile,omitempty" jsonschema_description:"File holding the passphrase; enables encryption."`
	Subvolumes      map[string]*BcachefsSubvolume `json:"subvolumes,omitempty" jsonschema_description:"Subvolumes, keyed by path."`
	Hooks
}

// BcachefsSubvolume is a subvolume of a bcachefs filesystem.
type BcachefsSubvolume struct {
	Type         string   `json:"type" jsonschema:"enum=bcachefs_subvolume,default=bcachefs_subvolume" jsonschema_description:"Always \"bcachefs_subvolume\"."`
	Name         string   `json:"name,omitempty" defaultText:"the attribute name" jsonschema_description:"Subvolume path inside the filesystem. It cannot hold a double quote, a comma or a backslash (mount -o X-mount.subdir=NAME cannot carry them), nor . or .. components."`
	MountOptions []string `json:"mountOptions" defaultText:"X-mount.mkdir and X-mount.subdir=NAME, as disko sets them" jsonschema_description:"Mount options; X-mount.mkdir and X-mount.subdir=NAME are always put before them."`
	Mountpoint   string   `json:"mountpoint,omitempty" jsonschema_description:"Mount point. Null leaves the subvolume unmounted."`
}

// Nodev is a mount without a block device.
type Nodev struct {
	Type         string   `json:"type" jsonschema:"enum=nodev,default=nodev" jsonschema_description:"Always \"nodev\"."`
	FSType       string   `json:"fsType" jsonschema:"required" jsonschema_description:"Filesystem type: tmpfs, ramfs, proc, sysfs, or none for a bind mount."`
	Device       string   `json:"device,omitempty" defaultText:"fsType for proc, sysfs, tmpfs, ramfs, devtmpfs and devpts; else none" jsonschema_description:"Source of the mount."`
	Mountpoint   string   `json:"mountpoint,omitempty" decode:"notNull" defaultText:"the attribute name" jsonschema_description:"Absolute mount point."`
	MountOptions []string `json:"mountOptions" jsonschema:"default=defaults" jsonschema_description:"Mount options; with bind, the source is taken inside the root mount point."`
	Hooks
}
