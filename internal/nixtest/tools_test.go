package nixtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// toolPackage names the nixpkgs attribute that provides each command the generated
// scripts run. It is the one place where the Go scripts and nix/lib.nix's package lists
// meet, so it is written out by hand rather than derived from either side.
var toolPackage = map[string]string{
	"base64": "coreutils", "cat": "coreutils", "dd": "coreutils", "dirname": "coreutils",
	"head": "coreutils", "mkdir": "coreutils", "mktemp": "coreutils", "readlink": "coreutils",
	"rmdir": "coreutils", "sleep": "coreutils", "stat": "coreutils", "tail": "coreutils",
	"jq":    "jq",
	"blkid": "util-linux", "findmnt": "util-linux", "lsblk": "util-linux", "mkswap": "util-linux",
	"mount": "util-linux", "partx": "util-linux", "sfdisk": "util-linux", "swapoff": "util-linux",
	"swapon": "util-linux", "umount": "util-linux", "wipefs": "util-linux",
	"udevadm":    "systemdMinimal",
	"modprobe":   "kmod",
	"sgdisk":     "gptfdisk",
	"parted":     "parted",
	"cryptsetup": "cryptsetup",
	"lvcreate":   "lvm2", "lvremove": "lvm2", "lvs": "lvm2", "pvcreate": "lvm2", "pvs": "lvm2",
	"vgchange": "lvm2", "vgcreate": "lvm2", "vgremove": "lvm2", "vgs": "lvm2",
	"mdadm": "mdadm",
	"zfs":   "zfs", "zpool": "zfs",
	"btrfs": "btrfs-progs", "mkfs.btrfs": "btrfs-progs",
	"bcachefs": "bcachefs-tools", "mkfs.bcachefs": "bcachefs-tools",
	"mkfs.ext2": "e2fsprogs", "mkfs.ext3": "e2fsprogs", "mkfs.ext4": "e2fsprogs",
	"mkfs.vfat": "dosfstools", "mkfs.fat": "dosfstools", "mkfs.msdos": "dosfstools",
	"mkfs.xfs":   "xfsprogs",
	"mkfs.f2fs":  "f2fs-tools",
	"mkfs.exfat": "exfatprogs",
	"mkfs.ntfs":  "ntfs3g",
}

// extraFormats are the filesystem formats whose tools lib.nix's formatTools names but
// no corpus layout uses; each gets a one-partition layout of its own.
var extraFormats = []string{"ext2", "ext3", "xfs", "exfat", "ntfs", "fat", "msdos", "btrfs", "bcachefs"}

// TestToolsCoverScripts checks, for every corpus layout (and one per filesystem format
// the corpus lacks), that the packages nix/lib.nix puts on the scripts' PATH provide
// every command the scripts can run (codegen.ToolsOf): toolsFor for format, mount,
// unmount and format,mount, destroyToolsFor for the destroying scripts (what compile.nix
// gives each). A tool missing there is found on NixOS only if the caller's PATH happens
// to have it. Extra packages are not errors: hooks are user shell code and get disko's
// tool set.
func TestToolsCoverScripts(t *testing.T) {
	needNix(t)
	layouts := map[string][]byte{}
	for _, f := range extraFormats {
		layouts["format-"+f] = fmt.Appendf(nil, `{"disk": {"a": {"device": "/dev/vda", "content": {"type": "gpt", "partitions": {
			"p": {"size": "100%%", "content": {"type": "filesystem", "format": %q, "mountpoint": "/p"}}}}}}}`, f)
	}
	files, err := filepath.Glob(filepath.Join(root(t), "internal", "config", "testdata", "corpus", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus layouts under internal/config/testdata/corpus (%v)", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		layouts[strings.TrimSuffix(filepath.Base(f), ".json")] = data
	}

	// Every layout's packages in one evaluation, the layout given as Nix reads the JSON.
	var attrs strings.Builder
	for name, data := range layouts {
		fmt.Fprintf(&attrs, "  %s = builtins.fromJSON %s;\n", nixString(name), nixString(string(data)))
	}
	var packages map[string]struct{ Tools, Destroy []string }
	evalJSON(t, libExpr(t, "builtins.mapAttrs (_: x: { Tools = l.toolsFor x; Destroy = l.destroyToolsFor x; }) {\n"+attrs.String()+"}"), &packages)

	for name, data := range layouts {
		t.Run(name, func(t *testing.T) {
			d, err := config.Load(data, config.LoadOptions{})
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			s, err := codegen.Generate(d, codegen.Options{})
			if err != nil {
				t.Fatalf("codegen.Generate: %v", err)
			}
			var plain, destroying [][]byte
			for _, mode := range codegen.Modes {
				script, err := s.ByMode(mode)
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasPrefix(mode, "destroy") {
					destroying = append(destroying, script)
				} else {
					plain = append(plain, script)
				}
			}
			check := func(what, fn string, scripts [][]byte, have []string) {
				commands, err := codegen.ToolsOf(scripts...)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range commands {
					pkg, ok := toolPackage[c]
					switch {
					case !ok:
						t.Errorf("the %s scripts run %q, which toolPackage (internal/nixtest/tools_test.go) does not know: add the nixpkgs package that provides it", what, c)
					case !slices.Contains(have, pkg):
						t.Errorf("the %s scripts run %s (nixpkgs %s), but nix/lib.nix's %s gives only %v", what, c, pkg, fn, have)
					}
				}
			}
			p := packages[name]
			check("format/mount/unmount", "toolsFor", plain, p.Tools)
			check("destroying", "destroyToolsFor", destroying, p.Destroy)
		})
	}
}
