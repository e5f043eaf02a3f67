package codegen

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

func mustLoad(t *testing.T, json string) *config.Devices {
	t.Helper()
	d, err := config.Load([]byte(json), config.LoadOptions{})
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	return d
}

const twoDisks = `{"disk": {
	"a": {"device": "/dev/vda", "content": {"type": "gpt", "partitions": {"root": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}},
	"b": {"device": "/dev/vdb", "destroy": false, "content": {"type": "gpt", "partitions": {"data": {"size": "100%", "content": {"type": "filesystem", "format": "xfs", "mountpoint": "/data"}}}}}}}`

func TestModesAndFiles(t *testing.T) {
	s, err := Generate(mustLoad(t, twoDisks), Options{})
	if err != nil {
		t.Fatal(err)
	}
	files := s.Files()
	names := map[string]string{"destroy": "destroy.sh", "format": "format.sh", "mount": "mount.sh", "unmount": "unmount.sh",
		"format,mount": "format-mount.sh", "destroy,format,mount": "destroy-format-mount.sh"}
	for _, mode := range Modes {
		got, err := s.ByMode(mode)
		if err != nil {
			t.Fatalf("ByMode(%q): %v", mode, err)
		}
		if !bytes.Equal(got, files[names[mode]]) {
			t.Errorf("ByMode(%q) is not %s", mode, names[mode])
		}
	}
	if _, err := s.ByMode("disko"); err == nil || !strings.Contains(err.Error(), "destroy,format,mount") {
		t.Errorf("ByMode(disko) = %v, want an error listing the modes", err)
	}
	fm := string(s.FormatMount)
	if strings.Index(fm, "\ndisko_format\n") > strings.Index(fm, "\ndisko_mount\n") {
		t.Error("format,mount does not format before mounting")
	}
	dfm := string(s.DestroyFormatMount)
	if !strings.Contains(dfm, "\ndisko_destroy \"$@\"\ndisko_format\ndisko_mount\n") {
		t.Error("destroy,format,mount does not destroy (with the script's arguments), format and mount in that order")
	}
	// destroy = false: disk b is neither listed for consent nor wiped.
	destroy := string(s.Destroy)
	if !strings.Contains(destroy, "disko_confirm 1 /dev/vda disko.devices.disk.a") || strings.Contains(destroy, "disko_destroy_disk \"$dev2\"") {
		t.Errorf("destroy does not keep disk b:\n%s", destroy[strings.Index(destroy, "disko_destroy() {"):])
	}
	if !strings.Contains(destroy, "# destroy = false: this disk is kept") {
		t.Error("destroy does not say why disk b is kept")
	}
}

func TestOptions(t *testing.T) {
	s, err := Generate(mustLoad(t, twoDisks), Options{RootMountpoint: "/", PathDirs: "/nix/store/a b/bin:/nix/store/c/bin"})
	if err != nil {
		t.Fatal(err)
	}
	mount := string(s.Mount)
	if !strings.Contains(mount, "PATH='/nix/store/a b/bin:/nix/store/c/bin'${PATH:+:$PATH}") {
		t.Error("PathDirs is not put in front of PATH")
	}
	if !strings.Contains(mount, `disko_mounted "$dev2" /;`) || !strings.Contains(mount, " /data\n") {
		t.Errorf("root mount point / does not mount at / and /data:\n%s", mount)
	}
	s, err = Generate(mustLoad(t, twoDisks), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(s.Mount), "PATH=") || !strings.Contains(string(s.Mount), " /mnt/data\n") {
		t.Error("default options: PATH is changed, or /mnt is not the root mount point")
	}
	if _, err := Generate(mustLoad(t, twoDisks), Options{RootMountpoint: "mnt"}); err == nil {
		t.Error("a relative root mount point is accepted")
	}
}

// TestInteractiveRunsInOrder: a layout that asks for passphrases formats its disks one
// after the other, so that the prompts do not mix.
func TestInteractiveRunsInOrder(t *testing.T) {
	d := mustLoad(t, `{"disk": {
		"a": {"device": "/dev/vda", "content": {"type": "luks", "name": "a", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}},
		"b": {"device": "/dev/vdb", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/b"}}}}`)
	s, err := Generate(d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	format := string(s.Format)
	if strings.Contains(format, "disko_parallel disko_format") || !strings.Contains(format, "\n  disko_format_1\n  disko_format_2\n") {
		t.Errorf("an interactive layout is formatted in parallel:\n%s", format[strings.Index(format, "disko_format() {"):])
	}
	if !strings.Contains(format, "disko_password /dev/vda dev") {
		t.Error("the passphrase is not asked for")
	}
	d = mustLoad(t, twoDisks)
	s, _ = Generate(d, Options{})
	if !strings.Contains(string(s.Format), "disko_parallel disko_format_1 disko.devices.disk.a disko_format_2 disko.devices.disk.b") {
		t.Error("independent disks are not formatted in parallel")
	}
}

// TestGenerateErrors: what the scripts cannot express is an error at the option path.
// config.Load refuses all of it first (config's TestValidateIsFinal holds it to that), so
// the layout is changed after loading to reach the generator's own check.
func TestGenerateErrors(t *testing.T) {
	d := mustLoad(t, `{"disk": {
		"a": {"device": "/dev/vda", "content": {"type": "luks", "name": "x", "content": {"type": "btrfs", "extraArgs": ["/dev/mapper/y"]}}},
		"b": {"device": "/dev/vdb", "content": {"type": "luks", "name": "y", "content": {"type": "btrfs"}}}}}`)
	d.Disk["b"].Content.(*config.LUKS).Content.(*config.BTRFS).ExtraArgs = []string{"/dev/mapper/x"}
	want := "depend on each other in a cycle: disko.devices.disk.a -> disko.devices.disk.b -> disko.devices.disk.a"
	if _, err := Generate(d, Options{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Generate = %v, want an error containing %q", err, want)
	}
}

// TestImplicitDependency: a device path named in an option orders the units (disko's
// luks-btrfs-raid example relies on the disks' names sorting in order).
func TestImplicitDependency(t *testing.T) {
	d := mustLoad(t, `{"disk": {
		"a": {"device": "/dev/vda", "content": {"type": "luks", "name": "x", "settings": {"keyFile": "/k"}, "content": {"type": "btrfs", "extraArgs": ["-d raid1", "/dev/mapper/y"]}}},
		"b": {"device": "/dev/vdb", "content": {"type": "luks", "name": "y", "settings": {"keyFile": "/k"}}}}}`)
	s, err := Generate(d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	format := string(s.Format)
	main := format[strings.Index(format, "disko_format() {"):]
	if !strings.Contains(main, "disko_parallel disko_format_1 disko.devices.disk.b\n  disko_parallel disko_format_2 disko.devices.disk.a") {
		t.Errorf("disk a (which names /dev/mapper/y) is not formatted after disk b:\n%s", main)
	}
	if !strings.Contains(format, `mkfs.btrfs "$dev2" -d raid1 /dev/mapper/y`) {
		t.Error("btrfs extraArgs are not split at whitespace like disko's")
	}
}

func TestTools(t *testing.T) {
	s, err := Generate(mustLoad(t, `{"disk": {"a": {"device": "/dev/vda", "content": {"type": "btrfs", "subvolumes": {"/x/y": {}}}}}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mkfs.btrfs", "btrfs", "mktemp", "rmdir", "mkdir"} {
		if !slices.Contains(s.Tools, want) {
			t.Errorf("Tools lacks %s (commands of trap handlers too): %v", want, s.Tools)
		}
	}
	s, err = Generate(mustLoad(t, twoDisks), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sfdisk", "partx", "blkid", "mkfs.ext4", "mkfs.xfs", "mount", "umount", "findmnt", "lsblk", "jq", "wipefs", "udevadm", "head", "tail", "sleep"} {
		if !slices.Contains(s.Tools, want) {
			t.Errorf("Tools lacks %s: %v", want, s.Tools)
		}
	}
	for _, not := range []string{"disko_dev", "printf", "local", "mkfs.vfat"} {
		if slices.Contains(s.Tools, not) {
			t.Errorf("Tools holds %s: %v", not, s.Tools)
		}
	}
}

// TestToolsOfReachable: every script embeds the whole runtime, but ToolsOf counts only
// the code a script can reach, so format does not list destroy's teardown tools or
// parted (legacy tables only), while destroy reaches the teardown through the plan it
// evals and format its units through disko_parallel's arguments.
func TestToolsOfReachable(t *testing.T) {
	s, err := Generate(mustLoad(t, twoDisks), Options{})
	if err != nil {
		t.Fatal(err)
	}
	format, err := ToolsOf(s.Format)
	if err != nil {
		t.Fatal(err)
	}
	destroy, err := ToolsOf(s.Destroy)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		script string
		tools  []string
		has    []string
		hasNot []string
	}{
		{"format", format, []string{"mkfs.ext4", "mkfs.xfs", "sfdisk", "jq", "head", "tail", "udevadm"}, []string{"parted", "zpool", "lvremove", "cryptsetup", "mdadm", "dd", "mkfs.vfat"}},
		{"destroy", destroy, []string{"lsblk", "jq", "dd", "swapoff", "zpool", "vgchange", "lvremove", "cryptsetup", "mdadm", "wipefs"}, []string{"mkfs.ext4", "sfdisk", "parted"}},
	} {
		for _, want := range c.has {
			if !slices.Contains(c.tools, want) {
				t.Errorf("ToolsOf(%s) lacks %s: %v", c.script, want, c.tools)
			}
		}
		for _, not := range c.hasNot {
			if slices.Contains(c.tools, not) {
				t.Errorf("ToolsOf(%s) holds %s, which it cannot reach: %v", c.script, not, c.tools)
			}
		}
	}
}

// TestHookFailureStops: a failing command in a hook stops the script (set -e holds inside
// hooks, as in disko), and the hook sees its node's options.
func TestHookFailureStops(t *testing.T) {
	d := mustLoad(t, `{"disk": {"a": {"device": "/dev/vda"}}, "nodev": {"/x": {"fsType": "tmpfs",
		"preMountHook": "echo \"device=$device fsType=$fsType opts=${mountOptions[*]}\"; false; echo after-false"}}}`)
	s, err := Generate(d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	env := newStubEnv(t)
	env.realHooks = true
	_, out, err := env.run(t, s.Mount, "mount")
	if err == nil || strings.Contains(out, "after-false") {
		t.Errorf("the script went on after a failing hook command: err=%v\n%s", err, out)
	}
	if !strings.Contains(out, "device=tmpfs fsType=tmpfs opts=defaults") || !strings.Contains(out, `running the preMountHook of disko.devices.nodev."/x"`) {
		t.Errorf("the hook did not run with its node's options:\n%s", out)
	}
}

// TestZpoolTopology: an explicit topology becomes zpool create's vdev list, with disko's
// disk-name shorthand, plain vdevs first, and each member by its /dev/disk/by-* path.
func TestZpoolTopology(t *testing.T) {
	disk := func(name, dev string) string {
		return `"` + name + `": {"device": "` + dev + `", "content": {"type": "gpt", "partitions": {"zfs": {"size": "100%", "content": {"type": "zfs", "pool": "tank"}}}}}`
	}
	d := mustLoad(t, `{"disk": {`+disk("a", "/dev/vda")+`,`+disk("b", "/dev/vdb")+`,`+disk("c", "/dev/vdc")+`,`+disk("d", "/dev/vdd")+`,`+disk("e", "/dev/vde")+`},
		"zpool": {"tank": {"mode": {"topology": {
			"vdev": [{"mode": "mirror", "members": ["a", "b"]}, {"members": ["c"]}],
			"spare": ["d"], "cache": ["/dev/disk/by-partlabel/disk-e-zfs"]}}}}}`)
	s, err := Generate(d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	format := string(s.Format)
	want := `zpool create -f tank -R /mnt "$dev9" mirror "$dev3" "$dev6" spare "$dev12" cache "$dev15"`
	if !strings.Contains(format, want) {
		t.Errorf("the pool is not created with the topology (want %s):\n%s", want, format[strings.Index(format, "# disko.devices.zpool.tank"):])
	}
	for _, member := range []string{"a", "b", "c", "d", "e"} {
		if !strings.Contains(format, "disko_link dev") || !strings.Contains(format, "/dev/disk/by-partlabel/disk-"+member+"-zfs") {
			t.Errorf("member %s is not passed by its by-partlabel path", member)
		}
	}
	checkScript(t, "topology/format.sh", s.Format)
}

// TestBcachefsFormatArgs: a member's extraFormatArgs reach bcachefs format one element per
// argument, as disko reads them back a line apiece, while the filesystem-wide ones are
// split at whitespace, as disko splices them into the command unquoted.
func TestBcachefsFormatArgs(t *testing.T) {
	d := mustLoad(t, `{"disk": {"a": {"device": "/dev/vda", "content": {"type": "gpt", "partitions": {"bc": {"size": "100%",
			"content": {"type": "bcachefs", "filesystem": "bfs", "label": "ssd.a", "extraFormatArgs": ["--discard", "--durability 2", "it's"]}}}}}},
		"bcachefs_filesystems": {"bfs": {"uuid": "809b3a2b-828a-4730-95e1-75b6343e415a", "extraFormatArgs": ["--compression=lz4 --replicas=2"]}}}`)
	s, err := Generate(d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	calls, out, err := newStubEnv(t).run(t, s.Format, "create")
	if err != nil {
		t.Fatalf("format.sh fails under the stubs: %v\n%s", err, out)
	}
	want := call{"bcachefs", "format", "--label=ssd.a", "--discard", "--durability 2", "it's", "/dev/stub",
		"--uuid=809b3a2b-828a-4730-95e1-75b6343e415a", "--compression=lz4", "--replicas=2"}
	var got []call
	for _, c := range calls {
		if len(c) > 1 && c[0] == "bcachefs" && c[1] == "format" {
			got = append(got, c)
		}
	}
	if len(got) != 1 || !slices.Equal(got[0], want) {
		t.Errorf("bcachefs format is called as %q, want %q", got, want)
	}
}
