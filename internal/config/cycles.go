package config

import (
	"maps"
	"reflect"
	"slices"
	"strings"
)

// A top-level device (a disk, array, volume group, pool, bcachefs filesystem or nodev
// mount) must be built after the ones it is built on: an aggregate after every device
// holding one of its members, and any device after those whose device paths its options
// name (btrfs's `-d raid1 /dev/mapper/p1`, a pool member given by path). The format
// script orders the devices that way (codegen's graph.go); here the same relation is
// checked for cycles, which no order satisfies.

// topDevice is one top-level device and what the cycle check needs of its tree.
type topDevice struct {
	path     Path
	produced []string            // device paths its tree creates
	words    []string            // every word of its option strings (hooks excepted)
	members  []string            // aggregates ("kind.name") that it holds members of
	deps     map[*topDevice]bool // the top-level devices it is built on
}

// cycles reports each top-level device that depends on itself through others.
func (v *validator) cycles() {
	var all []*topDevice
	byAggregate := map[string]*topDevice{}
	add := func(kind, key string, node any) {
		t := &topDevice{path: rootPath.Field(kind).Attr(key), deps: map[*topDevice]bool{}}
		t.collect(reflect.ValueOf(node))
		all = append(all, t)
		byAggregate[kind+"."+key] = t
	}
	for _, key := range slices.Sorted(maps.Keys(v.d.BcachefsFilesystems)) {
		add("bcachefs_filesystems", key, v.d.BcachefsFilesystems[key])
	}
	for _, key := range slices.Sorted(maps.Keys(v.d.Disk)) {
		add("disk", key, v.d.Disk[key])
	}
	for _, key := range slices.Sorted(maps.Keys(v.d.LVMVG)) {
		add("lvm_vg", key, v.d.LVMVG[key])
	}
	for _, key := range slices.Sorted(maps.Keys(v.d.MDADM)) {
		add("mdadm", key, v.d.MDADM[key])
	}
	for _, key := range slices.Sorted(maps.Keys(v.d.Nodev)) {
		add("nodev", key, v.d.Nodev[key])
	}
	for _, key := range slices.Sorted(maps.Keys(v.d.Zpool)) {
		add("zpool", key, v.d.Zpool[key])
	}
	owner := map[string]*topDevice{}
	for _, t := range all {
		for _, p := range t.produced {
			owner[p] = t
		}
	}
	for _, t := range all {
		for _, agg := range t.members {
			if a := byAggregate[agg]; a != nil && a != t {
				a.deps[t] = true
			}
		}
		for _, w := range t.words {
			if o := owner[w]; o != nil && o != t {
				t.deps[o] = true
			}
		}
	}
	done := map[*topDevice]bool{}
	for _, t := range all {
		if done[t] {
			continue
		}
		if loop := t.cycle(nil, done); loop != nil {
			names := make([]string, len(loop))
			for i, d := range loop {
				names[i] = d.path.String()
			}
			v.add(loop[0].path, "the devices depend on each other in a cycle: %s (a device path in one's options names a device that another creates)", strings.Join(names, " -> "))
			for _, d := range loop {
				done[d] = true
			}
		}
	}
}

// cycle returns a path from t back to a device on stack, or nil; done marks devices whose
// dependencies hold no cycle.
func (t *topDevice) cycle(stack []*topDevice, done map[*topDevice]bool) []*topDevice {
	if i := slices.Index(stack, t); i >= 0 {
		return append(slices.Clone(stack[i:]), t)
	}
	if done[t] {
		return nil
	}
	stack = append(stack, t)
	deps := make([]*topDevice, 0, len(t.deps))
	for d := range t.deps {
		deps = append(deps, d)
	}
	slices.SortFunc(deps, func(a, b *topDevice) int { return strings.Compare(a.path.String(), b.path.String()) })
	for _, d := range deps {
		if loop := d.cycle(stack, done); loop != nil {
			return loop
		}
	}
	done[t] = true
	return nil
}

// collect walks a node's tree: the device paths it creates, the words of its option
// strings, and the aggregates it holds members of.
func (t *topDevice) collect(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		t.words = append(t.words, strings.Fields(v.String())...)
		return
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			t.collect(v.Elem())
		}
		return
	case reflect.Slice:
		for i := range v.Len() {
			t.collect(v.Index(i))
		}
		return
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			t.collect(iter.Key())
			t.collect(iter.Value())
		}
		return
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() && f.Type != reflect.TypeFor[Hooks]() {
				t.collect(v.Field(i))
			}
		}
	}
	if !v.CanAddr() {
		return
	}
	switch n := v.Addr().Interface().(type) {
	case *GPTPartition:
		t.produced = append(t.produced, n.Device)
	case *TablePartition:
		t.produced = append(t.produced, n.Device)
	case *LUKS:
		t.produced = append(t.produced, "/dev/mapper/"+n.Name)
	case *MDADM:
		t.produced = append(t.produced, n.Device)
	case *LV:
		t.produced = append(t.produced, n.Device)
	case *ZFSVolume:
		t.produced = append(t.produced, n.Device)
	case *LVMPV:
		t.members = append(t.members, "lvm_vg."+n.VG)
	case *MDRaid:
		t.members = append(t.members, "mdadm."+n.Name)
	case *ZFS:
		t.members = append(t.members, "zpool."+n.Pool)
	case *Bcachefs:
		t.members = append(t.members, "bcachefs_filesystems."+n.Filesystem)
	}
}
