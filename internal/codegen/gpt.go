package codegen

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// Partition tables. A GPT is written with one sfdisk call per disk. disko runs one
// `sgdisk --new` per partition, and sgdisk sleeps a second on every write; sfdisk can say
// everything disko's sgdisk calls say (start, size, type GUID, name, GUID, attribute bits)
// except "where sgdisk would put it", which disko_gpt (runtime.sh) computes with sgdisk's
// own rules, because sizes relative to the disk's end (-10M, 100%) need the disk's size at
// run time. What stays with sgdisk: a hybrid MBR (`sgdisk -h`, once, after a fresh write),
// which sfdisk cannot build.
//
// The decision table for a disk that is not blank (the format script never destroys):
//
//	disk holds                                      format does
//	nothing (blkid: no signature)                   write the whole table
//	this layout's GPT (numbers and names match)     keep it; add partitions the layout gained
//	a GPT with other names or extra partitions      refuse, naming what it found
//	anything else (a filesystem, an MBR, ...)       refuse, naming what it found
//
// New partitions have old signatures at their offsets wiped (they are new, so the data
// there belonged to no partition). The legacy `table` type (MBR) is written by one parted
// run, whose units and percentages sfdisk does not share; its tables are recognised by a
// disk identifier derived from the layout.

// posSpec translates an sgdisk position (start or end) to disko_gpt_value's syntax:
// "0" for sgdisk's default, else SIGN:VALUE:UNITBYTES (0 unit bytes = sectors).
func posSpec(s string) (string, error) {
	p, err := config.ParsePosition(s)
	if err != nil {
		return "", err
	}
	if p.Value == 0 { // sgdisk takes any zero value as "the default"
		return "0", nil
	}
	sign := p.Sign
	if sign == "" {
		sign = "="
	}
	return fmt.Sprintf("%s:%d:%d", sign, p.Value, p.Unit), nil
}

// typeGUID is the partition type GUID for an sgdisk code or a GUID.
func typeGUID(t string) (string, bool) {
	if len(t) == 4 {
		g, ok := sgdiskTypes[strings.ToUpper(t)]
		return g, ok
	}
	return strings.ToUpper(t), config.IsGUID(t)
}

// sfdiskAttrs is sfdisk's spelling of GPT attribute bits. sfdisk has names for bits 0 to 2
// and numbers for the type-specific bits 48 to 63; bits 3 to 47 are reserved by UEFI
// ("must be zero"), and sfdisk cannot set them.
func sfdiskAttrs(bits []int) (string, error) {
	bits = slices.Clone(bits)
	slices.Sort(bits)
	bits = slices.Compact(bits)
	var names, guid []string
	for _, b := range bits {
		switch {
		case b == 0:
			names = append(names, "RequiredPartition")
		case b == 1:
			names = append(names, "NoBlockIOProtocol")
		case b == 2:
			names = append(names, "LegacyBIOSBootable")
		case b >= 48 && b <= 63:
			guid = append(guid, strconv.Itoa(b))
		default:
			return "", fmt.Errorf("bit %d is reserved by UEFI and cannot be set (use 0, 1, 2 or 48 to 63)", b)
		}
	}
	if len(guid) > 0 {
		names = append(names, "GUID:"+strings.Join(guid, ","))
	}
	if len(names) == 0 {
		return "-", nil
	}
	return strings.Join(names, ","), nil
}

// sfdiskName writes a partition name for an sfdisk script: every byte that is not plainly
// safe becomes \xHH, which sfdisk decodes. The result has no spaces, quotes or backslash
// sequences other than \xHH, so it can sit inside the script's double quotes.
func sfdiskName(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.:+@/=", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}

// GPTPartitionSpec is one partition of a GPT as the format script writes it: its number,
// where sgdisk would place it (Start and End in disko_gpt_value's syntax: "0" or
// SIGN:VALUE:UNITBYTES), and the fields of its sfdisk line. Disk images are built from the
// same specs, so that their tables equal the ones the format script writes.
type GPTPartitionSpec struct {
	Number int
	Start  string
	End    string
	// Align is sgdisk's --set-alignment in sectors; 0 is sgdisk's default.
	Align int
	// TypeGUID is the upper-case partition type GUID.
	TypeGUID string
	// UUID is the upper-case partition GUID, or "" for a random one.
	UUID string
	// Attrs is sfdisk's attrs value, or "" for none.
	Attrs string
	// Name is the partition name, escaped for an sfdisk script (\xHH).
	Name string
	// Label is the partition name as the layout says it.
	Label  string
	Hybrid *config.Hybrid
}

// GPTSpecs returns the partitions of the GPT at option path p (for example
// disko.devices.disk.main.content), numbered as the format script numbers them.
func GPTSpecs(p string, n *config.GPT) ([]GPTPartitionSpec, error) {
	order := config.GPTOrder(n)
	specs := make([]GPTPartitionSpec, 0, len(order))
	for i, key := range order {
		part := n.Partitions[key]
		pp := newOptPath(p).field("partitions").attr(key)
		start, err := posSpec(part.Start)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pp.field("start"), err)
		}
		end, err := posSpec(part.End)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pp.field("end"), err)
		}
		guid, ok := typeGUID(part.Type)
		if !ok {
			return nil, fmt.Errorf("%s: %q is not a partition type sgdisk knows (run sgdisk -L) nor a type GUID", pp.field("type"), part.Type)
		}
		uuid := ""
		if part.UUID != "" {
			if !config.IsGUID(part.UUID) {
				return nil, fmt.Errorf("%s: %q is not a GUID", pp.field("uuid"), part.UUID)
			}
			uuid = strings.ToUpper(part.UUID)
		}
		attrs, err := sfdiskAttrs(part.Attributes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pp.field("attributes"), err)
		}
		if attrs == "-" {
			attrs = ""
		}
		align := 0
		if part.Alignment != nil {
			align = *part.Alignment
		}
		if align < 0 {
			return nil, fmt.Errorf("%s: %d is not an alignment", pp.field("alignment"), align)
		}
		specs = append(specs, GPTPartitionSpec{Number: i + 1, Start: start, End: end, Align: align, TypeGUID: guid,
			UUID: uuid, Attrs: attrs, Name: sfdiskName(part.Label), Label: part.Label, Hybrid: part.Hybrid})
	}
	return specs, nil
}

// orDash is s, or "-" (the runtime's "none") when s is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (g *gen) createGPT(w *writer, p optPath, n *config.GPT, dev sh) error {
	order := config.GPTOrder(n)
	parsed, err := GPTSpecs(p.String(), n)
	if err != nil {
		return err
	}
	var specs []sh
	var hybrid []int
	for _, s := range parsed {
		specs = append(specs, Q(fmt.Sprintf("%d %s %s %d %s %s %s %s %s", s.Number, s.Start, s.End, s.Align, s.TypeGUID, orDash(s.UUID), orDash(s.Attrs),
			base64.StdEncoding.EncodeToString([]byte(s.Label)), s.Name)))
		if s.Hybrid != nil {
			hybrid = append(hybrid, s.Number)
		}
	}
	gptTable(w, n, order, parsed)
	w.linef("disko_gpt %s %s \\", dev, p.q())
	w.indent += 2
	for i, s := range specs {
		if i < len(specs)-1 {
			w.linef("%s \\", s)
		} else {
			w.linef("%s", s)
		}
	}
	w.indent -= 2
	if len(hybrid) > 0 {
		g.hybridMBR(w, n, order, hybrid, dev)
	}
	parts := make([]partition, len(order))
	for i, key := range order {
		part := n.Partitions[key]
		parts[i] = partition{p.field("partitions").attr(key), part.Device, i + 1, part.Content}
	}
	return g.createPartitions(w, dev, parts)
}

// gptTable writes, above a disko_gpt call, the table it writes as a reader knows it: per
// partition its number, name, start, size, end and type as the layout says them (the
// call's own lines are NUMBER START END ALIGN TYPEGUID UUID ATTRS BASE64NAME SFDISKNAME,
// with start and end placed on the disk at run time the way sgdisk places them).
func gptTable(w *writer, n *config.GPT, order []string, specs []GPTPartitionSpec) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tnumber\tname\tstart\tsize\tend\ttype")
	for i, key := range order {
		part := n.Partitions[key]
		size := commentWord(part.Size)
		if size == "0" {
			size = "(start to end)"
		}
		start := commentWord(part.Start)
		if start == "0" {
			start = "0 (next free)"
		}
		extra := ""
		if part.Alignment != nil && *part.Alignment != 0 {
			extra += fmt.Sprintf(" alignment %d", *part.Alignment)
		}
		if specs[i].UUID != "" {
			extra += " uuid " + specs[i].UUID
		}
		if specs[i].Attrs != "" {
			extra += " attributes " + commentWord(specs[i].Attrs)
		}
		fmt.Fprintf(tw, "#\t%d\t%s\t%s\t%s\t%s\t%s%s\n", specs[i].Number, commentWord(part.Label),
			start, size, commentWord(part.End), commentWord(part.Type), extra)
	}
	tw.Flush()
	w.raw("# the partition table, as the layout gives it:")
	w.raw(strings.TrimRight(b.String(), "\n"))
}

// commentWord is s for a comment: as it is when it holds only plain characters, else
// quoted with every control character escaped (so the comment ends at its line's end).
func commentWord(s string) string {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:+@/=%", c)) {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}

// partition is a partition of a table, as createPartitions needs it.
type partition struct {
	path    optPath
	device  string
	number  int
	content config.Node
}

// createPartitions creates the contents of a table's partitions and waits for their
// /dev/disk/by-* links. The contents are made on the kernel's partition nodes, found in
// sysfs, while udev makes the links; only then does the script wait for the links (a
// content whose hooks may read them waits first), so udev's work overlaps formatting.
func (g *gen) createPartitions(w *writer, table sh, parts []partition) error {
	vars := make([]sh, len(parts))
	for i, part := range parts {
		if usesDevice(part.content) {
			w.comment(part.path)
			v := g.newVar()
			w.linef("disko_part %s %s %s", sh(v), table, sh(strconv.Itoa(part.number)))
			vars[i] = sh(`"$` + v + `"`)
		}
	}
	waited := map[int]bool{}
	for i, part := range parts {
		if part.content == nil {
			continue
		}
		if hasCreateHooks(part.content) {
			w.linef("disko_dev disko_seen %s %s %s", Q(part.device), table, sh(strconv.Itoa(part.number)))
			waited[i] = true
		}
		if err := g.create(w, part.content, vars[i]); err != nil {
			return err
		}
	}
	w.raw("# the links to the partitions, made by udev meanwhile")
	for i, part := range parts {
		if !waited[i] {
			w.linef("disko_dev disko_seen %s %s %s", Q(part.device), table, sh(strconv.Itoa(part.number)))
		}
	}
	return nil
}

// hasCreateHooks reports whether a node or a node inside it has create hooks.
func hasCreateHooks(node any) bool {
	if h := hooksOf(node); h != nil && (h.PreCreateHook != "" || h.PostCreateHook != "") {
		return true
	}
	switch n := node.(type) {
	case *config.LUKS:
		return n.Content != nil && hasCreateHooks(n.Content)
	}
	return false
}

// hybridMBR builds disko's hybrid MBR after a fresh table: `sgdisk -h` with the hybrid
// partitions (and the 0xEE entry last unless efiGptPartitionFirst), then their MBR type
// and boot flag with sfdisk, numbered as disko numbers them.
func (g *gen) hybridMBR(w *writer, n *config.GPT, order []string, hybrid []int, dev sh) {
	nums := make([]string, len(hybrid))
	for i, h := range hybrid {
		nums[i] = strconv.Itoa(h)
	}
	arg := strings.Join(nums, ":")
	if !n.EFIGPTPartitionFirst {
		arg += ":EE"
	}
	w.block(`if [ -n "$disko_fresh" ]; then`, "fi", func() {
		w.linef("sgdisk -h %s %s >/dev/null", Q(arg), dev)
		for _, h := range hybrid {
			hy := n.Partitions[order[h-1]].Hybrid
			if hy.MBRPartitionType != "" {
				w.linef("sfdisk --quiet --no-tell-kernel --label-nested dos --part-type %s %s %s", dev, sh(strconv.Itoa(h)), Q(hy.MBRPartitionType))
			}
			if hy.MBRBootableFlag {
				w.linef("sfdisk --quiet --no-tell-kernel --label-nested dos --activate %s %s", dev, sh(strconv.Itoa(h)))
			}
		}
	})
}

// DiskContentPath is the option path of disk NAME's content, as the scripts name it (and
// as GPTSpecs and TableScript take it).
func DiskContentPath(name string) string {
	return newOptPath(config.RootPath).field("disk").attr(name).field("content").String()
}

// TableScript returns what the format script does to write the legacy table at option
// path p: the arguments of its one parted run, and the disk identifier set right after
// (an MBR's 0xXXXXXXXX or a GPT's GUID, derived from p so that the table is recognised as
// this layout's).
func TableScript(p string, n *config.Table) (partedArgs []string, diskID string) {
	numbers := config.TableNumbers(n)
	args := []string{"mklabel", n.Format}
	for i, part := range n.Partitions {
		if n.Format == "gpt" {
			// disko escapes the name as udev would, because parted splits its arguments
			// at spaces again.
			args = append(args, "mkpart", config.UdevEscape(part.Name))
		} else {
			args = append(args, "mkpart", part.PartType)
		}
		if part.FSType != "" {
			args = append(args, part.FSType)
		}
		args = append(args, part.Start, part.End)
		num := strconv.Itoa(numbers[i])
		if part.Bootable {
			args = append(args, "set", num, "boot", "on")
		}
		for _, f := range part.Flags {
			args = append(args, "set", num, f, "on")
		}
	}
	sum := sha256.Sum256([]byte(p))
	id := "0x" + hex.EncodeToString(sum[:4])
	if n.Format == "gpt" {
		h := strings.ToUpper(hex.EncodeToString(sum[:16]))
		id = h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	}
	return args, id
}

// createTable writes the legacy table with one parted run: mklabel, then mkpart and the
// flags of every partition, in order.
func (g *gen) createTable(w *writer, p optPath, n *config.Table, dev sh) error {
	numbers := config.TableNumbers(n)
	args, id := TableScript(p.String(), n)
	var all, filled []string
	for i, part := range n.Partitions {
		all = append(all, strconv.Itoa(numbers[i]))
		if part.PartType != "extended" {
			filled = append(filled, strconv.Itoa(numbers[i]))
		}
	}
	w.linef("disko_table %s %s %s %s %s %s %s", dev, p.q(), Q(n.Format), Q(id), Q(strings.Join(all, " ")), Q(strings.Join(filled, " ")), words(args))
	parts := make([]partition, len(n.Partitions))
	for i, part := range n.Partitions {
		parts[i] = partition{p.field("partitions").index(i), part.Device, numbers[i], part.Content}
	}
	return g.createPartitions(w, dev, parts)
}

// usesDevice reports whether creating node reads its device. Members of aggregates do
// not (the aggregate finds them itself), nor does a randomly encrypted swap.
func usesDevice(node config.Node) bool {
	switch n := node.(type) {
	case nil, *config.MDRaid, *config.ZFS, *config.Bcachefs:
		return false
	case *config.Swap:
		return !n.RandomEncryption
	}
	return true
}
