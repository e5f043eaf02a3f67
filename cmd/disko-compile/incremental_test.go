package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// TestIncrementalCLI drives plan and import on a loop disk formatted with a layout: the
// layout plans empty (exit 0), a changed format is refused with its option path (exit 1,
// JSON), and the layout import prints (Nix, evaluated by nix, and JSON) plans empty.
func TestIncrementalCLI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices")
	}
	for _, tool := range []string{"losetup", "sfdisk", "partx", "blkid", "findmnt", "mkfs.ext4", "mkfs.btrfs", "btrfs", "unshare", "nix-instantiate"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	t.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes")
	dev := testtarget.LoopDevice(t, 512<<20)
	t.Cleanup(func() { exec.Command("partx", "-d", dev).Run() })
	layout := func(format string) string {
		return fmt.Sprintf(`{"disk": {"main": {"device": %q, "content": {"type": "gpt", "partitions": {
  "boot": {"size": "64M", "content": {"type": "filesystem", "format": %q, "mountpoint": "/boot"}},
  "root": {"size": "100%%", "content": {"type": "btrfs", "extraArgs": ["-f"], "subvolumes": {"/rootfs": {"mountpoint": "/"}}}}}}}}}`, dev, format)
	}
	d, err := config.Load([]byte(layout("ext4")), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := testtarget.RefuseUnlessOwnLoop(dev); err != nil {
		t.Fatal(err)
	}
	s, err := codegen.Generate(d, codegen.Options{RootMountpoint: "/mnt"})
	if err != nil {
		t.Fatal(err)
	}
	format := exec.Command("unshare", "--mount", "--propagation", "private", "bash", "-s")
	format.Stdin = bytes.NewReader(s.Format)
	if out, err := format.CombinedOutput(); err != nil {
		t.Fatalf("format: %v\n%s", err, out)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	cli := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"disko-compile"}, args...), strings.NewReader(""), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	if code, out, errs := cli("plan", write("same.json", layout("ext4"))); code != 0 || !strings.Contains(out, "nothing to do") {
		t.Errorf("plan of the layout the disk was formatted with: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs := cli("plan", "--json", write("xfs.json", layout("xfs")))
	var p struct {
		Actions []map[string]string `json:"actions"`
		Refused []map[string]string `json:"refused"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("plan --json: %v\n%s%s", err, out, errs)
	}
	const wantPath = "disko.devices.disk.main.content.partitions.boot.content.format"
	if code != 1 || len(p.Refused) != 1 || p.Refused[0]["path"] != wantPath || len(p.Actions) != 0 {
		t.Errorf("plan --json of a changed format: exit %d, %s%s; want exit 1 and one refusal at %s", code, out, errs, wantPath)
	}

	code, nixLayout, errs := cli("import", "--disk", "main", dev)
	if code != 0 {
		t.Fatalf("import: exit %d\n%s", code, errs)
	}
	t.Logf("import:\n%s", nixLayout)
	if code, out, errs := cli("plan", write("imported.nix", nixLayout)); code != 0 || !strings.Contains(out, "nothing to do") {
		t.Errorf("plan of the imported Nix layout: exit %d\n%s%s", code, out, errs)
	}
	code, jsonLayout, errs := cli("import", "--json", "--disk", "main="+dev)
	if code != 0 {
		t.Fatalf("import --json: exit %d\n%s", code, errs)
	}
	if code, out, errs := cli("plan", write("imported.json", jsonLayout)); code != 0 || !strings.Contains(out, "nothing to do") {
		t.Errorf("plan of the imported JSON layout: exit %d\n%s%s", code, out, errs)
	}
}
