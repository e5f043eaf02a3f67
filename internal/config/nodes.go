package config

import "encoding/json"

// NodeTypes maps every `type` value a content slot may hold to a constructor of its Go
// type. The decoder dispatches on it; the schema and docs enumerate it; which slot a type
// may sit in is decided by the slot interfaces its Go type implements.
var NodeTypes = map[string]func() Node{
	"gpt":        func() Node { return &GPT{} },
	"table":      func() Node { return &Table{} },
	"filesystem": func() Node { return &Filesystem{} },
	"swap":       func() Node { return &Swap{} },
	"luks":       func() Node { return &LUKS{} },
	"lvm_pv":     func() Node { return &LVMPV{} },
	"mdraid":     func() Node { return &MDRaid{} },
	"zfs":        func() Node { return &ZFS{} },
	"btrfs":      func() Node { return &BTRFS{} },
	"bcachefs":   func() Node { return &Bcachefs{} },
	"zfs_fs":     func() Node { return &ZFSFS{} },
	"zfs_volume": func() Node { return &ZFSVolume{} },
}

func (*Disk) Kind() string               { return "disk" }
func (*GPT) Kind() string                { return "gpt" }
func (*Table) Kind() string              { return "table" }
func (*Filesystem) Kind() string         { return "filesystem" }
func (*Swap) Kind() string               { return "swap" }
func (*LUKS) Kind() string               { return "luks" }
func (*LVMPV) Kind() string              { return "lvm_pv" }
func (*LVMVG) Kind() string              { return "lvm_vg" }
func (*MDRaid) Kind() string             { return "mdraid" }
func (*MDADM) Kind() string              { return "mdadm" }
func (*ZFS) Kind() string                { return "zfs" }
func (*Zpool) Kind() string              { return "zpool" }
func (*ZFSFS) Kind() string              { return "zfs_fs" }
func (*ZFSVolume) Kind() string          { return "zfs_volume" }
func (*BTRFS) Kind() string              { return "btrfs" }
func (*Bcachefs) Kind() string           { return "bcachefs" }
func (*BcachefsFilesystem) Kind() string { return "bcachefs_filesystem" }
func (*Nodev) Kind() string              { return "nodev" }

// Device slots: everything disko's deviceType allows.
func (*GPT) deviceSlot()        {}
func (*Table) deviceSlot()      {}
func (*Filesystem) deviceSlot() {}
func (*Swap) deviceSlot()       {}
func (*LUKS) deviceSlot()       {}
func (*LVMPV) deviceSlot()      {}
func (*MDRaid) deviceSlot()     {}
func (*ZFS) deviceSlot()        {}
func (*BTRFS) deviceSlot()      {}
func (*Bcachefs) deviceSlot()   {}

// Partition slots: the same minus partition tables.
func (*Filesystem) partitionSlot() {}
func (*Swap) partitionSlot()       {}
func (*LUKS) partitionSlot()       {}
func (*LVMPV) partitionSlot()      {}
func (*MDRaid) partitionSlot()     {}
func (*ZFS) partitionSlot()        {}
func (*BTRFS) partitionSlot()      {}
func (*Bcachefs) partitionSlot()   {}

func (*ZFSFS) datasetSlot()     {}
func (*ZFSVolume) datasetSlot() {}

// MarshalJSON writes a mode string as disko accepts it, or {"topology": ...}.
func (m ZpoolMode) MarshalJSON() ([]byte, error) {
	if m.Topology != nil {
		return json.Marshal(struct {
			Topology *Topology `json:"topology"`
		}{m.Topology})
	}
	return json.Marshal(m.Mode)
}
