package tartree

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWrite: a tree under a new name owned by root (the build VM's copies), and a tree's
// contents with their own owners (--extra-files), keep modes, symlinks and hard links;
// Added sees every header written.
func TestWrite(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "d"), 0o700)
	os.WriteFile(filepath.Join(src, "d", "f"), []byte("data"), 0o640)
	os.Link(filepath.Join(src, "d", "f"), filepath.Join(src, "g"))
	os.Symlink("d/f", filepath.Join(src, "l"))
	os.Chmod(filepath.Join(src, "d"), 0o700|os.ModeSticky)
	me := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	root := 0
	for _, tc := range []struct {
		name string
		opts Options
		want []string
	}{
		{"prefix-as-root", Options{Prefix: "nix", UID: &root, GID: &root}, []string{
			"nix/ 5 755 0:0 ", "nix/d/ 5 1700 0:0 ", "nix/d/f 0 640 0:0 ", "nix/g 1 640 0:0 nix/d/f", "nix/l 2 777 0:0 d/f"}},
		{"contents-own-owners", Options{}, []string{
			"d/ 5 1700 " + me + " ", "d/f 0 640 " + me + " ", "g 1 640 " + me + " d/f", "l 2 777 " + me + " d/f"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var added []string
			tc.opts.Added = func(h *tar.Header) { added = append(added, h.Name) }
			var buf bytes.Buffer
			if err := Write(&buf, src, tc.opts); err != nil {
				t.Fatal(err)
			}
			var got, names []string
			r := tar.NewReader(&buf)
			for {
				h, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s %c %o %d:%d %s", h.Name, h.Typeflag, h.Mode&0o7777, h.Uid, h.Gid, h.Linkname))
				names = append(names, h.Name)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("the archive:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if strings.Join(added, " ") != strings.Join(names, " ") {
				t.Errorf("Added saw %v, the archive holds %v", added, names)
			}
		})
	}
}

// TestRefusesSpecialFiles: a device, socket or named pipe is named in the error, not
// archived.
func TestRefusesSpecialFiles(t *testing.T) {
	if err := Write(io.Discard, "/dev/null", Options{Prefix: "null"}); err == nil || !strings.Contains(err.Error(), "/dev/null") {
		t.Errorf("a device: got %v, want an error naming it", err)
	}
}
