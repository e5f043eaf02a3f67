package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// asCommand makes the test binary act as disko-compile when this variable is set, so
// that TestApplyCLI runs the real command in a private mount namespace.
const asCommand = "DISKO_COMPILE_TEST_AS_COMMAND"

func TestMain(m *testing.M) {
	if os.Getenv(asCommand) == "1" {
		os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestApplyCLI runs `disko-compile apply` end to end on a loop disk formatted with a
// layout and holding a file, in a private mount namespace: a changed format exits 1 and
// changes nothing (the disk's first and last MiB and its table stay the same); a layout
// that adds a partition and a subvolume plans exactly those (plan --json, exit 0, disk
// unchanged), and apply exits 0, mounts everything under
// --root-mountpoint with the file intact; and plan is then empty. apply has no consent
// flag: its plan never destroys data.
func TestApplyCLI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices and mounts")
	}
	for _, tool := range []string{"losetup", "sfdisk", "sgdisk", "partx", "blkid", "wipefs", "findmnt", "mkfs.ext4", "mkfs.btrfs", "btrfs", "unshare", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	dev := testtarget.LoopDevice(t, 512<<20)
	t.Cleanup(func() { exec.Command("partx", "-d", dev).Run() })
	if err := testtarget.RefuseUnlessOwnLoop(dev); err != nil {
		t.Fatal(err)
	}
	layout := func(format, more, sub string) string {
		return fmt.Sprintf(`{"disk": {"main": {"device": %q, "content": {"type": "gpt", "partitions": {
  "boot": {"size": "64M", "content": {"type": "filesystem", "format": %q, "mountpoint": "/boot"}},
  "root": {"size": "200M", "content": {"type": "btrfs", "extraArgs": ["-f"], "subvolumes": {"/rootfs": {"mountpoint": "/"}%s}}}%s}}}}}`, dev, format, sub, more)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	write := func(name, content string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	// ns runs a shell script in a private mount namespace; $cmd is disko-compile.
	ns := func(script string) (int, string) {
		c := exec.Command("unshare", "--mount", "--propagation", "private", "bash", "-euo", "pipefail", "-c", script)
		c.Env = append(os.Environ(), asCommand+"=1", "cmd="+os.Args[0], "root="+root, "NIX_CONFIG=substituters =\nexperimental-features = nix-command flakes")
		out, err := c.CombinedOutput()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatal(err)
		}
		return c.ProcessState.ExitCode(), string(out)
	}

	d, err := config.Load([]byte(layout("ext4", "", "")), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := codegen.Generate(d, codegen.Options{RootMountpoint: root})
	if err != nil {
		t.Fatal(err)
	}
	if code, out := ns(string(s.FormatMount) + "\nhead -c 1000000 /dev/urandom > \"$root/boot/keep\"\nsha256sum \"$root/boot/keep\" > " + filepath.Join(dir, "sum")); code != 0 {
		t.Fatalf("format,mount: exit %d\n%s", code, out)
	}

	before := testtarget.DiskEdges(t, dev)
	if code, out := ns(`"$cmd" apply --root-mountpoint "$root" ` + write("xfs.json", layout("xfs", "", ""))); code != 1 || !strings.Contains(out, "partitions.boot.content.format") {
		t.Errorf("apply of a changed format: exit %d, want 1 and a refusal at its format\n%s", code, out)
	}
	if after := testtarget.DiskEdges(t, dev); after != before {
		t.Errorf("a refused apply changed the disk:\nbefore %s\nafter  %s", before, after)
	}

	v2 := write("v2.json", layout("ext4", `, "srv": {"size": "64M", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/srv"}}`, `, "/home": {"mountpoint": "/home"}`))
	code, out := ns(`"$cmd" plan --json --root-mountpoint "$root" ` + v2)
	var p struct {
		Actions []struct{ Path, Action string } `json:"actions"`
		Refused []struct{ Path, Reason string } `json:"refused"`
	}
	if err := json.Unmarshal([]byte(out), &p); code != 0 || err != nil {
		t.Fatalf("plan --json v2: exit %d, %v\n%s", code, err, out)
	}
	const at = "disko.devices.disk.main.content.partitions."
	want := []struct{ Path, Action string }{{at + `root.content.subvolumes."/home"`, "create-subvolume"}, {at + "srv", "create-partition"}}
	slices.SortFunc(p.Actions, func(a, b struct{ Path, Action string }) int { return strings.Compare(a.Path, b.Path) })
	if !slices.Equal(p.Actions, want) || len(p.Refused) != 0 {
		t.Errorf("plan --json v2: %+v, want exactly %+v", p, want)
	}
	if after := testtarget.DiskEdges(t, dev); after != before {
		t.Errorf("plan changed the disk:\nbefore %s\nafter  %s", before, after)
	}

	code, out = ns(`"$cmd" apply --root-mountpoint "$root" ` + v2 + `
findmnt -rn -o TARGET | grep -F "$root" | sort
sha256sum -c ` + filepath.Join(dir, "sum"))
	if code != 0 {
		t.Fatalf("apply v2: exit %d\n%s", code, out)
	}
	for _, want := range []string{"create-partition", "create-subvolume", root + "/srv\n", root + "/home\n", root + "/boot\n", "keep: OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply v2 output has no %q:\n%s", want, out)
		}
	}
	if code, out := ns(`"$cmd" plan --root-mountpoint "$root" ` + v2); code != 0 || !strings.Contains(out, "nothing to do") {
		t.Errorf("plan after apply: exit %d\n%s", code, out)
	}
}
