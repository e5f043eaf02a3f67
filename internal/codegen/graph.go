package codegen

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// The one dependency graph of a layout. Its nodes are the top-level devices ("units":
// disk.*, mdadm.*, lvm_vg.*, zpool.*, bcachefs_filesystems.*, nodev.*). A unit depends on
// another when it is built on it: an aggregate on every unit holding one of its members
// (disko's deviceDependencies), and any unit on another whose device paths it names in its
// options (btrfs's `-d raid1 /dev/mapper/p1`, a zpool topology's member paths), which disko
// only gets right when the names happen to sort in order.
//
// Formatting runs the units level by level (a unit's level is one more than its deepest
// dependency); units of one level are independent and run in parallel. Mounting activates
// devices in unit order, then mounts filesystems parents first (NixOS's fsBefore), then
// swap; unmounting does exactly the reverse.

// unit is one top-level device.
type unit struct {
	kind, name string
	path       optPath
	node       any
	deps       []*unit
	level      int
	pos        int      // position in disko's order, before sorting by dependencies
	produced   []string // device paths its tree creates
	strs       []string // every option string of its tree, for path references
}

// unitKinds in the order disko lists them (alphabetical), which breaks ties between
// independent units.
var unitKinds = []string{"bcachefs_filesystems", "disk", "lvm_vg", "mdadm", "nodev", "zpool"}

func (g *gen) collectUnits() {
	add := func(kind, name string, node any) {
		g.units = append(g.units, &unit{kind: kind, name: name, path: newOptPath(config.RootPath).field(kind).attr(name), node: node, pos: len(g.units)})
	}
	for _, kind := range unitKinds {
		switch kind {
		case "bcachefs_filesystems":
			for _, k := range slices.Sorted(maps.Keys(g.d.BcachefsFilesystems)) {
				add(kind, k, g.d.BcachefsFilesystems[k])
			}
		case "disk":
			for _, k := range slices.Sorted(maps.Keys(g.d.Disk)) {
				add(kind, k, g.d.Disk[k])
			}
		case "lvm_vg":
			for _, k := range slices.Sorted(maps.Keys(g.d.LVMVG)) {
				add(kind, k, g.d.LVMVG[k])
			}
		case "mdadm":
			for _, k := range slices.Sorted(maps.Keys(g.d.MDADM)) {
				add(kind, k, g.d.MDADM[k])
			}
		case "nodev":
			for _, k := range slices.Sorted(maps.Keys(g.d.Nodev)) {
				add(kind, k, g.d.Nodev[k])
			}
		case "zpool":
			for _, k := range slices.Sorted(maps.Keys(g.d.Zpool)) {
				add(kind, k, g.d.Zpool[k])
			}
		}
	}
}

func (g *gen) unitOf(kind, name string) *unit {
	for _, u := range g.units {
		if u.kind == kind && u.name == name {
			return u
		}
	}
	return nil
}

// order finds every unit's dependencies, sorts the units so that each comes after what it
// depends on (ties in disko's order), and assigns levels. A cycle is an error naming it.
func (g *gen) order() error {
	owner := map[string]*unit{}
	for _, u := range g.units {
		for _, p := range u.produced {
			owner[p] = u
		}
	}
	for key, nodes := range g.members {
		agg := g.unitOf(key.kind, key.name)
		for _, n := range nodes {
			addDep(agg, g.info[n].unit)
		}
	}
	for _, u := range g.units {
		for _, s := range u.strs {
			for _, word := range strings.Fields(s) {
				if o := owner[word]; o != nil {
					addDep(u, o)
				}
			}
		}
	}
	var sorted []*unit
	state := map[*unit]int{} // 1 visiting, 2 done
	var stack []*unit
	var visit func(u *unit) error
	visit = func(u *unit) error {
		switch state[u] {
		case 1:
			i := slices.Index(stack, u)
			var names []string
			for _, s := range append(stack[i:], u) {
				names = append(names, s.path.String())
			}
			return fmt.Errorf("%s: the devices depend on each other in a cycle: %s", u.path, strings.Join(names, " -> "))
		case 2:
			return nil
		}
		state[u] = 1
		stack = append(stack, u)
		for _, d := range u.deps {
			if err := visit(d); err != nil {
				return err
			}
			u.level = max(u.level, d.level+1)
		}
		stack = stack[:len(stack)-1]
		state[u] = 2
		sorted = append(sorted, u)
		return nil
	}
	for _, u := range g.units {
		if err := visit(u); err != nil {
			return err
		}
	}
	slices.SortStableFunc(sorted, func(a, b *unit) int {
		if a.level != b.level {
			return a.level - b.level
		}
		return a.pos - b.pos
	})
	g.units = sorted
	return nil
}

func addDep(u, on *unit) {
	if u != on && !slices.Contains(u.deps, on) {
		u.deps = append(u.deps, on)
	}
}

// stringsOf lists the option strings of a node (not of its child nodes, which are visited
// on their own, and not of its hooks, which are code rather than references).
func stringsOf(node any) []string {
	var out []string
	var walk func(v reflect.Value, top bool)
	walk = func(v reflect.Value, top bool) {
		switch v.Kind() {
		case reflect.String:
			out = append(out, v.String())
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), top)
			}
		case reflect.Interface:
			if !v.IsNil() && !top {
				if _, isNode := v.Interface().(config.Node); !isNode {
					walk(v.Elem(), false)
				}
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), false)
			}
		case reflect.Map:
			iter := v.MapRange()
			for iter.Next() {
				out = append(out, iter.Key().String())
				walk(iter.Value(), false)
			}
		case reflect.Struct:
			for i := range v.NumField() {
				f := v.Type().Field(i)
				if f.Type == reflect.TypeFor[config.Hooks]() || f.Type.Kind() == reflect.Interface && f.Type.Implements(reflect.TypeFor[config.Node]()) {
					continue
				}
				if name := f.Name; name == "Partitions" || name == "LVs" || name == "Datasets" {
					continue
				}
				walk(v.Field(i), false)
			}
		}
	}
	walk(reflect.ValueOf(node), true)
	return out
}

// --- mount order ---

// phase of a mount action: devices are activated first, then filesystems are mounted,
// then swap is turned on.
const (
	phaseDev = iota
	phaseFS
	phaseSwap
)

// action is one step of mounting (and, reversed, of unmounting).
type action struct {
	phase   int
	mnt     string // phaseFS: the mount point in the installed system
	fsDev   string // phaseFS: the device as NixOS names it, for fsBefore
	unitPos int
	seq     int
	owners  []*hooked // nodes with mount hooks whose tree holds this action, outermost first
	mount   string
	unmount string
}

// sortActions puts the actions in mount order.
func sortActions(acts []*action) []*action {
	var dev, fs, swap []*action
	for _, a := range acts {
		switch a.phase {
		case phaseDev:
			dev = append(dev, a)
		case phaseFS:
			fs = append(fs, a)
		default:
			swap = append(swap, a)
		}
	}
	byUnit := func(a, b *action) int {
		if a.unitPos != b.unitPos {
			return a.unitPos - b.unitPos
		}
		return a.seq - b.seq
	}
	slices.SortStableFunc(dev, byUnit)
	slices.SortStableFunc(swap, byUnit)
	return slices.Concat(dev, fsOrder(fs), swap)
}

// fsOrder sorts filesystem mounts topologically by NixOS's fsBefore relation (a before b
// when a's mount point is a prefix of b's mount point or device), ties by mount point.
func fsOrder(fs []*action) []*action {
	slices.SortStableFunc(fs, func(a, b *action) int { return strings.Compare(a.mnt, b.mnt) })
	done := make([]bool, len(fs))
	var out []*action
	for len(out) < len(fs) {
		progress := false
		for i, a := range fs {
			if done[i] {
				continue
			}
			ready := true
			for j, b := range fs {
				if j != i && !done[j] && fsBefore(b, a) && !fsBefore(a, b) {
					ready = false
					break
				}
			}
			if ready {
				done[i] = true
				out = append(out, a)
				progress = true
				break
			}
		}
		if !progress { // mutual prefixes (equal mount points): keep the sorted order
			for i, a := range fs {
				if !done[i] {
					done[i] = true
					out = append(out, a)
					break
				}
			}
		}
	}
	return out
}

// fsBefore is nixpkgs' fsBefore (nixos/lib/utils.nix), as disko uses it.
func fsBefore(a, b *action) bool {
	norm := func(p string) string {
		if strings.HasSuffix(p, "/") {
			return p
		}
		return p + "/"
	}
	am := norm(a.mnt)
	return strings.HasPrefix(norm(b.fsDev), am) || strings.HasPrefix(norm(b.mnt), am)
}
