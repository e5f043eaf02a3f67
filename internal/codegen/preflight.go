package codegen

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/lazyregexp"
)

// The preflight: all or nothing. Disks are formatted in parallel, so a precondition found
// to fail on one disk halfway (a missing device or tool, a disk too small or holding
// foreign data) would leave the others formatted. Every script therefore starts by
// checking what it can know beforehand (runtime.sh's disko_need_* functions) and changes
// nothing unless all of it holds:
//
//	every program the script runs is on PATH (read from the script, see tools.go);
//	a terminal, when a passphrase must be typed;
//	every disk exists (waited for), is at least as big as its table needs, and, for a
//	format that must not destroy, holds nothing this layout did not make.

// toolPackages names the Debian package and the nixpkgs attribute that have a command, for
// the message when it is missing.
var toolPackages = map[string][2]string{
	"base64": {"coreutils", "coreutils"}, "blkid": {"util-linux", "util-linux"},
	"btrfs": {"btrfs-progs", "btrfs-progs"}, "cat": {"coreutils", "coreutils"},
	"chmod": {"coreutils", "coreutils"}, "cmp": {"diffutils", "diffutils"},
	"cryptsetup": {"cryptsetup-bin", "cryptsetup"}, "dd": {"coreutils", "coreutils"},
	"findmnt": {"util-linux", "util-linux"}, "head": {"coreutils", "coreutils"},
	"jq": {"jq", "jq"}, "lsblk": {"util-linux", "util-linux"},
	"lvcreate": {"lvm2", "lvm2"}, "lvremove": {"lvm2", "lvm2"},
	"lvs": {"lvm2", "lvm2"}, "mdadm": {"mdadm", "mdadm"},
	"mkdir": {"coreutils", "coreutils"}, "mkfs.bcachefs": {"bcachefs-tools", "bcachefs-tools"},
	"mkfs.btrfs": {"btrfs-progs", "btrfs-progs"}, "mkfs.ext2": {"e2fsprogs", "e2fsprogs"},
	"mkfs.ext3": {"e2fsprogs", "e2fsprogs"}, "mkfs.ext4": {"e2fsprogs", "e2fsprogs"},
	"mkfs.f2fs": {"f2fs-tools", "f2fs-tools"}, "mkfs.vfat": {"dosfstools", "dosfstools"},
	"mkfs.xfs": {"xfsprogs", "xfsprogs"}, "mkswap": {"util-linux", "util-linux"},
	"mount": {"mount", "util-linux"}, "parted": {"parted", "parted"},
	"partx": {"util-linux", "util-linux"}, "pvcreate": {"lvm2", "lvm2"},
	"pvs": {"lvm2", "lvm2"}, "readlink": {"coreutils", "coreutils"},
	"sfdisk": {"fdisk", "util-linux"}, "sgdisk": {"gdisk", "gptfdisk"},
	"sleep": {"coreutils", "coreutils"}, "stat": {"coreutils", "coreutils"},
	"swapoff": {"mount", "util-linux"}, "swapon": {"mount", "util-linux"},
	"tail": {"coreutils", "coreutils"}, "umount": {"mount", "util-linux"},
	"vgchange": {"lvm2", "lvm2"}, "vgcreate": {"lvm2", "lvm2"},
	"vgremove": {"lvm2", "lvm2"}, "vgs": {"lvm2", "lvm2"},
	"wipefs": {"util-linux", "util-linux"}, "zfs": {"zfsutils-linux", "zfs"},
	"zpool": {"zfsutils-linux", "zfs"},
}

// udevadm is run only when udev answered, so only where it exists (see disko_udev).
var runsOnlyWithUdev = "udevadm"

// needTools is the check that every program in tools is on PATH.
func needTools(tools []string) sh {
	words := []sh{"disko_need_tools"}
	for _, t := range tools {
		if t == runsOnlyWithUdev {
			continue
		}
		p := toolPackages[t]
		words = append(words, Q(t+":"+p[0]+":"+p[1]))
	}
	if len(words) == 1 {
		return ""
	}
	return joinSh(words)
}

// preflight writes disko_preflight MODE, the checks of every disk the format creates
// something on (MODE keep: also that it holds nothing foreign; wipe: the destroy step
// runs first). It returns "" for a layout without such disks.
func (g *gen) preflight() (string, error) {
	var w writer
	for _, u := range g.units {
		disk, ok := u.node.(*config.Disk)
		if !ok || disk.Content == nil {
			continue
		}
		cp := u.path.field("content")
		path := g.info[disk.Content].ref.path
		var min int64
		var needs string
		var args []sh
		switch n := disk.Content.(type) {
		case *config.GPT:
			specs, err := GPTSpecs(cp.String(), n)
			if err != nil {
				return "", err
			}
			min, needs = gptNeeds(n, specs)
			args = append(args, "gpt")
			for _, s := range specs {
				args = append(args, gptSpecWord(s))
			}
		case *config.Table:
			_, id := TableScript(cp.String(), n)
			min, needs = tableNeeds(n)
			args = append(args, "table", Q(n.Format), Q(id))
		default:
			typ := contentType(disk.Content)
			if typ == "" {
				continue
			}
			args = append(args, "type", Q(typ))
		}
		words := []sh{"disko_check disko_need_disk", Q(path), u.path.q(), `"$1"`, sh(strconv.FormatInt(min, 10)), Q(needs), args[0]}
		if args[0] != "gpt" || len(args) == 1 { // a GPT with no partitions has no spec lines to continue onto
			w.linef("%s", joinSh(append(words, args[1:]...)))
			continue
		}
		w.linef("%s \\", joinSh(words))
		w.indent += 2
		for i, a := range args[1:] {
			if i < len(args)-2 {
				w.linef("%s \\", a)
			} else {
				w.linef("%s", a)
			}
		}
		w.indent -= 2
	}
	if w.String() == "" {
		return "", nil
	}
	return function("disko_preflight", "disko_udev_known\n"+w.String()), nil
}

// gptSpecWord is a partition as disko_gpt and disko_need_disk read it.
func gptSpecWord(s GPTPartitionSpec) sh {
	return Q(fmt.Sprintf("%d %s %s %d %s %s %s %s %s", s.Number, s.Start, s.End, s.Align, s.TypeGUID, orDash(s.UUID), orDash(s.Attrs),
		base64.StdEncoding.EncodeToString([]byte(s.Label)), s.Name))
}

// contentType is what blkid calls the content a format creates on a whole disk ("" for
// none it checks).
func contentType(node config.Node) string {
	switch n := node.(type) {
	case *config.Filesystem:
		return blkidType(n.Format)
	case *config.Swap:
		return "swap"
	case *config.LUKS:
		return "crypto_LUKS"
	case *config.LVMPV:
		return "LVM2_member"
	case *config.BTRFS:
		return "btrfs"
	case *config.MDRaid:
		return "linux_raid_member"
	case *config.ZFS:
		return "zfs_member"
	case *config.Bcachefs:
		return "bcachefs"
	}
	return ""
}

const mib = 1 << 20

// gptNeeds is a lower bound of the bytes a GPT's partitions take, as sgdisk places them
// on a blank disk with 512-byte sectors (the first partition at 1 MiB, each start
// aligned to 1 MiB, the backup table's 33 sectors at the end), and the partitions'
// sizes as the layout writes them. A disk smaller than that cannot hold the table; the
// runtime also places the partitions for real (disko_need_disk) for what the bound does
// not see.
func gptNeeds(n *config.GPT, specs []GPTPartitionSpec) (int64, string) {
	cur, tail := int64(0), int64(0)
	var words []string
	order := config.GPTOrder(n)
	for i, s := range specs {
		part := n.Partitions[order[i]]
		words = append(words, part.Name+" "+sizeWords(part))
		switch sign, v := posBytes(s.Start); sign {
		case "0":
			if s.Align == 0 {
				cur = max((cur+mib-1)/mib*mib, mib)
			} else {
				cur = max(cur, 34*512)
			}
		case "=":
			cur = max(cur, v)
		case "+":
			cur += v
		}
		switch sign, v := posBytes(s.End); sign {
		case "+":
			cur += v
		case "=":
			cur = max(cur, v)
		case "-":
			tail = max(tail, v)
		}
	}
	return cur + tail + 33*512, strings.Join(words, " + ")
}

// sizeWords is a partition's size as its layout says it.
func sizeWords(p *config.GPTPartition) string {
	switch {
	case p.Size == "100%":
		return "the rest"
	case p.Size != "" && p.Size != "0":
		return p.Size
	}
	return "from " + p.Start + " to " + p.End
}

// posBytes reads a position in disko_gpt_value's syntax: its sign ("0" for sgdisk's
// default) and its value in bytes (sectors counted as 512 bytes, the smallest).
func posBytes(spec string) (string, int64) {
	if spec == "0" {
		return "0", 0
	}
	f := strings.Split(spec, ":")
	if len(f) != 3 {
		return "0", 0
	}
	v, _ := strconv.ParseInt(f[1], 10, 64)
	unit, _ := strconv.ParseInt(f[2], 10, 64)
	if unit == 0 {
		unit = 512
	}
	return f[0], v * unit
}

var partedPos = lazyregexp.New(`^([0-9]+(?:\.[0-9]+)?)(s|B|[kK]B?|MB?|GB?|TB?|KiB|MiB|GiB|TiB)$`)

// tableNeeds is a lower bound of the bytes a legacy table takes: its largest end given
// in absolute units (ends in percent fit any disk).
func tableNeeds(n *config.Table) (int64, string) {
	units := map[string]float64{"s": 512, "B": 1, "k": 1e3, "K": 1e3, "kB": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6,
		"G": 1e9, "GB": 1e9, "T": 1e12, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
	var end int64
	var words []string
	for i, part := range n.Partitions {
		words = append(words, fmt.Sprintf("partition %d from %s to %s", i+1, part.Start, part.End))
		if m := partedPos.FindStringSubmatch(part.End); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			end = max(end, int64(v*units[m[2]]))
		}
	}
	return end, strings.Join(words, ", ")
}
