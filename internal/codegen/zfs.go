package codegen

import (
	"maps"
	"slices"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// ZFS. A pool that exists (or can be imported) is kept; otherwise its members must be
// blank or carry this pool's label, and it is created with disko's options: -R with the
// root mount point, -m none when the root dataset has canmount=off, -o pool properties,
// -O root dataset properties, then the mode or the topology. Datasets are created when
// missing and their mutable properties updated in place otherwise (disko's only
// convergent step). Members are passed by their /dev/disk/by-* path when it exists (the
// name ZFS records), else by their node.

// zfsOneTime are the properties that can only be set at creation (PROP_ONETIME in zfs).
var zfsOneTime = []string{"encryption", "casesensitivity", "utf8only", "normalization", "volblocksize", "pbkdf2iters", "pbkdf2salt", "keyformat"}

func (g *gen) createZpool(w *writer, u *unit, pool *config.Zpool) error {
	key := memberKey{"zpool", u.name}
	byPath := map[string]sh{}
	var paths []string
	var all []sh
	for _, m := range g.members[key] {
		ref := g.info[m].ref
		node := g.resolve(w, ref)
		v := g.newVar()
		w.linef("disko_link %s %s %s", sh(v), Q(ref.path), node)
		byPath[ref.path] = sh(`"$` + v + `"`)
		paths = append(paths, ref.path)
		all = append(all, sh(`"$`+v+`"`))
	}
	var layout []sh
	class := ""
	for _, vd := range pool.Vdevs(paths) {
		if vd.Class != class {
			layout = append(layout, sh(vd.Class))
			class = vd.Class
		}
		if vd.Mode != "" {
			layout = append(layout, Q(vd.Mode))
		}
		for _, m := range vd.Members {
			dev, ok := byPath[m.Device]
			if !ok {
				return errorf(u.path.field("mode").field("topology"), "names a device that is not a member of this pool")
			}
			layout = append(layout, dev)
		}
	}
	var opts []string
	if pool.RootFsOptions["canmount"] == "off" {
		opts = append(opts, "-m", "none")
	}
	for _, k := range slices.Sorted(maps.Keys(pool.Options)) {
		opts = append(opts, "-o", k+"="+pool.Options[k])
	}
	for _, k := range slices.Sorted(maps.Keys(pool.RootFsOptions)) {
		opts = append(opts, "-O", k+"="+pool.RootFsOptions[k])
	}
	altroot := g.root
	if altroot == "" {
		altroot = "/"
	}
	w.ifElse("zpool list "+Q(pool.Name)+" >/dev/null 2>&1 || zpool import -N -f "+Q(pool.Name)+" >/dev/null 2>&1", func() {
		w.linef("disko_log %s", Q("keeping the existing pool "+pool.Name))
	}, func() {
		w.linef("disko_zfs_members %s %s %s", Q(pool.Name), u.path.q(), joinSh(all))
		w.linef("zpool create -f %s -R %s %s%s", Q(pool.Name), Q(altroot), wordsThen(opts), joinSh(layout))
		w.block(`if [ "$(zfs get -H -o value mounted `+Q(pool.Name)+`)" = yes ]; then`, "fi", func() {
			w.linef("zfs unmount %s", Q(pool.Name))
		})
	})
	g.datasetUpdate(w, u.path, pool.Name, rootDataset(pool).Options, pool.Mountpoint, true)
	for _, k := range slices.Sorted(maps.Keys(pool.Datasets)) {
		dp := u.path.field("datasets").attr(k)
		switch ds := pool.Datasets[k].(type) {
		case *config.ZFSFS:
			w.comment(dp)
			err := withCreateHooksErr(w, dp, ds, func() error {
				g.datasetUpdate(w, dp, pool.Name+"/"+ds.Name, ds.Options, ds.Mountpoint, false)
				return nil
			})
			if err != nil {
				return err
			}
		case *config.ZFSVolume:
			w.comment(dp)
			err := withCreateHooksErr(w, dp, ds, func() error {
				full := pool.Name + "/" + ds.Name
				w.block("if ! zfs get type "+Q(full)+" >/dev/null 2>&1; then", "fi", func() {
					w.linef("%s", words(ZFSCreateArgs(pool.Name, ds)))
				})
				if ds.Content == nil {
					w.linef("disko_dev disko_seen %s", Q(ds.Device))
					return nil
				}
				v := g.newVar()
				w.linef("disko_dev %s %s", sh(v), Q(ds.Device))
				return g.create(w, ds.Content, sh(`"$`+v+`"`))
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// datasetUpdate creates a filesystem dataset (zfs create -up: no mount, parents too), or
// sets its mutable properties when it exists. The pool's root dataset is never created.
func (g *gen) datasetUpdate(w *writer, p optPath, full string, options map[string]string, mountpoint string, root bool) {
	create := ZFSProperties(options, mountpoint)
	var update []string
	for _, k := range slices.Sorted(maps.Keys(create)) {
		if !ZFSCreationOnly(k) {
			update = append(update, k+"="+create[k])
		}
	}
	createArgs := propertyArgs(create)
	if root {
		if len(update) > 0 {
			w.block("if zfs get type "+Q(full)+" >/dev/null 2>&1; then", "fi", func() {
				w.linef("zfs set -u %s %s", words(update), Q(full))
			})
		}
		return
	}
	if len(update) == 0 {
		w.block("if ! zfs get type "+Q(full)+" >/dev/null 2>&1; then", "fi", func() {
			w.linef("zfs create -up %s %s", Q(full), words(createArgs))
		})
		return
	}
	w.ifElse("! zfs get type "+Q(full)+" >/dev/null 2>&1", func() {
		w.linef("zfs create -up %s %s", Q(full), words(createArgs))
	}, func() {
		w.linef("zfs set -u %s %s", words(update), Q(full))
	})
}

// ZFSProperties are the properties the format script gives a filesystem dataset: its
// options, and its mountpoint unless the options set one.
func ZFSProperties(options map[string]string, mountpoint string) map[string]string {
	props := map[string]string{}
	if mountpoint != "" {
		props["mountpoint"] = mountpoint
	}
	maps.Copy(props, options)
	return props
}

// ZFSCreationOnly reports whether zfs sets a property only when it creates the dataset
// (zfs set refuses it afterwards).
func ZFSCreationOnly(prop string) bool { return slices.Contains(zfsOneTime, prop) }

// ZFSCreateArgs are the words of the zfs create command with which the format script makes
// a missing dataset or volume of pool; the incremental apply runs the same command.
func ZFSCreateArgs(pool string, ds config.DatasetNode) []string {
	switch ds := ds.(type) {
	case *config.ZFSFS:
		return append([]string{"zfs", "create", "-up", pool + "/" + ds.Name}, propertyArgs(ZFSProperties(ds.Options, ds.Mountpoint))...)
	case *config.ZFSVolume:
		args := append([]string{"zfs", "create", pool + "/" + ds.Name}, propertyArgs(ds.Options)...)
		return append(append(args, "-V", ds.Size), ds.ExtraArgs...)
	}
	return nil
}

// propertyArgs are -o NAME=VALUE pairs, sorted by name.
func propertyArgs(props map[string]string) []string {
	var args []string
	for _, k := range slices.Sorted(maps.Keys(props)) {
		args = append(args, "-o", k+"="+props[k])
	}
	return args
}

// rootDataset is the pool's root dataset as disko models it (its "__root" dataset).
func rootDataset(pool *config.Zpool) *config.ZFSFS {
	return &config.ZFSFS{Type: "zfs_fs", Name: "", Options: pool.RootFsOptions, Mountpoint: pool.Mountpoint, MountOptions: pool.MountOptions}
}

func (g *gen) mountZpool(u *unit, pool *config.Zpool, owners []*hooked) {
	altroot := g.root
	if altroot == "" {
		altroot = "/"
	}
	g.addAction(&action{phase: phaseDev, owners: owners,
		mount: g.text(func(w *writer) {
			w.comment(u.path)
			w.linef("zpool list %s >/dev/null 2>&1 || zpool import -l -R %s %s", Q(pool.Name), Q(altroot), Q(pool.Name))
		}),
		unmount: g.text(func(w *writer) {
			w.comment(u.path)
			w.block("if zpool list "+Q(pool.Name)+" >/dev/null 2>&1; then", "fi", func() {
				w.linef("zpool export %s", Q(pool.Name))
			})
		})})
	g.mountDataset(u.path, pool.Name, rootDataset(pool), owners)
	for _, k := range slices.Sorted(maps.Keys(pool.Datasets)) {
		dp := u.path.field("datasets").attr(k)
		switch ds := pool.Datasets[k].(type) {
		case *config.ZFSFS:
			g.mountDataset(dp, pool.Name+"/"+ds.Name, ds, g.own(owners, dp, ds))
		case *config.ZFSVolume:
			own := g.own(owners, dp, ds)
			g.zfsKey(dp, pool.Name+"/"+ds.Name, ds.Options, own)
			if ds.Content != nil {
				g.mounts(ds.Content, own)
			}
		}
	}
}

// zfsKey loads a dataset's key when mounting and unloads it when unmounting, when the
// dataset has a key location.
func (g *gen) zfsKey(p optPath, full string, options map[string]string, owners []*hooked) {
	if loc, ok := options["keylocation"]; !ok || loc == "none" {
		return
	}
	g.addAction(&action{phase: phaseDev, owners: owners,
		mount: g.text(func(w *writer) {
			w.comment(p)
			w.block(`if [ "$(zfs get -H -o value keystatus `+Q(full)+`)" = unavailable ]; then`, "fi", func() {
				w.linef("zfs load-key %s", Q(full))
			})
		}),
		unmount: g.text(func(w *writer) {
			w.comment(p)
			w.block(`if [ "$(zfs get -H -o value keystatus `+Q(full)+` 2>/dev/null)" = available ]; then`, "fi", func() {
				w.linef("zfs unload-key %s", Q(full))
			})
		})})
}

func (g *gen) mountDataset(p optPath, full string, ds *config.ZFSFS, owners []*hooked) {
	g.zfsKey(p, full, ds.Options, owners)
	if ds.Mountpoint == "" || ds.Options["mountpoint"] == "none" || ds.Options["canmount"] == "off" {
		return
	}
	target := g.target(ds.Mountpoint)
	opts := slices.Clone(ds.MountOptions)
	if ds.Options["mountpoint"] != "legacy" {
		opts = append(opts, "zfsutil")
	}
	g.addAction(&action{phase: phaseFS, mnt: ds.Mountpoint, fsDev: full, owners: owners,
		mount: g.text(func(w *writer) {
			w.comment(p)
			w.block("if ! disko_mounted "+Q(full)+" "+Q(target)+"; then", "fi", func() {
				w.linef("mount -t zfs %s-o X-mount.mkdir %s %s", mountOpts(opts), Q(full), Q(target))
			})
		}),
		unmount: g.text(func(w *writer) {
			w.comment(p)
			w.block("if disko_mounted "+Q(full)+" "+Q(target)+"; then", "fi", func() {
				w.linef("umount %s", Q(target))
			})
		})})
}

func joinSh(list []sh) sh {
	s := make([]string, len(list))
	for i, x := range list {
		s[i] = string(x)
	}
	return sh(strings.Join(s, " "))
}
