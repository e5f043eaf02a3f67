package probe

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// PartitionTable prefixes the Content.Type of a device probed whole (an open LUKS
// container, an LV, an md array) that holds a partition table, for example
// "partition table gpt": it is not blank, and nothing inside it is compared.
const PartitionTable = "partition table "

// Opened is the inside of an open LUKS container.
type Opened struct {
	Mapper  string   `json:"mapper"`            // /dev/mapper/NAME
	Content *Content `json:"content,omitempty"` // nil when the container is blank inside
}

// VG is an LVM volume group as vgs and lvs report it; sizes in bytes.
type VG struct {
	Name       string `json:"name"`
	Size       int64  `json:"size"`
	Free       int64  `json:"free"`
	ExtentSize int64  `json:"extentSize"`
	// PVFree is the free space on each of the group's PVs, largest first: a RAID LV
	// needs room for each of its images on a different PV.
	PVFree []int64        `json:"pvFree,omitempty"`
	LVs    map[string]*LV `json:"lvs"`
	// Unreadable says why vgs or lvs could not read the group; nothing else is then known.
	Unreadable string `json:"unreadable,omitempty"`
}

// LV is a logical volume. The content of an inactive one is not read (it has no device).
type LV struct {
	Name    string   `json:"name"`
	Path    string   `json:"path"`   // /dev/VG/LV
	DMPath  string   `json:"dmPath"` // /dev/mapper/VG-LV, what findmnt shows
	Size    int64    `json:"size"`
	Segtype string   `json:"segtype"`
	Pool    string   `json:"pool,omitempty"` // the thin pool of a thin LV
	Active  bool     `json:"active"`
	Content *Content `json:"content,omitempty"`
}

// Array is an md array found through its members. Level and Content are only known when
// it is assembled (Device is then its kernel node).
type Array struct {
	Name   string `json:"name"`
	Device string `json:"device,omitempty"`
	Level  string `json:"level,omitempty"` // raid1, raid0, ...
	// Metadata is the superblock format (1.2, 1.0, ...), as mdadm --detail reports it.
	Metadata string `json:"metadata,omitempty"`
	// Devices is the number of member slots (raid devices), Degraded how many of them
	// have no working member, and MemberBytes the room a new member needs: the
	// component size plus the largest data offset of the members.
	Devices     int      `json:"devices,omitempty"`
	Degraded    int      `json:"degraded,omitempty"`
	MemberBytes int64    `json:"memberBytes,omitempty"`
	Active      bool     `json:"active"`
	Content     *Content `json:"content,omitempty"`
	// Partitioned is the array read as a disk when it holds a partition table (Content
	// is then "partition table gpt", ...): its table and what each partition holds, so
	// that a GPT on an array is compared and imported as a disk's is.
	Partitioned *Disk `json:"partitioned,omitempty"`
	// Unreadable says why mdadm --detail could not read the assembled array.
	Unreadable string `json:"unreadable,omitempty"`
}

// opened fills the inside of a LUKS container when it is open: the device-mapper device
// that holds it (from /sys, which needs no key) probed as a whole device.
func opened(ctx context.Context, r Runner, c *Content, node string, mounts []fsMount) error {
	out, err := run(ctx, r, `n=$(basename "$(readlink -f -- `+shell.Quote(node)+`)"); for h in /sys/class/block/"$n"/holders/*; do if [ -r "$h/dm/name" ]; then cat "$h/dm/name"; fi; done`)
	if err != nil {
		return fmt.Errorf("looking for the open LUKS container of %s: %w", node, err)
	}
	name := strings.TrimSpace(string(out))
	if name == "" {
		return nil // closed
	}
	if strings.Contains(name, "\n") {
		return fmt.Errorf("%s is held by several device-mapper devices: %q", node, name)
	}
	o := &Opened{Mapper: "/dev/mapper/" + name}
	if o.Content, err = blkid(ctx, r, o.Mapper, -1, -1); err != nil {
		return fmt.Errorf("inside the open LUKS container %s: %w", o.Mapper, err)
	}
	c.Opened = o
	if err := inside(ctx, r, o.Content, o.Mapper, mounts); err != nil {
		o.Content.Unreadable = err.Error()
	}
	return nil
}

// pvGroup reads the volume group of an LVM physical volume.
func pvGroup(ctx context.Context, r Runner, c *Content, node string) error {
	out, err := run(ctx, r, "pvs --reportformat json -o pv_name,vg_name -- "+shell.Quote(node))
	if err != nil {
		return fmt.Errorf("reading the LVM physical volume %s: %w", node, err)
	}
	var j struct {
		Report []struct {
			PV []struct {
				VG string `json:"vg_name"`
			} `json:"pv"`
		} `json:"report"`
	}
	if err := json.Unmarshal(out, &j); err != nil {
		return fmt.Errorf("pvs --reportformat json %s: %w", node, err)
	}
	if len(j.Report) != 1 || len(j.Report[0].PV) != 1 {
		return fmt.Errorf("pvs reports no single physical volume for %s", node)
	}
	c.VG = j.Report[0].PV[0].VG
	return nil
}

// mdMember reads the array name from a member's md superblock.
func mdMember(ctx context.Context, r Runner, c *Content, node string) error {
	out, err := run(ctx, r, "mdadm --examine --export "+shell.Quote(node))
	if err != nil {
		return fmt.Errorf("reading the md superblock of %s: %w", node, err)
	}
	name := exportValue(out, "MD_NAME")
	if name == "" {
		return fmt.Errorf("the md superblock of %s has no array name", node)
	}
	// mdadm writes HOST:NAME; the layout names the array by NAME.
	c.Array = name[strings.LastIndexByte(name, ':')+1:]
	return nil
}

func exportValue(out []byte, key string) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+"="); ok {
			return v
		}
	}
	return ""
}

// probeStacks reads the volume groups and md arrays that probed devices belong to, and
// then those that their LVs and arrays belong to, until no new one turns up.
func (s *State) probeStacks(ctx context.Context, r Runner, mounts []fsMount) error {
	for {
		vgs, arrays, pools := s.references()
		if len(vgs)+len(arrays)+len(pools) == 0 {
			return nil
		}
		for _, name := range pools {
			s.Pools = ensureMap(s.Pools)
			p := &Pool{Name: name}
			s.Pools[name] = p
			if err := probePool(ctx, r, p, mounts); err != nil {
				*p = Pool{Name: name, Imported: p.Imported, Unreadable: err.Error()}
			}
		}
		for _, name := range vgs {
			if s.VGs == nil {
				s.VGs = map[string]*VG{}
			}
			vg := &VG{Name: name, LVs: map[string]*LV{}}
			s.VGs[name] = vg
			if err := probeVG(ctx, r, vg, mounts); err != nil {
				vg.Unreadable = err.Error()
				vg.LVs = map[string]*LV{}
			}
		}
		for _, name := range arrays {
			if s.Arrays == nil {
				s.Arrays = map[string]*Array{}
			}
			a := &Array{Name: name}
			s.Arrays[name] = a
			if err := probeArray(ctx, r, a, mounts); err != nil {
				a.Unreadable = err.Error()
			}
		}
	}
}

// references are the volume groups, arrays and pools that probed contents name but that
// are not probed yet, sorted.
func (s *State) references() (vgs, arrays, pools []string) {
	seen := map[string]bool{}
	var walk func(c *Content)
	walk = func(c *Content) {
		if c == nil {
			return
		}
		if c.VG != "" && s.VGs[c.VG] == nil && !seen["vg "+c.VG] {
			seen["vg "+c.VG] = true
			vgs = append(vgs, c.VG)
		}
		if c.Array != "" && s.Arrays[c.Array] == nil && !seen["md "+c.Array] {
			seen["md "+c.Array] = true
			arrays = append(arrays, c.Array)
		}
		if c.Pool != "" && s.Pools[c.Pool] == nil && !seen["zfs "+c.Pool] {
			seen["zfs "+c.Pool] = true
			pools = append(pools, c.Pool)
		}
		if c.Opened != nil {
			walk(c.Opened.Content)
		}
	}
	for _, d := range s.Disks {
		walk(d.Content)
		if d.Table != nil {
			for _, p := range d.Table.Partitions {
				walk(p.Content)
			}
		}
	}
	for _, vg := range s.VGs {
		for _, lv := range vg.LVs {
			walk(lv.Content)
		}
	}
	for _, a := range s.Arrays {
		walk(a.Content)
	}
	for _, p := range s.Pools {
		for _, ds := range p.Datasets {
			walk(ds.Content)
		}
	}
	sort.Strings(vgs)
	sort.Strings(arrays)
	sort.Strings(pools)
	return vgs, arrays, pools
}

// lvmReport is the JSON of vgs and lvs with --units b --nosuffix (numbers are strings).
type lvmReport struct {
	Report []struct {
		VG []map[string]string `json:"vg"`
		PV []map[string]string `json:"pv"`
		LV []map[string]string `json:"lv"`
	} `json:"report"`
}

func lvmRows(ctx context.Context, r Runner, cmd, kind string) ([]map[string]string, error) {
	out, err := run(ctx, r, cmd)
	if err != nil {
		return nil, err
	}
	var j lvmReport
	if err := json.Unmarshal(out, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Fields(cmd)[0], err)
	}
	if len(j.Report) != 1 {
		return nil, fmt.Errorf("%s: %d reports, want 1", strings.Fields(cmd)[0], len(j.Report))
	}
	switch kind {
	case "vg":
		return j.Report[0].VG, nil
	case "pv":
		return j.Report[0].PV, nil
	}
	return j.Report[0].LV, nil
}

func probeVG(ctx context.Context, r Runner, vg *VG, mounts []fsMount) error {
	q := shell.Quote(vg.Name)
	rows, err := lvmRows(ctx, r, "vgs --reportformat json --units b --nosuffix -o vg_name,vg_size,vg_free,vg_extent_size -- "+q, "vg")
	if err != nil {
		return err
	}
	if len(rows) != 1 {
		return fmt.Errorf("vgs reports %d groups named %s", len(rows), vg.Name)
	}
	for k, dst := range map[string]*int64{"vg_size": &vg.Size, "vg_free": &vg.Free, "vg_extent_size": &vg.ExtentSize} {
		if *dst, err = strconv.ParseInt(rows[0][k], 10, 64); err != nil {
			return fmt.Errorf("vgs %s: %s: %w", vg.Name, k, err)
		}
	}
	rows, err = lvmRows(ctx, r, "pvs --reportformat json --units b --nosuffix -o pv_name,pv_free -S "+shell.Quote("vg_name="+vg.Name), "pv")
	if err != nil {
		return err
	}
	for _, row := range rows {
		free, err := strconv.ParseInt(row["pv_free"], 10, 64)
		if err != nil {
			return fmt.Errorf("pvs %s: pv_free: %w", row["pv_name"], err)
		}
		vg.PVFree = append(vg.PVFree, free)
	}
	slices.SortFunc(vg.PVFree, func(a, b int64) int { return cmp.Compare(b, a) })
	rows, err = lvmRows(ctx, r, "lvs --reportformat json --units b --nosuffix -o lv_name,lv_size,lv_path,lv_dm_path,lv_active,segtype,pool_lv -- "+q, "lv")
	if err != nil {
		return err
	}
	for _, row := range rows {
		lv := &LV{Name: row["lv_name"], Path: row["lv_path"], DMPath: row["lv_dm_path"], Segtype: row["segtype"], Pool: row["pool_lv"], Active: row["lv_active"] == "active"}
		if lv.Size, err = strconv.ParseInt(row["lv_size"], 10, 64); err != nil {
			return fmt.Errorf("lvs %s/%s: lv_size: %w", vg.Name, lv.Name, err)
		}
		vg.LVs[lv.Name] = lv
		if !lv.Active || lv.DMPath == "" || lv.Segtype == "thin-pool" {
			continue // a thin pool holds thin LVs, not a filesystem
		}
		if lv.Content, err = blkid(ctx, r, lv.DMPath, -1, -1); err != nil {
			return fmt.Errorf("LV %s/%s: %w", vg.Name, lv.Name, err)
		}
		if err := inside(ctx, r, lv.Content, lv.DMPath, mounts); err != nil {
			lv.Content.Unreadable = err.Error()
		}
	}
	return nil
}

// arraySizes reads from sysfs an assembled array's member slots, how many are missing,
// and the room a member needs (component_size in KiB, each member's offset in sectors).
func arraySizes(ctx context.Context, r Runner, a *Array) error {
	// Levels without redundancy (raid0, linear) have no degraded file: 0 stands for it.
	out, err := run(ctx, r, "d=/sys/class/block/"+shell.Quote(path.Base(a.Device))+"/md; "+
		`for f in raid_disks degraded component_size; do cat "$d/$f" 2>/dev/null || echo 0; done; cat "$d"/dev-*/offset 2>/dev/null || :`)
	if err != nil {
		return fmt.Errorf("reading the sizes of the md array %s: %w", a.Device, err)
	}
	f := strings.Fields(string(out))
	if len(f) < 3 {
		return fmt.Errorf("reading the sizes of the md array %s: %q", a.Device, out)
	}
	v := make([]int64, len(f))
	for i, s := range f {
		if v[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			return fmt.Errorf("reading the sizes of the md array %s: %w", a.Device, err)
		}
	}
	a.Devices, a.Degraded = int(v[0]), int(v[1])
	offset := slices.Max(append(v[3:], 0))
	a.MemberBytes = v[2]<<10 + offset<<9
	return nil
}

// probeArray reads an md array when it is assembled as /dev/md/NAME.
func probeArray(ctx context.Context, r Runner, a *Array, mounts []fsMount) error {
	link := shell.Quote(path.Join("/dev/md", a.Name))
	out, err := run(ctx, r, "if [ -b "+link+" ]; then readlink -f -- "+link+"; fi")
	if err != nil {
		return err
	}
	dev := strings.TrimSpace(string(out))
	if dev == "" {
		return nil // not assembled
	}
	a.Device, a.Active = dev, true
	out, err = run(ctx, r, "mdadm --detail --export "+shell.Quote(dev))
	if err != nil {
		return fmt.Errorf("reading the md array %s: %w", dev, err)
	}
	a.Level, a.Metadata = exportValue(out, "MD_LEVEL"), exportValue(out, "MD_METADATA")
	if err := arraySizes(ctx, r, a); err != nil {
		return err
	}
	if a.Content, err = blkid(ctx, r, dev, -1, -1); err != nil {
		return fmt.Errorf("md array %s: %w", dev, err)
	}
	if a.Content != nil && strings.HasPrefix(a.Content.Type, PartitionTable) {
		d := &Disk{Name: a.Name, Device: dev}
		if err := probeDisk(ctx, r, d, mounts); err != nil {
			a.Content.Unreadable = err.Error()
			return nil
		}
		a.Partitioned = d
		return nil
	}
	if err := inside(ctx, r, a.Content, dev, mounts); err != nil {
		a.Content.Unreadable = err.Error()
	}
	return nil
}
