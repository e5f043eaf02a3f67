package codegen

import (
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// mdadm. An array that does not exist is assembled when its members already carry its
// superblock, and created (disko's `mdadm --create ... --force --homehost=any`) when they
// are all blank; members holding anything else are refused. The "Continue creating
// array?" answer comes from a here-string, not `echo y |`: under pipefail, an mdadm that
// exits without reading kills echo with SIGPIPE and fails the format (3 runs in 100 on a
// busy machine). A new array's device is wiped when it shows stale signatures of what its
// members held before (disko zaps it with sgdisk for the same reason).
// Mounting assembles the array when it is not running (disko leaves that to udev),
// unmounting stops it.

func (g *gen) createMDADM(w *writer, u *unit, md *config.MDADM) error {
	members := g.memberVars(w, memberKey{"mdadm", u.name})
	fresh := g.newVar()
	w.linef("%s=", sh(fresh))
	w.block("if [ ! -e "+Q(md.Device)+" ]; then", "fi", func() {
		w.ifElse("disko_md_members "+Q(md.Name)+" "+u.path.q()+" "+sh(strings.Join(members, " ")), func() {
			w.linef("mdadm --create %s --level=%s --raid-devices=%s --metadata=%s --force --homehost=any %s%s >/dev/null <<<y",
				Q(md.Device), Q(strconv.Itoa(md.Level)), sh(strconv.Itoa(len(members))), Q(md.Metadata), wordsThen(md.ExtraArgs), sh(strings.Join(members, " ")))
			w.linef("%s=1", sh(fresh))
		}, func() {
			w.linef("mdadm --assemble %s %s", Q(md.Device), sh(strings.Join(members, " ")))
		})
	})
	v := g.newVar()
	w.linef("disko_dev %s %s", sh(v), Q(md.Device))
	w.linef(`[ -z "$%s" ] || disko_wipe_new "$%s"`, sh(fresh), sh(v))
	if md.Content == nil {
		return nil
	}
	return g.create(w, md.Content, sh(`"$`+v+`"`))
}

func (g *gen) mountMDADM(u *unit, md *config.MDADM, owners []*hooked) {
	g.addAction(&action{phase: phaseDev, owners: owners,
		mount: g.text(func(w *writer) {
			w.comment(u.path)
			w.block("if [ ! -e "+Q(md.Device)+" ]; then", "fi", func() {
				members := g.memberVars(w, memberKey{"mdadm", u.name})
				w.linef("mdadm --assemble %s %s", Q(md.Device), sh(strings.Join(members, " ")))
			})
		}),
		unmount: g.text(func(w *writer) {
			w.comment(u.path)
			w.block("if [ -e "+Q(md.Device)+" ]; then", "fi", func() {
				w.linef("mdadm --stop %s", Q(md.Device))
			})
		})})
	if md.Content != nil {
		g.mounts(md.Content, owners)
	}
}
