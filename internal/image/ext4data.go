package image

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/lazyregexp"
	"golang.org/x/sys/unix"
)

// Filling an ext4 filesystem fast.
//
// mke2fs -d writes a file's data one block per ext2fs_file_write, each a pwrite of 4 KiB,
// and once a file's extents leave the inode it rewrites the extent leaf for every block:
// 100 MiB cost 2-3x what dd does, one 1 GiB file 7x. So the large files of a tree are
// given to mke2fs empty (hollowLargeFiles), and afterwards debugfs allocates their
// blocks in whole extents (fallocate, which makes them uninitialized; replace_node then
// marks them written) and sets their size, and their bytes are copied into those blocks
// of the image with copy_file_range (fillLargeFiles): the metadata is libext2fs' own,
// the data moves in the kernel.

// largeFileBytes is the size from which a file's data is copied by us rather than by
// mke2fs -d: below it, the debugfs commands cost more than they save.
const largeFileBytes = 64 << 10

// largeFile is a file of the tree whose data is filled in after mke2fs: its path in the
// filesystem, where its bytes are now, and its size.
type largeFile struct {
	name   string // absolute path in the filesystem
	source string
	size   int64
}

// canFillExt4 reports whether the large files of fs can be filled in after mke2fs: an
// ext4 with extents, no inline data (an empty file would be inline) and no bigalloc
// (clusters larger than blocks), as mke2fs makes it by default.
func canFillExt4(fs *config.Filesystem) bool {
	if fs.Format != "ext4" {
		return false
	}
	for _, a := range fs.ExtraArgs {
		if strings.Contains(a, "extent") || strings.Contains(a, "inline_data") || strings.Contains(a, "bigalloc") {
			return false
		}
	}
	return true
}

// hollowLargeFiles moves each large regular file of tree into aside and leaves in its
// place an empty file with the same mode, owner and times (hard links to one file stay
// links to one placeholder), so that mke2fs -d makes its inode without its data. The
// directories keep their mode and times. Files with holes or extended attributes, and
// names debugfs could not be given, stay as they are.
func hollowLargeFiles(tree, aside string) ([]largeFile, error) {
	var files []largeFile
	// What changes, by directory (each is made writable once for all its changes):
	// first the files moved away, then the other links to them.
	moves, links := map[string][]hollowed{}, map[string][]hollowed{}
	var dirs []string
	placeholders := map[[2]uint64]string{} // (device, inode) of a moved file: its placeholder
	err := filepath.WalkDir(tree, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		dir := filepath.Dir(path)
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if first, ok := placeholders[key]; ok {
			links[dir] = append(links[dir], hollowed{path: path, to: first})
		} else {
			rel, _ := filepath.Rel(tree, path)
			if fi.Size() < largeFileBytes || st.Blocks*512 < fi.Size() || !debugfsName(rel) || hasXattrs(path) {
				return nil
			}
			moved := filepath.Join(aside, strconv.Itoa(len(files)))
			moves[dir] = append(moves[dir], hollowed{path: path, to: moved, fi: fi})
			placeholders[key] = path
			files = append(files, largeFile{name: "/" + filepath.ToSlash(rel), source: moved, size: fi.Size()})
		}
		if len(moves[dir])+len(links[dir]) == 1 {
			dirs = append(dirs, dir)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, changes := range []map[string][]hollowed{moves, links} {
		for _, dir := range dirs {
			if len(changes[dir]) == 0 {
				continue
			}
			err := inDir(dir, func() error {
				for _, h := range changes[dir] {
					if err := h.apply(); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// hollowed is a file of the tree that hollowLargeFiles changes: moved to to and replaced
// by a placeholder like fi, or, when fi is nil, replaced by a link to the placeholder to.
type hollowed struct {
	path, to string
	fi       os.FileInfo
}

func (h hollowed) apply() error {
	if h.fi == nil {
		if err := os.Remove(h.path); err != nil {
			return err
		}
		return os.Link(h.to, h.path)
	}
	if err := os.Rename(h.path, h.to); err != nil {
		return err
	}
	return placeholder(h.path, h.fi)
}

// inDir runs change, which adds or removes entries of dir, with dir writable, then gives
// dir back its mode and times (mke2fs -d copies both).
func inDir(dir string, change func() error) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	mode := fi.Mode()
	if mode.Perm()&0o200 == 0 {
		if err := os.Chmod(dir, mode|0o200); err != nil {
			return err
		}
	}
	err = change()
	if err2 := os.Chmod(dir, mode); err == nil {
		err = err2
	}
	st := fi.Sys().(*syscall.Stat_t)
	if err2 := os.Chtimes(dir, time.Unix(st.Atim.Unix()), fi.ModTime()); err == nil {
		err = err2
	}
	return err
}

// placeholder makes an empty file at path with the mode, owner and times of fi.
func placeholder(path string, fi os.FileInfo) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	if os.Geteuid() == 0 && (int(st.Uid) != 0 || int(st.Gid) != 0) {
		if err := os.Lchown(path, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if err := os.Chmod(path, fi.Mode()); err != nil {
		return err
	}
	return os.Chtimes(path, time.Unix(st.Atim.Unix()), fi.ModTime())
}

// debugfsName reports whether a path can be written in a debugfs command: quoted, so
// no quote, backslash or control character.
func debugfsName(rel string) bool {
	return !strings.ContainsFunc(rel, func(r rune) bool { return r == '"' || r == '\\' || r < ' ' || r == 0x7f })
}

// hasXattrs reports whether path has extended attributes (which mke2fs -d copies, and a
// placeholder would not have).
func hasXattrs(path string) bool {
	n, err := unix.Llistxattr(path, nil)
	return err != nil || n > 0
}

// fillLargeFiles gives the files hollowed out of the tree of the ext4 filesystem at
// offset in img their blocks, sizes and bytes.
func fillLargeFiles(ctx context.Context, img *os.File, offset int64, files []largeFile) error {
	if len(files) == 0 {
		return nil
	}
	blockSize, err := ext4BlockSize(img, offset)
	if err != nil {
		return err
	}
	device := img.Name() + "?offset=" + strconv.FormatInt(offset, 10)
	var alloc strings.Builder
	for _, f := range files {
		blocks := (f.size + blockSize - 1) / blockSize
		fmt.Fprintf(&alloc, "fallocate \"%s\" 0 %d\nsif \"%s\" size %d\nex \"%s\"\n", f.name, blocks-1, f.name, f.size, f.name)
	}
	extents, err := debugfsExtents(ctx, device, alloc.String(), files, blockSize)
	if err != nil {
		return err
	}
	var mark strings.Builder
	for _, f := range files {
		fmt.Fprintf(&mark, "extent_open \"%s\"\n", f.name)
		for _, e := range extents[f.name] {
			fmt.Fprintf(&mark, "goto_block %d\nreplace_node %d %d %d\n", e.logical, e.logical, e.length, e.physical)
		}
		fmt.Fprintf(&mark, "extent_close\nex \"%s\"\n", f.name)
	}
	// The blocks are where they are: their bytes are copied while debugfs marks them
	// written (it writes only the extent tree and inodes).
	marked := make(chan error, 1)
	go func() {
		marked <- checkWritten(ctx, device, mark.String(), files, blockSize, extents)
	}()
	var copyErr error
	for _, f := range files {
		if copyErr = copyExtents(img, offset, f, extents[f.name], blockSize); copyErr != nil {
			copyErr = fmt.Errorf("%s: %w", f.name, copyErr)
			break
		}
	}
	if err := <-marked; err != nil {
		return err
	}
	return copyErr
}

// checkWritten runs the debugfs script that marks the extents written, and checks that
// every file then has the extents it had, none left unwritten.
func checkWritten(ctx context.Context, device, script string, files []largeFile, blockSize int64, want map[string][]extent) error {
	got, err := debugfsExtents(ctx, device, script, files, blockSize)
	if err != nil {
		return err
	}
	for _, f := range files {
		for i, e := range got[f.name] {
			if e.uninit || i >= len(want[f.name]) || want[f.name][i].physical != e.physical || want[f.name][i].length != e.length {
				return fmt.Errorf("debugfs left extent %d+%d of %s unwritten or moved it", e.logical, e.length, f.name)
			}
		}
	}
	return nil
}

// copyExtents copies the bytes of f into its blocks in the image.
func copyExtents(img *os.File, offset int64, f largeFile, extents []extent, blockSize int64) error {
	src, err := os.Open(f.source)
	if err != nil {
		return err
	}
	defer src.Close()
	for _, e := range extents {
		from := e.logical * blockSize
		n := min(e.length*blockSize, f.size-from)
		if err := copyRange(img, src, from, offset+e.physical*blockSize, n); err != nil {
			return err
		}
	}
	return nil
}

// extent is a leaf extent of a file, in blocks.
type extent struct {
	logical, physical, length int64
	uninit                    bool
}

// extentLine is a leaf line of debugfs' dump_extents: level/depth, entry/entries,
// logical start - end, physical start - end, length, flags. It compiles on first use:
// every disko-compile run links this package, and compiling it at start-up was part of
// each compile's time.
var extentLine = lazyregexp.New(`^\s*(\d+)/\s*(\d+)\s+\d+/\s*\d+\s+(\d+)\s+-\s+(\d+)\s+(\d+)\s+-\s+(\d+)\s+(\d+)\s*(Uninit)?\s*$`)

// debugfsExtents runs the debugfs commands script on device and returns the extents its
// last ex command of each file printed. debugfs exits 0 also when a command fails, so
// the extents are checked to map each file's blocks from 0 to its end, once each.
func debugfsExtents(ctx context.Context, device, script string, files []largeFile, blockSize int64) (map[string][]extent, error) {
	out, err := outputInput(ctx, script, "debugfs", "-w", "-f", "-", device)
	if err != nil {
		return nil, err
	}
	extents := map[string][]extent{}
	current := ""
	for _, line := range strings.Split(string(out), "\n") {
		if cmd, ok := strings.CutPrefix(line, "debugfs: "); ok {
			current = ""
			if name, ok := strings.CutPrefix(cmd, "ex "); ok {
				current = strings.Trim(name, `"`)
				extents[current] = nil
			}
			continue
		}
		m := extentLine.FindStringSubmatch(line)
		if current == "" || m == nil || m[1] != m[2] {
			continue
		}
		n := func(i int) int64 { v, _ := strconv.ParseInt(m[i], 10, 64); return v }
		extents[current] = append(extents[current], extent{logical: n(3), physical: n(5), length: n(7), uninit: m[8] != ""})
	}
	for _, f := range files {
		next := int64(0)
		for _, e := range extents[f.name] {
			if e.logical != next {
				break
			}
			next += e.length
		}
		if next*blockSize < f.size || (next-1)*blockSize >= f.size {
			return nil, fmt.Errorf("debugfs could not give %s blocks for its %d bytes (is the partition large enough for the files put into it?):\n%s", f.name, f.size, tail(out))
		}
	}
	return extents, nil
}

// tail is the end of a tool's output, for an error message.
func tail(out []byte) string {
	return string(out[max(0, len(out)-2048):])
}

// ext4BlockSize reads the block size from the superblock of the ext4 at offset in img.
func ext4BlockSize(img *os.File, offset int64) (int64, error) {
	sb := make([]byte, 64)
	if _, err := img.ReadAt(sb, offset+1024); err != nil {
		return 0, err
	}
	if binary.LittleEndian.Uint16(sb[56:]) != 0xef53 {
		return 0, fmt.Errorf("no ext4 superblock at byte %d", offset+1024)
	}
	return 1024 << binary.LittleEndian.Uint32(sb[24:]), nil
}
