package codegen

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
)

// TestLoopOddSubvolumeNames: subvolume names that mount -o subvol= can carry (spaces,
// quotes other than ", shell syntax, unicode) are created and each is mounted where the
// layout says, not the top level in its place (what a name with " did: mount.sh exited 0
// with subvolid=5 mounted). Names that it cannot carry are refused by config.Load.
func TestLoopOddSubvolumeNames(t *testing.T) {
	requireRoot(t, "mkfs.btrfs", "btrfs")
	names := map[string]string{ // subvolume name -> mount point below the root
		"@home dir":         "/home dir",
		"ünï/😀 x":           "/emoji",
		"a'b$(c)`d`;e&f*=g": "/shell",
		"nested/@x y":       "/nested",
	}
	loop := newLoop(t, 256<<20)
	subvols := map[string]any{}
	for name, mp := range names {
		subvols[name] = map[string]any{"mountpoint": mp}
	}
	subvols["nested"] = map[string]any{} // the parent of "nested/@x y", not mounted
	content, err := json.Marshal(map[string]any{"type": "btrfs", "subvolumes": subvols})
	if err != nil {
		t.Fatal(err)
	}
	d := layout(t, fmt.Sprintf(`{"disk": {"d": {"device": %q, "content": %s}}}`, loop, content), loop)
	ns := newNamespace(t)
	s, err := Generate(d, Options{RootMountpoint: ns.root})
	if err != nil {
		t.Fatal(err)
	}
	ns.mustScript(t, "format,mount", s.FormatMount)
	// A marker written through each mount point must land in the subvolume of that name,
	// seen from the top level.
	top := filepath.Join(t.TempDir(), "top")
	if out, err := ns.run(nil, "mkdir", "-p", top); err != nil {
		t.Fatalf("mkdir: %v\n%s", err, out)
	}
	if out, err := ns.run(nil, "mount", "-t", "btrfs", "-o", "subvolid=5", loop, top); err != nil {
		t.Fatalf("mounting the top level: %v\n%s", err, out)
	}
	for name, mp := range names {
		marker := filepath.Join(ns.root+mp, "marker")
		if out, err := ns.run(nil, "touch", marker); err != nil {
			t.Fatalf("touch %s: %v\n%s", marker, err, out)
		}
		if out, err := ns.run(nil, "test", "-e", filepath.Join(top, name, "marker")); err != nil {
			t.Errorf("the marker written at %q is not in subvolume %q: mount.sh mounted something else there (%v %s)", mp, name, err, out)
		}
		if out, err := ns.run(nil, "btrfs", "subvolume", "show", filepath.Join(top, name)); err != nil {
			t.Errorf("%q is not a subvolume: %v\n%s", name, err, out)
		}
	}
	if out, err := ns.run(nil, "umount", top); err != nil {
		t.Fatalf("umount: %v\n%s", err, out)
	}
	ns.mustScript(t, "unmount", s.Unmount)
	ns.mustScript(t, "mount again", s.Mount)
	ns.mustScript(t, "unmount again", s.Unmount)
}
