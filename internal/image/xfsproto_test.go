package image

import (
	"context"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// xfsRootLayout puts / on xfs: the image's files go in through a protofile.
const xfsRootLayout = `{"disk":{"main":{"device":"/dev/vda","imageSize":"700M","content":{"type":"gpt","partitions":{
  "ESP":{"size":"64M","type":"EF00","content":{"type":"filesystem","format":"vfat","mountpoint":"/boot"}},
  "root":{"size":"100%","content":{"type":"filesystem","format":"xfs","extraArgs":["-L","nixos"],"mountpoint":"/"}}}}}}}`

// TestXFSFilled: files go into an xfs filesystem without mounting it, as user nobody:
// directories, a setuid file, an empty file, a symlink and a named pipe keep their type,
// mode and content size, are owned by root, and xfs_repair finds the filesystem sound.
// What a protofile cannot say (a name with a blank) is refused with the path.
func TestXFSFilled(t *testing.T) {
	for _, tool := range []string{"mkfs.xfs", "xfs_db", "xfs_repair", "mkfs.vfat", "sfdisk"} {
		if _, err := toolPath(tool); err != nil {
			t.Skip(err)
		}
	}
	src := sharedTempDir(t)
	os.MkdirAll(filepath.Join(src, "etc", "ssh"), 0o755)
	os.WriteFile(filepath.Join(src, "etc", "ssh", "key"), []byte("secret\n"), 0o600)
	os.WriteFile(filepath.Join(src, "etc", "empty"), nil, 0o644)
	os.WriteFile(filepath.Join(src, "etc", "su"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("/nix/store/example", filepath.Join(src, "etc", "link"))
	if err := syscall.Mkfifo(filepath.Join(src, "etc", "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	giveToNobody(t, src)
	os.Chmod(filepath.Join(src, "etc", "su"), 0o755|os.ModeSetuid) // after chown, which clears it
	out := sharedTempDir(t)
	res := helper(t, asNobody(t), nil, helperJob{Layout: xfsRootLayout, Out: out, Files: []File{{Source: filepath.Join(src, "etc"), Dest: "/etc"}}})
	if res.Err != "" {
		t.Fatal(res.Err)
	}
	fsImage := extractPartition(t, res.Paths[0], 2)
	if out, err := exec.Command("xfs_repair", "-n", "-f", fsImage).CombinedOutput(); err != nil {
		t.Errorf("xfs_repair -n: %v\n%s", err, out)
	}
	for _, c := range []struct{ path, want string }{
		{"/etc/ssh/key", "core.mode = 0100600\ncore.uid = 0\ncore.gid = 0\ncore.size = 7"},
		{"/etc/empty", "core.mode = 0100644\ncore.uid = 0\ncore.gid = 0\ncore.size = 0"},
		{"/etc/su", "core.mode = 0104755\ncore.uid = 0\ncore.gid = 0\ncore.size = 10"},
		{"/etc/link", "core.mode = 0120777\ncore.uid = 0\ncore.gid = 0\ncore.size = 18"},
		{"/etc/fifo", "core.mode = 010640\ncore.uid = 0\ncore.gid = 0\ncore.size = 0"},
	} {
		got, err := exec.Command("xfs_db", "-r", "-c", "path "+c.path, "-c", "print core.mode core.uid core.gid core.size", fsImage).CombinedOutput()
		if err != nil || strings.TrimSpace(string(got)) != c.want {
			t.Errorf("%s in the xfs image: %v\n%s\nwant\n%s", c.path, err, got, c.want)
		}
	}

	os.WriteFile(filepath.Join(src, "etc", "a name"), nil, 0o644)
	giveToNobody(t, src)
	res = helper(t, asNobody(t), nil, helperJob{Layout: xfsRootLayout, Out: sharedTempDir(t), Files: []File{{Source: filepath.Join(src, "etc"), Dest: "/etc"}}})
	wantFailure(t, res, `/etc/a name: "a name" cannot be written in an xfs protofile`)
}

// extractPartition copies partition n of img into a file of its own, for tools that
// take no offset.
func extractPartition(t *testing.T, img string, n int) string {
	t.Helper()
	regions, err := partitionRegions(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	r := regions[n]
	in, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	name := filepath.Join(t.TempDir(), "partition")
	out, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, io.NewSectionReader(in, r.offset, r.size)); err != nil {
		t.Fatal(err)
	}
	return name
}

// giveToNobody makes the files under dir nobody's when the tests build as nobody, as a
// user's own files are.
func giveToNobody(t *testing.T, dir string) {
	t.Helper()
	if asNobody(t) == nil {
		return
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	err = filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}
