package codegen

import (
	"maps"
	"slices"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// LVM. A physical volume is made with pvcreate on a blank device. The volume group is
// created from the members the model names (disko collects them in a temporary
// directory at run time), then its logical volumes in order of priority, then their
// contents. One vgs call tells whether the group exists and which volumes it has
// (disko_vg_lvs), rather than an LVM call per volume; none when this run made every
// member from nothing (disko_vg_new). Mounting activates this group only (disko activates every group on the
// machine), unmounting deactivates it.

func (g *gen) createLVMPV(w *writer, p optPath, n *config.LVMPV, dev sh) {
	w.block("if disko_want "+dev+" LVM2_member "+p.q()+"; then", "fi", func() {
		w.linef("pvcreate %s", dev)
	})
}

// lvOrder is the creation order of a group's logical volumes: priority, then name.
func lvOrder(vg *config.LVMVG) []string {
	keys := slices.Sorted(maps.Keys(vg.LVs))
	slices.SortStableFunc(keys, func(a, b string) int { return prio(vg.LVs[a].Priority) - prio(vg.LVs[b].Priority) })
	return keys
}

func prio(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func (g *gen) createLVMVG(w *writer, u *unit, vg *config.LVMVG) error {
	modules := []string{"dm-snapshot"}
	for _, key := range lvOrder(vg) {
		if t := vg.LVs[key].LVMType; t != "" && t != "thinlv" && !slices.Contains(modules, "dm-"+t) {
			modules = append(modules, "dm-"+t)
		}
	}
	w.linef("disko_modules %s", words(modules))
	members := g.memberVars(w, memberKey{"lvm_vg", u.name})
	w.block("if disko_vg_new "+Q(vg.Name)+" "+sh(strings.Join(members, " "))+" || ! disko_vg_lvs "+Q(vg.Name)+"; then", "fi", func() {
		w.linef("vgcreate %s %s", Q(vg.Name), sh(strings.Join(members, " ")))
	})
	for _, key := range lvOrder(vg) {
		lv := vg.LVs[key]
		w.comment(u.path.field("lvs").attr(key))
		w.block("if ! disko_has_lv "+Q(lv.Name)+"; then", "fi", func() {
			w.linef("%s", words(LVCreateArgs(vg.Name, lv)))
		})
	}
	for _, key := range lvOrder(vg) {
		lv := vg.LVs[key]
		if lv.Content == nil {
			continue
		}
		v := g.newVar()
		w.linef("disko_dev %s %s", sh(v), Q(lv.Device))
		if err := g.create(w, lv.Content, sh(`"$`+v+`"`)); err != nil {
			return err
		}
	}
	return nil
}

// LVCreateArgs are the words (unquoted) of the lvcreate command that makes lv in the
// group vgName, as the format script runs it; apply (internal/plan) creates missing LVs
// with the same command.
func LVCreateArgs(vgName string, lv *config.LV) []string {
	flag, size := "-L", lv.Size
	switch {
	case lv.LVMType == "thinlv":
		flag = "-V"
	case strings.Contains(lv.Size, "%"):
		flag = "-l"
		if strings.HasSuffix(size, "%") {
			size += "FREE"
		}
	}
	args := []string{"lvcreate", "--yes", flag, size, "-n", lv.Name}
	if lv.LVMType == "thinlv" {
		args = append(args, "--thinpool="+lv.Pool)
	} else if lv.LVMType != "" {
		args = append(args, "--type="+lv.LVMType)
	}
	for _, a := range lv.ExtraArgs {
		args = append(args, strings.Fields(a)...)
	}
	return append(args, vgName)
}

func (g *gen) mountLVMVG(u *unit, vg *config.LVMVG, owners []*hooked) {
	g.addAction(&action{phase: phaseDev, owners: owners,
		mount: g.text(func(w *writer) {
			w.comment(u.path)
			w.linef("vgchange -a y %s >/dev/null", Q(vg.Name))
		}),
		unmount: g.text(func(w *writer) {
			w.comment(u.path)
			w.block("if vgs "+Q(vg.Name)+" >/dev/null 2>&1; then", "fi", func() {
				w.linef("vgchange -a n %s >/dev/null", Q(vg.Name))
			})
		})})
	for _, key := range lvOrder(vg) {
		if c := vg.LVs[key].Content; c != nil {
			g.mounts(c, owners)
		}
	}
}

// memberVars resolves the devices of an aggregate's members, in creation order, and
// returns the quoted variables.
func (g *gen) memberVars(w *writer, k memberKey) []string {
	var out []string
	for _, m := range g.members[k] {
		out = append(out, string(g.resolve(w, g.info[m].ref)))
	}
	return out
}
