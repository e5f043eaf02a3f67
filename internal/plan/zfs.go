package plan

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/probe"
)

// ZFS pools are compared after the disks, as volume groups are: an imported pool keeps
// its vdevs (apply never creates, extends or reshapes a pool), missing datasets and
// volumes are created with the format script's zfs create arguments, properties the
// layout sets are set with zfs set (zpool set for the pool's) unless zfs only takes them
// at creation, volumes grow, and datasets the layout does not name are kept.
//
// Properties are compared with the values set locally on the dataset (zfs get, source
// local): a value the layout sets that the dataset only inherits or has by default is
// set locally once, and then compares equal.

// zpool compares a pool with the pool its members belong to.
func (pl *planner) zpool(p string, z *config.Zpool, s *probe.State) {
	ap := s.Pools[z.Name]
	switch {
	case ap == nil:
		pl.refuse(ZFSPoolMissing, p, "no member of a ZFS pool %q was found on the probed disks; apply does not create pools (their members would have to be made in this run): use the format script", z.Name)
		return
	case ap.Unreadable != "":
		pl.refuse(ZFSPoolUnreadable, p, "cannot read the ZFS pool %q: %s", z.Name, ap.Unreadable)
		return
	case !ap.Imported:
		pl.refuse(ZFSPoolUnreadable, p, "the ZFS pool %q is not imported, so its datasets cannot be read; import it (zpool import -N %s) and plan again", z.Name, z.Name)
		return
	}
	if want, got, ok := poolMode(z, ap); ok {
		pl.keep(ZFSPoolSame)
	} else {
		pl.refuse(ZFSPoolDiffers, p+".mode", "the ZFS pool %q is %s, the layout says %s; apply never reshapes a pool (zpool attach, add and remove are left to you)", z.Name, got, want)
	}
	for _, k := range slices.Sorted(maps.Keys(z.Options)) {
		actual, ok := ap.Properties[k]
		pl.property(attr(p+".options", k), "pool "+z.Name, k, z.Options[k], actual, ok, false, words("zpool", "set", k+"="+z.Options[k], z.Name))
	}
	altroot := ap.Properties["altroot"]
	if root := ap.Datasets[z.Name]; root != nil {
		pl.datasetProperties(p, ".rootFsOptions", codegen.ZFSProperties(z.RootFsOptions, z.Mountpoint), z.RootFsOptions, root, altroot)
		if z.Mountpoint != "" {
			pl.mount(p, z.Mountpoint, z.MountOptions, &probe.Content{Type: "zfs", Mounts: root.Mounts}, "/")
		}
	}
	desired := map[string]bool{z.Name: true}
	var creates []func()
	for _, key := range slices.Sorted(maps.Keys(z.Datasets)) {
		dp := attr(p+".datasets", key)
		switch ds := z.Datasets[key].(type) {
		case *config.ZFSFS:
			full := z.Name + "/" + ds.Name
			desired[full] = true
			ad := pl.dataset(dp, z.Name, ds, ap.Datasets[full], "filesystem", &creates)
			if ad == nil {
				continue
			}
			pl.datasetProperties(dp, ".options", codegen.ZFSProperties(ds.Options, ds.Mountpoint), ds.Options, ad, altroot)
			if ds.Mountpoint != "" {
				pl.mount(dp, ds.Mountpoint, ds.MountOptions, &probe.Content{Type: "zfs", Mounts: ad.Mounts}, "/")
			}
		case *config.ZFSVolume:
			full := z.Name + "/" + ds.Name
			desired[full] = true
			ad := pl.dataset(dp, z.Name, ds, ap.Datasets[full], "volume", &creates)
			if ad == nil {
				continue
			}
			pl.datasetProperties(dp, ".options", ds.Options, ds.Options, ad, altroot)
			switch {
			case ad.Unreadable != "" && ds.Content != nil:
				pl.refuse(ContentUnreadable, dp+".content", "cannot read the ZFS volume %s: %s", full, ad.Unreadable)
			case pl.volsize(dp, full, ds, ad):
				pl.content(dp+".content", ds.Content, ad.Content, "/dev/zvol/"+full)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ap.Datasets)) {
		if !desired[name] {
			pl.keep(DatasetExtra)
		}
	}
	for _, c := range creates {
		c()
	}
}

// poolMode compares the layout's mode string with the redundancy of the pool's data
// vdevs (a topology, or a pool whose vdevs were not read, is not compared), and describes
// both for a refusal.
func poolMode(z *config.Zpool, ap *probe.Pool) (want, got string, same bool) {
	describe := func(mode string) string {
		if mode == "" {
			return "a stripe"
		}
		return "a " + mode
	}
	wantMode := z.Mode.Mode
	if wantMode == "raidz" {
		wantMode = "raidz1"
	}
	var modes []string
	for _, v := range ap.Vdevs {
		if v.Class == "" && !slices.Contains(modes, describe(v.Mode)) {
			modes = append(modes, describe(v.Mode))
		}
	}
	got = strings.Join(modes, " and ")
	same = z.Mode.Topology != nil || len(modes) == 0 || (len(modes) == 1 && modes[0] == describe(wantMode))
	return describe(wantMode), got, same
}

// dataset returns the probed dataset of a layout dataset or volume when it is there and
// of its type; a missing one is planned for creation and nil returned.
func (pl *planner) dataset(dp, pool string, ds config.DatasetNode, ad *probe.Dataset, typ string, creates *[]func()) *probe.Dataset {
	if ad == nil {
		pl.missingDataset(dp, pool, ds, creates)
		return nil
	}
	if ad.Type != typ {
		pl.refuse(DatasetDiffers, dp+".type", "%s is a ZFS %s, the layout makes it a %s; that would mean destroying it", ad.Name, ad.Type, typ)
		return nil
	}
	pl.keep(DatasetSame)
	return ad
}

// missingDataset plans the zfs create of a dataset or volume (and the content of a volume),
// after the checks of the existing ones.
func (pl *planner) missingDataset(dp, pool string, ds config.DatasetNode, creates *[]func()) {
	script := words(codegen.ZFSCreateArgs(pool, ds)...) + " >/dev/null\n"
	desc := ""
	switch ds := ds.(type) {
	case *config.ZFSFS:
		desc = "create the ZFS filesystem " + pool + "/" + ds.Name
	case *config.ZFSVolume:
		full := pool + "/" + ds.Name
		fill, what, err := formatScript(ds.Content, `"$node"`)
		if err != nil {
			pl.refuse(ContentNoCreate, dp+".content", "%v", err)
			return
		}
		desc = fmt.Sprintf("create the ZFS volume %s (%s)", full, ds.Size)
		if what != "" {
			desc += " and " + what
		}
		script += waitNode("/dev/zvol/"+full) + fill
	}
	*creates = append(*creates, func() { pl.act(DatasetMissing, dp, desc, script) })
}

// datasetProperties compares the properties want (the layout's, with the mountpoint the
// format script sets) with those set on the dataset ad. options are the ones the layout
// names under field (".options" or ".rootFsOptions"); the mountpoint otherwise comes
// from the node's mountpoint.
func (pl *planner) datasetProperties(p, field string, want, options map[string]string, ad *probe.Dataset, altroot string) {
	for _, k := range slices.Sorted(maps.Keys(want)) {
		path := attr(p+field, k)
		if _, ok := options[k]; !ok && k == "mountpoint" {
			path = p + ".mountpoint"
		}
		actual, ok := ad.Local[k]
		if k == "mountpoint" && ok {
			actual = probe.WithoutAltroot(actual, altroot)
		}
		fixed := codegen.ZFSCreationOnly(k)
		if fixed && !ok {
			actual, ok = ad.Fixed[k]
		}
		pl.property(path, ad.Name, k, want[k], actual, ok, fixed, words("zfs", "set", "-u", k+"="+want[k], ad.Name))
	}
}

// property compares one property the layout sets with its value on the pool or dataset
// (ok false: not set there); set is the command that sets it.
func (pl *planner) property(path, on, k, want, actual string, ok, fixed bool, set string) {
	shown := actual
	if !ok {
		shown = "not set (inherited or default)"
	}
	switch {
	case ok && sameZFSValue(k, want, actual):
		pl.keep(ZFSPropertySame)
	case fixed:
		pl.refuse(ZFSPropertyFixed, path, "%s has %s %s, the layout says %s; zfs only sets %s when it creates a dataset, so changing it would mean recreating the dataset and its data", on, k, shown, want, k)
	default:
		pl.act(ZFSPropertyDiffers, path, fmt.Sprintf("set %s=%s on %s (it is %s)", k, want, on, shown), set)
	}
}

// sameZFSValue reports whether the layout's value of a property is the value zfs shows:
// the same text, the same number (10G and 10737418240), or any cipher for encryption=on.
func sameZFSValue(k, want, actual string) bool {
	if want == actual || (k == "encryption" && want == "on" && actual != "off") {
		return true
	}
	a, okA := zfsNumber(want)
	b, okB := zfsNumber(actual)
	return okA && okB && a == b
}

// zfsNumber reads a zfs number: digits with an optional K, M, G, T, P or E suffix
// (powers of 1024, optionally followed by B or iB).
func zfsNumber(s string) (int64, bool) {
	s = strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s), "B"), "I")
	shift := 0
	if n := len(s); n > 0 {
		if i := strings.IndexByte("KMGTPE", s[n-1]); i >= 0 {
			shift, s = 10*(i+1), s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > (1<<62)>>shift {
		return 0, false
	}
	return v << shift, true
}

// volsize compares a volume's size: it grows (with its content) into the pool, and is
// never shrunk. zfs rounds volsize up to whole blocks, so a MiB less counts as the same.
func (pl *planner) volsize(dp, full string, ds *config.ZFSVolume, ad *probe.Dataset) bool {
	want, ok := zfsNumber(ds.Size)
	switch {
	case !ok:
		pl.refuse(VolumeGrowBlocked, dp+".size", "cannot read the size %q", ds.Size)
		return false
	case want < ad.Volsize-(1<<20):
		pl.refuse(VolumeShrink, dp+".size", "the ZFS volume %s has %d MiB, the layout says %s; shrinking is never done (it would cut off data)", full, ad.Volsize>>20, ds.Size)
		return false
	case want <= ad.Volsize:
		return true
	}
	node := "/dev/zvol/" + full
	grow, err := growScript(ad.Content, node)
	if err != nil {
		pl.refuse(VolumeGrowBlocked, dp+".size", "the ZFS volume %s cannot grow to %s: %v", full, ds.Size, err)
		return false
	}
	what := "its content"
	if ad.Content != nil {
		what = "its " + ad.Content.Type
	}
	pl.act(VolumeGrow, dp+".size", fmt.Sprintf("grow the ZFS volume %s from %d MiB to %s, then %s", full, ad.Volsize>>20, ds.Size, what),
		words("zfs", "set", "volsize="+ds.Size, full)+"\n"+waitNode(node)+grow)
	return true
}

// zfsMember checks that a zfs_member belongs to the pool the layout names.
func (pl *planner) zfsMember(p string, n *config.ZFS, c *probe.Content, node string) {
	switch {
	case c.Unreadable != "":
		pl.refuse(ZFSMemberUnread, p, "cannot read the ZFS member %s: %s", node, c.Unreadable)
	case c.Pool != n.Pool:
		pl.refuse(MemberElsewhere, p+".pool", "%s is a member of the ZFS pool %q, the layout puts it in %q; a device is never moved between pools", node, c.Pool, n.Pool)
	default:
		pl.keep(ContentSame)
	}
}
