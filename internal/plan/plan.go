// Package plan compares a layout (what the disks should hold) with what internal/probe
// found on them (what they hold) and decides, node by node, what an incremental apply
// does: actions that keep every byte of existing data (create a partition in free space,
// grow a partition and its filesystem, add a subvolume, swap, a filesystem on a blank
// device, move a mount), and refusals for everything that would destroy or move data.
//
// Every decision names its row of one decision table (Rows, rendered into
// docs/incremental.md) and the option path of the node it is about, so that a refusal
// points at the line of the layout to change.
package plan

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/lazyregexp"
	"github.com/diskoanywhere/diskoanywhere/internal/mountopt"
	"github.com/diskoanywhere/diskoanywhere/internal/probe"
)

// Plan is what an incremental apply would do: actions (in the order apply runs them) and
// refusals. Apply runs nothing while anything is refused.
type Plan struct {
	Actions []Action  `json:"actions"`
	Refused []Refusal `json:"refused"`
}

// Action is one change that keeps existing data; Path is the option path of the node it
// creates or changes.
type Action struct {
	Path        string `json:"path"`
	Action      string `json:"action"`
	Description string `json:"description"`
	Row         string `json:"-"`
	script      string // shell commands that carry it out (see Script)
}

// Refusal is one difference that only a destructive change could resolve.
type Refusal struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
	Row    string `json:"-"`
}

// Options are what the plan needs besides the layout and the probe.
type Options struct {
	// RootMountpoint is where the layout is mounted (the mount step's root): mounts below
	// it are compared with the layout's mount points.
	RootMountpoint string
	// Codegen are the options of the scripts a blank disk is formatted with.
	Codegen codegen.Options
}

type planner struct {
	p    *Plan
	opts Options
	s    *probe.State
	// newMembers are the PVs and md members on partitions this plan creates, by the
	// group's or array's option path.
	newMembers map[string][]newMember
	// rows records every row decided, including those that change nothing (for tests).
	rows []string
}

// Make plans the layout d against the probed state s.
func Make(d *config.Devices, s *probe.State, opts Options) *Plan {
	pl := &planner{p: &Plan{Actions: []Action{}, Refused: []Refusal{}}, opts: opts}
	pl.plan(d, s)
	return pl.p
}

func (pl *planner) keep(r Row) { pl.rows = append(pl.rows, r.ID) }

func (pl *planner) act(r Row, path, desc, script string) {
	pl.rows = append(pl.rows, r.ID)
	pl.p.Actions = append(pl.p.Actions, Action{Path: path, Action: r.Action, Description: desc, Row: r.ID, script: script})
}

func (pl *planner) refuse(r Row, path, format string, args ...any) {
	pl.rows = append(pl.rows, r.ID)
	pl.p.Refused = append(pl.p.Refused, Refusal{Path: path, Reason: fmt.Sprintf(format, args...), Row: r.ID})
}

func (pl *planner) plan(d *config.Devices, s *probe.State) {
	pl.s = s
	for _, name := range slices.Sorted(maps.Keys(d.Disk)) {
		disk := d.Disk[name]
		p := attr(config.RootPath+".disk", name)
		ad := s.Disks[name]
		switch {
		case ad == nil:
			pl.refuse(DiskUnreadable, p, "%s was not probed", disk.Device)
			continue
		case ad.Unreadable != "":
			pl.refuse(DiskUnreadable, p, "cannot read %s: %s", disk.Device, ad.Unreadable)
			continue
		case disk.Content == nil:
			pl.keep(DiskUntouched)
			continue
		case ad.Table == nil && ad.Content == nil:
			pl.blankDisk(p, name, disk)
			continue
		}
		cp := p + ".content"
		switch n := disk.Content.(type) {
		case *config.GPT:
			if ad.Table == nil || ad.Table.Label != "gpt" {
				pl.refuse(TableDiffers, cp+".type", "the layout wants a GPT, but %s holds %s; changing it would destroy the data on it", disk.Device, holds(ad))
				continue
			}
			pl.keep(TableDiffers.notRefused())
			pl.gpt(cp, n, ad)
		case *config.Table:
			want := map[string]string{"gpt": "gpt", "msdos": "dos"}[n.Format]
			if ad.Table == nil || ad.Table.Label != want {
				pl.refuse(TableDiffers, cp+".format", "the layout wants an %s partition table, but %s holds %s; changing it would destroy the data on it", n.Format, disk.Device, holds(ad))
				continue
			}
			pl.table(cp, n, ad)
		default:
			if ad.Table != nil {
				pl.refuse(WholeDiskHasTable, cp+".type", "the layout puts %s on the whole disk, but %s holds %s", n.Kind(), disk.Device, holds(ad))
				continue
			}
			pl.content(cp, disk.Content, ad.Content, ad.Path)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.LVMVG)) {
		pl.vg(attr(config.RootPath+".lvm_vg", name), d.LVMVG[name], s)
	}
	for _, name := range slices.Sorted(maps.Keys(d.MDADM)) {
		pl.array(attr(config.RootPath+".mdadm", name), d.MDADM[name], s)
	}
	for _, name := range slices.Sorted(maps.Keys(d.Zpool)) {
		pl.zpool(attr(config.RootPath+".zpool", name), d.Zpool[name], s)
	}
}

// notRefused marks that a refusing row's question was asked and answered "no": it is
// recorded as the row's ID with a "!" so that tests can tell both answers apart.
func (r Row) notRefused() Row { r.ID = "!" + r.ID; return r }

// holds says what a probed disk holds, for messages.
func holds(d *probe.Disk) string {
	switch {
	case d.Table != nil && d.Table.Label == "dos":
		return fmt.Sprintf("an MBR (msdos) partition table with %d partitions", len(d.Table.Partitions))
	case d.Table != nil:
		return fmt.Sprintf("a %s partition table with %d partitions", strings.ToUpper(d.Table.Label), len(d.Table.Partitions))
	case d.Content != nil:
		return "a whole-disk " + d.Content.Type + " signature"
	}
	return "nothing"
}

// blankDisk plans a disk without table or signature: the format script of the layout's
// disk, alone.
func (pl *planner) blankDisk(p, name string, disk *config.Disk) {
	if member := aggregateMember(disk.Content); member != "" {
		pl.refuse(DiskBlankMember, p+".content", "%s is blank, but its content joins %s, which apply does not build yet; use the format script", disk.Device, member)
		return
	}
	one := &config.Devices{Disk: map[string]*config.Disk{name: disk}}
	scripts, err := codegen.Generate(one, pl.opts.Codegen)
	if err != nil {
		pl.refuse(DiskBlankMember, p, "cannot generate its format script: %v", err)
		return
	}
	pl.act(DiskBlank, p, fmt.Sprintf("format the blank disk %s as the layout says (%s)", disk.Device, disk.Content.Kind()),
		"bash -s <<'DISKO_FORMAT_DISK'\n"+strings.TrimRight(string(scripts.Format), "\n")+"\nDISKO_FORMAT_DISK\n")
}

// aggregateMember names the aggregate a content (or anything below it) joins, or "".
func aggregateMember(n config.Node) string {
	switch n := n.(type) {
	case *config.MDRaid:
		return "mdadm array " + n.Name
	case *config.LVMPV:
		return "LVM volume group " + n.VG
	case *config.ZFS:
		return "zpool " + n.Pool
	case *config.Bcachefs:
		return "bcachefs filesystem " + n.Filesystem
	case *config.LUKS:
		return aggregateMember(n.Content)
	case *config.GPT:
		for _, k := range slices.Sorted(maps.Keys(n.Partitions)) {
			if m := aggregateMember(n.Partitions[k].Content); m != "" {
				return m
			}
		}
	case *config.Table:
		for _, part := range n.Partitions {
			if m := aggregateMember(part.Content); m != "" {
				return m
			}
		}
	}
	return ""
}

// wanted is a partition of the layout, in the shape both table types share.
type wanted struct {
	path    string
	number  int
	label   string // GPT: matched by label; "" for MBR (matched by number)
	start   int64  // sectors; -1 when the layout leaves it to the partitioning tool
	size    int64  // sectors; -1 for "the rest of the free block" (100%)
	typ     string // GPT type GUID, "" when not compared
	content config.Node
	create  string // shell commands that create the partition (its content follows)
}

func (pl *planner) gpt(p string, g *config.GPT, ad *probe.Disk) {
	var ws []wanted
	for i, key := range config.GPTOrder(g) {
		part := g.Partitions[key]
		w := wanted{path: attr(p+".partitions", key), number: i + 1, label: part.Label, content: part.Content, start: -1}
		w.start = sectors(part.Start, ad.SectorSize)
		switch part.Size {
		case "100%":
			w.size = -1
		case "0": // from start to end
			w.size = endSize(part.End, w.start, ad.SectorSize)
		default:
			w.size = sizeSectors(part.Size, ad.SectorSize)
		}
		w.typ, _ = codegen.PartitionTypeGUID(part.Type)
		args := []string{"sgdisk"}
		if a := derefInt(part.Alignment); a != 0 {
			args = append(args, "--set-alignment="+strconv.Itoa(a))
		}
		n := strconv.Itoa(w.number)
		args = append(args, "--new="+n+":"+part.Start+":"+part.End, "--typecode="+n+":"+w.typ, "--change-name="+n+":"+part.Label)
		if part.UUID != "" {
			args = append(args, "--partition-guid="+n+":"+part.UUID)
		}
		for _, bit := range part.Attributes {
			args = append(args, "--attributes="+n+":set:"+strconv.Itoa(bit))
		}
		w.create = words(append(args, ad.Path)...) + " >/dev/null"
		ws = append(ws, w)
	}
	pl.partitions(p, ws, ad)
}

func (pl *planner) table(p string, t *config.Table, ad *probe.Disk) {
	var ws []wanted
	numbers := config.TableNumbers(t)
	for i, part := range t.Partitions {
		w := wanted{path: p + ".partitions[" + strconv.Itoa(i) + "]", number: numbers[i], content: part.Content, start: -1, size: -2}
		if s, ok := partedSectors(part.Start, ad); ok {
			w.start = s
			if e, ok := partedSectors(part.End, ad); ok {
				if part.End == "100%" {
					w.size = -1
				} else {
					w.size = e - s + 1
				}
			}
		}
		args := []string{"parted", "--script", "--", ad.Path, "mkpart"}
		if t.Format == "gpt" {
			args = append(args, config.UdevEscape(part.Name))
		} else {
			args = append(args, part.PartType)
		}
		if part.FSType != "" {
			args = append(args, part.FSType)
		}
		args = append(args, part.Start, part.End)
		if part.Bootable {
			args = append(args, "set", strconv.Itoa(w.number), "boot", "on")
		}
		for _, f := range part.Flags {
			args = append(args, "set", strconv.Itoa(w.number), f, "on")
		}
		w.create = words(args...) + " >/dev/null"
		if part.PartType == "extended" {
			w.content = nil
		}
		ws = append(ws, w)
	}
	pl.partitions(p, ws, ad)
}

// partitions compares the layout's partitions with the table's.
func (pl *planner) partitions(p string, ws []wanted, ad *probe.Disk) {
	t := ad.Table
	free := freeBlocks(t, ad)
	matched := map[*probe.Partition]bool{}
	var creates []func()
	for _, w := range ws {
		var ap *probe.Partition
		for _, cand := range t.Partitions {
			if (w.label != "" && cand.Name == w.label) || (w.label == "" && cand.Number == w.number) {
				ap = cand
			}
		}
		if ap == nil {
			pl.missing(w, ad, &free, &creates)
			continue
		}
		matched[ap] = true
		if ap.Number != w.number {
			pl.refuse(PartMoved, w.path, "the partition labelled %q is partition %d of %s, but the layout makes it partition %d (numbers follow priority, then name); renumbering would move it", w.label, ap.Number, ad.Device, w.number)
			continue
		}
		if w.start >= 0 && !near(w.start, ap.Start, ad.SectorSize) {
			pl.refuse(PartMoved, w.path+".start", "partition %d of %s starts at sector %d, the layout says %d; moving a partition moves its data", ap.Number, ad.Device, ap.Start, w.start)
			continue
		}
		pl.keep(PartMoved.notRefused())
		if w.typ != "" && ap.Type != w.typ && t.Label == "gpt" {
			pl.act(PartType, w.path+".type", fmt.Sprintf("set the type of partition %d of %s to %s (it is %s); data stays", ap.Number, ad.Device, w.typ, ap.Type),
				words("sfdisk", "--quiet", "--part-type", ad.Path, strconv.Itoa(ap.Number), w.typ))
		}
		if !pl.size(w, ap, ad, free) {
			continue
		}
		pl.content(w.path+".content", w.content, ap.Content, ap.Node)
	}
	for _, ap := range t.Partitions {
		if !matched[ap] {
			name := ""
			if ap.Name != "" {
				name = fmt.Sprintf(" (labelled %q)", ap.Name)
			}
			pl.refuse(PartExtra, p+".partitions", "partition %d%s of %s is on the disk but not in the layout; partitions are never removed implicitly: add it to the layout (see `disko-compile import`) or remove it yourself", ap.Number, name, ad.Device)
		}
	}
	for _, c := range creates {
		c()
	}
}

// missing plans a partition that is not on the disk: created in free space when it fits.
func (pl *planner) missing(w wanted, ad *probe.Disk, free *[]block, creates *[]func()) {
	for _, ap := range ad.Table.Partitions {
		if ap.Number == w.number {
			pl.refuse(PartNoRoom, w.path, "the layout makes it partition %d of %s, but that number holds the partition labelled %q", w.number, ad.Device, ap.Name)
			return
		}
	}
	before := slices.Clone(*free)
	at, ok := allocate(free, w.start, w.size, ad.SectorSize)
	if !ok {
		size := "the rest of the disk"
		if w.size > 0 {
			size = fmt.Sprintf("%d MiB", w.size*ad.SectorSize>>20)
		}
		pl.refuse(PartNoRoom, w.path, "partition %d (%s) does not fit in the free space of %s", w.number, size, ad.Device)
		return
	}
	var fill, what string
	var err error
	switch n := w.content.(type) {
	case *config.LVMPV:
		fill, what = pl.newPV(n, ad, w.number, *free, before, w.path+".content")
	case *config.MDRaid:
		fill, what = pl.newMDMember(n, ad, w.number, *free, before, w.path+".content")
	default:
		fill, what, err = formatScript(w.content, `"$node"`)
	}
	if err != nil {
		pl.refuse(ContentNoCreate, w.path+".content", "%v", err)
		return
	}
	row := PartMissing
	if _, swap := w.content.(*config.Swap); swap {
		row = PartMissingSwap
	}
	desc := fmt.Sprintf("create partition %d of %s at sector %d", w.number, ad.Device, at)
	if what != "" {
		desc += " and " + what
	}
	script := w.create + "\n" + "node=$(disko_apply_node " + q(ad.Path) + " " + strconv.Itoa(w.number) + ")\n" +
		"wipefs --all --quiet -- \"$node\"\n" + fill
	// Creations run after the checks of existing partitions, in partition order.
	*creates = append(*creates, func() { pl.act(row, w.path, desc, script) })
}

// size compares a matched partition's size; false when it refused.
func (pl *planner) size(w wanted, ap *probe.Partition, ad *probe.Disk, free []block) bool {
	align := alignSectors(ad.SectorSize)
	after := int64(0) // free sectors right after the partition
	for _, b := range free {
		if b.start == ap.End()+1 {
			after = b.end - b.start + 1
		}
	}
	var newSize int64
	switch {
	case w.size == -2: // a position the planner cannot read (parted units it does not know)
		pl.keep(PartSame)
		return true
	case w.size == -1:
		if after < align {
			pl.keep(PartSame)
			return true
		}
		newSize = ap.Size + after
	case w.size < ap.Size-align:
		pl.refuse(PartShrink, w.path+".size", "partition %d of %s has %d MiB, the layout says %d MiB; shrinking is never done (it would cut off data)", ap.Number, ad.Device, ap.Size*ad.SectorSize>>20, w.size*ad.SectorSize>>20)
		return false
	case w.size <= ap.Size+align:
		pl.keep(PartSame)
		return true
	case w.size-ap.Size > after:
		pl.refuse(PartGrowBlocked, w.path+".size", "partition %d of %s cannot grow to %d MiB: only %d MiB after it are free", ap.Number, ad.Device, w.size*ad.SectorSize>>20, after*ad.SectorSize>>20)
		return false
	default:
		newSize = w.size
	}
	grow, err := growScript(ap.Content, ap.Node)
	if err != nil {
		pl.refuse(PartGrowBlocked, w.path+".size", "partition %d of %s: %v", ap.Number, ad.Device, err)
		return false
	}
	what := "its content"
	if ap.Content != nil {
		what = "its " + ap.Content.Type
	}
	pl.act(PartGrow, w.path+".size", fmt.Sprintf("grow partition %d of %s from %d MiB to %d MiB into the free space after it, then %s", ap.Number, ad.Device, ap.Size*ad.SectorSize>>20, newSize*ad.SectorSize>>20, what),
		"printf 'size=%d\\n' "+strconv.FormatInt(newSize, 10)+" | sfdisk --quiet --no-reread --no-tell-kernel -N "+strconv.Itoa(ap.Number)+" -- "+q(ad.Path)+" >/dev/null\n"+
			"node=$(disko_apply_node "+q(ad.Path)+" "+strconv.Itoa(ap.Number)+")\n"+
			"partx --update --nr "+strconv.Itoa(ap.Number)+" -- "+q(ad.Path)+"\n"+grow)
	return true
}

// content compares a content node with the signature found on its device.
func (pl *planner) content(p string, n config.Node, c *probe.Content, node string) {
	if n == nil {
		pl.keep(ContentUntouched)
		return
	}
	if sw, ok := n.(*config.Swap); ok && sw.RandomEncryption && (c == nil || c.Type == "swap") {
		// Randomly encrypted swap is made at each boot; the scripts never format it.
		pl.keep(ContentSame)
		return
	}
	if c == nil {
		fill, what, err := formatScript(n, `"$node"`)
		if err != nil {
			pl.refuse(ContentNoCreate, p, "%v", err)
			return
		}
		pl.act(ContentBlank, p, fmt.Sprintf("%s on %s, which holds no signature", what, node), "node="+q(node)+"\n"+fill)
		return
	}
	if c.Type == "crypto_LUKS" {
		if _, ok := n.(*config.LUKS); !ok {
			pl.refuse(LUKSRemoved, p+".type", "%s is LUKS-encrypted, the layout puts %s there; removing encryption would destroy the data", node, n.Kind())
			return
		}
	}
	switch n := n.(type) {
	case *config.Filesystem:
		if want := blkidType(n.Format); c.Type != want {
			pl.refuse(ContentDiffers, p+".format", "%s holds %s, the layout says %s; reformatting would destroy the data", node, c.Type, n.Format)
			return
		}
		pl.keep(ContentSame)
		pl.mount(p, n.Mountpoint, n.MountOptions, c, "/")
	case *config.Swap:
		if c.Type != "swap" {
			pl.refuse(ContentDiffers, p+".type", "%s holds %s, the layout makes it swap; mkswap would destroy the data", node, c.Type)
			return
		}
		pl.keep(ContentSame)
	case *config.BTRFS:
		if c.Type != "btrfs" {
			pl.refuse(ContentDiffers, p+".type", "%s holds %s, the layout says btrfs; reformatting would destroy the data", node, c.Type)
			return
		}
		if c.Unreadable != "" {
			pl.refuse(ContentUnreadable, p, "cannot read the subvolumes of %s: %s", node, c.Unreadable)
			return
		}
		pl.keep(ContentSame)
		pl.btrfs(p, n, c, node)
	case *config.LUKS:
		if c.Type != "crypto_LUKS" {
			pl.refuse(LUKSAdded, p+".type", "%s holds an unencrypted %s, the layout encrypts it; adding encryption would destroy the data", node, c.Type)
			return
		}
		pl.luks(p, n, c, node)
	default:
		want := map[string]string{"lvm_pv": "LVM2_member", "mdraid": "linux_raid_member", "zfs": "zfs_member", "bcachefs": "bcachefs"}[n.Kind()]
		if c.Type != want {
			pl.refuse(ContentDiffers, p+".type", "%s holds %s, the layout makes it %s; that would destroy the data", node, c.Type, n.Kind())
			return
		}
		if z, ok := n.(*config.ZFS); ok {
			pl.zfsMember(p, z, c, node)
			return
		}
		pl.member(p, n, c, node)
	}
}

func (pl *planner) btrfs(p string, n *config.BTRFS, c *probe.Content, node string) {
	pl.mount(p, n.Mountpoint, n.MountOptions, c, "/")
	var missing []string // subvolume keys, in creation order (a parent before its child)
	type file struct {
		path, name string
		f          *config.Swapfile
	}
	var files []file // swap files, made after the subvolumes that hold them
	for _, key := range slices.Sorted(maps.Keys(n.Subvolumes)) {
		sv := n.Subvolumes[key]
		name := strings.Trim(sv.Name, "/")
		sp := attr(p+".subvolumes", key)
		if slices.Contains(c.Subvolumes, name) {
			pl.keep(SubvolSame)
			pl.mount(sp, sv.Mountpoint, sv.MountOptions, c, "/"+name)
		} else {
			missing = append(missing, key)
		}
		for _, fk := range slices.Sorted(maps.Keys(sv.Swap)) {
			files = append(files, file{attr(sp+".swap", fk), name + "/" + strings.Trim(sv.Swap[fk].Path, "/"), sv.Swap[fk]})
		}
	}
	for _, fk := range slices.Sorted(maps.Keys(n.Swap)) {
		files = append(files, file{attr(p+".swap", fk), strings.Trim(n.Swap[fk].Path, "/"), n.Swap[fk]})
	}
	for _, key := range missing {
		sv := n.Subvolumes[key]
		name := strings.Trim(sv.Name, "/")
		pl.act(SubvolMissing, attr(p+".subvolumes", key), fmt.Sprintf("create the btrfs subvolume %s on %s", name, node),
			withTop(node, "mkdir -p \"$(dirname \"$top\"/"+q(name)+")\"\nbtrfs subvolume create "+wordsThen(sv.ExtraArgs)+"\"$top\"/"+q(name)+" >/dev/null"))
	}
	for _, f := range files {
		pl.swapfile(f.path, node, f.name, f.f, c)
	}
	desired := map[string]bool{}
	for _, sv := range n.Subvolumes {
		desired[strings.Trim(sv.Name, "/")] = true
	}
	for _, name := range c.Subvolumes {
		if !desired[name] {
			pl.keep(SubvolExtra)
		}
	}
}

// swapfile plans a swap file at file (a path relative to the top level).
func (pl *planner) swapfile(p, node, file string, f *config.Swapfile, c *probe.Content) {
	if _, ok := c.Swapfiles[file]; ok {
		pl.keep(SwapfileSame)
		return
	}
	pl.act(SwapfileMissing, p, fmt.Sprintf("make a %s swap file %s on the btrfs %s", f.Size, file, node),
		withTop(node, "mkdir -p \"$(dirname \"$top\"/"+q(file)+")\"\nbtrfs filesystem mkswapfile --size "+q(f.Size)+" \"$top\"/"+q(file)+" >/dev/null"))
}

// mount plans the mount of the node at p: a filesystem mounted below the root mount point
// somewhere other than the layout says is unmounted there (the mount step then mounts it
// where the layout says); one mounted where the layout says without some of the layout's
// mount options is remounted with them.
func (pl *planner) mount(p, mountpoint string, options []string, c *probe.Content, fsroot string) {
	root := pl.opts.RootMountpoint
	if root == "" {
		pl.keep(MountElsewhere)
		return
	}
	for _, m := range c.Mounts {
		if m.FSRoot != fsroot {
			continue
		}
		rel, ok := below(m.Target, root)
		if !ok {
			continue
		}
		if rel == mountpoint {
			if missing := mountopt.Missing(c.Type, options, strings.Split(m.Options, ",")); len(missing) > 0 {
				opts := strings.Join(missing, ",")
				pl.act(MountOptions, p+".mountOptions", fmt.Sprintf("remount %s with %s (it is mounted with %s); an option the kernel cannot change on a mounted filesystem takes effect at the next mount", m.Target, opts, m.Options),
					words("mount", "-o", "remount,"+opts, "--", m.Target)+" || echo "+q("disko apply: "+m.Target+" could not be remounted with "+opts+"; it takes effect at the next mount")+" >&2")
				return
			}
			continue
		}
		pl.act(MountMoved, p+".mountpoint", fmt.Sprintf("unmount %s; the mount step mounts it at %s", m.Target, or(mountpoint, "no mount point")), words("umount", m.Target))
		return
	}
	pl.keep(MountElsewhere)
}

func below(target, root string) (string, bool) {
	root = path.Clean(root)
	if root == "/" {
		return target, true
	}
	if target == root {
		return "/", true
	}
	if rest, ok := strings.CutPrefix(target, root+"/"); ok {
		return "/" + rest, true
	}
	return "", false
}

// block is a run of free sectors.
type block struct{ start, end int64 }

// freeBlocks are the usable sectors no partition holds (an MBR's extended partition
// counts as holding its whole range).
func freeBlocks(t *probe.Table, d *probe.Disk) []block {
	first, last := t.FirstLBA, t.LastLBA
	if t.Label == "dos" {
		first, last = alignSectors(d.SectorSize), d.Size/d.SectorSize-1
	}
	parts := slices.Clone(t.Partitions)
	sort.Slice(parts, func(i, j int) bool { return parts[i].Start < parts[j].Start })
	var out []block
	pos := first
	for _, p := range parts {
		if p.Start > pos {
			out = append(out, block{pos, p.Start - 1})
		}
		pos = max(pos, p.End()+1)
	}
	if pos <= last {
		out = append(out, block{pos, last})
	}
	return out
}

// allocate takes a partition out of the free blocks the way sgdisk places it: at start, or
// (start < 0) at the first aligned sector of the largest free block; size < 0 takes the
// rest of the block. It returns the start sector.
func allocate(free *[]block, start, size, ss int64) (int64, bool) {
	align := alignSectors(ss)
	bi := -1
	for i, b := range *free {
		switch {
		case start >= 0:
			if b.start <= start && start <= b.end {
				bi = i
			}
		case bi < 0 || b.end-b.start > (*free)[bi].end-(*free)[bi].start:
			bi = i
		}
	}
	if bi < 0 {
		return 0, false
	}
	b := (*free)[bi]
	s := start
	if s < 0 {
		s = (b.start + align - 1) / align * align
	}
	e := b.end
	if size >= 0 {
		e = s + size - 1
	} else if size == -2 {
		return s, true
	}
	if s > b.end || e > b.end || e < s {
		return 0, false
	}
	rest := slices.Delete(slices.Clone(*free), bi, bi+1)
	if s > b.start {
		rest = append(rest, block{b.start, s - 1})
	}
	if e < b.end {
		rest = append(rest, block{e + 1, b.end})
	}
	*free = rest
	return s, true
}

func alignSectors(ss int64) int64 { return (1 << 20) / ss }

// near reports whether two sector positions are within a MiB (alignment) of each other.
func near(a, b, ss int64) bool { return abs(a-b) < alignSectors(ss) }

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

var sizeRe = lazyregexp.New(`^([0-9]+)([KMGTP]?)$`)

// sizeSectors is an sgdisk size (no suffix: sectors) in sectors.
func sizeSectors(s string, ss int64) int64 {
	m := sizeRe.FindStringSubmatch(s)
	if m == nil {
		return -2
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	if m[2] == "" {
		return v
	}
	shift := map[string]uint{"K": 10, "M": 20, "G": 30, "T": 40, "P": 50}[m[2]]
	return v << shift / ss
}

// endSize is the size in sectors of a partition given by an sgdisk end (and its start in
// sectors, -1 when left to sgdisk): -1 for "-0" (the rest of the free block), -2 when it
// cannot be told without the disk (an end relative to the disk's end, or an absolute end
// after a start chosen by sgdisk).
func endSize(end string, start, ss int64) int64 {
	switch {
	case end == "-0":
		return -1
	case strings.HasPrefix(end, "+"):
		return sizeSectors(strings.TrimPrefix(end, "+"), ss)
	case strings.HasPrefix(end, "-") || start < 0:
		return -2
	}
	e := sectors(end, ss)
	if e < 0 {
		return -2
	}
	return e - start + 1
}

var posRe = lazyregexp.New(`^([0-9]+)([KMGTPs]?)$`)

// sectors is an explicit sgdisk start in sectors, or -1 for "where sgdisk puts it" (0,
// or a position relative to something).
func sectors(s string, ss int64) int64 {
	m := posRe.FindStringSubmatch(s)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	switch m[2] {
	case "":
		if v == 0 {
			return -1
		}
		return v
	case "s":
		return v
	}
	return sizeSectors(m[1]+m[2], ss)
}

var partedRe = lazyregexp.New(`^([0-9]+(?:\.[0-9]+)?)(s|B|KiB|MiB|GiB|TiB|%)$`)

// partedSectors is a parted position (sectors, binary units or percent of the disk) in
// sectors; false for units it does not know (kB, MB, ... which parted rounds).
func partedSectors(s string, d *probe.Disk) (int64, bool) {
	m := partedRe.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	total := d.Size / d.SectorSize
	switch m[2] {
	case "s":
		return int64(v), true
	case "%":
		if v == 100 {
			return total - 1, true
		}
		return int64(v / 100 * float64(total)), true
	}
	unit := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	return int64(v * unit / float64(d.SectorSize)), true
}

// attr appends an attribute name to an option path, quoted as Nix needs it.
func attr(p, name string) string {
	ident := name != ""
	for i, c := range name {
		letter := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '\'' || c == '-')) {
			ident = false
		}
	}
	if ident {
		return p + "." + name
	}
	return p + "." + strconv.Quote(name)
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func or(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}
