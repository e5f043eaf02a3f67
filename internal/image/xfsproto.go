package image

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// mkfsXFSFilled makes an xfs filesystem in file holding the files of tree, without
// mounting it: mkfs.xfs -p reads a protofile that lists every file, directory, symlink
// and device node with its mode and owner (mkfs.xfs 6.1 in Debian 12 takes no directory
// to copy). Files owned by the builder become root's, as the other filesystems' fills
// do. What a protofile cannot hold is refused: names with blanks or starting with ':'
// or '$', sockets, the sticky bit (dropped: xfs takes three octal digits). Hard links
// become separate files, and mkfs.xfs reads each file whole into memory.
func mkfsXFSFilled(ctx context.Context, file, tree string, extraArgs []string) error {
	proto, err := os.CreateTemp(filepath.Dir(file), ".xfs-proto.*.partial")
	if err != nil {
		return err
	}
	defer os.Remove(proto.Name())
	w := bufio.NewWriter(proto)
	fmt.Fprintln(w, "disko-compile")
	fmt.Fprintln(w, "0 0")
	err = writeProtoEntry(w, tree, ".", "")
	if err == nil {
		err = w.Flush()
	}
	if cerr := proto.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	path, err := toolPath("mkfs.xfs")
	if err != nil {
		return err
	}
	// Sources are named relative to the tree, so the tree's own path may hold blanks.
	cmd := exec.CommandContext(ctx, path, append(append([]string{"-p", proto.Name()}, extraArgs...), file)...)
	cmd.Dir = tree
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mkfs.xfs -p failed (%v): %s", err, stderr.String())
	}
	return nil
}

// writeProtoEntry writes the protofile entry of rel (a path relative to tree) under
// name ("" for the root directory), and for a directory every entry below it.
func writeProtoEntry(w *bufio.Writer, tree, rel, name string) error {
	full := filepath.Join(tree, rel)
	fi, err := os.Lstat(full)
	if err != nil {
		return err
	}
	if name != "" {
		if err := protoWord(rel, name); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s ", name)
	}
	mode := fi.Mode()
	kind := map[fs.FileMode]string{0: "-", fs.ModeDir: "d", fs.ModeSymlink: "l", fs.ModeNamedPipe: "p", fs.ModeDevice: "b", fs.ModeDevice | fs.ModeCharDevice: "c"}[mode.Type()]
	if kind == "" {
		return fmt.Errorf("/%s: a %s cannot be put into xfs without mounting it", rel, mode.Type())
	}
	setuid, setgid := "-", "-"
	if mode&fs.ModeSetuid != 0 {
		setuid = "u"
	}
	if mode&fs.ModeSetgid != 0 {
		setgid = "g"
	}
	uid, gid := owner(fi)
	fmt.Fprintf(w, "%s%s%s%03o %d %d", kind, setuid, setgid, mode.Perm(), uid, gid)
	switch kind {
	case "-":
		if err := protoWord(rel, rel); err != nil {
			return err
		}
		fmt.Fprintf(w, " %s\n", rel)
	case "l":
		target, err := os.Readlink(full)
		if err != nil {
			return err
		}
		if err := protoWord(rel, target); err != nil {
			return err
		}
		fmt.Fprintf(w, " %s\n", target)
	case "b", "c":
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(w, " %d %d\n", unixMajor(st.Rdev), unixMinor(st.Rdev))
	case "p":
		fmt.Fprintln(w)
	case "d":
		fmt.Fprintln(w)
		entries, err := os.ReadDir(full)
		if err != nil {
			return err
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for _, e := range entries {
			if err := writeProtoEntry(w, tree, filepath.Join(rel, e.Name()), e.Name()); err != nil {
				return err
			}
		}
		fmt.Fprintln(w, "$")
	}
	return nil
}

// protoWord checks that word can be one token of a protofile.
func protoWord(rel, word string) error {
	if word == "" || strings.ContainsAny(word, " \t\n") || word[0] == ':' || word == "$" {
		return fmt.Errorf("/%s: %q cannot be written in an xfs protofile (mkfs.xfs -p reads blank-separated words; ':' starts a comment, '$' ends a directory)", rel, word)
	}
	return nil
}

// owner is a file's owner in the image: the builder's files are root's.
func owner(fi fs.FileInfo) (uid, gid uint32) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0
	}
	uid, gid = st.Uid, st.Gid
	if int(uid) == os.Geteuid() {
		uid = 0
	}
	if int(gid) == os.Getegid() {
		gid = 0
	}
	return uid, gid
}

func unixMajor(dev uint64) uint64 { return (dev>>8)&0xfff | (dev>>32)&^0xfff }
func unixMinor(dev uint64) uint64 { return dev&0xff | (dev>>12)&^0xff }
