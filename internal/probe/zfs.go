package probe

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// ZFS: a zfs_member names its pool (blkid's LABEL); the pool is read with zpool and zfs
// in their scripted forms (-H: tab-separated, no header; -p: exact numbers), and
// zpool status -P for its vdevs. Without the zpool and zfs tools (or the kernel module)
// the pool is unreadable: nothing is guessed from the members' labels alone.

// Pool is a ZFS pool found through its members.
type Pool struct {
	Name string `json:"name"`
	// Imported says the pool is imported; what it holds is only known then.
	Imported bool   `json:"imported"`
	Size     int64  `json:"size,omitempty"`
	Health   string `json:"health,omitempty"`
	// Vdevs are the pool's vdevs as zpool status -P lists them.
	Vdevs []PoolVdev `json:"vdevs,omitempty"`
	// Properties are the pool properties whose source is local (zpool get).
	Properties map[string]string `json:"properties,omitempty"`
	// Datasets are the pool's filesystems and volumes by full name, the root dataset
	// (named as the pool) included.
	Datasets map[string]*Dataset `json:"datasets,omitempty"`
	// Unreadable says why the pool could not be read (zpool or zfs missing or failing).
	Unreadable string `json:"unreadable,omitempty"`
}

// PoolVdev is one top-level vdev: its allocation class ("" for data, else log, dedup,
// special, cache, spare), its redundancy ("" for a single device, mirror, raidz1, ...) and
// its member devices (full paths).
type PoolVdev struct {
	Class   string   `json:"class,omitempty"`
	Mode    string   `json:"mode,omitempty"`
	Members []string `json:"members"`
}

// Dataset is a ZFS filesystem or volume.
type Dataset struct {
	Name string `json:"name"` // full name, POOL/...
	Type string `json:"type"` // filesystem or volume
	// Mountpoint is the mountpoint property ("" for volumes) as zfs shows it, that is
	// below the pool's altroot when it has one.
	Mountpoint string `json:"mountpoint,omitempty"`
	Volsize    int64  `json:"volsize,omitempty"` // bytes, volumes only
	// Local are the properties whose source is local (set at creation or with zfs set).
	Local map[string]string `json:"local,omitempty"`
	// Fixed are the values of the properties that can only be set at creation, whatever
	// their source (zfs shows encryption and keyformat with source "-"), when not default.
	Fixed map[string]string `json:"fixed,omitempty"`
	// Mounts are the current mounts of the dataset (findmnt SOURCE is its name).
	Mounts []Mount `json:"mounts,omitempty"`
	// Content is what a volume holds (/dev/zvol/NAME probed whole).
	Content *Content `json:"content,omitempty"`
	// Unreadable says why a volume's content could not be read (it has no device node).
	Unreadable string `json:"unreadable,omitempty"`
}

// zfsTools fails with a clear message where the zpool and zfs tools are missing, then
// lists the imported pools.
const zfsTools = `command -v zpool >/dev/null && command -v zfs >/dev/null || { echo 'zpool and zfs are not installed' >&2; exit 127; }
zpool list -H -o name`

// probePool reads a pool that a probed device is a member of.
func probePool(ctx context.Context, r Runner, p *Pool, mounts []fsMount) error {
	out, err := run(ctx, r, zfsTools)
	if err != nil {
		return err
	}
	if !slices.Contains(strings.Split(strings.TrimSpace(string(out)), "\n"), p.Name) {
		return nil // exported (or never imported on this machine)
	}
	p.Imported = true
	q := shell.Quote(p.Name)
	if out, err = run(ctx, r, "zpool list -Hp -o name,size,health "+q); err != nil {
		return err
	}
	f := strings.Split(strings.TrimRight(string(out), "\n"), "\t")
	if len(f) != 3 || f[0] != p.Name {
		return fmt.Errorf("zpool list %s: unexpected output %q", p.Name, out)
	}
	if p.Size, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return fmt.Errorf("zpool list %s: size: %w", p.Name, err)
	}
	p.Health = f[2]
	if out, err = run(ctx, r, "zpool status -P "+q); err != nil {
		return err
	}
	if p.Vdevs, err = parseZpoolStatus(out, p.Name); err != nil {
		return err
	}
	if out, err = run(ctx, r, "zpool get -Hp -o name,property,value,source all "+q); err != nil {
		return err
	}
	p.Properties = map[string]string{}
	if err := eachProperty(out, func(_, prop, value, source string) {
		if source == "local" {
			p.Properties[prop] = value
		}
	}); err != nil {
		return fmt.Errorf("zpool get %s: %w", p.Name, err)
	}
	if out, err = run(ctx, r, "zfs list -Hp -r -t filesystem,volume -o name,type,mountpoint,volsize "+q); err != nil {
		return err
	}
	if p.Datasets, err = parseZfsList(out); err != nil {
		return fmt.Errorf("zfs list %s: %w", p.Name, err)
	}
	if out, err = run(ctx, r, "zfs get -Hp -r -t filesystem,volume -o name,property,value,source all "+q); err != nil {
		return err
	}
	if err := eachProperty(out, func(name, prop, value, source string) {
		ds := p.Datasets[name]
		switch {
		case ds == nil:
		case source == "local":
			ds.Local = ensureMap(ds.Local)
			ds.Local[prop] = value
		case codegen.ZFSCreationOnly(prop) && source != "default" && !creationDefault(prop, value):
			ds.Fixed = ensureMap(ds.Fixed)
			ds.Fixed[prop] = value
		}
	}); err != nil {
		return fmt.Errorf("zfs get %s: %w", p.Name, err)
	}
	for _, name := range sortedNames(p.Datasets) {
		ds := p.Datasets[name]
		for _, m := range mounts {
			if m.Source == name {
				ds.Mounts = append(ds.Mounts, Mount{Target: m.Target, Options: m.Options, FSRoot: m.FSRoot})
			}
		}
		if ds.Type != "volume" {
			continue
		}
		dev := "/dev/zvol/" + name
		// Without a node (volmode=none, or udev has not made it) blkid would report it
		// blank, which it need not be.
		if out, err = run(ctx, r, "stat -L -c %F -- "+shell.Quote(dev)+" 2>/dev/null || echo missing"); err != nil {
			return err
		}
		if strings.TrimSpace(string(out)) != "block special file" {
			ds.Unreadable = "the volume has no device node " + dev + " (volmode=none, or udev has not made it yet)"
			continue
		}
		if ds.Content, err = blkid(ctx, r, dev, -1, -1); err != nil {
			return fmt.Errorf("ZFS volume %s: %w", name, err)
		}
		if err := inside(ctx, r, ds.Content, dev, mounts); err != nil {
			ds.Content.Unreadable = err.Error()
		}
	}
	return nil
}

// creationDefault reports whether a creation-only property has the value zfs gives it
// when none is chosen (zfs shows these with source "-", not "default").
func creationDefault(prop, value string) bool {
	return value == "-" || map[string]string{"encryption": "off", "casesensitivity": "sensitive", "utf8only": "off", "normalization": "none"}[prop] == value
}

// eachProperty calls f for every line of zpool get or zfs get -H -o name,property,value,source.
func eachProperty(out []byte, f func(name, prop, value, source string)) error {
	return eachRow(out, 4, func(c []string) error {
		f(c[0], c[1], c[2], c[3])
		return nil
	})
}

// parseZfsList reads zfs list -Hp -o name,type,mountpoint,volsize.
func parseZfsList(out []byte) (map[string]*Dataset, error) {
	datasets := map[string]*Dataset{}
	err := eachRow(out, 4, func(c []string) error {
		ds := &Dataset{Name: c[0], Type: c[1]}
		if c[2] != "-" {
			ds.Mountpoint = c[2]
		}
		if c[3] != "-" {
			v, err := strconv.ParseInt(c[3], 10, 64)
			if err != nil {
				return fmt.Errorf("volsize of %s: %w", c[0], err)
			}
			ds.Volsize = v
		}
		datasets[ds.Name] = ds
		return nil
	})
	return datasets, err
}

// eachRow calls f with the fields of every non-empty line of a zpool or zfs -H output
// (tab-separated), which must have exactly n.
func eachRow(out []byte, n int, f func(fields []string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if sc.Text() == "" {
			continue
		}
		c := strings.Split(sc.Text(), "\t")
		if len(c) != n {
			return fmt.Errorf("line %q has %d fields, want %d", sc.Text(), len(c), n)
		}
		if err := f(c); err != nil {
			return err
		}
	}
	return sc.Err()
}

// parseZpoolStatus reads the config section of zpool status -P: a tab, two spaces per
// level, the vdev's name. Level 0 is the pool (or a class heading: logs, dedup, special,
// cache, spares), level 1 a top-level vdev (mirror-0, raidz2-1, ...) or a single device,
// deeper levels the devices of a vdev (spare-N and replacing-N add a level).
func parseZpoolStatus(out []byte, pool string) ([]PoolVdev, error) {
	var vdevs []PoolVdev
	in, class := false, ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "\t")
		if !ok {
			if in && strings.HasPrefix(line, "errors:") {
				break
			}
			continue
		}
		trimmed := strings.TrimLeft(rest, " ")
		fields := strings.Fields(trimmed)
		if len(fields) == 0 {
			continue
		}
		name, depth := fields[0], len(rest)-len(trimmed)
		switch {
		case !in:
			in = name == "NAME" // the column header starts the config section
			continue
		case depth == 0 && name == pool:
			class = ""
			continue
		case depth == 0:
			class = map[string]string{"logs": "log", "spares": "spare"}[name]
			if class == "" {
				class = name
			}
			continue
		case depth == 2 && strings.HasPrefix(name, "/"):
			vdevs = append(vdevs, PoolVdev{Class: class, Members: []string{name}})
		case depth == 2:
			mode := name
			if i := strings.LastIndexByte(name, '-'); i > 0 {
				mode = name[:i]
			}
			if mode == "raidz" {
				mode = "raidz1"
			}
			vdevs = append(vdevs, PoolVdev{Class: class, Mode: mode})
		case strings.HasPrefix(name, "/") && len(vdevs) > 0:
			v := &vdevs[len(vdevs)-1]
			v.Members = append(v.Members, name)
		}
	}
	if !in {
		return nil, fmt.Errorf("zpool status -P %s: no config section", pool)
	}
	return vdevs, sc.Err()
}
