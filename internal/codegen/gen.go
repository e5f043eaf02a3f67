package codegen

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// devRef says how a script finds a node's device at run time: by its path (as the model
// names it), and for a partition also as partition partNo of its table's device, so that
// the node can be taken from sysfs and the by-* link checked against it.
type devRef struct {
	path   string
	parent *devRef
	partNo int
}

// nodeInfo is what the generator knows about a node of the tree besides the node itself.
type nodeInfo struct {
	path optPath
	ref  *devRef // the device the node sits on (nil for aggregates and datasets)
	unit *unit
	seq  int // position in a pre-order walk of all units, for stable member order
}

// gen holds one generation run.
type gen struct {
	d    *config.Devices
	opts Options
	root string // RootMountpoint without a trailing slash ("" for /)

	units   []*unit
	info    map[any]*nodeInfo
	members map[memberKey][]config.Node // aggregate -> member nodes, in creation order
	seq     int
	vars    int
	acts    []*action // mount steps being collected
	unitPos int       // position of the unit whose steps are being collected
	// interactive layouts ask for passphrases on the terminal, so nothing runs in parallel.
	interactive bool
	asks        []string // device-mapper names of the LUKS containers that ask (askPassword)
}

// memberKey names an aggregate: a kind of disko.devices and the attribute name.
type memberKey struct{ kind, name string }

func (g *gen) newVar() string {
	g.vars++
	return "dev" + strconv.Itoa(g.vars)
}

// text renders one self-contained piece of script (a mount step, a unit's format
// function): its device variables are numbered from 1 again.
func (g *gen) text(body func(w *writer)) string {
	g.vars = 0
	return text(body)
}

// target is where mount point mp of the installed system is mounted by the scripts.
func (g *gen) target(mp string) string {
	if mp == "/" {
		if g.root == "" {
			return "/"
		}
		return g.root
	}
	return g.root + mp
}

// resolve writes the assignments that find r's device node (its parents first) and
// returns the quoted variable holding it. The script waits for devices that are not there
// yet (disko_dev).
func (g *gen) resolve(w *writer, r *devRef) sh {
	if r.parent == nil {
		v := g.newVar()
		w.linef("disko_dev %s %s", sh(v), Q(r.path))
		return sh(`"$` + v + `"`)
	}
	parent := g.resolve(w, r.parent)
	v := g.newVar()
	w.linef("disko_dev %s %s %s %s", sh(v), Q(r.path), parent, sh(strconv.Itoa(r.partNo)))
	return sh(`"$` + v + `"`)
}

// resolveNow returns a condition that holds when r's device exists right now (finding it
// into a variable on the way), and that variable. Unmounting uses it: a device that is
// not there has nothing mounted.
func (g *gen) resolveNow(r *devRef) (cond, ref sh) {
	var parts []string
	var prev sh
	chain := []*devRef{}
	for p := r; p != nil; p = p.parent {
		chain = append([]*devRef{p}, chain...)
	}
	for _, p := range chain {
		v := g.newVar()
		if prev == "" {
			parts = append(parts, fmt.Sprintf("disko_dev_now %s %s", v, Q(p.path)))
		} else {
			parts = append(parts, fmt.Sprintf("disko_dev_now %s %s %s %d", v, Q(p.path), prev, p.partNo))
		}
		prev = sh(`"$` + v + `"`)
	}
	cond = sh(parts[0])
	for _, p := range parts[1:] {
		cond += sh(" && " + p)
	}
	return cond, prev
}

// contentRef is the device a content node sits on: the one its parent provides, unless
// the node names another device explicitly.
func contentRef(node config.Node, provided *devRef) *devRef {
	if dev := deviceOf(node); dev != "" && dev != provided.path {
		return &devRef{path: dev}
	}
	return provided
}

// deviceOf is the device option of a content node.
func deviceOf(node config.Node) string {
	switch n := node.(type) {
	case *config.GPT:
		return n.Device
	case *config.Table:
		return n.Device
	case *config.Filesystem:
		return n.Device
	case *config.Swap:
		return n.Device
	case *config.LUKS:
		return n.Device
	case *config.LVMPV:
		return n.Device
	case *config.MDRaid:
		return n.Device
	case *config.ZFS:
		return n.Device
	case *config.BTRFS:
		return n.Device
	case *config.Bcachefs:
		return n.Device
	}
	return ""
}

// index walks every unit's tree once: it records where each node sits, which devices each
// unit makes (for dependencies between units), and which nodes are members of which
// aggregate.
func (g *gen) index() error {
	g.info = map[any]*nodeInfo{}
	g.members = map[memberKey][]config.Node{}
	for _, u := range g.units {
		switch n := u.node.(type) {
		case *config.Disk:
			if n.Content != nil {
				g.visit(u, u.path.field("content"), n.Content, &devRef{path: n.Device})
			}
		case *config.MDADM:
			u.produced = append(u.produced, n.Device)
			if n.Content != nil {
				g.visit(u, u.path.field("content"), n.Content, &devRef{path: n.Device})
			}
		case *config.LVMVG:
			for _, key := range slices.Sorted(maps.Keys(n.LVs)) {
				lv := n.LVs[key]
				u.produced = append(u.produced, lv.Device)
				if lv.Content != nil {
					g.visit(u, u.path.field("lvs").attr(key).field("content"), lv.Content, &devRef{path: lv.Device})
				}
			}
		case *config.Zpool:
			for _, key := range slices.Sorted(maps.Keys(n.Datasets)) {
				g.note(u, u.path.field("datasets").attr(key), n.Datasets[key], nil)
				if vol, ok := n.Datasets[key].(*config.ZFSVolume); ok {
					u.produced = append(u.produced, vol.Device)
					if vol.Content != nil {
						g.visit(u, u.path.field("datasets").attr(key).field("content"), vol.Content, &devRef{path: vol.Device})
					}
				}
			}
		}
		g.note(u, u.path, u.node, nil)
	}
	for key, nodes := range g.members {
		slices.SortStableFunc(nodes, func(a, b config.Node) int { return g.info[a].seq - g.info[b].seq })
		if !g.aggregateExists(key) {
			return fmt.Errorf("%s: names %s.%s, which does not exist (config.Load reports this; was the layout loaded with it?)", g.info[nodes[0]].path, key.kind, key.name)
		}
	}
	return nil
}

func (g *gen) note(u *unit, p optPath, node any, ref *devRef) {
	g.seq++
	g.info[node] = &nodeInfo{path: p, ref: ref, unit: u, seq: g.seq}
	u.strs = append(u.strs, stringsOf(node)...)
	if l, ok := node.(*config.LUKS); ok && l.AskPassword != nil && *l.AskPassword {
		g.interactive = true
		g.asks = append(g.asks, l.Name)
	}
}

// visit records a content node and its children.
func (g *gen) visit(u *unit, p optPath, node config.Node, provided *devRef) {
	ref := contentRef(node, provided)
	g.note(u, p, node, ref)
	switch n := node.(type) {
	case *config.GPT:
		for i, key := range config.GPTOrder(n) {
			part := n.Partitions[key]
			u.produced = append(u.produced, part.Device)
			pp := p.field("partitions").attr(key)
			g.note(u, pp, part, ref)
			if part.Content != nil {
				g.visit(u, pp.field("content"), part.Content, &devRef{path: part.Device, parent: ref, partNo: i + 1})
			}
		}
	case *config.Table:
		numbers := config.TableNumbers(n)
		for i, part := range n.Partitions {
			u.produced = append(u.produced, part.Device)
			pp := p.field("partitions").index(i)
			g.note(u, pp, part, ref)
			if part.Content != nil {
				g.visit(u, pp.field("content"), part.Content, &devRef{path: part.Device, parent: ref, partNo: numbers[i]})
			}
		}
	case *config.LUKS:
		mapper := "/dev/mapper/" + n.Name
		u.produced = append(u.produced, mapper)
		if n.Content != nil {
			g.visit(u, p.field("content"), n.Content, &devRef{path: mapper})
		}
	case *config.LVMPV:
		g.addMember(memberKey{"lvm_vg", n.VG}, n)
	case *config.MDRaid:
		g.addMember(memberKey{"mdadm", n.Name}, n)
	case *config.ZFS:
		g.addMember(memberKey{"zpool", n.Pool}, n)
	case *config.Bcachefs:
		g.addMember(memberKey{"bcachefs_filesystems", n.Filesystem}, n)
	}
}

func (g *gen) addMember(k memberKey, n config.Node) {
	g.members[k] = append(g.members[k], n)
}

func (g *gen) aggregateExists(k memberKey) bool {
	switch k.kind {
	case "lvm_vg":
		return g.d.LVMVG[k.name] != nil
	case "mdadm":
		return g.d.MDADM[k.name] != nil
	case "zpool":
		return g.d.Zpool[k.name] != nil
	default:
		return g.d.BcachefsFilesystems[k.name] != nil
	}
}
