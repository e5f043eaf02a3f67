// Package tartree streams a local file tree as a tar archive. It is the one writer
// behind anywhere's --extra-files upload and the image build VM's copies, so both keep
// modes, owners, symlinks, hard links and modification times the same way, and refuse
// the same things.
package tartree

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
)

// Options says how the tree is named and owned in the archive.
type Options struct {
	// Prefix, when not empty, names the tree in the archive: its top is an entry named
	// Prefix and everything under it is Prefix/REL (a tree copied to a new name). When
	// empty, entries are REL and the top is left out (the contents go into an existing
	// directory that keeps its own mode).
	Prefix string
	// UID and GID, when not nil, own every entry; when nil, the local numeric owners
	// are kept.
	UID, GID *int
	// Added, when not nil, sees each header as it is written: a caller that checks the
	// extracted tree afterwards records what to expect.
	Added func(*tar.Header)
}

// Write archives src (a directory, or with a Prefix also a single file or symlink) to w.
// A file linked more than once in src is stored once and hard-linked after. Only
// directories, regular files and symlinks are archived: a device, socket or named pipe
// is an error naming it, since neither a target's files nor an image should get one by
// accident.
func Write(w io.Writer, src string, opts Options) error {
	tw := tar.NewWriter(w)
	first := map[[2]uint64]string{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		name := path.Join(opts.Prefix, filepath.ToSlash(rel))
		if name == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		var target string
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		case !fi.IsDir() && !fi.Mode().IsRegular():
			return fmt.Errorf("%s: a %s cannot be archived (only directories, files and symlinks are)", p, fi.Mode().Type())
		}
		h, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		h.Name, h.Uname, h.Gname = name, "", ""
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Format = tar.FormatPAX
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			h.Uid, h.Gid = int(st.Uid), int(st.Gid)
			if fi.Mode().IsRegular() && st.Nlink > 1 {
				id := [2]uint64{uint64(st.Dev), st.Ino}
				if linked, seen := first[id]; seen {
					h.Typeflag, h.Linkname, h.Size = tar.TypeLink, linked, 0
				} else {
					first[id] = name
				}
			}
		}
		if opts.UID != nil {
			h.Uid = *opts.UID
		}
		if opts.GID != nil {
			h.Gid = *opts.GID
		}
		if opts.Added != nil {
			opts.Added(h)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
