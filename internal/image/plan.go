package image

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// diskPlan is one disk to build.
type diskPlan struct {
	name      string // attribute name
	path      string // option path of the disk's content
	imageName string
	size      int64
	content   config.DeviceNode
	// volumes are the filesystems and swap areas to make, with the partition they go in
	// (0 for the whole disk).
	volumes []volume
	// skippedHooks are the option paths of create hooks that the build does not run.
	skippedHooks []string
	// kernelOnly says, by option path, what of the disk only the kernel can make: such a
	// disk is built by the layout's format script in a VM (buildInVM).
	kernelOnly []string
}

// volume is a filesystem or swap area of a disk.
type volume struct {
	path   string // option path
	partNo int    // 0: the whole disk
	node   config.Node
	// mountpoints are where the volume is mounted, for placing files; empty when never.
	mountpoint string
}

// plan works out every disk's size and volumes, and what of the layout needs the kernel
// (vm: then the whole layout is built in a VM). Every problem is reported at once.
func plan(d *config.Devices, sizes map[string]string) (disks []*diskPlan, vm []string, err error) {
	var problems []string
	for name := range sizes {
		if _, ok := d.Disk[name]; !ok {
			problems = append(problems, fmt.Sprintf("--size %s: the layout has no disk %q", name, name))
		}
	}
	for kind, n := range map[string]int{"mdadm": len(d.MDADM), "lvm_vg": len(d.LVMVG)} {
		if n > 0 {
			vm = append(vm, fmt.Sprintf("%s.%s: %s", config.RootPath, kind, needsVM(kind)))
		}
	}
	for kind, n := range map[string]int{"zpool": len(d.Zpool), "bcachefs_filesystems": len(d.BcachefsFilesystems)} {
		if n > 0 {
			problems = append(problems, fmt.Sprintf("%s.%s: %s", config.RootPath, kind, notInVM(kind)))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.Disk)) {
		disk := d.Disk[name]
		p := &diskPlan{name: name, path: codegen.DiskContentPath(name), imageName: disk.ImageName, content: disk.Content}
		sizeText, sizePath := disk.ImageSize, strings.TrimSuffix(p.path, ".content")+".imageSize"
		if s, ok := sizes[name]; ok {
			sizeText, sizePath = s, "--size "+name
		}
		size, err := config.BinaryBytes(sizeText)
		if err == nil && size == 0 {
			err = fmt.Errorf("%q is not a size an image can have (examples: 2G, 512M)", sizeText)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", sizePath, err))
		}
		p.size = size
		if disk.PreCreateHook != "" || disk.PostCreateHook != "" {
			p.skippedHooks = append(p.skippedHooks, strings.TrimSuffix(p.path, ".content"))
		}
		problems = append(problems, p.collect(p.path, 0, disk.Content)...)
		vm = append(vm, p.kernelOnly...)
		disks = append(disks, p)
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		return nil, nil, fmt.Errorf("cannot build images of this layout:\n  %s", strings.Join(problems, "\n  "))
	}
	sort.Strings(vm)
	return disks, vm, nil
}

// collect walks a disk's content, adding volumes, and returns what cannot be built.
func (p *diskPlan) collect(path string, partNo int, node config.Node) []string {
	if h := createHooks(node); h != nil && (h.PreCreateHook != "" || h.PostCreateHook != "") {
		p.skippedHooks = append(p.skippedHooks, path)
	}
	switch n := node.(type) {
	case nil:
		return nil
	case *config.GPT:
		if partNo != 0 {
			return []string{path + ": a partition table inside a partition cannot be built"}
		}
		var problems []string
		for i, key := range config.GPTOrder(n) {
			pp := attrPath(path+".partitions", key) + ".content"
			problems = append(problems, p.collect(pp, i+1, n.Partitions[key].Content)...)
		}
		return problems
	case *config.Table:
		if partNo != 0 {
			return []string{path + ": a partition table inside a partition cannot be built"}
		}
		var problems []string
		for i, part := range n.Partitions {
			pp := fmt.Sprintf("%s.partitions[%d].content", path, i)
			problems = append(problems, p.collect(pp, config.TableNumbers(n)[i], part.Content)...)
		}
		return problems
	case *config.Filesystem:
		p.volumes = append(p.volumes, volume{path: path, partNo: partNo, node: n, mountpoint: n.Mountpoint})
	case *config.Swap:
		if !n.RandomEncryption {
			p.volumes = append(p.volumes, volume{path: path, partNo: partNo, node: n})
		}
	case *config.BTRFS:
		if len(n.Subvolumes) > 0 || len(n.Swap) > 0 {
			p.kernelOnly = append(p.kernelOnly, path+": btrfs subvolumes and swap files cannot be made without mounting the filesystem "+
				"(mkfs.btrfs on this machine has no --subvol option: btrfs-progs 6.2 in Debian 12)")
			return nil
		}
		for _, a := range strings.Fields(strings.Join(n.ExtraArgs, " ")) {
			if strings.HasPrefix(a, "/dev/") {
				p.kernelOnly = append(p.kernelOnly, fmt.Sprintf("%s.extraArgs: a btrfs filesystem over several devices (%s) needs the kernel", path, a))
				return nil
			}
		}
		p.volumes = append(p.volumes, volume{path: path, partNo: partNo, node: n, mountpoint: n.Mountpoint})
	case *config.LUKS:
		p.kernelOnly = append(p.kernelOnly, path+": "+needsVM("luks"))
	case *config.LVMPV:
		p.kernelOnly = append(p.kernelOnly, path+": "+needsVM("lvm_pv"))
	case *config.MDRaid:
		p.kernelOnly = append(p.kernelOnly, path+": "+needsVM("mdraid"))
	case *config.ZFS:
		return []string{path + ": " + notInVM("zfs")}
	case *config.Bcachefs:
		return []string{path + ": " + notInVM("bcachefs")}
	default:
		return []string{fmt.Sprintf("%s: %s cannot be built into an image", path, node.Kind())}
	}
	return nil
}

// createHooks returns the hooks of the node kinds an image may hold.
func createHooks(node config.Node) *config.Hooks {
	switch n := node.(type) {
	case *config.GPT:
		return &n.Hooks
	case *config.Table:
		return &n.Hooks
	case *config.Filesystem:
		return &n.Hooks
	case *config.Swap:
		return &n.Hooks
	case *config.BTRFS:
		return &n.Hooks
	}
	return nil
}

// needsVM says why a node kind cannot be built without the kernel.
func needsVM(kind string) string {
	why := map[string]string{
		"luks": "dm-crypt", "lvm_pv": "device-mapper (LVM)", "lvm_vg": "device-mapper (LVM)",
		"mdraid": "md (software RAID)", "mdadm": "md (software RAID)",
	}[kind]
	return fmt.Sprintf("%s needs the kernel's %s", kind, why)
}

// notInVM says why a node kind cannot be built at all here: the build VM runs Debian's
// kernel, which has neither ZFS nor bcachefs.
func notInVM(kind string) string {
	module := map[string]string{"zfs": "ZFS", "zpool": "ZFS", "bcachefs": "bcachefs", "bcachefs_filesystems": "bcachefs"}[kind]
	return fmt.Sprintf("%s needs the kernel's %s module, which the build VM's kernel (Debian's) does not have", kind, module)
}

// attrPath appends an attribute name to an option path, quoted when Nix would need it.
func attrPath(path, name string) string {
	ident := name != ""
	for i, c := range name {
		letter := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '\'' || c == '-')) {
			ident = false
		}
	}
	if ident {
		return path + "." + name
	}
	return path + "." + strconv.Quote(name)
}
