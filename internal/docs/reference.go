package docs

import (
	"fmt"
	"slices"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/nixlit"
)

const referenceTitle = "disko options reference"

// reference lays out the whole options reference.
func (m *model) reference() (*document, error) {
	d := newDocument(referenceTitle)
	d.para("Every option of a disko layout (`disko.devices`), as disko and disko-compile read it. " +
		"This page is generated from the Go model in `internal/config`, the same types that decode and validate a layout and that the JSON Schema (`schema/disko.schema.json`) is generated from, so it says what the tools accept. " +
		"The types are recursive (a partition may hold a LUKS container that holds an LVM physical volume, whose volume group holds a filesystem…), so each type is described once, with links both ways: *may contain* leads down the tree, *may appear in* leads back up.")
	d.toc()
	m.overview(d)
	if err := m.typeSections(d); err != nil {
		return nil, err
	}
	if err := writeWorkedExamples(d); err != nil {
		return nil, err
	}
	return d, d.err
}

func (m *model) overview(d *document) {
	d.heading(2, "Overview")

	d.heading(3, "The tree")
	d.para("A layout is the attribute set `disko.devices`. It has six collections of top-level devices, each keyed by a name you choose (`disko.devices.disk.main`). " +
		"Every other node sits in a `content` option of the node above it (or in a zpool's `datasets`), and its `type` option says what it is and so which options it takes. " +
		"A node like `filesystem` ends a branch; `gpt`, `luks`, `mdadm` or a logical volume carry on with their own `content`.")
	d.para("Four types join their device to a top-level aggregate by name rather than holding content: " +
		"[`lvm_pv`](#lvm_pv) (`vg`) joins an [`lvm_vg`](#lvm_vg), [`mdraid`](#mdraid) (`name`) an [`mdadm`](#mdadm) array, " +
		"[`zfs`](#zfs) (`pool`) a [`zpool`](#zpool), and [`bcachefs`](#bcachefs) (`filesystem`) a [`bcachefs_filesystem`](#bcachefs_filesystem). " +
		"The aggregate is created once all of its members are.")
	d.codeBlock("nix", overviewExample)

	d.heading(3, "Top-level collections")
	var rows [][]string
	for _, c := range m.collections {
		rows = append(rows, []string{code("disko.devices." + c.name + ".<name>"), link(c.elem.title, c.elem.anchor), esc(c.desc)})
	}
	d.table([]string{"Collection", "Entries are", "Description"}, rows)

	d.heading(3, "Type index")
	rows = nil
	for _, td := range m.types {
		rows = append(rows, []string{link(td.title, td.anchor), firstSentence(td.prose.summary), appearsInShort(td)})
	}
	rows = append(rows, []string{link(m.hookProse.title, slug(m.hookProse.title)), firstSentence(m.hookProse.summary), "every typed node"})
	d.table([]string{"Type", "What it is", "May appear in"}, rows)

	d.heading(3, "Slots")
	d.para("A `content` option, and each entry of a zpool's `datasets`, is a *slot*: it holds one typed node, and the node's `type` picks which. " +
		"Which types a slot takes depends on where it is: a partition table may fill a whole device, but not a partition, a logical volume or a zvol.")
	var items []item
	for _, s := range m.slots {
		var where []string
		for _, e := range s.usedBy {
			where = append(where, link(e.from.title, e.from.anchor)+" "+code(e.option))
		}
		items = append(items, item{text: "**" + s.name + "**: " + strings.Join(where, ", ")})
	}
	d.list(items)
	head := []string{"Type"}
	for _, s := range m.slots {
		head = append(head, s.name)
	}
	rows = nil
	for _, td := range m.types {
		if !td.node {
			continue
		}
		row := []string{link(td.title, td.anchor)}
		for _, s := range m.slots {
			mark := ""
			if slices.Contains(s.members, td) {
				mark = "✓"
			}
			row = append(row, mark)
		}
		rows = append(rows, row)
	}
	d.table(head, rows)

	d.heading(3, "Device paths")
	d.para("disko-compile names devices exactly as disko does, so that a machine installed with disko keeps booting after switching. " +
		"Each node's `device` defaults to the path below; a node inside it sees that path as its own device.")
	rows = nil
	for _, td := range m.types {
		if td.prose.paths != "" {
			rows = append(rows, []string{link(td.title, td.anchor), td.prose.paths})
		}
	}
	d.table([]string{"Type", "Device path"}, rows)

	d.heading(3, "NixOS configuration")
	d.para("Besides the scripts, a layout yields the NixOS options that mount it at boot. These are the options each type emits:")
	rows = nil
	for _, td := range m.types {
		if td.prose.nixos != "" && !strings.HasPrefix(td.prose.nixos, "Nothing") {
			rows = append(rows, []string{link(td.title, td.anchor), td.prose.nixos})
		}
	}
	d.table([]string{"Type", "NixOS options"}, rows)
	d.para("Not emitted, as in disko (set them yourself where needed): `networking.hostId` and `boot.zfs.*` for ZFS, `mdadm.conf` ARRAY lines, crypttab entries for containers unlocked after the initrd, `neededForBoot` (except for bcachefs), `boot.loader.efi.*`.")
}

const overviewExample = `disko.devices = {
  disk.main = {                    # a top-level collection entry: type disk
    device = "/dev/disk/by-id/ata-EXAMPLE";
    content = {                    # a slot of disk: here a partition table
      type = "gpt";
      partitions.root = {          # a part of gpt: a gpt partition
        size = "100%";
        content = {                # a slot of the partition
          type = "luks";
          name = "crypted";
          content = {              # a slot of luks
            type = "lvm_pv";
            vg = "pool";           # joins the volume group below
          };
        };
      };
    };
  };
  lvm_vg.pool = {
    type = "lvm_vg";
    lvs.root = {
      size = "100%FREE";
      content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; };
    };
  };
};`

// typeSections writes one section per type, then the hooks.
func (m *model) typeSections(d *document) error {
	d.heading(2, "Types")
	d.para("One section per type. *Type* says what value an option takes (links lead to the type it holds), *Default* is the value used when the option is left out, and computed defaults are described in words.")
	for _, td := range m.types {
		if id := d.heading(3, td.title); id != td.anchor {
			return fmt.Errorf("docs: the heading of %s has anchor #%s, expected #%s", td.t, id, td.anchor)
		}
		d.para(td.prose.summary)
		d.para("**May appear in:** " + m.appearsIn(td))
		if uses := contains(td); uses != "" {
			d.para("**May contain:** " + uses)
		}
		var rows [][]string
		for _, o := range td.options {
			rows = append(rows, optionRow(o))
		}
		d.table([]string{"Option", "Type", "Default", "Description"}, rows)
		if td.hooks {
			names := make([]string, len(m.hooks))
			for i, o := range m.hooks {
				names[i] = code(o.name)
			}
			d.para("Also accepts the [hooks](#" + slug(m.hookProse.title) + "): " + strings.Join(names, ", ") + ".")
		}
		if td.prose.paths != "" {
			d.para("**Device path:** " + td.prose.paths)
		}
		if td.prose.nixos != "" {
			d.para("**NixOS:** " + td.prose.nixos)
		}
		if err := example(d, td.prose); err != nil {
			return fmt.Errorf("docs: example of %s: %w", td.t, err)
		}
	}
	d.heading(3, m.hookProse.title)
	d.para(m.hookProse.summary)
	var rows [][]string
	for _, o := range m.hooks {
		rows = append(rows, optionRow(o))
	}
	d.table([]string{"Option", "Type", "Default", "Description"}, rows)
	if err := example(d, m.hookProse); err != nil {
		return fmt.Errorf("docs: example of the hooks: %w", err)
	}
	return nil
}

func example(d *document, p *prose) error {
	nix, err := nixAssignment(p.exampleAt, p.example)
	if err != nil {
		return err
	}
	d.para("**Example:**")
	d.codeBlock("nix", nix)
	return nil
}

// appearsIn lists where a type may appear, as links back up the tree.
func (m *model) appearsIn(td *typeDoc) string {
	var out []string
	for _, e := range td.usedBy {
		if e.from == nil {
			out = append(out, code(e.option))
			continue
		}
		out = append(out, link(e.from.title, e.from.anchor)+" "+code(e.option))
	}
	return strings.Join(out, ", ")
}

// appearsInShort is appearsIn with the places of a slot summed up by the slot's name.
func appearsInShort(td *typeDoc) string {
	var out []string
	for _, e := range td.usedBy {
		var s string
		switch {
		case e.from == nil:
			s = code(e.option)
		case e.slot != nil:
			s = "the " + link(e.slot.name, "slots")
		default:
			s = link(e.from.title, e.from.anchor) + " " + code(e.option)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, ", ")
}

// contains lists what a type may contain, grouped by option, as links down the tree.
func contains(td *typeDoc) string {
	var parts []string
	for i := 0; i < len(td.uses); {
		e := td.uses[i]
		var targets []string
		j := i
		for ; j < len(td.uses) && td.uses[j].option == e.option; j++ {
			targets = append(targets, link(td.uses[j].to.title, td.uses[j].to.anchor))
		}
		part := code(e.option)
		if e.slot != nil {
			part += " (" + link(e.slot.name, "slots") + ")"
		}
		parts = append(parts, part+": "+strings.Join(targets, ", "))
		i = j
	}
	return strings.Join(parts, "; ")
}

func optionRow(o *optionDoc) []string {
	return []string{code(o.name), typeText(o), defaultText(o), esc(o.desc)}
}

// typeText says what values an option takes, accepted values included.
func typeText(o *optionDoc) string {
	if o.constant() {
		return code(literal(o.val, o.enum[0]))
	}
	s := valueText(o.val)
	if len(o.enum) > 0 && o.val.kind != vMode {
		s += ", one of " + enumText(o)
	}
	if o.nullable && o.val.kind != vList && o.val.kind != vAttrs {
		s += ", or null"
	}
	return s
}

func enumText(o *optionDoc) string {
	vals := make([]string, len(o.enum))
	for i, e := range o.enum {
		vals[i] = code(literal(o.val, e))
	}
	return strings.Join(vals, " ")
}

func valueText(v *valueType) string {
	switch v.kind {
	case vString:
		return "string"
	case vBool:
		return "boolean"
	case vInt:
		return "integer"
	case vAny:
		return "anything"
	case vList:
		if v.oneOrMany {
			return valueText(v.elem) + ", or a list of them"
		}
		return "list of " + valueText(v.elem)
	case vAttrs:
		return "attribute set of " + valueText(v.elem)
	case vStruct:
		return link(v.target.title, v.target.anchor)
	case vSlot:
		members := make([]string, len(v.slot.members))
		for i, td := range v.slot.members {
			members[i] = link(td.title, td.anchor)
		}
		return "one node of the " + link(v.slot.name, "slots") + ": " + strings.Join(members, ", ")
	case vMode:
		vals := make([]string, len(v.modeEnum))
		for i, e := range v.modeEnum {
			vals[i] = code(nixlit.String(e))
		}
		return "string, one of " + strings.Join(vals, " ") + "; or " + code("{ topology = …; }") + " (" + link(v.target.title, v.target.anchor) + ")"
	}
	return ""
}

// literal shows a tag value as the Nix value it stands for.
func literal(v *valueType, s string) string {
	switch v.kind {
	case vString, vMode:
		return nixlit.String(s)
	case vList:
		return literal(v.elem, s)
	}
	return s
}

// defaultText shows the value an option has when it is left out.
func defaultText(o *optionDoc) string {
	switch {
	case o.required:
		return "**required**"
	case len(o.defaults) > 0 && o.val.kind == vList:
		vals := make([]string, len(o.defaults))
		for i, d := range o.defaults {
			vals[i] = literal(o.val, d)
		}
		return code("[ " + strings.Join(vals, " ") + " ]")
	case len(o.defaults) > 0:
		return code(literal(o.val, o.defaults[0]))
	case o.defaultText != "":
		return "*" + esc(o.defaultText) + "*"
	case o.val.kind == vList:
		return code("[ ]")
	case o.val.kind == vAttrs:
		return code("{ }")
	}
	return code("null")
}

// firstSentence is the first sentence of markup, for index tables.
func firstSentence(s string) string {
	ticks := 0
	for i := 0; i+1 < len(s); i++ {
		switch {
		case s[i] == '`':
			ticks++
		case s[i] == '.' && s[i+1] == ' ' && ticks%2 == 0:
			return s[:i+1]
		}
	}
	return s
}
