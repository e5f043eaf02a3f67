package testvm

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// The guest's root filesystem is an initramfs: a "newc" cpio archive the
// kernel unpacks into RAM. Writing it from Go (instead of `find | cpio`)
// lets the builder assemble the tree from host files without first copying
// them into a staging directory, and makes the archive byte-for-byte
// reproducible (fixed owner, mode and mtime).

// fileKind says how an entry of the guest tree is stored in the archive.
type fileKind int

const (
	kindFile fileKind = iota
	kindDir
	kindSymlink
	kindCharDev
)

// entry is one path in the guest tree. A regular file's content comes from
// hostPath (read when the archive is written) or from data.
type entry struct {
	kind     fileKind
	mode     os.FileMode // permission bits only
	hostPath string
	data     []byte
	target   string // symlink target
	major    uint32 // character devices
	minor    uint32
}

// tree is a guest filesystem under construction, keyed by absolute guest path.
type tree map[string]*entry

// addFile records a regular file copied from the host.
func (t tree) addFile(guestPath, hostPath string, mode os.FileMode) {
	t[guestPath] = &entry{kind: kindFile, hostPath: hostPath, mode: mode.Perm()}
}

// addData records a regular file with the given content.
func (t tree) addData(guestPath string, data []byte, mode os.FileMode) {
	t[guestPath] = &entry{kind: kindFile, data: data, mode: mode.Perm()}
}

// addSymlink records a symbolic link.
func (t tree) addSymlink(guestPath, target string) {
	t[guestPath] = &entry{kind: kindSymlink, target: target, mode: 0o777}
}

// addDir records a directory with the given permissions.
func (t tree) addDir(guestPath string, mode os.FileMode) {
	t[guestPath] = &entry{kind: kindDir, mode: mode.Perm()}
}

// writeCpio writes the tree as a newc archive. Parent directories that were
// not added explicitly are created with mode 0755; entries are written in
// sorted order so parents always precede their children.
func (t tree) writeCpio(w io.Writer) error {
	all := map[string]*entry{}
	for p, e := range t {
		all[p] = e
		for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
			if _, ok := all[d]; !ok {
				if e, ok := t[d]; ok {
					all[d] = e
				} else {
					all[d] = &entry{kind: kindDir, mode: 0o755}
				}
			}
		}
	}
	names := make([]string, 0, len(all))
	for p := range all {
		names = append(names, p)
	}
	sort.Strings(names)
	cw := &cpioWriter{w: w}
	for i, p := range names {
		if err := cw.write(strings.TrimPrefix(p, "/"), uint32(i+1), all[p]); err != nil {
			return fmt.Errorf("cpio entry %s: %w", p, err)
		}
	}
	return cw.trailer()
}

type cpioWriter struct {
	w   io.Writer
	off int64
}

func (c *cpioWriter) write(name string, ino uint32, e *entry) error {
	var body []byte
	var size int64
	var mode uint32
	var src *os.File
	switch e.kind {
	case kindDir:
		mode = 0o040000
	case kindSymlink:
		mode = 0o120000
		body = []byte(e.target)
		size = int64(len(body))
	case kindCharDev:
		mode = 0o020000
	case kindFile:
		mode = 0o100000
		if e.hostPath != "" {
			f, err := os.Open(e.hostPath)
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			src, size = f, st.Size()
		} else {
			body, size = e.data, int64(len(e.data))
		}
	}
	mode |= uint32(e.mode)
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, 1, 0, size, 0, 0, e.major, e.minor, len(name)+1, 0)
	if err := c.put([]byte(hdr + name + "\x00")); err != nil {
		return err
	}
	if err := c.pad(); err != nil {
		return err
	}
	if src != nil {
		n, err := io.Copy(c.w, io.LimitReader(src, size))
		c.off += n
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("file changed while archiving (%d of %d bytes)", n, size)
		}
	} else if err := c.put(body); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) trailer() error {
	name := "TRAILER!!!"
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, len(name)+1, 0)
	if err := c.put([]byte(hdr + name + "\x00")); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) put(b []byte) error {
	n, err := c.w.Write(b)
	c.off += int64(n)
	return err
}

// pad aligns the stream to 4 bytes, as newc requires after names and data.
func (c *cpioWriter) pad() error {
	if r := c.off % 4; r != 0 {
		return c.put(make([]byte, 4-r))
	}
	return nil
}

// writeDir materializes the tree under root (which must not exist yet), for
// trees that become store paths rather than archives. Device nodes are
// left out: a store path cannot hold them.
func (t tree) writeDir(root string) error {
	names := make([]string, 0, len(t))
	for p := range t {
		names = append(names, p)
	}
	sort.Strings(names)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	for _, p := range names {
		e := t[p]
		dst := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		var err error
		switch e.kind {
		case kindDir:
			err = os.MkdirAll(dst, e.mode)
		case kindSymlink:
			err = os.Symlink(e.target, dst)
		case kindFile:
			if e.hostPath != "" {
				err = copyFile(e.hostPath, dst, e.mode)
			} else {
				err = os.WriteFile(dst, e.data, e.mode)
			}
			if err == nil {
				err = os.Chmod(dst, e.mode)
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}
