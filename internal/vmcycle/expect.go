package vmcycle

import (
	"fmt"
	"maps"
	"path"
	"reflect"
	"slices"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen/nixos"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// expect is the state a layout's scripts must leave behind once mounted, read from the
// model and from the NixOS configuration it implies (what the installed system would
// mount at boot must be what the mount script mounted).
type expect struct {
	mounts    []wantMount // by target
	swaps     []wantSwap
	swapfiles []wantSwapfile
	luks      []wantLUKS
	vgs       []wantVG
	mds       []wantMD
}

// wantMount is one entry of NixOS's fileSystems, as the mount script must mount it
// below the root mount point.
type wantMount struct {
	mountpoint string // in the installed system
	target     string // in the guest: root + mountpoint
	device     string
	fsType     string
	options    []string
}

// persistent tells whether a file written to the mount survives unmounting.
func (m wantMount) persistent() bool {
	return strings.HasPrefix(m.device, "/dev/")
}

// subvol is the btrfs subvolume the mount shows (its subvol= option), "/" for none.
func (m wantMount) subvol() string {
	for _, o := range m.options {
		if v, ok := strings.CutPrefix(o, "subvol="); ok {
			return path.Clean("/" + v)
		}
	}
	return "/"
}

type wantSwap struct {
	device   string
	priority *int
}

type wantSwapfile struct {
	path string // in the guest
	size int64
}

type wantLUKS struct {
	name, device string
	discards     bool
	keyFiles     []string // files that must open the container
	passwordFile string   // a file whose content (without trailing newlines) opens it
	ask          bool     // opened with a passphrase typed on the terminal
}

type wantVG struct {
	name string
	lvs  []wantLV
}

type wantLV struct {
	name, size, lvmType, pool string
}

type wantMD struct {
	name, device string
	level        int
	metadata     string
	members      []string // device paths, in the model's order
}

// expectOf derives the expected state of d mounted at root.
func expectOf(d *config.Devices, root string) (*expect, error) {
	cfg, err := nixos.Config(d)
	if err != nil {
		return nil, fmt.Errorf("nixos.Config: %w", err)
	}
	e := &expect{}
	fss, _ := cfg["fileSystems"].(map[string]any)
	for _, mp := range slices.Sorted(maps.Keys(fss)) {
		fs, _ := fss[mp].(map[string]any)
		m := wantMount{mountpoint: mp, target: path.Join(root, mp)}
		m.device, _ = fs["device"].(string)
		m.fsType, _ = fs["fsType"].(string)
		opts, _ := fs["options"].([]any)
		for _, o := range opts {
			s, _ := o.(string)
			m.options = append(m.options, s)
		}
		if m.device == "" || m.fsType == "" {
			return nil, fmt.Errorf("fileSystems.%q: no device or fsType in %v", mp, fs)
		}
		e.mounts = append(e.mounts, m)
	}
	var problems []string
	walk(d, func(n config.Node) {
		switch n := n.(type) {
		case *config.Swap:
			if !n.RandomEncryption {
				e.swaps = append(e.swaps, wantSwap{device: n.Device, priority: n.Priority})
			}
		case *config.BTRFS:
			add := func(mp string, files map[string]*config.Swapfile) {
				if mp == "" {
					return
				}
				for _, k := range slices.Sorted(maps.Keys(files)) {
					size, err := config.BinaryBytes(files[k].Size)
					if err != nil {
						problems = append(problems, err.Error())
					}
					e.swapfiles = append(e.swapfiles, wantSwapfile{path: path.Join(root, mp, files[k].Path), size: size})
				}
			}
			add(n.Mountpoint, n.Swap)
			for _, k := range slices.Sorted(maps.Keys(n.Subvolumes)) {
				add(n.Subvolumes[k].Mountpoint, n.Subvolumes[k].Swap)
			}
		case *config.LUKS:
			l := wantLUKS{name: n.Name, device: n.Device, passwordFile: n.PasswordFile}
			l.discards, _ = n.Settings["allowDiscards"].(bool)
			l.ask = n.AskPassword != nil && *n.AskPassword
			if kf, ok := n.Settings["keyFile"].(string); ok {
				l.keyFiles = append(l.keyFiles, kf)
			} else if n.KeyFile != "" && !l.ask && n.PasswordFile == "" {
				l.keyFiles = append(l.keyFiles, n.KeyFile)
			}
			l.keyFiles = append(l.keyFiles, n.AdditionalKeyFiles...)
			e.luks = append(e.luks, l)
		}
	})
	for _, name := range slices.Sorted(maps.Keys(d.LVMVG)) {
		vg := d.LVMVG[name]
		w := wantVG{name: vg.Name}
		for _, k := range slices.Sorted(maps.Keys(vg.LVs)) {
			lv := vg.LVs[k]
			w.lvs = append(w.lvs, wantLV{name: lv.Name, size: lv.Size, lvmType: lv.LVMType, pool: lv.Pool})
		}
		e.vgs = append(e.vgs, w)
	}
	members := map[string][]string{}
	walk(d, func(n config.Node) {
		if r, ok := n.(*config.MDRaid); ok {
			members[r.Name] = append(members[r.Name], r.Device)
		}
	})
	for _, name := range slices.Sorted(maps.Keys(d.MDADM)) {
		md := d.MDADM[name]
		e.mds = append(e.mds, wantMD{name: md.Name, device: md.Device, level: md.Level, metadata: md.Metadata, members: members[name]})
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return e, nil
}

// walk calls visit for every content node of d, parents first, in a stable order.
func walk(d *config.Devices, visit func(config.Node)) {
	var content func(n config.Node)
	content = func(n config.Node) {
		if isNil(n) {
			return
		}
		visit(n)
		switch n := n.(type) {
		case *config.GPT:
			for _, k := range config.GPTOrder(n) {
				content(n.Partitions[k].Content)
			}
		case *config.Table:
			for _, p := range n.Partitions {
				content(p.Content)
			}
		case *config.LUKS:
			content(n.Content)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(d.Disk)) {
		content(d.Disk[k].Content)
	}
	for _, k := range slices.Sorted(maps.Keys(d.MDADM)) {
		content(d.MDADM[k].Content)
	}
	for _, k := range slices.Sorted(maps.Keys(d.LVMVG)) {
		vg := d.LVMVG[k]
		for _, lk := range slices.Sorted(maps.Keys(vg.LVs)) {
			content(vg.LVs[lk].Content)
		}
	}
}

// isNil tells whether an interface holds nothing or a nil pointer.
func isNil(n config.Node) bool {
	if n == nil {
		return true
	}
	v := reflect.ValueOf(n)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
