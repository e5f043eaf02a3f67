package nixos

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// The layouts below are built by hand the way config.Load leaves them: every device path,
// name and default filled in.

func ptr[T any](v T) *T { return &v }

func gptDisk(device string, parts map[string]*config.GPTPartition) *config.Disk {
	return &config.Disk{Type: "disk", Device: device, Content: &config.GPT{Type: "gpt", Device: device, Partitions: parts}}
}

func part(typ, device string, content config.PartitionNode) *config.GPTPartition {
	return &config.GPTPartition{Type: typ, Device: device, Content: content}
}

func fs(device, format, mountpoint string, opts ...string) *config.Filesystem {
	if len(opts) == 0 {
		opts = []string{"defaults"}
	}
	return &config.Filesystem{Type: "filesystem", Device: device, Format: format, Mountpoint: mountpoint, MountOptions: opts}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		d    *config.Devices
		want string // JSON
	}{
		{
			name: "empty layout still defines disko's three options",
			d:    &config.Devices{},
			want: `{"boot":{},"fileSystems":{},"swapDevices":[]}`,
		},
		{
			name: "swap as disko shapes it, resume device, BIOS boot partition",
			d: &config.Devices{Disk: map[string]*config.Disk{"main": gptDisk("/dev/vdb", map[string]*config.GPTPartition{
				"boot": part("EF02", "/dev/disk/by-partlabel/disk-main-boot", nil),
				"enc": part("8200", "/dev/disk/by-partlabel/disk-main-enc", &config.Swap{
					Type: "swap", Device: "/dev/disk/by-partlabel/disk-main-enc", RandomEncryption: true, Priority: ptr(-2),
					MountOptions: []string{"defaults"}}),
				"plain": part("8200", "/dev/disk/by-partlabel/disk-main-plain", &config.Swap{
					Type: "swap", Device: "/dev/disk/by-partlabel/disk-main-plain", DiscardPolicy: "both", ResumeDevice: true,
					MountOptions: []string{"defaults"}}),
			})}},
			want: `{"boot":{"loader":{"grub":{"devices":["/dev/vdb"]}},"resumeDevice":"/dev/disk/by-partlabel/disk-main-plain"},
				"fileSystems":{},
				"swapDevices":[
				 {"device":"/dev/disk/by-partlabel/disk-main-enc","discardPolicy":null,"options":["defaults"],"priority":-2,"randomEncryption":{"allowDiscards":false,"enable":true}},
				 {"device":"/dev/disk/by-partlabel/disk-main-plain","discardPolicy":"both","options":["defaults"],"priority":null,"randomEncryption":{"allowDiscards":true,"enable":false}}]}`,
		},
		{
			name: "GRUB devices only for the verbatim EF02 code, in disk order; legacy table partitions",
			d: &config.Devices{Disk: map[string]*config.Disk{
				"b": gptDisk("/dev/sdb", map[string]*config.GPTPartition{"x": part("EF02", "/dev/x", nil)}),
				"a": gptDisk("/dev/sda", map[string]*config.GPTPartition{"x": part("EF02", "/dev/y", nil)}),
				"c": gptDisk("/dev/sdc", map[string]*config.GPTPartition{"x": part("ef02", "/dev/z", nil)}),
				"d": {Type: "disk", Device: "/dev/sdd", Content: &config.Table{Type: "table", Device: "/dev/sdd", Partitions: []*config.TablePartition{
					{Device: "/dev/sdd1", Flags: []string{"bios_grub"}},
					{Device: "/dev/sdd2", Content: fs("/dev/sdd2", "ext4", "/")},
				}}},
			}},
			want: `{"boot":{"loader":{"grub":{"devices":["/dev/sda","/dev/sdb"]}}},
				"fileSystems":{"/":{"device":"/dev/sdd2","fsType":"ext4","options":["defaults"]}},"swapDevices":[]}`,
		},
		{
			name: "LUKS: settings override device, initrdUnlock false emits nothing but the content",
			d: &config.Devices{Disk: map[string]*config.Disk{"main": gptDisk("/dev/vda", map[string]*config.GPTPartition{
				"a": part("8300", "/dev/disk/by-partlabel/disk-main-a", &config.LUKS{Type: "luks", Name: "crypted",
					Device: "/dev/disk/by-partlabel/disk-main-a", InitrdUnlock: true,
					Settings: map[string]any{"allowDiscards": true, "keyFileSize": json.Number("4096"), "keyFileOffset": 512.0,
						"crypttabExtraOpts": []any{"fido2-device=auto"}, "device": "/dev/disk/by-uuid/1234"},
					Content: fs("/dev/mapper/crypted", "ext4", "/")}),
				"b": part("8300", "/dev/disk/by-partlabel/disk-main-b", &config.LUKS{Type: "luks", Name: "late",
					Device: "/dev/disk/by-partlabel/disk-main-b", InitrdUnlock: false,
					Content: fs("/dev/mapper/late", "xfs", "/srv")}),
			})}},
			want: `{"boot":{"initrd":{"luks":{"devices":{"crypted":{"allowDiscards":true,"crypttabExtraOpts":["fido2-device=auto"],
					"device":"/dev/disk/by-uuid/1234","keyFileOffset":512,"keyFileSize":4096}}}}},
				"fileSystems":{"/":{"device":"/dev/mapper/crypted","fsType":"ext4","options":["defaults"]},
					"/srv":{"device":"/dev/mapper/late","fsType":"xfs","options":["defaults"]}},"swapDevices":[]}`,
		},
		{
			name: "LVM kernel modules in disko's order, duplicates kept; mdadm",
			d: &config.Devices{
				LVMVG: map[string]*config.LVMVG{"pool": {Type: "lvm_vg", Name: "pool", LVs: map[string]*config.LV{
					"root":  {Name: "root", LVMType: "mirror", Device: "/dev/pool/root", Content: fs("/dev/pool/root", "ext4", "/")},
					"home":  {Name: "home", LVMType: "raid0", Device: "/dev/pool/home", Content: fs("/dev/pool/home", "ext4", "/home")},
					"r5":    {Name: "r5", LVMType: "raid5", Device: "/dev/pool/r5"},
					"thin":  {Name: "thin", LVMType: "thin-pool", Device: "/dev/pool/thin"},
					"tlv":   {Name: "tlv", LVMType: "thinlv", Pool: "thin", Device: "/dev/pool/tlv"},
					"plain": {Name: "plain", Device: "/dev/pool/plain"},
				}}},
				MDADM: map[string]*config.MDADM{"boot": {Type: "mdadm", Name: "boot", Device: "/dev/md/boot",
					Content: fs("/dev/md/boot", "vfat", "/boot", "umask=0077")}},
			},
			want: `{"boot":{"initrd":{"kernelModules":["dm-snapshot","dm-raid0","dm-raid5","dm-mirror","dm-thin-pool",
					"dm-raid","raid0","dm-raid","raid456","dm-mirror","dm-raid","dm-raid"]},"swraid":{"enable":true}},
				"fileSystems":{"/":{"device":"/dev/pool/root","fsType":"ext4","options":["defaults"]},
					"/boot":{"device":"/dev/md/boot","fsType":"vfat","options":["umask=0077"]},
					"/home":{"device":"/dev/pool/home","fsType":"ext4","options":["defaults"]}},"swapDevices":[]}`,
		},
		{
			name: "btrfs subvolumes and swap files",
			d: &config.Devices{Disk: map[string]*config.Disk{"main": {Type: "disk", Device: "/dev/vda", Content: &config.BTRFS{
				Type: "btrfs", Device: "/dev/vda", Mountpoint: "/top", MountOptions: []string{"defaults"},
				Swap: map[string]*config.Swapfile{"s": {Path: "s", Options: []string{"defaults"}}},
				Subvolumes: map[string]*config.Subvolume{
					"/root": {Name: "/root", Mountpoint: "/", MountOptions: []string{"compress=zstd"}},
					"/swap": {Name: "/swap", Mountpoint: "/.swapvol", MountOptions: []string{"defaults"},
						Swap: map[string]*config.Swapfile{"f": {Path: "rel", Priority: ptr(5), Options: []string{"defaults"}}}},
					"/hidden": {Name: "/hidden", MountOptions: []string{"defaults"}},
				}}}}},
			want: `{"boot":{},"fileSystems":{
					"/":{"device":"/dev/vda","fsType":"btrfs","options":["compress=zstd","subvol=/root"]},
					"/.swapvol":{"device":"/dev/vda","fsType":"btrfs","options":["defaults","subvol=/swap"]},
					"/top":{"device":"/dev/vda","fsType":"btrfs","options":["defaults"]}},
				"swapDevices":[{"device":"/.swapvol/rel","options":["defaults"],"priority":5},
					{"device":"/top/s","options":["defaults"],"priority":null}]}`,
		},
		{
			name: "ZFS: root dataset, zfsutil unless legacy, none and canmount=off unmounted, zvol content",
			d: &config.Devices{Zpool: map[string]*config.Zpool{"zroot": {Type: "zpool", Name: "zroot", Mountpoint: "/",
				MountOptions: []string{"defaults"}, RootFsOptions: map[string]string{"compression": "zstd"},
				Datasets: map[string]config.DatasetNode{
					"legacy": &config.ZFSFS{Type: "zfs_fs", Name: "legacy", Mountpoint: "/legacy", MountOptions: []string{"defaults"},
						Options: map[string]string{"mountpoint": "legacy"}},
					"root/nix": &config.ZFSFS{Type: "zfs_fs", Name: "root/nix", Mountpoint: "/nix", MountOptions: []string{"noatime"}},
					"none":     &config.ZFSFS{Type: "zfs_fs", Name: "none", Mountpoint: "/none", Options: map[string]string{"mountpoint": "none"}},
					"off":      &config.ZFSFS{Type: "zfs_fs", Name: "off", Mountpoint: "/off", Options: map[string]string{"canmount": "off"}},
					"nomp":     &config.ZFSFS{Type: "zfs_fs", Name: "nomp"},
					"swap": &config.ZFSVolume{Type: "zfs_volume", Name: "swap", Device: "/dev/zvol/zroot/swap",
						Content: &config.Swap{Type: "swap", Device: "/dev/zvol/zroot/swap", MountOptions: []string{"defaults"}}},
				}}}},
			want: `{"boot":{},"fileSystems":{
					"/":{"device":"zroot","fsType":"zfs","options":["defaults","zfsutil"]},
					"/legacy":{"device":"zroot/legacy","fsType":"zfs","options":["defaults"]},
					"/nix":{"device":"zroot/root/nix","fsType":"zfs","options":["noatime","zfsutil"]}},
				"swapDevices":[{"device":"/dev/zvol/zroot/swap","discardPolicy":null,"options":["defaults"],"priority":null,
					"randomEncryption":{"allowDiscards":false,"enable":false}}]}`,
		},
		{
			name: "bcachefs: by-uuid, X-mount options first without duplicates, neededForBoot; nodev",
			d: &config.Devices{
				BcachefsFilesystems: map[string]*config.BcachefsFilesystem{"pool": {Type: "bcachefs_filesystem", Name: "pool",
					UUID: "88d9c058-757d-c06e-0fb7-a612f2db8a7a", Mountpoint: "/data", MountOptions: []string{"X-mount.mkdir", "noatime"},
					Subvolumes: map[string]*config.BcachefsSubvolume{
						"/subvolumes/root": {Name: "/subvolumes/root", Mountpoint: "/", MountOptions: []string{"verbose", "X-mount.mkdir"}},
						"unmounted":        {Name: "unmounted"},
					}}},
				Nodev: map[string]*config.Nodev{"/tmp": {Type: "nodev", FSType: "tmpfs", Device: "tmpfs", Mountpoint: "/tmp",
					MountOptions: []string{"size=200M"}}},
			},
			want: `{"boot":{},"fileSystems":{
					"/":{"device":"/dev/disk/by-uuid/88d9c058-757d-c06e-0fb7-a612f2db8a7a","fsType":"bcachefs","neededForBoot":true,
						"options":["X-mount.mkdir","X-mount.subdir=subvolumes/root","verbose"]},
					"/data":{"device":"/dev/disk/by-uuid/88d9c058-757d-c06e-0fb7-a612f2db8a7a","fsType":"bcachefs","neededForBoot":true,
						"options":["X-mount.mkdir","noatime"]},
					"/tmp":{"device":"tmpfs","fsType":"tmpfs","options":["size=200M"]}},"swapDevices":[]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := JSON(tt.d)
			if err != nil {
				t.Fatalf("JSON: %v", err)
			}
			var gotV, wantV any
			if err := json.Unmarshal(got, &gotV); err != nil {
				t.Fatalf("our JSON does not parse: %v\n%s", err, got)
			}
			if err := json.Unmarshal([]byte(tt.want), &wantV); err != nil {
				t.Fatalf("bad want JSON: %v", err)
			}
			if text(gotV) != text(wantV) {
				t.Errorf("got\n%s\nwant\n%s", text(gotV), text(wantV))
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	swap := func(device string, resume bool) *config.Swap {
		return &config.Swap{Type: "swap", Device: device, ResumeDevice: resume}
	}
	tests := []struct {
		name string
		d    *config.Devices
		want []string // every problem, in order
	}{
		{
			name: "nil layout",
			want: []string{"disko.devices: no layout given"},
		},
		{
			name: "two nodes at one mount point, device not loaded",
			d: &config.Devices{
				Disk:  map[string]*config.Disk{"a": {Type: "disk", Device: "/dev/a", Content: fs("/dev/a", "ext4", "/")}},
				Nodev: map[string]*config.Nodev{"/": {Type: "nodev", FSType: "tmpfs", Mountpoint: "/"}},
			},
			want: []string{
				`disko.devices.nodev."/".device: is empty: config.Load names every device; load the layout with config.Load`,
				`disko.devices.nodev."/": mounts at "/", as disko.devices.disk.a.content does: NixOS would merge the two into one broken entry`,
			},
		},
		{
			name: "two resume devices, duplicate LUKS names",
			d: &config.Devices{Disk: map[string]*config.Disk{
				"a": {Type: "disk", Device: "/dev/a", Content: swap("/dev/a", true)},
				"b": {Type: "disk", Device: "/dev/b", Content: swap("/dev/b", true)},
				"c": {Type: "disk", Device: "/dev/c", Content: &config.LUKS{Type: "luks", Name: "x", Device: "/dev/c", InitrdUnlock: true}},
				"d": {Type: "disk", Device: "/dev/d", Content: &config.LUKS{Type: "luks", Name: "x", Device: "/dev/d", InitrdUnlock: true}},
			}},
			want: []string{
				"disko.devices.disk.b.content: resumeDevice is set here and at disko.devices.disk.a.content: NixOS has only one boot.resumeDevice",
				"disko.devices.disk.d.content.name: \"x\" is also the name of the LUKS container at disko.devices.disk.c.content: device-mapper names must be unique",
			},
		},
		{
			name: "swap file without a mount point, bcachefs without uuid, bad settings value",
			d: &config.Devices{
				Disk: map[string]*config.Disk{
					"a": {Type: "disk", Device: "/dev/a", Content: &config.BTRFS{Type: "btrfs", Device: "/dev/a",
						Subvolumes: map[string]*config.Subvolume{"@": {Name: "@", Swap: map[string]*config.Swapfile{"f": {Path: "f"}}}}}},
					"b": {Type: "disk", Device: "/dev/b", Content: &config.LUKS{Type: "luks", Name: "b", Device: "/dev/b", InitrdUnlock: true,
						Settings: map[string]any{"bad": struct{}{}}}},
				},
				BcachefsFilesystems: map[string]*config.BcachefsFilesystem{"x": {Type: "bcachefs_filesystem", Name: "x", Mountpoint: "/"}},
			},
			want: []string{
				"disko.devices.bcachefs_filesystems.x.uuid: is empty: config.Load derives it from the name; load the layout with config.Load",
				`disko.devices.disk.a.content.subvolumes."@".swap.f: a swap file needs its filesystem or subvolume to be mounted: set mountpoint at disko.devices.disk.a.content.subvolumes."@"`,
				"disko.devices.disk.b.content.settings.bad: a struct {} cannot be written to the NixOS configuration",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Config(tt.d)
			if err == nil {
				t.Fatal("Config succeeded, want an error")
			}
			var probs config.Problems
			var got []string
			if errors.As(err, &probs) {
				for _, p := range probs {
					got = append(got, p.String())
				}
			} else {
				got = []string{err.Error()}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
