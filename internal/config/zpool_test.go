package config

import (
	"reflect"
	"testing"
)

// TestZpoolVdevs: both mode forms expand to zpool create's vdev list, with disko's
// shorthands and order, and each topology member keeps the option path it came from.
func TestZpoolVdevs(t *testing.T) {
	sdb := PoolMember{Device: "/dev/sdb", Name: "/dev/sdb"}
	tests := []struct {
		name    string
		mode    ZpoolMode
		members []string
		want    []PoolVdev
	}{
		{"stripe", ZpoolMode{}, []string{"/dev/sdb"}, []PoolVdev{{Members: []PoolMember{sdb}}}},
		{"mode string", ZpoolMode{Mode: "mirror"}, []string{"/dev/sdb", "/dev/sdc"},
			[]PoolVdev{{Mode: "mirror", Members: []PoolMember{sdb, {Device: "/dev/sdc", Name: "/dev/sdc"}}}}},
		{"topology", ZpoolMode{Topology: &Topology{
			Vdev:    []Vdev{{Mode: "mirror", Members: []string{"a", "b"}}, {Members: []string{"/dev/sdc"}}},
			Spare:   []string{"d"},
			Log:     []Vdev{{Mode: "mirror", Members: []string{"/dev/l1"}}},
			Special: []Vdev{{Members: []string{"/dev/s1"}}},
			Cache:   []string{"/dev/c1", "/dev/c2"},
		}}, []string{"ignored"}, []PoolVdev{
			{Members: []PoolMember{{"/dev/sdc", "/dev/sdc", "mode.topology.vdev[1].members[0]"}}},
			{Mode: "mirror", Members: []PoolMember{
				{"/dev/disk/by-partlabel/disk-a-zfs", "a", "mode.topology.vdev[0].members[0]"},
				{"/dev/disk/by-partlabel/disk-b-zfs", "b", "mode.topology.vdev[0].members[1]"}}},
			{Class: "spare", Members: []PoolMember{{"/dev/disk/by-partlabel/disk-d-zfs", "d", "mode.topology.spare[0]"}}},
			{Class: "log", Mode: "mirror", Members: []PoolMember{{"/dev/l1", "/dev/l1", "mode.topology.log[0].members[0]"}}},
			{Class: "special", Members: []PoolMember{{"/dev/s1", "/dev/s1", "mode.topology.special[0].members[0]"}}},
			{Class: "cache", Members: []PoolMember{{"/dev/c1", "/dev/c1", "mode.topology.cache[0]"}, {"/dev/c2", "/dev/c2", "mode.topology.cache[1]"}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := (&Zpool{Mode: tt.mode}).Vdevs(tt.members)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Vdevs(%q) =\n%+v\nwant\n%+v", tt.members, got, tt.want)
			}
		})
	}
}
