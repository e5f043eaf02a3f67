package plan

import (
	"fmt"
	"strings"
)

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

// Outcome is the row's last column as the docs show it.
func (r Row) Outcome() string {
	switch {
	case r.Refuse:
		return "refuse"
	case r.Action != "":
		return "action `" + r.Action + "`"
	}
	return "nothing to do"
}

// The rows, in the order the planner asks its questions.
var (
	DiskUnreadable    = Row{ID: "disk-unreadable", Node: "disk", Desired: "any", Actual: "the device cannot be read (missing, no permission, blkid finds several signatures)", Refuse: true}
	DiskUntouched     = Row{ID: "disk-untouched", Node: "disk", Desired: "content = null", Actual: "anything", Action: ""}
	DiskBlank         = Row{ID: "disk-blank", Node: "disk", Desired: "a content", Actual: "no partition table and no signature (blank or new disk)", Action: "format-disk"}
	DiskBlankMember   = Row{ID: "disk-blank-member", Node: "disk", Desired: "a content that joins an mdadm array, LVM group, zpool or bcachefs filesystem", Actual: "blank", Refuse: true}
	TableDiffers      = Row{ID: "table-differs", Node: "disk.content (gpt, table)", Desired: "a gpt (or table with format F)", Actual: "another table type, or a whole-disk signature", Refuse: true}
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
	ContentUnreadable = Row{ID: "content-unreadable", Node: "content", Desired: "btrfs", Actual: "a btrfs whose subvolumes could not be read", Refuse: true}
	ContentNoCreate   = Row{ID: "content-no-create", Node: "content", Desired: "luks, lvm_pv, mdraid, zfs or bcachefs", Actual: "no signature", Refuse: true}
	LUKSSame          = Row{ID: "luks-same", Node: "content (luks)", Desired: "luks", Actual: "crypto_LUKS (its inside is not compared yet)", Action: ""}
	LUKSAdded         = Row{ID: "luks-added", Node: "content.type", Desired: "luks", Actual: "an unencrypted signature", Refuse: true}
	LUKSRemoved       = Row{ID: "luks-removed", Node: "content.type", Desired: "anything but luks", Actual: "crypto_LUKS", Refuse: true}
	SubvolSame        = Row{ID: "subvolume-same", Node: "btrfs.subvolumes.NAME", Desired: "a subvolume", Actual: "the subvolume", Action: ""}
	SubvolMissing     = Row{ID: "subvolume-missing", Node: "btrfs.subvolumes.NAME", Desired: "a subvolume", Actual: "none", Action: "create-subvolume"}
	SubvolExtra       = Row{ID: "subvolume-extra", Node: "btrfs.subvolumes", Desired: "no such subvolume", Actual: "a subvolume (kept, never removed)", Action: ""}
	SwapfileMissing   = Row{ID: "swapfile-missing", Node: "btrfs.swap.NAME, subvolume.swap.NAME", Desired: "a swap file", Actual: "no swap file at that path", Action: "add-swapfile"}
	SwapfileSame      = Row{ID: "swapfile-same", Node: "btrfs.swap.NAME, subvolume.swap.NAME", Desired: "a swap file", Actual: "a swap file at that path", Action: ""}
	MountMoved        = Row{ID: "mount-moved", Node: "mountpoint", Desired: "mount point M", Actual: "mounted below the root mount point somewhere else", Action: "mount"}
	MountElsewhere    = Row{ID: "mount-same-or-unmounted", Node: "mountpoint, mountOptions", Desired: "any", Actual: "unmounted, or mounted at M (options are applied by the mount step and the NixOS config)", Action: ""}
)

// Rows is the decision table, in the order of docs/incremental.md.
var Rows = []Row{
	DiskUnreadable, DiskUntouched, DiskBlank, DiskBlankMember, TableDiffers, WholeDiskHasTable,
	PartSame, PartMissing, PartMissingSwap, PartNoRoom, PartMoved, PartType, PartGrow, PartGrowBlocked, PartShrink, PartExtra,
	ContentUntouched, ContentBlank, ContentSame, ContentDiffers, ContentUnreadable, ContentNoCreate,
	LUKSSame, LUKSAdded, LUKSRemoved,
	SubvolSame, SubvolMissing, SubvolExtra, SwapfileMissing, SwapfileSame,
	MountMoved, MountElsewhere,
}

// Markdown renders the decision table as docs/incremental.md shows it.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| row | layout node | layout says | disk holds | plan |\n|---|---|---|---|---|\n")
	for _, r := range Rows {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", r.ID, r.Node, r.Desired, r.Actual, r.Outcome())
	}
	return b.String()
}
