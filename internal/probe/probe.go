// Package probe reads what block devices hold right now: partition tables, filesystems,
// swap, btrfs subvolumes and swap files, open LUKS containers, LVM volume groups, md
// arrays and ZFS pools with their datasets, and where they are mounted. It only reads (sfdisk --json, blkid -p, findmnt
// --json, btrfs subvolume list on a read-only mount in a private mount namespace, pvs,
// vgs, lvs, mdadm --examine and --detail, and /sys for open containers) and never guesses: a device it cannot read is reported as
// such, so that a plan refuses it instead of acting on a guess.
//
// The commands run through a Runner, so the same probe works on this machine (Local) and
// on an installed machine through internal/remote's SSH client. Layout renders the state
// as the internal/config model, which is what `disko-compile import` prints.
package probe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// Runner runs a shell command where the devices are; *remote.Client and *remote.Shell
// implement it, as for internal/facts.
type Runner interface {
	Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error
}

// Local runs commands on this machine with sh -c.
type Local struct{}

// Run runs cmd with sh -c.
func (Local) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	return c.Run()
}

// State is what the probed disks hold, keyed by the layout's disk names.
type State struct {
	Disks map[string]*Disk `json:"disks"`
	// VGs are the LVM volume groups that a probed physical volume belongs to, by name.
	VGs map[string]*VG `json:"vgs,omitempty"`
	// Arrays are the md arrays that a probed member belongs to, by array name.
	Arrays map[string]*Array `json:"arrays,omitempty"`
	// Pools are the ZFS pools that a probed member belongs to, by pool name.
	Pools map[string]*Pool `json:"pools,omitempty"`
}

// Disk is one probed block device.
type Disk struct {
	Name       string `json:"name"`   // the layout's name for it
	Device     string `json:"device"` // as given (may be a /dev/disk/by-* link)
	Path       string `json:"path"`   // the kernel's node, symlinks resolved
	Size       int64  `json:"size"`   // bytes
	SectorSize int64  `json:"sectorSize"`
	// Unreadable says why the device could not be probed; nothing else is then known.
	Unreadable string `json:"unreadable,omitempty"`
	// Table is the partition table, nil when there is none.
	Table *Table `json:"table,omitempty"`
	// Content is what the whole device holds when it has no partition table; nil when
	// blkid finds no signature (the disk is blank).
	Content *Content `json:"content,omitempty"`
}

// Table is a partition table as sfdisk reads it.
type Table struct {
	Label      string       `json:"label"` // "gpt" or "dos"
	ID         string       `json:"id"`
	FirstLBA   int64        `json:"firstLBA"`
	LastLBA    int64        `json:"lastLBA"`
	Partitions []*Partition `json:"partitions"`
}

// Partition is one entry of a table; Start and Size are in sectors.
type Partition struct {
	Number int    `json:"number"`
	Node   string `json:"node"` // kernel name of the partition's device
	Start  int64  `json:"start"`
	Size   int64  `json:"size"`
	Type   string `json:"type"` // GPT type GUID (upper case) or MBR type byte (hex, e.g. 83)
	UUID   string `json:"uuid,omitempty"`
	Name   string `json:"name,omitempty"` // GPT partition name (the by-partlabel label)
	// Bootable is the MBR boot flag.
	Bootable bool `json:"bootable,omitempty"`
	// Content is what the partition holds; nil when blkid finds no signature.
	Content *Content `json:"content,omitempty"`
}

// End is the partition's last sector.
func (p *Partition) End() int64 { return p.Start + p.Size - 1 }

// Content is a signature blkid found, and what was read inside it.
type Content struct {
	Type  string `json:"type"` // blkid TYPE: ext4, xfs, btrfs, swap, crypto_LUKS, LVM2_member, ...
	UUID  string `json:"uuid,omitempty"`
	Label string `json:"label,omitempty"`
	// Mounts are the current mounts of this device (findmnt), in mount-table order.
	Mounts []Mount `json:"mounts,omitempty"`
	// Subvolumes are btrfs subvolume paths relative to the top level, sorted.
	Subvolumes []string `json:"subvolumes,omitempty"`
	// Swapfiles are swap files found at the top of the btrfs filesystem and of each
	// subvolume, keyed by path relative to the top level, with their size in bytes.
	Swapfiles map[string]int64 `json:"swapfiles,omitempty"`
	// Opened is the inside of an open LUKS container; nil when it is closed.
	Opened *Opened `json:"opened,omitempty"`
	// VG is the volume group of an LVM physical volume ("" when it belongs to none).
	VG string `json:"vg,omitempty"`
	// Array is the name of the md array a linux_raid_member belongs to.
	Array string `json:"array,omitempty"`
	// Pool is the name of the ZFS pool a zfs_member belongs to (blkid's LABEL).
	Pool string `json:"pool,omitempty"`
	// Unreadable says why the inside (subvolumes, swap files, LUKS, LVM or md metadata)
	// could not be read.
	Unreadable string `json:"unreadable,omitempty"`
}

// Mount is one mount of a filesystem.
type Mount struct {
	Target  string `json:"target"`
	Options string `json:"options"`
	FSRoot  string `json:"fsroot"` // the mounted directory inside the filesystem (btrfs subvol)
}

// Probe reads the devices named by disks (layout name -> device path) through r.
func Probe(ctx context.Context, r Runner, disks map[string]string) (*State, error) {
	mounts, err := readMounts(ctx, r)
	if err != nil {
		return nil, err
	}
	s := &State{Disks: map[string]*Disk{}}
	names := make([]string, 0, len(disks))
	for n := range disks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		d := &Disk{Name: name, Device: disks[name]}
		s.Disks[name] = d
		if err := probeDisk(ctx, r, d, mounts); err != nil {
			d.Unreadable = err.Error()
			d.Table, d.Content = nil, nil
		}
	}
	if err := s.probeStacks(ctx, r, mounts); err != nil {
		return nil, err
	}
	return s, nil
}

// run runs cmd and returns its stdout; the error carries stderr.
func run(ctx context.Context, r Runner, cmd string) ([]byte, error) {
	var out, errb bytes.Buffer
	if err := r.Run(ctx, cmd, nil, &out, &errb); err != nil {
		return out.Bytes(), fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

func probeDisk(ctx context.Context, r Runner, d *Disk, mounts []fsMount) error {
	q := shell.Quote(d.Device)
	out, err := run(ctx, r, "readlink -f -- "+q+" && blockdev --getsize64 "+q+" && blockdev --getss "+q)
	if err != nil {
		return err
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		return fmt.Errorf("reading the size of %s: unexpected output %q", d.Device, out)
	}
	d.Path = f[0]
	if d.Size, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return fmt.Errorf("size of %s: %w", d.Device, err)
	}
	if d.SectorSize, err = strconv.ParseInt(f[2], 10, 64); err != nil {
		return fmt.Errorf("sector size of %s: %w", d.Device, err)
	}
	pq := shell.Quote(d.Path)
	// sfdisk fails on a disk without a table; the status line says which case it is.
	out, err = run(ctx, r, "if out=$(sfdisk --json -- "+pq+" 2>/dev/null); then printf '%s' \"$out\"; else echo none; fi")
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(string(out)); s != "none" {
		t, err := parseSfdisk(out)
		if err != nil {
			return fmt.Errorf("sfdisk --json %s: %w", d.Path, err)
		}
		d.Table = t
		for _, p := range t.Partitions {
			c, err := partitionBlkid(ctx, r, d, p)
			if err != nil {
				return fmt.Errorf("partition %d of %s: %w", p.Number, d.Device, err)
			}
			p.Content = c
			if err := inside(ctx, r, c, p.Node, mounts); err != nil {
				c.Unreadable = err.Error()
			}
		}
		return nil
	}
	c, err := blkid(ctx, r, d.Path, -1, -1)
	if err != nil {
		return err
	}
	d.Content = c
	if err := inside(ctx, r, c, d.Path, mounts); err != nil && c != nil {
		c.Unreadable = err.Error()
	}
	return nil
}

type sfdiskJSON struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		FirstLBA   int64  `json:"firstlba"`
		LastLBA    int64  `json:"lastlba"`
		Partitions []struct {
			Node  string `json:"node"`
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
			UUID  string `json:"uuid"`
			Name  string `json:"name"`
			Boot  bool   `json:"bootable"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func parseSfdisk(data []byte) (*Table, error) {
	var j sfdiskJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, err
	}
	pt := j.PartitionTable
	t := &Table{Label: pt.Label, ID: pt.ID, FirstLBA: pt.FirstLBA, LastLBA: pt.LastLBA}
	for _, p := range pt.Partitions {
		i := len(p.Node)
		for i > 0 && p.Node[i-1] >= '0' && p.Node[i-1] <= '9' {
			i--
		}
		n, err := strconv.Atoi(p.Node[i:])
		if err != nil {
			return nil, fmt.Errorf("partition node %q has no number", p.Node)
		}
		t.Partitions = append(t.Partitions, &Partition{Number: n, Node: p.Node, Start: p.Start, Size: p.Size,
			Type: strings.ToUpper(p.Type), UUID: strings.ToUpper(p.UUID), Name: p.Name, Bootable: p.Boot})
	}
	if t.Label == "dos" && t.LastLBA == 0 {
		t.LastLBA = -1 // sfdisk does not say; Free computes it from the disk size
	}
	return t, nil
}

// blkid probes dev (or the byte range offset..offset+size of it, which needs no partition
// node) for a signature. It returns nil when there is none.
func blkid(ctx context.Context, r Runner, dev string, offset, size int64) (*Content, error) {
	cmd := "blkid -p -o export"
	if offset >= 0 {
		cmd += fmt.Sprintf(" --offset %d --size %d", offset, size)
	}
	return blkidRun(ctx, r, cmd+" -- "+shell.Quote(dev)+"; echo status=$?", offset)
}

// partitionBlkid probes a partition through its device node when the kernel has one at
// the partition's start, and otherwise at its byte range of the disk. The node comes
// first because what was written through it may not be in the disk's own page cache yet
// (a whole-disk read can see the bytes from before mkfs).
func partitionBlkid(ctx context.Context, r Runner, d *Disk, p *Partition) (*Content, error) {
	node := shell.Quote(p.Node)
	start := strconv.FormatInt(p.Start*d.SectorSize/512, 10) // sysfs counts 512-byte sectors
	cmd := "if [ -b " + node + " ] && [ \"$(cat /sys/class/block/\"$(basename -- " + node + ")\"/start 2>/dev/null)\" = " + start + " ]; then " +
		"blkid -p -o export -- " + node + "; else " +
		fmt.Sprintf("blkid -p -o export --offset %d --size %d -- %s; fi; echo status=$?", p.Start*d.SectorSize, p.Size*d.SectorSize, shell.Quote(d.Path))
	return blkidRun(ctx, r, cmd, p.Start*d.SectorSize)
}

// blkidRun runs a blkid -p -o export command line that ends with "echo status=$?".
func blkidRun(ctx context.Context, r Runner, cmd string, offset int64) (*Content, error) {
	out, err := run(ctx, r, cmd)
	if err != nil {
		return nil, err
	}
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			kv[k] = v
		}
	}
	switch kv["status"] {
	case "0":
	case "2":
		return nil, nil
	default:
		return nil, fmt.Errorf("blkid -p found no single answer (status %s; status 8 means several signatures)", kv["status"])
	}
	if kv["TYPE"] == "" && kv["PTTYPE"] != "" && offset < 0 {
		// A partition table on a whole device sfdisk did not read (or on an array, LV or
		// open container, which are probed whole): not blank.
		return &Content{Type: PartitionTable + kv["PTTYPE"]}, nil
	}
	if kv["TYPE"] == "" {
		return nil, nil
	}
	return &Content{Type: kv["TYPE"], UUID: kv["UUID"], Label: kv["LABEL"]}, nil
}

// fsMount is a line of findmnt.
type fsMount struct {
	Target  string `json:"target"`
	Source  string `json:"source"`
	Options string `json:"options"`
	FSRoot  string `json:"fsroot"`
}

func readMounts(ctx context.Context, r Runner) ([]fsMount, error) {
	out, err := run(ctx, r, "findmnt --json --list --output TARGET,SOURCE,OPTIONS,FSROOT")
	if err != nil {
		return nil, err
	}
	var j struct {
		Filesystems []fsMount `json:"filesystems"`
	}
	if err := json.Unmarshal(out, &j); err != nil {
		return nil, fmt.Errorf("findmnt --json: %w", err)
	}
	for i := range j.Filesystems {
		if k := strings.IndexByte(j.Filesystems[i].Source, '['); k > 0 {
			j.Filesystems[i].Source = j.Filesystems[i].Source[:k]
		}
	}
	if err := mapperSources(ctx, r, j.Filesystems); err != nil {
		return nil, err
	}
	return j.Filesystems, nil
}

// mapperSources renames the sources findmnt shows by a device-mapper kernel name
// (/dev/dm-0) to /dev/mapper/NAME, the node through which the probe reads LUKS
// containers and LVs: btrfs shows the node udev last scanned it by, which is
// /dev/dm-N, whatever node it was mounted by.
func mapperSources(ctx context.Context, r Runner, mounts []fsMount) error {
	var kernel []string
	for _, m := range mounts {
		if n, ok := strings.CutPrefix(m.Source, "/dev/dm-"); ok && n != "" && !slices.Contains(kernel, "dm-"+n) {
			kernel = append(kernel, "dm-"+n)
		}
	}
	if len(kernel) == 0 {
		return nil
	}
	var cmd strings.Builder
	for _, k := range kernel {
		q := shell.Quote(k)
		fmt.Fprintf(&cmd, "printf '%%s %%s\\n' %s \"$(cat /sys/class/block/%s/dm/name)\"; ", q, q)
	}
	out, err := run(ctx, r, cmd.String())
	if err != nil {
		return fmt.Errorf("reading the device-mapper names of mounted devices: %w", err)
	}
	names := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, name, ok := strings.Cut(line, " "); ok && name != "" {
			names["/dev/"+k] = "/dev/mapper/" + name
		}
	}
	for i := range mounts {
		if name, ok := names[mounts[i].Source]; ok {
			mounts[i].Source = name
		}
	}
	return nil
}

// inside fills what is read through the device node: its mounts, and for btrfs the
// subvolumes and swap files (through a read-only mount of the top level in a private
// mount namespace, undone when the command ends).
func inside(ctx context.Context, r Runner, c *Content, node string, mounts []fsMount) error {
	if c == nil {
		return nil
	}
	for _, m := range mounts {
		if m.Source == node {
			c.Mounts = append(c.Mounts, Mount{Target: m.Target, Options: m.Options, FSRoot: m.FSRoot})
		}
	}
	switch c.Type {
	case "crypto_LUKS":
		return opened(ctx, r, c, node, mounts)
	case "LVM2_member":
		return pvGroup(ctx, r, c, node)
	case "linux_raid_member":
		return mdMember(ctx, r, c, node)
	case "zfs_member":
		if c.Pool = c.Label; c.Pool == "" {
			return fmt.Errorf("blkid reads no pool name on the ZFS member %s", node)
		}
		return nil
	case "btrfs":
	default:
		return nil
	}
	out, err := run(ctx, r, "unshare --mount --propagation private sh -c "+shell.Quote(btrfsList)+" sh "+shell.Quote(node))
	if err != nil {
		return fmt.Errorf("reading the btrfs subvolumes of %s: %w", node, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "subvol":
			c.Subvolumes = append(c.Subvolumes, rest)
		case "swapfile":
			size, path, _ := strings.Cut(rest, " ")
			n, err := strconv.ParseInt(size, 10, 64)
			if err != nil {
				return fmt.Errorf("size of the swap file %s on %s: %w", path, node, err)
			}
			if c.Swapfiles == nil {
				c.Swapfiles = map[string]int64{}
			}
			c.Swapfiles[path] = n
		}
	}
	sort.Strings(c.Subvolumes)
	return nil
}

// btrfsList prints "subvol PATH" for each subvolume and "swapfile SIZE PATH" for each swap
// file at the top of the filesystem or of a subvolume, paths relative to the top level.
const btrfsList = `set -e
m=$(mktemp -d)
trap 'umount "$m" 2>/dev/null; rmdir "$m"' EXIT
mount -t btrfs -o ro,subvol=/ "$1" "$m"
btrfs subvolume list "$m" | sed -n 's/^ID [0-9]* gen [0-9]* top level [0-9]* path /subvol /p'
btrfs subvolume list "$m" | sed -n 's/^ID [0-9]* gen [0-9]* top level [0-9]* path //p' | {
  echo .
  cat
} | while IFS= read -r dir; do
  for f in "$m/$dir"/* "$m/$dir"/.[!.]*; do
    [ -f "$f" ] || continue
    if [ "$(blkid -p -o value -s TYPE -- "$f" 2>/dev/null)" = swap ]; then
      p=${f#"$m"/}
      echo "swapfile $(stat -c %s -- "$f") ${p#./}"
    fi
  done
done
`
