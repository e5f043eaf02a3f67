package config

import (
	"cmp"
	"fmt"
	"strings"
)

// PoolVdev is one vdev of a pool as zpool create takes it.
type PoolVdev struct {
	Class   string // "" for data vdevs, else spare, log, dedup, special or cache
	Mode    string // mirror, raidz, ...; "" stripes
	Members []PoolMember
}

// PoolMember is one device of a PoolVdev.
type PoolMember struct {
	Device string // the path passed to zpool create
	Name   string // as the topology writes it; Device for a mode string
	Option string // option path below the pool, for messages; "" for a mode string
}

// Vdevs is the pool's vdev list in zpool create's order with disko's shorthands expanded
// (a mode string applies to all members, a disk name stands for its zfs partition), so
// that validation checks exactly the devices the format script passes. members are the
// devices that declared membership, in order; only a mode string uses them.
func (p *Zpool) Vdevs(members []string) []PoolVdev {
	topo := p.Mode.Topology
	if topo == nil {
		v := PoolVdev{Mode: p.Mode.Mode}
		for _, m := range members {
			v.Members = append(v.Members, PoolMember{Device: m, Name: m})
		}
		return []PoolVdev{v}
	}
	var out []PoolVdev
	vdevs := func(class string, list []Vdev) {
		var plain, redundant []PoolVdev
		for i, vd := range list {
			opt := fmt.Sprintf("mode.topology.%s[%d].members", cmp.Or(class, "vdev"), i)
			v := PoolVdev{Class: class, Mode: vd.Mode, Members: expand(vd.Members, opt)}
			if vd.Mode == "" { // disko lists plain vdevs first
				plain = append(plain, v)
			} else {
				redundant = append(redundant, v)
			}
		}
		out = append(append(out, plain...), redundant...)
	}
	devs := func(class string, list []string) {
		if len(list) > 0 {
			out = append(out, PoolVdev{Class: class, Members: expand(list, "mode.topology."+class)})
		}
	}
	vdevs("", topo.Vdev)
	devs("spare", topo.Spare)
	vdevs("log", topo.Log)
	vdevs("dedup", topo.Dedup)
	vdevs("special", topo.Special)
	devs("cache", topo.Cache)
	return out
}

func expand(names []string, option string) []PoolMember {
	var out []PoolMember
	for i, n := range names {
		dev := n
		if !strings.HasPrefix(n, "/") {
			dev = "/dev/disk/by-partlabel/disk-" + n + "-zfs"
		}
		out = append(out, PoolMember{Device: dev, Name: n, Option: fmt.Sprintf("%s[%d]", option, i)})
	}
	return out
}
