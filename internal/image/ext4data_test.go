package image

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestExt4LargeFiles: the large files of a tree, filled in after mke2fs (hollowLargeFiles,
// fillLargeFiles), come out of the image with their bytes, modes, times and hard links,
// next to small files mke2fs wrote itself, and e2fsck finds the filesystem clean.
func TestExt4LargeFiles(t *testing.T) {
	skipWithout(t, "debugfs", "e2fsck", "mkfs.ext4", "mkfs.vfat", "sfdisk")
	src := t.TempDir()
	mtime := time.Unix(1, 0)
	files := []struct {
		name string
		size int
		mode os.FileMode
	}{
		{"small", 10, 0o644},
		{"exactly-64k", largeFileBytes, 0o644},
		{"bin/setuid tool", 300 << 10, os.ModeSetuid | 0o755},
		{"ro/big", 5<<20 + 123, 0o444},
		{"ro/sub/odd 'é#1'", 70<<10 + 1, 0o600},
	}
	for _, f := range files {
		path := filepath.Join(src, f.name)
		os.MkdirAll(filepath.Dir(path), 0o755)
		data := make([]byte, f.size)
		rand.Read(data)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, f.mode)
		os.Chtimes(path, mtime, mtime)
	}
	if err := os.Link(filepath.Join(src, "ro/big"), filepath.Join(src, "big-link")); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"ro/sub", "ro"} {
		os.Chmod(filepath.Join(src, dir), 0o555)
		os.Chtimes(filepath.Join(src, dir), mtime, mtime)
	}
	t.Cleanup(func() { makeWritable(src) })

	out := t.TempDir()
	paths, err := Build(context.Background(), load(t, exampleLayout), Options{OutDir: out, Files: []File{{Source: src, Dest: "/data"}}})
	if err != nil {
		t.Fatal(err)
	}
	regions, err := partitionRegions(context.Background(), paths[0])
	if err != nil {
		t.Fatal(err)
	}
	root := paths[0] + "?offset=" + strconv.FormatInt(regions[2].offset, 10)
	if out, err := exec.Command("e2fsck", "-fn", root).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck: %v\n%s", err, out)
	}
	dump := t.TempDir()
	if out, err := exec.Command("debugfs", "-R", "rdump /data "+dump, root).CombinedOutput(); err != nil {
		t.Fatalf("debugfs rdump: %v\n%s", err, out)
	}
	t.Cleanup(func() { makeWritable(dump) })
	for _, f := range append(files, struct {
		name string
		size int
		mode os.FileMode
	}{"big-link", 5<<20 + 123, 0o444}) {
		want, _ := os.ReadFile(filepath.Join(src, f.name))
		path := filepath.Join(dump, "data", f.name)
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes (%v), want the %d bytes put in", f.name, len(got), err, len(want))
			continue
		}
		fi, _ := os.Lstat(path)
		if fi.Mode().Perm() != f.mode.Perm() || !fi.ModTime().Equal(mtime) {
			t.Errorf("%s: mode %v, mtime %v; want %v, %v", f.name, fi.Mode().Perm(), fi.ModTime(), f.mode.Perm(), mtime)
		}
	}
	stat, _ := exec.Command("debugfs", "-R", "stat /data/big-link", root).CombinedOutput()
	if !regexp.MustCompile(`Links: 2`).Match(stat) {
		t.Errorf("/data/big-link and /data/ro/big are not one inode in the image:\n%s", stat)
	}
	stat, _ = exec.Command("debugfs", "-R", "stat /data/ro", root).CombinedOutput()
	if !regexp.MustCompile(`Mode:  0555`).Match(stat) || !regexp.MustCompile(`mtime: 0x00000001`).Match(stat) {
		t.Errorf("/data/ro lost its mode or mtime:\n%s", stat)
	}
	stat, _ = exec.Command("debugfs", "-R", "stat \"/data/bin/setuid tool\"", root).CombinedOutput()
	if !regexp.MustCompile(`Mode:  04755`).Match(stat) {
		t.Errorf("the setuid file lost its mode:\n%s", stat)
	}
}

// TestExt4LargeFilesDoNotFit: a large file that does not fit in its filesystem fails the
// build with its name, and leaves no image behind.
func TestExt4LargeFilesDoNotFit(t *testing.T) {
	skipWithout(t, "debugfs", "mkfs.ext4", "sfdisk")
	src := t.TempDir()
	data := make([]byte, 24<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(src, "big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	layout := `{"disk":{"main":{"device":"/dev/vda","imageSize":"64M","content":{"type":"gpt","partitions":{
  "root":{"size":"16M","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}}}}}}`
	out := t.TempDir()
	_, err := Build(context.Background(), load(t, layout), Options{OutDir: out, Files: []File{{Source: src, Dest: "/data"}}})
	if err == nil || !strings.Contains(err.Error(), "/data/big") {
		t.Fatalf("the build did not fail naming /data/big: %v", err)
	}
	t.Log(err)
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// skipWithout skips the test when one of the tools is not installed.
func skipWithout(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := toolPath(tool); err != nil {
			t.Skip(err)
		}
	}
}
