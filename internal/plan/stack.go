package plan

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/lazyregexp"
	"github.com/diskoanywhere/diskoanywhere/internal/probe"
)

// The stacked devices: the inside of open LUKS containers, LVM volume groups and md
// arrays. Their members (lvm_pv, mdraid contents) are checked where the disks are; the
// groups and arrays after all disks, so that their actions run after the partitions'.

// luks compares a LUKS container's inside, which is only readable while it is open.
func (pl *planner) luks(p string, n *config.LUKS, c *probe.Content, node string) {
	switch {
	case c.Unreadable != "":
		pl.refuse(ContentUnreadable, p, "cannot read the LUKS container %s: %s", node, c.Unreadable)
	case n.Content == nil:
		pl.keep(LUKSSame)
	case c.Opened == nil:
		pl.refuse(LUKSClosed, p+".content", "the LUKS container %s is closed, so what it holds cannot be compared with the layout; open it (cryptsetup open %s %s) and plan again", node, node, n.Name)
	default:
		pl.keep(LUKSSame)
		pl.content(p+".content", n.Content, c.Opened.Content, c.Opened.Mapper)
	}
}

// member checks that an LVM physical volume or md member belongs to the group or array
// the layout names.
func (pl *planner) member(p string, n config.Node, c *probe.Content, node string) {
	if c.Unreadable != "" && (c.Type == "LVM2_member" || c.Type == "linux_raid_member") {
		pl.refuse(ContentUnreadable, p, "cannot read %s: %s", node, c.Unreadable)
		return
	}
	switch n := n.(type) {
	case *config.LVMPV:
		if c.VG != n.VG {
			pl.refuse(MemberElsewhere, p+".vg", "the LVM physical volume %s belongs to %s, the layout puts it in %q; moving it would take its extents from that group", node, or(quoted(c.VG), "no volume group"), n.VG)
			return
		}
	case *config.MDRaid:
		if c.Array != n.Name {
			pl.refuse(MemberElsewhere, p+".name", "%s is a member of the md array %q, the layout puts it in %q; re-adding it would resync it with other data", node, c.Array, n.Name)
			return
		}
	}
	pl.keep(ContentSame)
}

func quoted(s string) string {
	if s == "" {
		return ""
	}
	return "volume group " + strconv.Quote(s)
}

// vg compares a volume group's logical volumes.
func (pl *planner) vg(p string, vg *config.LVMVG, s *probe.State) {
	av := s.VGs[vg.Name]
	switch {
	case av == nil && len(pl.newMembers[p]) > 0:
		av = pl.createVG(p, vg.Name)
	case av == nil:
		pl.refuse(VGMissing, p, "no volume group %q was found on the probed disks (its physical volumes are missing, in a closed LUKS container, or not in the layout); apply creates a volume group only on partitions it creates: use the format script", vg.Name)
		return
	case av.Unreadable != "":
		pl.refuse(VGMissing, p, "cannot read the volume group %q: %s", vg.Name, av.Unreadable)
		return
	default:
		pl.keep(VGMissing.notRefused())
	}
	extent := max(av.ExtentSize, 1)
	room := &room{free: av.Free, pvs: slices.Clone(av.PVFree)}
	pl.extendVG(p, av, room)
	made := map[string]bool{} // the LVs created by this plan so far
	var creates []func()
	desired := map[string]bool{}
	for _, key := range lvOrder(vg) {
		lv := vg.LVs[key]
		desired[lv.Name] = true
		lp := attr(p+".lvs", key)
		al := av.LVs[lv.Name]
		if al == nil {
			pl.missingLV(lp, vg.Name, lv, av, room, made, &creates)
			continue
		}
		if !al.Active {
			pl.refuse(LVInactive, lp, "the LV %s/%s is not active, so what it holds cannot be read; activate it (vgchange -ay %s) and plan again", vg.Name, lv.Name, vg.Name)
			continue
		}
		want, ok := lvBytes(lv.Size, extent)
		switch {
		case !ok || lv.LVMType != "": // a percentage, or a thin or RAID size: not compared
			pl.keep(LVSame)
		case want < al.Size-extent:
			pl.refuse(LVShrink, lp+".size", "the LV %s/%s has %d MiB, the layout says %s; shrinking is never done (it would cut off data)", vg.Name, lv.Name, al.Size>>20, lv.Size)
			continue
		case want <= al.Size+extent:
			pl.keep(LVSame)
		default:
			grow := roundUp(want, extent) - al.Size
			script, err := growScript(al.Content, al.DMPath)
			if err == nil && grow > room.free {
				err = fmt.Errorf("it needs %d MiB more, the volume group %s has %d MiB free", grow>>20, vg.Name, room.free>>20)
			}
			if err != nil {
				pl.refuse(LVGrowBlocked, lp+".size", "the LV %s/%s cannot grow to %s: %v", vg.Name, lv.Name, lv.Size, err)
				continue
			}
			room.take(grow)
			what := "its content"
			if al.Content != nil {
				what = "its " + al.Content.Type
			}
			pl.act(LVGrow, lp+".size", fmt.Sprintf("grow the LV %s/%s from %d MiB to %d MiB, then %s", vg.Name, lv.Name, al.Size>>20, (al.Size+grow)>>20, what),
				words("lvextend", "--yes", "-L", strconv.FormatInt(al.Size+grow, 10)+"b", vg.Name+"/"+lv.Name)+" >/dev/null\n"+script)
		}
		pl.content(lp+".content", lv.Content, al.Content, al.DMPath)
	}
	for _, name := range slices.Sorted(maps.Keys(av.LVs)) {
		if !desired[name] {
			pl.refuse(LVExtra, p+".lvs", "the LV %s/%s is in the volume group but not in the layout; LVs are never removed implicitly: add it to the layout or remove it yourself", vg.Name, name)
		}
	}
	for _, c := range creates {
		c()
	}
}

// newMember is a PV or md member on a partition this plan creates: its node at apply
// time, its size, and the option path of the partition's content.
type newMember struct {
	node  string // a shell word
	bytes int64
	path  string
}

// room is a volume group's free space as the plan uses it up: in all, and on each PV,
// largest first (a RAID LV's images go on different PVs).
type room struct {
	free int64
	pvs  []int64
}

// take uses n bytes, from the PVs in order (as LVM's normal allocation does).
func (r *room) take(n int64) {
	r.free -= n
	for i := range r.pvs {
		t := min(n, r.pvs[i])
		r.pvs[i] -= t
		n -= t
	}
	r.sort()
}

// takeImages uses each bytes on each of k different PVs; false, taking nothing, when
// fewer than k PVs have that much free.
func (r *room) takeImages(k int, each int64) bool {
	if k > len(r.pvs) || r.pvs[k-1] < each {
		return false
	}
	for i := range k {
		r.pvs[i] -= each
	}
	r.free -= int64(k) * each
	r.sort()
	return true
}

// add counts a new PV's extents.
func (r *room) add(bytes int64) {
	r.free += bytes
	r.pvs = append(r.pvs, bytes)
	r.sort()
}

func (r *room) sort() { slices.SortFunc(r.pvs, func(a, b int64) int { return cmp.Compare(b, a) }) }

// pvExtents is the room a new PV of the given size gives a group with extents of
// extent bytes.
func pvExtents(bytes, extent int64) int64 { return max(bytes-pvDataStart, 0) / extent * extent }

// pvExtentSize and pvDataStart are vgcreate's and pvcreate's defaults: 4 MiB extents, the
// first of them 1 MiB into the PV.
const pvExtentSize, pvDataStart = 4 << 20, 1 << 20

// addMember records partition number of ad, which the plan creates, as a member of the
// group or array at path p.
func (pl *planner) addMember(p string, ad *probe.Disk, number int, bytes int64, contentPath string) {
	if pl.newMembers == nil {
		pl.newMembers = map[string][]newMember{}
	}
	node := "\"$(disko_apply_node " + q(ad.Path) + " " + strconv.Itoa(number) + ")\""
	pl.newMembers[p] = append(pl.newMembers[p], newMember{node: node, bytes: bytes, path: contentPath})
}

// newPV makes a partition that the plan creates (partition number of ad, taking the
// free space before minus after; its content at contentPath) a PV of a volume group:
// one the plan creates too, or an existing one that it extends (vg then plans both).
func (pl *planner) newPV(pv *config.LVMPV, ad *probe.Disk, number int, after, before []block, contentPath string) (string, string) {
	pl.addMember(attr(config.RootPath+".lvm_vg", pv.VG), ad, number, takenBytes(ad, after, before), contentPath)
	return "pvcreate --quiet --yes \"$node\" >/dev/null\n", "make it a physical volume of the volume group " + pv.VG
}

// newMDMember makes a partition that the plan creates a member of an md array: one the
// plan creates too (its superblock is written by mdadm --create), or an existing one
// that it adds the partition to (array then plans both).
func (pl *planner) newMDMember(md *config.MDRaid, ad *probe.Disk, number int, after, before []block, contentPath string) (string, string) {
	pl.addMember(attr(config.RootPath+".mdadm", md.Name), ad, number, takenBytes(ad, after, before), contentPath)
	return "", "make it a member of the md array " + md.Name
}

// takenBytes is the size of the free space of ad before a partition was allocated minus
// after: the partition's size.
func takenBytes(ad *probe.Disk, after, before []block) int64 {
	var sectors int64
	for _, b := range before {
		sectors += b.end - b.start + 1
	}
	for _, b := range after {
		sectors -= b.end - b.start + 1
	}
	return sectors * ad.SectorSize
}

// createVG plans the volume group of the PVs the plan creates, and returns it as the
// probe would read it once created (empty, its extents free), so that its LVs are
// planned as missing.
func (pl *planner) createVG(p, name string) *probe.VG {
	av := &probe.VG{Name: name, ExtentSize: pvExtentSize, LVs: map[string]*probe.LV{}}
	var nodes []string
	for _, pv := range pl.newMembers[p] {
		nodes = append(nodes, pv.node)
		av.PVFree = append(av.PVFree, pvExtents(pv.bytes, pvExtentSize))
		av.Size += pvExtents(pv.bytes, pvExtentSize)
	}
	av.Free = av.Size
	pl.act(VGCreate, p, fmt.Sprintf("create the volume group %s (%d MiB) on %d new physical volumes", name, av.Size>>20, len(nodes)),
		"vgcreate --quiet "+q(name)+" "+strings.Join(nodes, " ")+" >/dev/null\n")
	return av
}

// extendVG adds the PVs on partitions that the plan creates to the existing group av
// (vgextend), each an action at the partition's content, and counts their room.
func (pl *planner) extendVG(p string, av *probe.VG, r *room) {
	if pl.s.VGs[av.Name] == nil {
		return // created by this plan: createVG has counted its PVs
	}
	for _, pv := range pl.newMembers[p] {
		bytes := pvExtents(pv.bytes, max(av.ExtentSize, 1))
		pl.act(VGExtend, pv.path, fmt.Sprintf("add the new physical volume (%d MiB) to the volume group %s", bytes>>20, av.Name),
			"vgextend --quiet "+q(av.Name)+" "+pv.node+" >/dev/null\n")
		r.add(bytes)
	}
}

// missingLV plans an LV that the group does not have: created, as the format script
// creates it, when the group has room for it (made are the LVs created before it).
func (pl *planner) missingLV(lp, vgName string, lv *config.LV, av *probe.VG, r *room, made map[string]bool, creates *[]func()) {
	extent := max(av.ExtentSize, 1)
	switch lv.LVMType {
	case "", "thin-pool":
		need, ok := lvNeed(lv.Size, extent, av.Size, r.free)
		if !ok {
			pl.refuse(LVNoRoom, lp+".size", "cannot read the size %q", lv.Size)
			return
		}
		if _, abs := lvBytes(lv.Size, extent); abs && lv.LVMType == "thin-pool" {
			// Its metadata LV and the group's spare of it, at lvm's defaults (64 KiB
			// chunks, 64 bytes of metadata each, 2 MiB at least).
			need += 2 * roundUp(max(need>>10, 2<<20), extent)
		}
		if need <= 0 || need > r.free {
			pl.refuse(LVNoRoom, lp+".size", "the LV %s/%s (%s) does not fit in the %d MiB free in the volume group", vgName, lv.Name, lv.Size, r.free>>20)
			return
		}
		r.take(need)
	case "thinlv":
		if pool := av.LVs[lv.Pool]; !made[lv.Pool] && (pool == nil || pool.Segtype != "thin-pool") {
			pl.refuse(LVNoRoom, lp+".pool", "the thin LV %s/%s needs the thin pool %q, which the volume group does not have and the plan does not create before it (give the pool a lower priority)", vgName, lv.Name, lv.Pool)
			return
		}
	case "raid1":
		size, ok := lvBytes(lv.Size, extent)
		if !ok {
			pl.refuse(LVNoRoom, lp+".size", "apply creates a raid1 LV of an absolute size only, not %q", lv.Size)
			return
		}
		images := mirrors(splitArgs(lv.ExtraArgs)) + 1
		each := roundUp(size, extent) + extent // the image and its metadata LV
		if !r.takeImages(images, each) {
			pl.refuse(LVNoRoom, lp+".size", "the raid1 LV %s/%s (%s) needs %d MiB free on each of %d physical volumes; the volume group's have %s free", vgName, lv.Name, lv.Size, each>>20, images, mibList(r.pvs))
			return
		}
	default:
		pl.refuse(LVNoRoom, lp+".lvm_type", "apply creates linear, thin-pool, thinlv and raid1 LVs; %s/%s is a %s, whose room depends on stripe defaults that vary between LVM versions: use the format script", vgName, lv.Name, lv.LVMType)
		return
	}
	made[lv.Name] = true
	fill, what, err := formatScript(lv.Content, `"$node"`)
	if err != nil {
		pl.refuse(ContentNoCreate, lp+".content", "%v", err)
		return
	}
	desc := fmt.Sprintf("create the LV %s/%s (%s) in its free space", vgName, lv.Name, lv.Size)
	if lv.LVMType != "" {
		desc = fmt.Sprintf("create the %s LV %s/%s (%s)", lv.LVMType, vgName, lv.Name, lv.Size)
	}
	if what != "" {
		desc += " and " + what
	}
	args := codegen.LVCreateArgs(vgName, lv)
	if lv.LVMType == "" || lv.LVMType == "raid1" {
		// Old signatures in the free extents would make the new LV look formatted (thin
		// LVs read as zeros until written).
		args = slices.Insert(args, 2, "--wipesignatures", "y")
	}
	script := words(args...) + " >/dev/null\n"
	if lv.LVMType != "thin-pool" { // a thin pool has no device node of its own to use
		script += waitNode("/dev/"+vgName+"/"+lv.Name) + fill
	}
	*creates = append(*creates, func() { pl.act(LVMissing, lp, desc, script) })
}

// lvNeed is the room an LV of size takes in a group of vgSize bytes with free bytes
// free: its size, or its percentage of the group or of its free space, in whole
// extents; false for a size it cannot read.
func lvNeed(size string, extent, vgSize, free int64) (int64, bool) {
	if need, ok := lvBytes(size, extent); ok {
		return roundUp(need, extent), true
	}
	m := lvPercentRe.FindStringSubmatch(size)
	if m == nil {
		return 0, false
	}
	pct, _ := strconv.ParseFloat(m[1], 64)
	of := free
	if m[2] == "VG" {
		of = vgSize
	}
	return roundUp(int64(pct/100*float64(of)), extent), true
}

// mirrors is the -m (--mirrors) count of lvcreate's extra arguments: 1 when not given.
func mirrors(args []string) int {
	n := 1
	for i, a := range args {
		v, ok := "", false
		switch {
		case (a == "-m" || a == "--mirrors") && i+1 < len(args):
			v, ok = args[i+1], true
		case strings.HasPrefix(a, "--mirrors="):
			v, ok = strings.TrimPrefix(a, "--mirrors="), true
		case strings.HasPrefix(a, "-m") && len(a) > 2:
			v, ok = a[2:], true
		}
		if m, err := strconv.Atoi(v); ok && err == nil && m > 0 {
			n = m
		}
	}
	return n
}

// mibList is sizes in MiB, as "a, b, c MiB" ("nothing known" when there are none).
func mibList(sizes []int64) string {
	if len(sizes) == 0 {
		return "nothing known"
	}
	var out []string
	for _, s := range sizes {
		out = append(out, strconv.FormatInt(s>>20, 10))
	}
	return strings.Join(out, ", ") + " MiB"
}

// array compares an md array with the array its members belong to.
func (pl *planner) array(p string, md *config.MDADM, s *probe.State) {
	a := s.Arrays[md.Name]
	switch {
	case a == nil && len(pl.newMembers[p]) > 0:
		pl.createArray(p, md)
	case a == nil:
		pl.refuse(MDMissing, p, "no member of an md array %q was found on the probed disks; apply does not create arrays: use the format script", md.Name)
	case a.Unreadable != "":
		pl.refuse(MDMissing, p, "cannot read the md array %q: %s", md.Name, a.Unreadable)
	case !a.Active:
		pl.refuse(MDInactive, p, "the md array %q is not assembled, so what it holds cannot be read; assemble it (mdadm --assemble --scan) and plan again", md.Name)
	case a.Level != "raid"+strconv.Itoa(md.Level):
		pl.refuse(MDLevel, p+".level", "the md array %q is %s, the layout says level %d; reshaping is not done by apply", md.Name, a.Level, md.Level)
	default:
		pl.keep(MDSame)
		if len(pl.newMembers[p]) > 0 {
			pl.addMembers(p, a)
		}
		g, wantGPT := md.Content.(*config.GPT)
		hasTable := a.Content != nil && strings.HasPrefix(a.Content.Type, probe.PartitionTable)
		switch ad := a.Partitioned; {
		case wantGPT && ad != nil && ad.Table != nil && ad.Table.Label == "gpt":
			pl.keep(MDTable)
			pl.gpt(p+".content", g, ad)
		case wantGPT:
			pl.refuse(TableDiffers, p+".content.type", "the layout wants a GPT on the md array, but %s holds %s; apply does not write a partition table on an existing array (it would destroy what the array holds)", a.Device, arrayHolds(a))
		case hasTable && md.Content != nil:
			pl.refuse(MDLevel, p+".content", "the layout puts %s on the md array, but %s holds a %s", md.Content.Kind(), a.Device, a.Content.Type)
		default:
			pl.content(p+".content", md.Content, a.Content, a.Device)
		}
	}
}

// arrayHolds says what an md array holds, for messages: as holds says it of a disk, or
// that its partition table could not be read.
func arrayHolds(a *probe.Array) string {
	switch {
	case a.Partitioned != nil:
		return holds(a.Partitioned)
	case a.Content != nil && strings.HasPrefix(a.Content.Type, probe.PartitionTable):
		return "a " + strings.TrimPrefix(a.Content.Type, probe.PartitionTable) + " partition table whose partitions could not be read"
	default:
		return holds(&probe.Disk{Content: a.Content})
	}
}

// addMembers adds the partitions the plan creates to the existing array a, when that
// only copies its data onto them: a raid1 that is not degraded, each new partition
// holding a member's data and superblock.
func (pl *planner) addMembers(p string, a *probe.Array) {
	members := pl.newMembers[p]
	var err error
	switch {
	case a.Level != "raid1":
		err = fmt.Errorf("it is %s: more members would reshape it, rewriting all its data", a.Level)
	case a.Degraded > 0:
		err = fmt.Errorf("it is degraded (%d of %d members missing): a new member would rebuild it first; mdadm --add it yourself", a.Degraded, a.Devices)
	case a.MemberBytes <= 0 || a.Devices <= 0:
		err = fmt.Errorf("the probe could not read its component size")
	}
	var nodes []string
	for _, m := range members {
		if err == nil && m.bytes < a.MemberBytes {
			err = fmt.Errorf("a new partition has %d MiB, a member needs %d MiB (component size plus data offset)", m.bytes>>20, a.MemberBytes>>20)
		}
		nodes = append(nodes, m.node)
	}
	if err != nil {
		pl.refuse(MDAddBlocked, p, "cannot add %d new partitions to the md array %s: %v", len(members), a.Name, err)
		return
	}
	devices := a.Devices + len(members)
	pl.act(MDAdd, p, fmt.Sprintf("add %d new partitions to the md array %s (raid1, %d -> %d members; they resync from the others)", len(members), a.Name, a.Devices, devices),
		words("mdadm", "--add", "--quiet", a.Device)+" "+strings.Join(nodes, " ")+" >/dev/null\n"+
			words("mdadm", "--grow", "--quiet", a.Device, "--raid-devices="+strconv.Itoa(devices))+" >/dev/null\n")
}

// createArray plans an md array whose members are all partitions the plan creates, and
// its content, as the format script makes them.
func (pl *planner) createArray(p string, md *config.MDADM) {
	fill, what, err := formatScript(md.Content, `"$node"`)
	if err != nil {
		pl.refuse(ContentNoCreate, p+".content", "%v", err)
		return
	}
	members := pl.newMembers[p]
	dev := "/dev/md/" + md.Name
	args := []string{"mdadm", "--create", "--run", "--quiet", dev, "--level=" + strconv.Itoa(md.Level),
		"--raid-devices=" + strconv.Itoa(len(members)), "--homehost=any"}
	if md.Metadata != "" && md.Metadata != "default" {
		args = append(args, "--metadata="+md.Metadata)
	}
	args = append(args, splitArgs(md.ExtraArgs)...)
	nodes := make([]string, len(members))
	for i, m := range members {
		nodes[i] = m.node
	}
	desc := fmt.Sprintf("create the md array %s (RAID%d) on %d new partitions", md.Name, md.Level, len(members))
	if what != "" {
		desc += " and " + what
	}
	pl.act(MDCreate, p, desc, words(args...)+" "+strings.Join(nodes, " ")+" >/dev/null\n"+
		waitNode(dev)+fill)
}

// waitNode sets node to the device dev that a command just made, once udev has made it
// (for 10 s at most).
func waitNode(dev string) string {
	return "node=" + q(dev) + "\n" +
		"for i in $(seq 100); do [ -b \"$node\" ] && break; sleep 0.1; done\n" +
		"[ -b \"$node\" ] || { echo \"disko apply: $node did not appear\" >&2; exit 1; }\n"
}

// lvOrder is the creation order of a group's LVs: priority, then name (as the format
// script creates them).
func lvOrder(vg *config.LVMVG) []string {
	keys := slices.Sorted(maps.Keys(vg.LVs))
	slices.SortStableFunc(keys, func(a, b string) int { return derefInt(vg.LVs[a].Priority) - derefInt(vg.LVs[b].Priority) })
	return keys
}

var (
	lvSizeRe    = lazyregexp.New(`^([0-9]+)([bBsSkKmMgGtTpPeE]?)$`)
	lvPercentRe = lazyregexp.New(`^([0-9]+(?:\.[0-9]+)?)%(FREE|VG)?$`)
)

// lvBytes is an lvcreate -L size in bytes (no unit: MiB, as lvcreate reads it); false for
// sizes it cannot read (percentages).
func lvBytes(s string, extent int64) (int64, bool) {
	m := lvSizeRe.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	shift := map[string]uint{"": 20, "b": 0, "s": 9, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}[strings.ToLower(m[2])]
	return v << shift, true
}

func roundUp(v, step int64) int64 { return (v + step - 1) / step * step }

// splitArgs splits each argument at whitespace, as the format script does for lvcreate's
// extraArgs.
func splitArgs(args []string) []string {
	var ws []string
	for _, a := range args {
		ws = append(ws, strings.Fields(a)...)
	}
	return ws
}
