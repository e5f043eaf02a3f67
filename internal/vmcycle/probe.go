package vmcycle

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/mountopt"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// probeScript prints the guest's storage state, one section per tool, for parseProbe.
// Every program run costs ~50 ms under TCG, so each tool runs once for all devices.
// Arguments: dev:PATH (a device path to resolve), file:PATH (a swap file to describe),
// lvs (ask LVM too).
const probeScript = `#!/bin/bash
set -u
shopt -s nullglob
devs=() files=() lvs=
for a in "$@"; do
	case $a in
	dev:*) devs+=("${a#dev:}") ;;
	file:*) files+=("${a#file:}") ;;
	lvs) lvs=1 ;;
	esac
done
echo "@@@ findmnt"
findmnt --json --list -o TARGET,SOURCE,FSTYPE,OPTIONS,FSROOT,MAJ:MIN
while IFS= read -r s; do
	printf -v s '%b' "$s"
	s=${s%%\[*}
	case $s in /dev/*) devs+=("$s") ;; esac
done < <(findmnt --noheadings --raw -o SOURCE)
echo "@@@ stat"
((${#devs[@]} == 0)) || stat -L -c '%n	%Hr:%Lr' -- "${devs[@]}" 2>/dev/null
echo "@@@ blk"
nodes=()
for b in /sys/class/block/*; do
	read -r mm <"$b/dev"
	printf '/dev/%s\t%s\n' "${b##*/}" "$mm"
	nodes+=("/dev/${b##*/}")
done
echo "@@@ blkid"
blkid -c /dev/null -o export -- "${nodes[@]}" 2>/dev/null
echo "@@@ swaps"
{
	read -r _
	while read -r name type _ _ prio; do printf '%s\t%s\t%s\n' "$name" "$type" "$prio"; done
} </proc/swaps
echo "@@@ dm"
dmsetup info -c --noheadings --separator '	' -o name,uuid,major,minor 2>/dev/null | grep -v '^No devices found'
echo "@@@ dmtable"
dmsetup table 2>/dev/null | grep -v '^No devices found'
echo "@@@ lvs"
if [ -n "$lvs" ]; then
	lvs --reportformat json --units b --nosuffix -o vg_name,lv_name,lv_size,segtype,pool_lv,lv_active,vg_extent_size,vg_free 2>/dev/null
fi
echo "@@@ md"
for m in /dev/md/*; do
	echo "MD_LINK=$m"
	mdadm --detail --export "$m"
done
echo "@@@ mdstat"
if [ -r /proc/mdstat ]; then
	while IFS= read -r l; do
		case $l in md*) echo "$l" ;; esac
	done </proc/mdstat
fi
echo "@@@ files"
((${#files[@]} == 0)) || stat -c '%n	%s' -- "${files[@]}" 2>/dev/null
echo "@@@ filetypes"
((${#files[@]} == 0)) || blkid -c /dev/null -o export -- "${files[@]}" 2>/dev/null
exit 0
`

// probePath is where the probe script lies in the guest (an ExtraFile).
const probePath = "/opt/vmtest/probe.sh"

// state is what the probe saw.
type state struct {
	mounts []fmEntry
	stat   map[string]string // asked device path or mount source -> major:minor
	// major:minor -> kernel node and what blkid finds on it (blkid -p, the low-level
	// probe, stops at the first of several devices that holds nothing; its normal mode
	// with no cache reads each device as well)
	blk    map[string]blkEntry
	nodes  map[string]string // kernel node (/dev/vda1) -> major:minor
	swaps  []swapEntry
	dm     []dmEntry
	lvs    []lvEntry
	md     map[string]map[string]string // /dev/md/NAME -> mdadm --detail --export
	mdstat []string                     // the array lines of /proc/mdstat
	files  map[string]*fileEntry        // asked file -> its size and type (absent: missing)
}

type fmEntry struct {
	Target  string `json:"target"`
	Source  string `json:"source"`
	FSType  string `json:"fstype"`
	Options string `json:"options"`
	FSRoot  string `json:"fsroot"`
	MajMin  string `json:"maj:min"`
}

type swapEntry struct {
	name, majmin string
	priority     int
}

type blkEntry struct {
	node  string
	props map[string]string // blkid: TYPE, UUID, PTTYPE...
}

// dmEntry is a device-mapper device and its table (dmsetup table).
type dmEntry struct {
	name, uuid, majmin, table string
}

type lvEntry struct {
	VG         string `json:"vg_name"`
	Name       string `json:"lv_name"`
	Size       string `json:"lv_size"`
	Segtype    string `json:"segtype"`
	Pool       string `json:"pool_lv"`
	Active     string `json:"lv_active"`
	ExtentSize string `json:"vg_extent_size"`
	VGFree     string `json:"vg_free"`
}

type devEntry struct {
	node, majmin string
}

type fileEntry struct {
	size  int64
	ftype string
}

// probeArgs are the probe's arguments for everything e names.
func probeArgs(e *expect) []string {
	var args []string
	add := func(a string) {
		if !slices.Contains(args, a) {
			args = append(args, a)
		}
	}
	for _, m := range e.mounts {
		if m.persistent() {
			add("dev:" + m.device)
		}
	}
	for _, s := range e.swaps {
		add("dev:" + s.device)
	}
	for _, l := range e.luks {
		add("dev:" + l.device)
	}
	for _, md := range e.mds {
		add("dev:" + md.device)
		for _, m := range md.members {
			add("dev:" + m)
		}
	}
	for _, f := range e.swapfiles {
		add("file:" + f.path)
	}
	if len(e.vgs) > 0 {
		add("lvs")
	}
	return args
}

// probe runs the probe script in the guest.
func probe(ctx context.Context, vm *testvm.VM, args []string) (*state, error) {
	cmd := probePath
	for _, a := range args {
		cmd += " " + shell.Quote(a)
	}
	out, _, err := vm.Run(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return parseProbe(string(out))
}

func parseProbe(out string) (*state, error) {
	s := &state{stat: map[string]string{}, blk: map[string]blkEntry{}, nodes: map[string]string{},
		md: map[string]map[string]string{}, files: map[string]*fileEntry{}}
	sections := map[string]string{}
	var cur string
	var body strings.Builder
	flush := func() {
		if cur != "" {
			sections[cur] = body.String()
		}
		body.Reset()
	}
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(line, "@@@ "); ok {
			flush()
			cur = name
			continue
		}
		body.WriteString(line + "\n")
	}
	flush()
	var fm struct {
		Filesystems []fmEntry `json:"filesystems"`
	}
	if err := json.Unmarshal([]byte(sections["findmnt"]), &fm); err != nil {
		return nil, fmt.Errorf("findmnt --json: %w\n%s", err, sections["findmnt"])
	}
	s.mounts = fm.Filesystems
	for _, f := range lines(sections["stat"]) {
		s.stat[f[0]] = field(f, 1)
	}
	for _, f := range lines(sections["blk"]) {
		s.nodes[f[0]] = field(f, 1)
	}
	byNode := exportBlocks(sections["blkid"])
	for node, mm := range s.nodes {
		s.blk[mm] = blkEntry{node: node, props: byNode[node]}
	}
	for _, f := range lines(sections["swaps"]) {
		prio, _ := strconv.Atoi(field(f, 2))
		mm, ok := s.stat[f[0]]
		if !ok {
			// A swap turned on in another mount namespace is listed under the name
			// of its node there, which may not exist here: the kernel name is the last part.
			mm = s.nodes["/dev/"+path.Base(f[0])]
		}
		s.swaps = append(s.swaps, swapEntry{name: f[0], majmin: mm, priority: prio})
	}
	tables := map[string]string{}
	for _, l := range strings.Split(sections["dmtable"], "\n") {
		if name, table, ok := strings.Cut(l, ": "); ok {
			tables[name] += table + "\n"
		}
	}
	for _, f := range lines(sections["dm"]) {
		name := f[0]
		s.dm = append(s.dm, dmEntry{name: name, uuid: field(f, 1), majmin: field(f, 2) + ":" + field(f, 3), table: tables[name]})
	}
	if text := strings.TrimSpace(sections["lvs"]); text != "" {
		var lvs struct {
			Report []struct {
				LV []lvEntry `json:"lv"`
			} `json:"report"`
		}
		if err := json.Unmarshal([]byte(text), &lvs); err != nil {
			return nil, fmt.Errorf("lvs --reportformat json: %w\n%s", err, text)
		}
		for _, r := range lvs.Report {
			s.lvs = append(s.lvs, r.LV...)
		}
	}
	var md map[string]string
	for _, line := range strings.Split(sections["md"], "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if k == "MD_LINK" {
			md = map[string]string{}
			s.md[v] = md
		} else if md != nil {
			md[k] = v
		}
	}
	for _, l := range strings.Split(sections["mdstat"], "\n") {
		if strings.TrimSpace(l) != "" {
			s.mdstat = append(s.mdstat, l)
		}
	}
	types := exportBlocks(sections["filetypes"])
	for _, f := range lines(sections["files"]) {
		size, _ := strconv.ParseInt(field(f, 1), 10, 64)
		s.files[f[0]] = &fileEntry{size: size, ftype: types[f[0]]["TYPE"]}
	}
	return s, nil
}

// exportBlocks reads `blkid -o export` output for several devices: blocks of KEY=VALUE
// lines, each starting with DEVNAME.
func exportBlocks(text string) map[string]map[string]string {
	out := map[string]map[string]string{}
	var cur map[string]string
	for _, l := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		if k == "DEVNAME" {
			cur = map[string]string{}
			out[v] = cur
		} else if cur != nil {
			cur[k] = v
		}
	}
	return out
}

// lines splits text into lines of tab-separated fields, skipping empty lines.
func lines(text string) [][]string {
	var out [][]string
	for _, l := range strings.Split(text, "\n") {
		if l != "" {
			out = append(out, strings.Split(l, "\t"))
		}
	}
	return out
}

func field(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

// layoutMounts are the mounts that belong to the layout: below the root mount point,
// or from a block device (the guest's own mounts are all virtual).
func (s *state) layoutMounts() []fmEntry {
	var out []fmEntry
	for _, m := range s.mounts {
		if m.Target == Root || strings.HasPrefix(m.Target, Root+"/") || strings.HasPrefix(m.Source, "/dev/") {
			out = append(out, m)
		}
	}
	return out
}

// dev is the kernel node an asked device path resolves to; ok is false when it does not
// exist.
func (s *state) dev(p string) (devEntry, bool) {
	mm, ok := s.stat[p]
	return devEntry{node: s.blk[mm].node, majmin: mm}, ok
}

// check collects the differences between the guest and what is expected.
type check struct{ problems []string }

func (c *check) errorf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *check) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return fmt.Errorf("%d problem(s):\n  %s", len(c.problems), strings.Join(c.problems, "\n  "))
}

// checkMounted: every file system of the layout is mounted once, from its device, with
// its type and options; swap is on; devices below are active.
func checkMounted(s *state, e *expect) error {
	c := &check{}
	byTarget := map[string][]fmEntry{}
	for _, m := range s.layoutMounts() {
		byTarget[m.Target] = append(byTarget[m.Target], m)
	}
	// btrfs applies its own options (compress=, ssd, ...) to the whole filesystem, as the
	// first mount of it sets them; later mounts of other subvolumes only add per-mount
	// flags. The scripts mount parents first: the first mount has the shortest target.
	firstBtrfs := map[string]string{}
	for _, m := range e.mounts {
		if f, ok := firstBtrfs[m.device]; m.fsType == "btrfs" && (!ok || m.target < f) {
			firstBtrfs[m.device] = m.target
		}
	}
	want := map[string]bool{}
	for _, m := range e.mounts {
		want[m.target] = true
		got := byTarget[m.target]
		if len(got) != 1 {
			c.errorf("%s: mounted %d times, want once (%+v)", m.target, len(got), got)
			if len(got) == 0 {
				continue
			}
		}
		g := got[len(got)-1]
		if g.FSType != m.fsType {
			c.errorf("%s: fstype %q, want %q", m.target, g.FSType, m.fsType)
		}
		if !m.persistent() {
			if g.Source != m.device {
				c.errorf("%s: source %q, want %q", m.target, g.Source, m.device)
			}
		} else if d, ok := s.dev(m.device); !ok {
			c.errorf("%s: its device %s does not exist", m.target, m.device)
		} else if m.fsType == "btrfs" {
			// btrfs shows an anonymous device number; the source is one of the
			// filesystem's devices, and fsroot the subvolume.
			src := strings.TrimSuffix(g.Source, "["+g.FSRoot+"]")
			want, have := s.blk[d.majmin].props["UUID"], s.blk[s.stat[src]].props["UUID"]
			if want == "" || want != have {
				c.errorf("%s: source %s (UUID %q) is not the btrfs of %s (UUID %q)", m.target, g.Source, have, m.device, want)
			}
			if g.FSRoot != m.subvol() {
				c.errorf("%s: subvolume %q, want %q", m.target, g.FSRoot, m.subvol())
			}
		} else if g.MajMin != d.majmin {
			c.errorf("%s: mounted from %s (%s), want %s (%s, %s)", m.target, g.Source, g.MajMin, m.device, d.node, d.majmin)
		}
		opts := m.options
		if m.fsType == "btrfs" && firstBtrfs[m.device] != m.target {
			opts = perMount(opts)
		}
		if missing := missingOptions(m.fsType, opts, strings.Split(g.Options, ",")); len(missing) > 0 {
			c.errorf("%s: options %q do not show in %q", m.target, missing, g.Options)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(byTarget)) {
		if !want[t] {
			c.errorf("%s is mounted (%+v), but the layout does not mount it", t, byTarget[t])
		}
	}
	checkSwaps(c, s, e, true)
	for _, f := range e.swapfiles {
		switch got := s.files[f.path]; {
		case got == nil:
			c.errorf("swap file %s is missing", f.path)
		case got.size != f.size || got.ftype != "swap":
			c.errorf("swap file %s: %d bytes of %q, want %d bytes of swap", f.path, got.size, got.ftype, f.size)
		}
	}
	checkActive(c, s, e)
	return c.err()
}

// checkFormatted: the devices exist with the filesystems of the layout and are active,
// and nothing is mounted (format never mounts).
func checkFormatted(s *state, e *expect) error {
	c := &check{}
	if got := s.layoutMounts(); len(got) > 0 {
		c.errorf("after format alone, mounted: %+v", got)
	}
	for _, m := range e.mounts {
		if !m.persistent() {
			continue
		}
		d, ok := s.dev(m.device)
		if !ok {
			c.errorf("%s: device %s does not exist", m.mountpoint, m.device)
			continue
		}
		if got := s.blk[d.majmin].props["TYPE"]; got != m.fsType {
			c.errorf("%s: %s (%s) holds %q, want %q", m.mountpoint, m.device, d.node, got, m.fsType)
		}
	}
	for _, sw := range e.swaps {
		if d, ok := s.dev(sw.device); !ok {
			c.errorf("swap device %s does not exist", sw.device)
		} else if got := s.blk[d.majmin].props["TYPE"]; got != "swap" {
			c.errorf("swap device %s (%s) holds %q, want swap", sw.device, d.node, got)
		}
	}
	checkSwaps(c, s, e, false)
	checkActive(c, s, e)
	return c.err()
}

// checkSwaps: the layout's swap devices are on (with their priority) or all swap is off.
func checkSwaps(c *check, s *state, e *expect, on bool) {
	if !on {
		if len(s.swaps) > 0 {
			c.errorf("swap is on: %+v", s.swaps)
		}
		return
	}
	if len(s.swaps) != len(e.swaps) {
		c.errorf("%d swap areas are on (%+v), want %d", len(s.swaps), s.swaps, len(e.swaps))
	}
	for _, sw := range e.swaps {
		d, ok := s.dev(sw.device)
		i := slices.IndexFunc(s.swaps, func(a swapEntry) bool { return ok && a.majmin == d.majmin })
		switch {
		case i < 0:
			c.errorf("swap %s (%s) is not on: %+v", sw.device, d.node, s.swaps)
		case sw.priority != nil && s.swaps[i].priority != *sw.priority:
			c.errorf("swap %s: priority %d, want %d", sw.device, s.swaps[i].priority, *sw.priority)
		}
	}
}

// checkActive: LUKS mappings are open on their devices (as device-mapper shows them:
// one dmsetup call instead of a cryptsetup status per container), LVs exist with their types and
// sizes and are active, md arrays run with their level, metadata and members.
func checkActive(c *check, s *state, e *expect) {
	for _, l := range e.luks {
		i := slices.IndexFunc(s.dm, func(d dmEntry) bool { return d.name == l.name })
		if i < 0 {
			c.errorf("LUKS %s is not open (device-mapper devices: %+v)", l.name, s.dm)
			continue
		}
		dm := s.dm[i]
		if !strings.HasPrefix(dm.uuid, "CRYPT-LUKS2-") {
			c.errorf("LUKS %s: device-mapper UUID %q, want a LUKS2 mapping (CRYPT-LUKS2-...)", l.name, dm.uuid)
		}
		// crypt table: START LEN crypt CIPHER KEY IV_OFFSET DEVICE OFFSET [N OPTIONS...]
		f := strings.Fields(dm.table)
		d, _ := s.dev(l.device)
		if len(f) < 8 || f[2] != "crypt" || f[6] != d.majmin {
			c.errorf("LUKS %s: table %q, want a crypt target on %s (%s, %s)", l.name, dm.table, l.device, d.node, d.majmin)
		}
		if l.discards && !slices.Contains(f, "allow_discards") {
			c.errorf("LUKS %s: allowDiscards is set but the table %q has no allow_discards", l.name, dm.table)
		}
	}
	for _, vg := range e.vgs {
		fill := false
		for _, lv := range vg.lvs {
			i := slices.IndexFunc(s.lvs, func(g lvEntry) bool { return g.VG == vg.name && g.Name == lv.name })
			if i < 0 {
				c.errorf("LV %s/%s does not exist", vg.name, lv.name)
				continue
			}
			g := s.lvs[i]
			if g.Active != "active" {
				c.errorf("LV %s/%s is not active (%q)", vg.name, lv.name, g.Active)
			}
			if want := segtype(lv.lvmType); g.Segtype != want {
				c.errorf("LV %s/%s: segment type %q, want %q", vg.name, lv.name, g.Segtype, want)
			}
			if lv.lvmType == "thinlv" && g.Pool != lv.pool {
				c.errorf("LV %s/%s: thin pool %q, want %q", vg.name, lv.name, g.Pool, lv.pool)
			}
			if strings.Contains(lv.size, "%") {
				fill = fill || strings.HasPrefix(lv.size, "100%")
				continue
			}
			size, err1 := config.BinaryBytes(lv.size)
			got, err2 := strconv.ParseInt(g.Size, 10, 64)
			ext, err3 := strconv.ParseInt(g.ExtentSize, 10, 64)
			if err1 != nil || err2 != nil || err3 != nil {
				c.errorf("LV %s/%s: sizes %q (want %q, extent %q) are not numbers", vg.name, lv.name, g.Size, lv.size, g.ExtentSize)
				continue
			}
			// lvcreate rounds up to whole extents (and stripes, for raid0).
			if got < size || got >= size+4*ext {
				c.errorf("LV %s/%s: %d bytes, want %s rounded up to extents of %d", vg.name, lv.name, got, lv.size, ext)
			}
		}
		// A 100% LV is made last (priority), from what the others left: nothing is free.
		if fill {
			for _, g := range s.lvs {
				if g.VG == vg.name && g.VGFree != "0" {
					c.errorf("VG %s has %s bytes free after its 100%% LV was made: the LVs were made in the wrong order", vg.name, g.VGFree)
					break
				}
			}
		}
	}
	for _, md := range e.mds {
		got, ok := s.md[md.device]
		if !ok {
			c.errorf("md array %s is not running (arrays: %q)", md.device, s.mdstat)
			continue
		}
		if want := "raid" + strconv.Itoa(md.level); got["MD_LEVEL"] != want {
			c.errorf("%s: level %q, want %q", md.device, got["MD_LEVEL"], want)
		}
		if want := strconv.Itoa(len(md.members)); got["MD_DEVICES"] != want {
			c.errorf("%s: %s devices, want %s", md.device, got["MD_DEVICES"], want)
		}
		want := md.metadata
		if want == "default" {
			want = "1.2"
		}
		if got["MD_METADATA"] != want {
			c.errorf("%s: metadata %q, want %q", md.device, got["MD_METADATA"], want)
		}
		var have, members []string
		for k, v := range got {
			if strings.HasPrefix(k, "MD_DEVICE_") && strings.HasSuffix(k, "_DEV") {
				have = append(have, v)
			}
		}
		for _, m := range md.members {
			d, _ := s.dev(m)
			members = append(members, d.node)
		}
		slices.Sort(have)
		slices.Sort(members)
		if !slices.Equal(have, members) {
			c.errorf("%s: members %q, want %q (%q)", md.device, have, members, md.members)
		}
	}
}

// checkUnmounted: nothing of the layout is mounted, swapped on or open.
func checkUnmounted(s *state, e *expect) error {
	c := &check{}
	if got := s.layoutMounts(); len(got) > 0 {
		c.errorf("still mounted: %+v", got)
	}
	checkSwaps(c, s, e, false)
	if len(s.dm) > 0 {
		c.errorf("device-mapper devices are still there (LUKS open or LVs active): %+v", s.dm)
	}
	if len(s.mdstat) > 0 {
		c.errorf("md arrays still run: %q", s.mdstat)
	}
	for _, lv := range s.lvs {
		if lv.Active == "active" {
			c.errorf("LV %s/%s is still active", lv.VG, lv.Name)
		}
	}
	return c.err()
}

// segtype is the segment type lvs shows for an lvm_type.
func segtype(lvmType string) string {
	switch lvmType {
	case "":
		return "linear"
	case "thinlv":
		return "thin"
	}
	return lvmType
}

// missingOptions is mountopt.Missing plus tmpfs's size=, which the kernel shows in KiB.
func missingOptions(fsType string, want, got []string) []string {
	var rest, missing []string
	for _, w := range want {
		for _, o := range strings.Split(w, ",") {
			if !strings.HasPrefix(o, "size=") {
				rest = append(rest, o)
				continue
			}
			n, err := config.BinaryBytes(strings.TrimPrefix(o, "size="))
			if err != nil || !slices.Contains(got, fmt.Sprintf("size=%dk", n>>10)) {
				missing = append(missing, o)
			}
		}
	}
	return append(mountopt.Missing(fsType, rest, got), missing...)
}

// perMount keeps the options that the kernel sets per mount rather than per filesystem.
func perMount(opts []string) []string {
	var out []string
	for _, o := range opts {
		switch o {
		case "ro", "rw", "noatime", "relatime", "strictatime", "nodiratime", "nodev", "nosuid", "noexec":
			out = append(out, o)
		}
	}
	return out
}

// fileName is the file the test writes into a mount to see it survive.
func fileName(m wantMount) string {
	return path.Join(m.target, ".vmtest-survivor")
}
