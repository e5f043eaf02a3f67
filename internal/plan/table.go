package plan

// Row is one line of the decision table: for a node of the layout (desired) and what the
// probe found for it (actual), what the plan does. Every decision the planner makes
// names its row, docs/incremental.md is rendered from Rows, and every row has a test.
type Row struct {
	ID      string // stable name of the row
	Node    string // the layout node the row is about
	Desired string // what the layout says
	Actual  string // what the probe found
	// Action is the action's name when the row keeps data while changing something, ""
	// when the row changes nothing or refuses.
	Action string
	Refuse bool // the row refuses: nothing is applied while any refusal stands
}

// The rows, in the order the planner asks its questions.
var (
	DiskUnreadable    = Row{ID: "disk-unreadable", Node: "disk", Desired: "any", Actual: "the device cannot be read (missing, no permission, blkid finds several signatures)", Refuse: true}
	DiskUntouched     = Row{ID: "disk-untouched", Node: "disk", Desired: "content = null", Actual: "anything", Action: ""}
	DiskBlank         = Row{ID: "disk-blank", Node: "disk", Desired: "a content", Actual: "no partition table and no signature (blank or new disk)", Action: "format-disk"}
	DiskBlankMember   = Row{ID: "disk-blank-member", Node: "disk", Desired: "a content that joins an mdadm array, LVM group, zpool or bcachefs filesystem", Actual: "blank", Refuse: true}
	TableDiffers      = Row{ID: "table-differs", Node: "disk.content (gpt, table), mdadm.NAME.content (gpt)", Desired: "a gpt (or table with format F)", Actual: "another table type, or a whole-disk signature (on an md array: anything but a GPT)", Refuse: true}
	WholeDiskHasTable = Row{ID: "whole-disk-has-table", Node: "disk.content (filesystem, swap, btrfs, ...)", Desired: "whole-disk content", Actual: "a partition table", Refuse: true}
	PartSame          = Row{ID: "partition-same", Node: "partition", Desired: "a partition", Actual: "the partition with its label (gpt) or number (table), same number, start and size (within 1 MiB)", Action: ""}
	PartMissing       = Row{ID: "partition-missing", Node: "partition", Desired: "a partition", Actual: "none with its label or number, and room for it in free space", Action: "create-partition"}
	PartMissingSwap   = Row{ID: "partition-missing-swap", Node: "partition", Desired: "a partition holding swap", Actual: "none with its label or number, and room for it in free space", Action: "add-swap"}
	PartNoRoom        = Row{ID: "partition-no-room", Node: "partition", Desired: "a partition", Actual: "missing, and no free space holds it (or its number is taken)", Refuse: true}
	PartMoved         = Row{ID: "partition-moved", Node: "partition", Desired: "a partition", Actual: "the partition with another number, or another start than the layout's explicit start", Refuse: true}
	PartType          = Row{ID: "partition-type", Node: "partition.type", Desired: "a type code", Actual: "another type", Action: "set-type"}
	PartGrow          = Row{ID: "partition-grow", Node: "partition.size", Desired: "larger than the partition (or 100% with free space after it)", Actual: "the space after the partition is free; ext4, xfs, btrfs or no content", Action: "grow-partition"}
	PartGrowBlocked   = Row{ID: "partition-grow-blocked", Node: "partition.size", Desired: "larger than the partition", Actual: "the space after it is not free, or its content cannot grow (swap, LUKS, ...)", Refuse: true}
	PartShrink        = Row{ID: "partition-shrink", Node: "partition.size", Desired: "smaller than the partition by more than 1 MiB", Actual: "any", Refuse: true}
	PartExtra         = Row{ID: "partition-extra", Node: "partitions", Desired: "no partition with this label or number", Actual: "a partition", Refuse: true}
	ContentUntouched  = Row{ID: "content-untouched", Node: "content", Desired: "null", Actual: "anything", Action: ""}
	ContentBlank      = Row{ID: "content-blank", Node: "content", Desired: "filesystem, swap or btrfs", Actual: "no signature", Action: "format"}
	ContentSame       = Row{ID: "content-same", Node: "content", Desired: "filesystem F, swap, btrfs, or an aggregate member", Actual: "the same signature (F; swap; btrfs; LVM2_member, linux_raid_member, zfs_member, bcachefs); for randomly encrypted swap also none", Action: ""}
	ContentDiffers    = Row{ID: "content-differs", Node: "content.format / content.type", Desired: "filesystem F (or swap, btrfs, ...)", Actual: "another signature", Refuse: true}
	ContentUnreadable = Row{ID: "content-unreadable", Node: "content", Desired: "btrfs, luks, lvm_pv or mdraid (or any content of a zfs_volume)", Actual: "a btrfs whose subvolumes, or a LUKS, PV or md member whose metadata could not be read; a ZFS volume without a device node", Refuse: true}
	ContentNoCreate   = Row{ID: "content-no-create", Node: "content", Desired: "luks, lvm_pv, mdraid, zfs or bcachefs", Actual: "no signature", Refuse: true}
	LUKSSame          = Row{ID: "luks-same", Node: "content (luks)", Desired: "luks", Actual: "crypto_LUKS, open (its inside is compared as luks.content) or with content = null", Action: ""}
	LUKSClosed        = Row{ID: "luks-closed", Node: "luks.content", Desired: "a content", Actual: "crypto_LUKS, closed (its inside cannot be read without the key)", Refuse: true}
	LUKSAdded         = Row{ID: "luks-added", Node: "content.type", Desired: "luks", Actual: "an unencrypted signature", Refuse: true}
	LUKSRemoved       = Row{ID: "luks-removed", Node: "content.type", Desired: "anything but luks", Actual: "crypto_LUKS", Refuse: true}
	MemberElsewhere   = Row{ID: "member-elsewhere", Node: "lvm_pv.vg, mdraid.name", Desired: "member of group or array N", Actual: "a member of another group or array (or a PV in none)", Refuse: true}
	VGMissing         = Row{ID: "vg-missing", Node: "lvm_vg.NAME", Desired: "a volume group", Actual: "no probed PV belongs to it (and the plan creates none), or vgs/lvs cannot read it", Refuse: true}
	VGCreate          = Row{ID: "vg-create", Node: "lvm_vg.NAME", Desired: "a volume group", Actual: "none; the plan creates partitions that are its PVs (lvm_pv on a missing partition)", Action: "create-vg"}
	VGExtend          = Row{ID: "vg-extend", Node: "lvm_pv (on a partition the plan creates)", Desired: "a PV of group N", Actual: "the group N exists and is readable", Action: "extend-vg"}
	LVSame            = Row{ID: "lv-same", Node: "lvm_vg.lvs.NAME", Desired: "an LV", Actual: "an active LV of that name and size (within one extent; percentages, thin and RAID sizes are not compared)", Action: ""}
	LVMissing         = Row{ID: "lv-missing", Node: "lvm_vg.lvs.NAME", Desired: "a linear, thin-pool, thinlv or raid1 LV (its content: filesystem, swap, btrfs or null)", Actual: "none of that name, and room for it: in the group's free space (a thin pool also for its metadata and spare, estimated at lvm's defaults); for raid1, its size plus one extent free on each of mirrors + 1 PVs; for thinlv, its pool in the group or created before it", Action: "create-lv"}
	LVNoRoom          = Row{ID: "lv-no-room", Node: "lvm_vg.lvs.NAME", Desired: "an LV", Actual: "none of that name, and no room for it as lv-missing says (or a raid1 LV of a percentage size, or an lvm_type apply does not create: mirror, raid0, raid4, raid5, raid6)", Refuse: true}
	LVInactive        = Row{ID: "lv-inactive", Node: "lvm_vg.lvs.NAME", Desired: "an LV", Actual: "an inactive LV (what it holds cannot be read)", Refuse: true}
	LVGrow            = Row{ID: "lv-grow", Node: "lvm_vg.lvs.NAME.size", Desired: "larger than the LV", Actual: "enough free space in the group; ext4, xfs, btrfs or no content", Action: "grow-lv"}
	LVGrowBlocked     = Row{ID: "lv-grow-blocked", Node: "lvm_vg.lvs.NAME.size", Desired: "larger than the LV", Actual: "not enough free space in the group, or content that cannot grow", Refuse: true}
	LVShrink          = Row{ID: "lv-shrink", Node: "lvm_vg.lvs.NAME.size", Desired: "smaller than the LV by more than one extent", Actual: "any", Refuse: true}
	LVExtra           = Row{ID: "lv-extra", Node: "lvm_vg.lvs", Desired: "no LV of this name", Actual: "an LV", Refuse: true}
	MDMissing         = Row{ID: "md-missing", Node: "mdadm.NAME", Desired: "an array", Actual: "no probed member belongs to it (and the plan creates none), or mdadm cannot read it", Refuse: true}
	MDCreate          = Row{ID: "md-create", Node: "mdadm.NAME", Desired: "an array (its content: filesystem, swap, btrfs or null)", Actual: "none; the plan creates partitions that are its members (mdraid on a missing partition)", Action: "create-array"}
	MDAdd             = Row{ID: "md-add", Node: "mdadm.NAME", Desired: "more members: mdraid on partitions the plan creates", Actual: "the assembled raid1 array, not degraded; each new partition holds the component size plus the members' data offset", Action: "add-members"}
	MDAddBlocked      = Row{ID: "md-add-blocked", Node: "mdadm.NAME", Desired: "more members: mdraid on partitions the plan creates", Actual: "an array of another level (more members would reshape it), a degraded one, or a new partition too small", Refuse: true}
	MDInactive        = Row{ID: "md-inactive", Node: "mdadm.NAME", Desired: "an array", Actual: "members, but the array is not assembled", Refuse: true}
	MDLevel           = Row{ID: "md-differs", Node: "mdadm.NAME.level, .content", Desired: "level L; a content", Actual: "another level; or a partition table where the layout puts other content", Refuse: true}
	MDTable           = Row{ID: "md-table", Node: "mdadm.NAME.content (gpt)", Desired: "a GPT", Actual: "the assembled array holds a GPT (its partitions are compared as a disk's, by the partition rows)", Action: ""}
	MDSame            = Row{ID: "md-same", Node: "mdadm.NAME", Desired: "an array of level L", Actual: "the assembled array of level L (its content is compared as mdadm.content)", Action: ""}
	SubvolSame        = Row{ID: "subvolume-same", Node: "btrfs.subvolumes.NAME", Desired: "a subvolume", Actual: "the subvolume", Action: ""}
	SubvolMissing     = Row{ID: "subvolume-missing", Node: "btrfs.subvolumes.NAME", Desired: "a subvolume", Actual: "none", Action: "create-subvolume"}
	SubvolExtra       = Row{ID: "subvolume-extra", Node: "btrfs.subvolumes", Desired: "no such subvolume", Actual: "a subvolume (kept, never removed)", Action: ""}
	SwapfileMissing   = Row{ID: "swapfile-missing", Node: "btrfs.swap.NAME, subvolume.swap.NAME", Desired: "a swap file", Actual: "no swap file at that path", Action: "add-swapfile"}
	SwapfileSame      = Row{ID: "swapfile-same", Node: "btrfs.swap.NAME, subvolume.swap.NAME", Desired: "a swap file", Actual: "a swap file at that path", Action: ""}
	MountMoved        = Row{ID: "mount-moved", Node: "mountpoint", Desired: "mount point M", Actual: "mounted below the root mount point somewhere else", Action: "mount"}
	MountOptions      = Row{ID: "mount-options-differ", Node: "mountOptions", Desired: "options O at mount point M", Actual: "mounted at M without some of O (aliases such as xfs pquota = prjquota, and options the kernel does not list, count as shown)", Action: "remount"}
	MountElsewhere    = Row{ID: "mount-same-or-unmounted", Node: "mountpoint, mountOptions", Desired: "any", Actual: "unmounted, or mounted at M with all of the layout's options", Action: ""}

	ZFSPoolSame        = Row{ID: "zfs-pool-same", Node: "zpool.NAME", Desired: "a pool", Actual: "the imported pool its members name, its data vdevs of the layout's mode (a topology is not compared; apply never adds, removes or reshapes vdevs)", Action: ""}
	ZFSPoolDiffers     = Row{ID: "zfs-pool-differs", Node: "zpool.NAME.mode", Desired: "mode M (a string)", Actual: "data vdevs of another redundancy (zpool status -P)", Refuse: true}
	ZFSPoolMissing     = Row{ID: "zfs-pool-missing", Node: "zpool.NAME", Desired: "a pool", Actual: "no probed device is a member of it: apply does not create pools (their members would have to be made in this run)", Refuse: true}
	ZFSPoolUnreadable  = Row{ID: "zfs-pool-unreadable", Node: "zpool.NAME", Desired: "a pool", Actual: "members, but the pool is not imported, or zpool/zfs cannot read it (tools or kernel module missing)", Refuse: true}
	ZFSMemberUnread    = Row{ID: "zfs-member-unreadable", Node: "content (zfs)", Desired: "a member of pool N", Actual: "a zfs_member whose pool name blkid cannot read", Refuse: true}
	DatasetSame        = Row{ID: "dataset-same", Node: "zpool.datasets.NAME", Desired: "a zfs_fs or zfs_volume", Actual: "a filesystem or volume of that name and type", Action: ""}
	DatasetMissing     = Row{ID: "dataset-missing", Node: "zpool.datasets.NAME", Desired: "a zfs_fs, or a zfs_volume (its content: filesystem, swap, btrfs or null)", Actual: "none of that name", Action: "create-dataset"}
	DatasetDiffers     = Row{ID: "dataset-differs", Node: "zpool.datasets.NAME.type", Desired: "zfs_fs (zfs_volume)", Actual: "a volume (filesystem) of that name", Refuse: true}
	DatasetExtra       = Row{ID: "dataset-extra", Node: "zpool.datasets", Desired: "no dataset of this name", Actual: "a dataset or volume (kept, never destroyed)", Action: ""}
	ZFSPropertySame    = Row{ID: "zfs-property-same", Node: "zpool.options.P, .rootFsOptions.P, .datasets.NAME.options.P, .mountpoint", Desired: "property P = V", Actual: "P set locally to V (numbers compared as numbers: 10G = 10737418240; mountpoint without the pool's altroot)", Action: ""}
	ZFSPropertyDiffers = Row{ID: "zfs-property-differs", Node: "zpool.options.P, .rootFsOptions.P, .datasets.NAME.options.P, .mountpoint", Desired: "property P = V, settable after creation", Actual: "P set locally to another value, or inherited or default", Action: "set-property"}
	ZFSPropertyFixed   = Row{ID: "zfs-property-fixed", Node: "zpool.rootFsOptions.P, .datasets.NAME.options.P", Desired: "P = V, where P is only set at creation (encryption, keyformat, casesensitivity, utf8only, normalization, volblocksize, pbkdf2iters)", Actual: "another value", Refuse: true}
	VolumeGrow         = Row{ID: "volume-grow", Node: "zpool.datasets.NAME.size", Desired: "larger than the volume", Actual: "a volume holding ext4, xfs, btrfs or nothing", Action: "grow-volume"}
	VolumeGrowBlocked  = Row{ID: "volume-grow-blocked", Node: "zpool.datasets.NAME.size", Desired: "larger than the volume (or a size zfs cannot read)", Actual: "content that cannot grow (swap, LUKS, ...)", Refuse: true}
	VolumeShrink       = Row{ID: "volume-shrink", Node: "zpool.datasets.NAME.size", Desired: "smaller than the volume by more than 1 MiB", Actual: "any", Refuse: true}
)

// Rows is the decision table, in the order of docs/incremental.md.
var Rows = []Row{
	DiskUnreadable, DiskUntouched, DiskBlank, DiskBlankMember, TableDiffers, WholeDiskHasTable,
	PartSame, PartMissing, PartMissingSwap, PartNoRoom, PartMoved, PartType, PartGrow, PartGrowBlocked, PartShrink, PartExtra,
	ContentUntouched, ContentBlank, ContentSame, ContentDiffers, ContentUnreadable, ContentNoCreate,
	LUKSSame, LUKSClosed, LUKSAdded, LUKSRemoved,
	MemberElsewhere, VGMissing, VGCreate, VGExtend, LVSame, LVMissing, LVNoRoom, LVInactive, LVGrow, LVGrowBlocked, LVShrink, LVExtra,
	MDMissing, MDCreate, MDAdd, MDAddBlocked, MDInactive, MDLevel, MDTable, MDSame,
	ZFSPoolSame, ZFSPoolDiffers, ZFSPoolMissing, ZFSPoolUnreadable, ZFSMemberUnread, DatasetSame, DatasetMissing, DatasetDiffers, DatasetExtra,
	ZFSPropertySame, ZFSPropertyDiffers, ZFSPropertyFixed, VolumeGrow, VolumeGrowBlocked, VolumeShrink,
	SubvolSame, SubvolMissing, SubvolExtra, SwapfileMissing, SwapfileSame,
	MountMoved, MountOptions, MountElsewhere,
}
