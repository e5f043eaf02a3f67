// Package nixos computes the NixOS configuration a disk layout implies: the file systems,
// swap devices, LUKS devices, kernel modules and boot loader devices a machine needs to
// boot from the disks that the format script creates.
//
// It mirrors disko's `_config` of every node type, value for value, so that a machine
// installed with disko keeps booting after switching: same device paths, fsTypes and
// options, the same list order where NixOS keeps order (kernel modules, GRUB devices), and
// the same three top-level options disko's NixOS module sets (fileSystems, boot and
// swapDevices, always all three, as disko's module does).
//
// Nothing is added on top of what disko emits, on purpose:
//   - neededForBoot only where disko sets it (bcachefs): NixOS already mounts /, /nix,
//     /nix/store, /var, /var/lib, /var/lib/nixos, /var/log, /etc and /usr in the initrd
//     (nixos/lib/utils.nix, pathsNeededForBoot), and marking any
//     other mount would move it into the initrd and change how its failure is handled;
//   - no boot.supportedFilesystems: NixOS derives it from the fileSystems' fsTypes, and a
//     "zfs" entry for a pool without mounts would make NixOS demand networking.hostId
//     from configurations that build with disko;
//   - no boot.zfs.extraPools, mdadm.conf or crypttab: disko leaves them to the user and
//     a user switching from disko has them in the configuration already (a second
//     definition would duplicate list entries).
//
// Where NixOS would merge two definitions (two nodes mounted at one path, two LUKS
// containers of one name, two resume devices) the result is an error naming both option
// paths instead, because the merged value (concatenated mount options) is never what the
// user meant.
package nixos

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/nixlit"
)

// Config is the NixOS configuration d implies, as plain values ready for JSON or Nix:
// map[string]any, []any, string, bool, int64, float64 and nil. d must come from
// config.Load, which fills in every device path; a missing one is reported, never guessed.
func Config(d *config.Devices) (map[string]any, error) {
	if d == nil {
		return nil, fmt.Errorf("%s: no layout given", config.RootPath)
	}
	c := &collector{
		fileSystems: map[string]any{},
		fsOwner:     map[string]string{},
		luks:        map[string]any{},
		luksOwner:   map[string]string{},
	}
	c.devices(d)
	if len(c.problems) > 0 {
		return nil, c.problems
	}
	return c.result(), nil
}

// collector accumulates NixOS option definitions in the order disko's module system would
// merge them, and every problem found on the way.
type collector struct {
	fileSystems   map[string]any
	fsOwner       map[string]string // mount point -> option path of the node that mounts it
	swapDevices   []any
	resumeDevice  string
	resumeOwner   string
	luks          map[string]any
	luksOwner     map[string]string // dm name -> option path of the LUKS node
	kernelModules []any
	swraid        bool
	grubDevices   []any
	problems      config.Problems
}

func (c *collector) fail(path, format string, args ...any) {
	c.problems = append(c.problems, config.Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// result assembles the option tree. boot, fileSystems and swapDevices are always present,
// like the definitions disko's module makes (`... or { }`, `... or [ ]`).
func (c *collector) result() map[string]any {
	boot := map[string]any{}
	if c.resumeDevice != "" {
		boot["resumeDevice"] = c.resumeDevice
	}
	initrd := map[string]any{}
	if len(c.kernelModules) > 0 {
		initrd["kernelModules"] = c.kernelModules
	}
	if len(c.luks) > 0 {
		initrd["luks"] = map[string]any{"devices": c.luks}
	}
	if len(initrd) > 0 {
		boot["initrd"] = initrd
	}
	if c.swraid {
		boot["swraid"] = map[string]any{"enable": true}
	}
	if len(c.grubDevices) > 0 {
		boot["loader"] = map[string]any{"grub": map[string]any{"devices": c.grubDevices}}
	}
	swaps := c.swapDevices
	if swaps == nil {
		swaps = []any{}
	}
	return map[string]any{
		"boot":        boot,
		"fileSystems": c.fileSystems,
		"swapDevices": swaps,
	}
}

// devices walks the top-level collections in the order disko collects their configs:
// attribute-name order of the collections, then of the entries (Nix's attrValues).
func (c *collector) devices(d *config.Devices) {
	root := config.RootPath
	for _, k := range slices.Sorted(maps.Keys(d.BcachefsFilesystems)) {
		if fs := d.BcachefsFilesystems[k]; fs != nil {
			c.bcachefs(attr(root+".bcachefs_filesystems", k), fs)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(d.Disk)) {
		if disk := d.Disk[k]; disk != nil {
			c.content(attr(root+".disk", k)+".content", disk.Content)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(d.LVMVG)) {
		if vg := d.LVMVG[k]; vg != nil {
			c.lvmVG(attr(root+".lvm_vg", k), vg)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(d.MDADM)) {
		if md := d.MDADM[k]; md != nil {
			// NixOS >= 23.11 spelling; disko uses boot.initrd.services.swraid only before.
			c.swraid = true
			c.content(attr(root+".mdadm", k)+".content", md.Content)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(d.Nodev)) {
		if nd := d.Nodev[k]; nd != nil && nd.Mountpoint != "" {
			path := attr(root+".nodev", k)
			c.fileSystem(path, nd.Mountpoint, c.device(path, nd.Device), nd.FSType, nd.MountOptions)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(d.Zpool)) {
		if pool := d.Zpool[k]; pool != nil {
			c.zpool(attr(root+".zpool", k), pool)
		}
	}
}

// content handles a node in a content slot; path is the option path of the slot.
func (c *collector) content(path string, node config.Node) {
	if isNil(node) {
		return
	}
	switch n := node.(type) {
	case *config.GPT:
		bios := false
		for _, k := range slices.Sorted(maps.Keys(n.Partitions)) {
			part := n.Partitions[k]
			if part == nil {
				continue
			}
			c.content(attr(path+".partitions", k)+".content", part.Content)
			// disko compares the type code verbatim: "ef02" or the GUID do not count.
			bios = bios || part.Type == "EF02"
		}
		if bios {
			c.grubDevices = append(c.grubDevices, c.device(path, n.Device))
		}
	case *config.Table:
		for i, part := range n.Partitions {
			if part != nil {
				c.content(fmt.Sprintf("%s.partitions[%d].content", path, i), part.Content)
			}
		}
	case *config.Filesystem:
		if n.Mountpoint != "" {
			c.fileSystem(path, n.Mountpoint, c.device(path, n.Device), n.Format, n.MountOptions)
		}
	case *config.Swap:
		c.swap(path, n)
	case *config.LUKS:
		c.luksDevice(path, n)
		c.content(path+".content", n.Content)
	case *config.BTRFS:
		c.btrfs(path, n)
	case *config.LVMPV, *config.MDRaid, *config.ZFS, *config.Bcachefs:
		// Members: their array, group, pool or filesystem emits the configuration.
	default:
		c.fail(path, "node type %q is not known to the NixOS configuration generator", node.Kind())
	}
}

func (c *collector) swap(path string, n *config.Swap) {
	device := c.device(path, n.Device)
	var discard, priority any
	if n.DiscardPolicy != "" {
		discard = n.DiscardPolicy
	}
	if n.Priority != nil {
		priority = int64(*n.Priority)
	}
	c.swapDevices = append(c.swapDevices, map[string]any{
		"device":        device,
		"discardPolicy": discard,
		"priority":      priority,
		"randomEncryption": map[string]any{
			"enable": n.RandomEncryption,
			// forward discard (TRIM) requests through dm-crypt when discard is on
			"allowDiscards": n.DiscardPolicy != "",
		},
		"options": list(n.MountOptions),
	})
	if !n.ResumeDevice {
		return
	}
	if c.resumeOwner != "" && c.resumeDevice != device {
		c.fail(path, "resumeDevice is set here and at %s: NixOS has only one boot.resumeDevice", c.resumeOwner)
		return
	}
	c.resumeDevice, c.resumeOwner = device, path
}

// luksDevice emits boot.initrd.luks.devices.NAME = { device; } // settings.
func (c *collector) luksDevice(path string, n *config.LUKS) {
	if !n.InitrdUnlock {
		return
	}
	if n.Name == "" {
		c.fail(path+".name", "is empty: a LUKS container needs a device-mapper name")
		return
	}
	if owner, dup := c.luksOwner[n.Name]; dup {
		c.fail(path+".name", "%q is also the name of the LUKS container at %s: device-mapper names must be unique", n.Name, owner)
		return
	}
	entry := map[string]any{"device": c.device(path, n.Device)}
	for _, k := range slices.Sorted(maps.Keys(n.Settings)) {
		v, err := plain(n.Settings[k])
		if err != nil {
			c.fail(attr(path+".settings", k), "%v", err)
			continue
		}
		entry[k] = v
	}
	c.luks[n.Name], c.luksOwner[n.Name] = entry, path
}

func (c *collector) btrfs(path string, n *config.BTRFS) {
	device := c.device(path, n.Device)
	subvols := slices.Sorted(maps.Keys(n.Subvolumes))
	for _, k := range subvols {
		sv := n.Subvolumes[k]
		if sv == nil || sv.Mountpoint == "" {
			continue
		}
		opts := append(list(sv.MountOptions), "subvol="+sv.Name)
		c.fileSystem(attr(path+".subvolumes", k), sv.Mountpoint, device, "btrfs", nil, opts...)
	}
	if n.Mountpoint != "" {
		c.fileSystem(path, n.Mountpoint, device, "btrfs", n.MountOptions)
	}
	for _, k := range subvols {
		if sv := n.Subvolumes[k]; sv != nil {
			c.swapfiles(attr(path+".subvolumes", k), sv.Mountpoint, sv.Swap)
		}
	}
	c.swapfiles(path, n.Mountpoint, n.Swap)
}

// swapfiles emits disko's swapfile entries: device, priority and options only.
func (c *collector) swapfiles(path, mountpoint string, files map[string]*config.Swapfile) {
	for _, k := range slices.Sorted(maps.Keys(files)) {
		f := files[k]
		if f == nil {
			continue
		}
		if mountpoint == "" {
			c.fail(attr(path+".swap", k), "a swap file needs its filesystem or subvolume to be mounted: set mountpoint at %s", path)
			continue
		}
		var priority any
		if f.Priority != nil {
			priority = int64(*f.Priority)
		}
		c.swapDevices = append(c.swapDevices, map[string]any{
			"device":   mountpoint + "/" + f.Path,
			"priority": priority,
			"options":  list(f.Options),
		})
	}
}

// lvmVG emits the modules device-mapper needs for the group's LVs, in disko's order: one
// list for the group (dm-snapshot and dm-TYPE per typed LV), then per LV its content's
// configuration and the RAID modules of its type. Duplicates are kept, as in disko.
func (c *collector) lvmVG(path string, vg *config.LVMVG) {
	lvs := slices.Sorted(maps.Keys(vg.LVs))
	c.kernelModules = append(c.kernelModules, "dm-snapshot")
	for _, k := range lvs {
		if lv := vg.LVs[k]; lv != nil && lv.LVMType != "" && lv.LVMType != "thinlv" {
			c.kernelModules = append(c.kernelModules, "dm-"+lv.LVMType)
		}
	}
	for _, k := range lvs {
		lv := vg.LVs[k]
		if lv == nil {
			continue
		}
		c.content(attr(path+".lvs", k)+".content", lv.Content)
		if lv.LVMType == "" {
			continue
		}
		// disko's rule verbatim: every typed LV that is not a mirror (thin ones included)
		// asks for dm-raid.
		if lv.LVMType == "mirror" {
			c.kernelModules = append(c.kernelModules, "dm-mirror")
		} else {
			c.kernelModules = append(c.kernelModules, "dm-raid")
		}
		switch lv.LVMType {
		case "raid0", "raid1":
			c.kernelModules = append(c.kernelModules, lv.LVMType)
		case "raid4", "raid5", "raid6":
			c.kernelModules = append(c.kernelModules, "raid456")
		}
	}
}

// rootDataset is the key disko gives a pool's root dataset among its datasets.
const rootDataset = "__root"

// zpool emits the datasets' mounts; the pool's root dataset is disko's implicit "__root"
// entry and takes its place in attribute-name order.
func (c *collector) zpool(path string, pool *config.Zpool) {
	keys := slices.Sorted(maps.Keys(pool.Datasets))
	if _, taken := pool.Datasets[rootDataset]; !taken {
		keys = append(keys, rootDataset)
		slices.Sort(keys)
	}
	for _, k := range keys {
		if _, user := pool.Datasets[k]; !user {
			c.zfsFS(path, pool.Name, pool.Mountpoint, pool.RootFsOptions, pool.MountOptions)
			continue
		}
		dsPath := attr(path+".datasets", k)
		switch ds := pool.Datasets[k].(type) {
		case *config.ZFSFS:
			if ds != nil {
				c.zfsFS(dsPath, pool.Name+"/"+ds.Name, ds.Mountpoint, ds.Options, ds.MountOptions)
			}
		case *config.ZFSVolume:
			if ds != nil {
				c.content(dsPath+".content", ds.Content)
			}
		}
	}
}

// zfsFS mounts a dataset unless ZFS itself is told not to (mountpoint=none, canmount=off);
// zfsutil lets mount(8) take a dataset whose mountpoint property is not legacy.
func (c *collector) zfsFS(path, dataset, mountpoint string, options map[string]string, mountOptions []string) {
	if mountpoint == "" || options["mountpoint"] == "none" || options["canmount"] == "off" {
		return
	}
	var extra []any
	if options["mountpoint"] != "legacy" {
		extra = append(extra, "zfsutil")
	}
	c.fileSystem(path, mountpoint, dataset, "zfs", mountOptions, extra...)
}

// bcachefs emits the filesystem's mounts, always with neededForBoot (as disko does) and
// X-mount.mkdir (and X-mount.subdir for subvolumes) first, without duplicates.
func (c *collector) bcachefs(path string, fs *config.BcachefsFilesystem) {
	if fs.UUID == "" {
		c.fail(path+".uuid", "is empty: config.Load derives it from the name; load the layout with config.Load")
		return
	}
	device := "/dev/disk/by-uuid/" + fs.UUID
	if fs.Mountpoint != "" {
		opts := unique(append([]any{"X-mount.mkdir"}, list(fs.MountOptions)...))
		if entry := c.fileSystem(path, fs.Mountpoint, device, "bcachefs", nil, opts...); entry != nil {
			entry["neededForBoot"] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(fs.Subvolumes)) {
		sv := fs.Subvolumes[k]
		if sv == nil || sv.Mountpoint == "" {
			continue
		}
		opts := unique(append([]any{"X-mount.mkdir", "X-mount.subdir=" + strings.TrimPrefix(sv.Name, "/")}, list(sv.MountOptions)...))
		if entry := c.fileSystem(attr(path+".subvolumes", k), sv.Mountpoint, device, "bcachefs", nil, opts...); entry != nil {
			entry["neededForBoot"] = true
		}
	}
}

// fileSystem emits fileSystems.MOUNTPOINT with options = mountOptions ++ extra and returns
// the entry, or nil when another node already mounts there.
func (c *collector) fileSystem(path, mountpoint, device, fsType string, mountOptions []string, extra ...any) map[string]any {
	if owner, dup := c.fsOwner[mountpoint]; dup {
		c.fail(path, "mounts at %q, as %s does: NixOS would merge the two into one broken entry", mountpoint, owner)
		return nil
	}
	entry := map[string]any{
		"device":  device,
		"fsType":  fsType,
		"options": append(list(mountOptions), extra...),
	}
	c.fsOwner[mountpoint], c.fileSystems[mountpoint] = path, entry
	return entry
}

// device returns a node's device path, which config.Load always fills in.
func (c *collector) device(path, device string) string {
	if device == "" {
		c.fail(path+".device", "is empty: config.Load names every device; load the layout with config.Load")
	}
	return device
}

// attr appends an attribute name to an option path, quoted when Nix would need quotes.
func attr(path, name string) string {
	return path + "." + nixlit.AttrName(name)
}

// list converts a string list to the generic form, never nil (JSON [] rather than null).
func list(ss []string) []any {
	out := make([]any, 0, len(ss))
	for _, s := range ss {
		out = append(out, s)
	}
	return out
}

// unique is Nix's lib.unique: the first occurrence of each value, in order.
func unique(vs []any) []any {
	out := make([]any, 0, len(vs))
	for _, v := range vs {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// isNil reports whether a node is absent, including a typed nil pointer in the interface.
func isNil(n config.Node) bool {
	if n == nil {
		return true
	}
	v := reflect.ValueOf(n)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
