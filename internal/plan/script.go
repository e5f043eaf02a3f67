package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/probe"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// Apply runs as one bash script made of the actions' commands, in plan order, each headed
// by its option path. A script (rather than commands run one by one from Go) is what the
// rest of the project hands to targets: it runs the same through a local shell or one SSH
// session, can be printed and reviewed (`disko-compile plan --script`), and stops at the
// first failing command (set -e). Every value from the layout or the probe goes through
// shell.Quote.

// applyHeader is the start of every apply script: strict mode and the helper that finds
// (and if needed adds to the kernel's view) a partition's device node.
const applyHeader = `#!/usr/bin/env bash
# Incremental apply, written by disko-compile: only the actions of the plan.
set -euo pipefail

# disko_apply_node DISK N: print the device node of partition N of DISK, telling the
# kernel about it first when it does not know it (partx), and waiting for udev.
disko_apply_node() {
  local disk node i
  disk=$(readlink -f -- "$1")
  case $disk in
  *[0-9]) node=${disk}p$2 ;;
  *) node=$disk$2 ;;
  esac
  if [ ! -b "$node" ]; then
    partx --add --nr "$2" -- "$disk" 2>/dev/null || partx --update --nr "$2" -- "$disk"
  fi
  if command -v udevadm >/dev/null && udevadm control --ping >/dev/null 2>&1; then
    udevadm settle
  fi
  for i in $(seq 100); do
    [ -b "$node" ] && break
    sleep 0.1
  done
  [ -b "$node" ] || { echo "disko apply: partition $2 of $disk did not appear as $node" >&2; exit 1; }
  printf '%s\n' "$node"
}
`

// Script is the shell script that carries out the plan's actions. It is only meaningful
// for a plan without refusals.
func (p *Plan) Script() []byte {
	var b strings.Builder
	b.WriteString(applyHeader)
	for _, a := range p.Actions {
		fmt.Fprintf(&b, "\n# %s: %s\n", a.Path, a.Action)
		fmt.Fprintf(&b, "echo %s >&2\n", q("disko apply: "+a.Description))
		b.WriteString(strings.TrimRight(a.script, "\n") + "\n")
	}
	return []byte(b.String())
}

// formatScript makes content n on the device in the shell word dev (a new partition, or a
// device without signature) and says what it does; contents that apply cannot make are an
// error.
func formatScript(n config.Node, dev string) (string, string, error) {
	switch n := n.(type) {
	case nil:
		return "", "", nil
	case *config.Filesystem:
		return q("mkfs."+n.Format) + " " + wordsThen(n.ExtraArgs) + dev + " >/dev/null\n", "format it " + n.Format, nil
	case *config.Swap:
		if n.RandomEncryption {
			return "", "leave it blank for randomly encrypted swap", nil
		}
		return "mkswap " + wordsThen(n.ExtraArgs) + dev + " >/dev/null\n", "make swap on it", nil
	case *config.BTRFS:
		script := "mkfs.btrfs " + splitThen(n.ExtraArgs) + dev + " >/dev/null\n"
		var inside []string
		for _, key := range slices.Sorted(maps.Keys(n.Subvolumes)) {
			sv := n.Subvolumes[key]
			name := q(strings.Trim(sv.Name, "/"))
			inside = append(inside, "mkdir -p \"$(dirname \"$top\"/"+name+")\"", "btrfs subvolume create "+wordsThen(sv.ExtraArgs)+"\"$top\"/"+name+" >/dev/null")
			for _, fk := range slices.Sorted(maps.Keys(sv.Swap)) {
				f := sv.Swap[fk]
				inside = append(inside, "btrfs filesystem mkswapfile --size "+q(f.Size)+" \"$top\"/"+name+"/"+q(strings.Trim(f.Path, "/"))+" >/dev/null")
			}
		}
		for _, fk := range slices.Sorted(maps.Keys(n.Swap)) {
			f := n.Swap[fk]
			inside = append(inside, "btrfs filesystem mkswapfile --size "+q(f.Size)+" \"$top\"/"+q(strings.Trim(f.Path, "/"))+" >/dev/null")
		}
		if len(inside) > 0 {
			script += withTopWord(dev, strings.Join(inside, "\n"))
		}
		what := "format it btrfs"
		if len(n.Subvolumes) > 0 {
			what += fmt.Sprintf(" with %d subvolumes", len(n.Subvolumes))
		}
		return script, what, nil
	}
	return "", "", fmt.Errorf("apply cannot create a %s yet (it only creates filesystems, swap and btrfs); create it with the format script", n.Kind())
}

// growScript grows the content of a partition that has just grown.
func growScript(c *probe.Content, node string) (string, error) {
	if c == nil {
		return "", nil
	}
	switch c.Type {
	case "ext4", "ext3", "ext2":
		if len(c.Mounts) > 0 {
			return words("resize2fs", node) + " >/dev/null 2>&1\n", nil
		}
		return words("e2fsck", "-f", "-p", node) + " >/dev/null\n" + words("resize2fs", node) + " >/dev/null 2>&1\n", nil
	case "xfs":
		return withTop(node, `xfs_growfs "$top" >/dev/null`), nil
	case "btrfs":
		return withTop(node, `btrfs filesystem resize max "$top" >/dev/null`), nil
	}
	return "", fmt.Errorf("its %s cannot be grown in place by apply", c.Type)
}

// withTop runs body with the filesystem on node mounted at "$top" (a btrfs at its top
// level), in a subshell that unmounts it even when body fails.
func withTop(node, body string) string { return withTopWord(q(node), body) }

func withTopWord(dev, body string) string {
	return "(\n  top=$(mktemp -d)\n  trap 'umount \"$top\" 2>/dev/null || :; rmdir \"$top\" 2>/dev/null || :' EXIT\n" +
		"  if [ \"$(blkid -p -o value -s TYPE -- " + dev + ")\" = btrfs ]; then mount -o subvol=/ -- " + dev + " \"$top\"; else mount -- " + dev + " \"$top\"; fi\n  " +
		strings.ReplaceAll(body, "\n", "\n  ") + "\n  umount \"$top\"\n)\n"
}

// blkidType is the TYPE blkid reports for a filesystem made by mkfs.FORMAT.
func blkidType(format string) string {
	switch format {
	case "vfat", "fat", "msdos", "fat12", "fat16", "fat32":
		return "vfat"
	case "ntfs", "ntfs3":
		return "ntfs"
	}
	return format
}

func q(s string) string { return shell.Quote(s) }

// words quotes each word and joins them with spaces.
func words(ws ...string) string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = q(w)
	}
	return strings.Join(out, " ")
}

// wordsThen is words followed by a space, or "" for no words.
func wordsThen(ws []string) string {
	if len(ws) == 0 {
		return ""
	}
	return words(ws...) + " "
}

// splitThen splits each argument at whitespace (as disko does for mkfs.btrfs extraArgs)
// and quotes the words.
func splitThen(args []string) string {
	var ws []string
	for _, a := range args {
		ws = append(ws, strings.Fields(a)...)
	}
	return wordsThen(ws)
}
