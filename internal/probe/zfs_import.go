package probe

import (
	"maps"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// The import of ZFS: a zfs_member's pool goes to the layout's zpool once, with its mode
// (or topology), its locally set pool properties, its root dataset's local properties as
// rootFsOptions, and its datasets and volumes with their local properties and mount
// points. The properties an import of the pool sets (altroot, cachefile) are left out,
// and mount points are written as the installed system sees them (without altroot).

// poolImportOnly are pool properties that zpool create -R and zpool import set for the
// running system; they are not part of the layout.
var poolImportOnly = map[string]bool{"altroot": true, "cachefile": true}

// zfsMember is a member of a pool; the pool goes to the layout's zpool when it is read.
func (im *importer) zfsMember(where string, c *Content) config.Node {
	p := im.s.Pools[c.Pool]
	switch {
	case c.Unreadable != "":
		im.note("%s: the ZFS member could not be read (%s); its content is left out (null: left untouched)", where, c.Unreadable)
		return nil
	case p == nil || p.Unreadable != "":
		reason := "it was not probed"
		if p != nil {
			reason = p.Unreadable
		}
		im.note("%s: the ZFS pool %s could not be read (%s); the member is left out (null: left untouched)", where, c.Pool, reason)
		return nil
	case !p.Imported:
		im.note("%s: the ZFS pool %s is not imported, so the member is left out (null: left untouched); import it (zpool import -N %s) and import again", where, c.Pool, c.Pool)
		return nil
	}
	if im.d.Zpool[p.Name] == nil {
		im.d.Zpool = ensureMap(im.d.Zpool)
		im.d.Zpool[p.Name] = im.pool(p)
	}
	return &config.ZFS{Type: "zfs", Pool: p.Name}
}

func (im *importer) pool(p *Pool) *config.Zpool {
	z := &config.Zpool{Type: "zpool", MountOptions: []string{"defaults"}, Datasets: map[string]config.DatasetNode{}}
	z.Mode = poolMode(p.Vdevs)
	for k, v := range p.Properties {
		if !poolImportOnly[k] {
			z.Options = ensureMap(z.Options)
			z.Options[k] = v
		}
	}
	altroot := p.Properties["altroot"]
	for _, name := range sortedNames(p.Datasets) {
		ds := p.Datasets[name]
		rel, isChild := strings.CutPrefix(name, p.Name+"/")
		if name == p.Name {
			opts, mp := im.datasetOptions(ds, altroot)
			z.RootFsOptions, z.Mountpoint = opts, mp
			continue
		}
		if !isChild {
			continue
		}
		switch ds.Type {
		case "volume":
			v := &config.ZFSVolume{Type: "zfs_volume", Size: sizeOf(ds.Volsize, 1), MountOptions: []string{"defaults"}}
			for k, val := range ds.Local {
				if k != "volsize" {
					v.Options = ensureMap(v.Options)
					v.Options[k] = val
				}
			}
			for k, val := range ds.Fixed {
				v.Options = ensureMap(v.Options)
				v.Options[k] = val
			}
			if ds.Unreadable != "" {
				im.note("ZFS volume %s: its content is left out (null: left untouched): %s", name, ds.Unreadable)
			} else if n := im.content("ZFS volume "+name, ds.Content); n != nil {
				v.Content = n.(config.PartitionNode)
			}
			z.Datasets[rel] = v
		default:
			f := &config.ZFSFS{Type: "zfs_fs", MountOptions: []string{"defaults"}}
			f.Options, f.Mountpoint = im.datasetOptions(ds, altroot)
			z.Datasets[rel] = f
		}
	}
	return z
}

// datasetOptions are a filesystem dataset's layout options (its local properties and
// the creation-only ones it was made with) and its mount point: the mountpoint property
// without altroot, or where a legacy mount is mounted below the import's root.
func (im *importer) datasetOptions(ds *Dataset, altroot string) (map[string]string, string) {
	opts := maps.Clone(ds.Local)
	for k, v := range ds.Fixed {
		opts = ensureMap(opts)
		opts[k] = v
	}
	mp := ""
	switch prop, local := ds.Local["mountpoint"]; {
	case !local:
	case prop == "legacy":
		mp, _ = mountOf(&Content{Mounts: ds.Mounts}, "/", im.root)
	case strings.HasPrefix(prop, "/"):
		mp = WithoutAltroot(prop, altroot)
		delete(opts, "mountpoint")
	}
	return opts, mp
}

// WithoutAltroot is a mountpoint property as zfs shows it (below the pool's altroot)
// as the installed system sees it.
func WithoutAltroot(mountpoint, altroot string) string {
	if altroot == "" || altroot == "/" || !strings.HasPrefix(mountpoint, "/") {
		return mountpoint
	}
	if mp, ok := below(mountpoint, altroot); ok {
		return mp
	}
	return mountpoint
}

// poolMode is a mode string when the pool is one data vdev (or a stripe of single
// devices) and nothing else, and a topology otherwise.
func poolMode(vdevs []PoolVdev) config.ZpoolMode {
	simple := true
	for _, v := range vdevs {
		if v.Class != "" || (len(vdevs) > 1 && v.Mode != "") {
			simple = false
		}
	}
	if simple && len(vdevs) > 0 {
		return config.ZpoolMode{Mode: vdevs[0].Mode}
	}
	t := &config.Topology{Type: "topology"}
	for _, v := range vdevs {
		vd := config.Vdev{Mode: v.Mode, Members: v.Members}
		switch v.Class {
		case "":
			t.Vdev = append(t.Vdev, vd)
		case "log":
			t.Log = append(t.Log, vd)
		case "dedup":
			t.Dedup = append(t.Dedup, vd)
		case "special":
			t.Special = append(t.Special, vd)
		case "cache":
			t.Cache = append(t.Cache, v.Members...)
		case "spare":
			t.Spare = append(t.Spare, v.Members...)
		}
	}
	return config.ZpoolMode{Topology: t}
}
