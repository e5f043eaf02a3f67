package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestImageCommand drives `disko-compile image` end to end: disko's flag shapes
// (--size NAME SIZE, --post-format-files SRC DST after the layout), a qcow2 image, and the
// file placed into the root filesystem.
func TestImageCommand(t *testing.T) {
	for _, tool := range []string{"qemu-img", "sfdisk", "mkfs.ext4", "mkfs.vfat", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
				t.Skipf("%s is not installed", tool)
			}
		}
	}
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout.json")
	os.WriteFile(layout, []byte(`{"disk":{"main":{"device":"/dev/sda","content":{"type":"gpt","partitions":{
  "ESP":{"size":"64M","type":"EF00","content":{"type":"filesystem","format":"vfat","mountpoint":"/boot"}},
  "root":{"size":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}}}}}}`), 0o644)
	hello := filepath.Join(dir, "hello")
	os.WriteFile(hello, []byte("hi\n"), 0o600)
	out := filepath.Join(dir, "images")
	code, stdout, stderr := runCLI(t, "", "image", "--format", "qcow2", layout, "--size", "main", "512M", "--out", out,
		"--post-format-files", hello, "/etc/hello")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	img := filepath.Join(out, "main.qcow2")
	if strings.TrimSpace(stdout) != img {
		t.Errorf("stdout %q, want the image path %s", stdout, img)
	}
	info, err := exec.Command("qemu-img", "info", "--output=json", img).Output()
	if err != nil || !strings.Contains(string(info), `"format": "qcow2"`) || !strings.Contains(string(info), `"virtual-size": 536870912`) {
		t.Errorf("qemu-img info: %v\n%s", err, info)
	}
	raw := filepath.Join(dir, "main.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", img, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	// The root partition starts after the ESP, at 65 MiB.
	got, err := exec.Command("debugfs", "-R", "cat /etc/hello", raw+"?offset="+"68157440").CombinedOutput()
	if err != nil || !strings.Contains(string(got), "hi") {
		t.Errorf("/etc/hello in the root filesystem: %v\n%s", err, got)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Errorf("the output directory holds %v, want the image only", entries)
	}
}
