package vmcycle

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/eval"
)

const (
	// corpusDir holds disko's example layouts (shared/ lies beside the clone).
	corpusDir = "../../../shared/corpus/disko-examples"
	// fakeLib is internal/eval's stand-in for nixpkgs' lib, for with-lib.nix.
	fakeLib = "../eval/testdata/fakelib"
)

// compileFile evaluates a layout file and compiles it as internal/vmtest does.
func compileFile(t *testing.T, file string) (*Layout, error) {
	t.Helper()
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate is not installed (Debian: nix-bin); it evaluates the layouts")
	}
	t.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes")
	lib, err := filepath.Abs(fakeLib)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw, err := (&eval.Evaluator{}).Devices(ctx, eval.Source{Path: file, Nixpkgs: lib})
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	name := strings.TrimSuffix(filepath.Base(file), ".nix")
	return Compile(name, raw, Options{FastLUKS: true})
}

// compileCorpus compiles the corpus layouts TestExpect looks at, and internal/vmtest's
// luks-ask-password.
func compileCorpus(t *testing.T) map[string]*Layout {
	t.Helper()
	out := map[string]*Layout{}
	for _, name := range []string{"simple-efi", "swap", "btrfs-subvolumes", "luks-lvm", "boot-raid1", "hybrid-tmpfs-on-root"} {
		l, err := compileFile(t, filepath.Join(corpusDir, name+".nix"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = l
	}
	l, err := compileFile(t, "../vmtest/testdata/luks-ask-password.nix")
	if err != nil {
		t.Fatal(err)
	}
	out[l.Name] = l
	return out
}

// The tests below need no VM: they check what the VM tests expect and how they read
// the guest, so that a VM test failure means the scripts, not the checker.

// TestExpect derives the expected state of corpus layouts (mapped to virtio disks).
func TestExpect(t *testing.T) {
	layouts := compileCorpus(t)
	for _, tc := range []struct {
		name      string
		mounts    []string // mount points
		swaps     int
		swapfiles []string
		luks      []string
		vgs       map[string][]string
		mds       map[string]int // array -> members
		ask       bool
	}{
		{name: "simple-efi", mounts: []string{"/", "/boot"}},
		{name: "swap", mounts: []string{"/", "/boot"}, swaps: 1}, // randomEncryption is NixOS's
		{name: "btrfs-subvolumes", mounts: []string{"/", "/.swapvol", "/boot", "/home", "/nix", "/partition-root"},
			swapfiles: []string{"/mnt/.swapvol/rel-path", "/mnt/.swapvol/swapfile", "/mnt/partition-root/swapfile", "/mnt/partition-root/swapfile1"}},
		{name: "luks-lvm", mounts: []string{"/", "/boot", "/home"}, luks: []string{"crypted"},
			vgs: map[string][]string{"pool": {"home", "raw", "root"}}},
		{name: "boot-raid1", mounts: []string{"/", "/boot"}, mds: map[string]int{"boot": 2, "raid1": 2}},
		{name: "hybrid-tmpfs-on-root", mounts: []string{"/", "/boot", "/nix"}},
		{name: "luks-ask-password", mounts: []string{"/", "/boot"}, luks: []string{"asked"}, ask: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := layouts[tc.name]
			if l == nil {
				t.Fatalf("layout %s not loaded", tc.name)
			}
			e := l.want
			var mps []string
			for _, m := range e.mounts {
				mps = append(mps, m.mountpoint)
				if m.target != filepath.Join(Root, m.mountpoint) {
					t.Errorf("%s: target %s", m.mountpoint, m.target)
				}
			}
			if !slices.Equal(mps, tc.mounts) {
				t.Errorf("mounts %q, want %q", mps, tc.mounts)
			}
			if len(e.swaps) != tc.swaps {
				t.Errorf("%d swaps, want %d", len(e.swaps), tc.swaps)
			}
			var files []string
			for _, f := range e.swapfiles {
				files = append(files, f.path)
				if f.size != 20<<20 {
					t.Errorf("swap file %s: %d bytes, want 20 MiB", f.path, f.size)
				}
			}
			slices.Sort(files)
			if !slices.Equal(files, tc.swapfiles) {
				t.Errorf("swap files %q, want %q", files, tc.swapfiles)
			}
			var luks []string
			for _, lk := range e.luks {
				luks = append(luks, lk.name)
				if !strings.HasPrefix(lk.device, "/dev/disk/by-partlabel/") {
					t.Errorf("LUKS %s on %s, want a partition label", lk.name, lk.device)
				}
			}
			if !slices.Equal(luks, tc.luks) || l.ask != tc.ask {
				t.Errorf("LUKS %q (ask %v), want %q (ask %v)", luks, l.ask, tc.luks, tc.ask)
			}
			for _, vg := range e.vgs {
				var lvs []string
				for _, lv := range vg.lvs {
					lvs = append(lvs, lv.name)
				}
				if !slices.Equal(lvs, tc.vgs[vg.name]) {
					t.Errorf("VG %s: LVs %q, want %q", vg.name, lvs, tc.vgs[vg.name])
				}
			}
			if len(e.vgs) != len(tc.vgs) {
				t.Errorf("%d VGs, want %d", len(e.vgs), len(tc.vgs))
			}
			for _, md := range e.mds {
				if len(md.members) != tc.mds[md.name] {
					t.Errorf("md %s: members %q, want %d", md.name, md.members, tc.mds[md.name])
				}
			}
			if len(e.mds) != len(tc.mds) {
				t.Errorf("%d md arrays, want %d", len(e.mds), len(tc.mds))
			}
			for i, name := range l.Disks {
				if got := l.Devices.Disk[name].Device; got != VirtioDisk(i) {
					t.Errorf("disk %s is %s, want the %d. virtio disk", name, got, i+1)
				}
			}
		})
	}
	for _, name := range []string{"zfs", "bcachefs"} {
		if _, err := compileFile(t, filepath.Join(corpusDir, name+".nix")); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported (no kernel support in the guest)", name, err)
		}
	}
}

func TestMissingOptions(t *testing.T) {
	for _, tc := range []struct {
		fsType  string
		want    []string
		got     string
		missing []string
	}{
		{"xfs", []string{"pquota", "uquota"}, "rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,usrquota,prjquota", nil},
		{"xfs", []string{"gquota", "usrquota", "quota"}, "rw,relatime,usrquota,grpquota", nil},
		{"xfs", []string{"pquota"}, "rw,relatime,usrquota", []string{"pquota"}},
		{"ext4", []string{"pquota"}, "rw,relatime,prjquota", []string{"pquota"}}, // the aliases are xfs's
		{"ext4", []string{"defaults"}, "rw,relatime", nil},
		{"vfat", []string{"umask=0077"}, "rw,relatime,fmask=0077,dmask=0077,codepage=437", nil},
		{"vfat", []string{"umask=0077"}, "rw,relatime,fmask=0022,dmask=0077", []string{"umask=0077"}},
		{"btrfs", []string{"compress=zstd", "noatime", "subvol=/nix"}, "rw,noatime,compress=zstd:3,subvol=/nix", nil},
		{"tmpfs", []string{"size=200M"}, "rw,relatime,size=204800k", nil},
		{"tmpfs", []string{"size=2G", "defaults", "mode=755"}, "rw,relatime,size=2097152k,mode=755", nil},
		{"f2fs", []string{"compress_algorithm=zstd:6,compress_chksum,lazytime"}, "rw,lazytime,compress_algorithm=zstd:6,compress_chksum", nil},
		{"ext4", []string{"noatime", "X-mount.mkdir"}, "rw,relatime", []string{"noatime"}},
	} {
		if got := missingOptions(tc.fsType, tc.want, strings.Split(tc.got, ",")); !slices.Equal(got, tc.missing) {
			t.Errorf("missingOptions(%s, %q, %q) = %q, want %q", tc.fsType, tc.want, tc.got, got, tc.missing)
		}
	}
	if got := perMount([]string{"compress=zstd", "noatime", "ssd", "ro"}); !slices.Equal(got, []string{"noatime", "ro"}) {
		t.Errorf("perMount = %q", got)
	}
}

// probeMounted is what the probe prints for simple-efi, mounted, with swap on a third
// partition listed under a name from another mount namespace.
const probeMounted = `@@@ findmnt
{"filesystems": [
  {"target": "/", "source": "rootfs", "fstype": "rootfs", "options": "rw", "fsroot": "/", "maj:min": "0:2"},
  {"target": "/mnt", "source": "/dev/vda2", "fstype": "ext4", "options": "rw,relatime", "fsroot": "/", "maj:min": "254:2"},
  {"target": "/mnt/boot", "source": "/dev/vda1", "fstype": "vfat", "options": "rw,relatime,fmask=0077,dmask=0077", "fsroot": "/", "maj:min": "254:1"}
]}
@@@ stat
/dev/disk/by-partlabel/disk-main-root	254:2
/dev/disk/by-partlabel/disk-main-ESP	254:1
/dev/disk/by-partlabel/disk-main-swap	254:3
/dev/vda2	254:2
/dev/vda1	254:1
@@@ blk
/dev/vda	254:0
/dev/vda1	254:1
/dev/vda2	254:2
/dev/vda3	254:3
@@@ blkid
DEVNAME=/dev/vda
PTTYPE=gpt

DEVNAME=/dev/vda1
UUID=5702-2C59
TYPE=vfat

DEVNAME=/dev/vda2
UUID=d143a5c2-fe47-4e92-811a-25eae7b29f7f
TYPE=ext4

DEVNAME=/dev/vda3
TYPE=swap
@@@ swaps
/vda3	partition	-2
@@@ dm
@@@ dmtable
@@@ lvs
@@@ md
@@@ mdstat
@@@ files
@@@ filetypes
`

func TestProbeAndChecks(t *testing.T) {
	e := &expect{
		mounts: []wantMount{
			{mountpoint: "/", target: "/mnt", device: "/dev/disk/by-partlabel/disk-main-root", fsType: "ext4", options: []string{"defaults"}},
			{mountpoint: "/boot", target: "/mnt/boot", device: "/dev/disk/by-partlabel/disk-main-ESP", fsType: "vfat", options: []string{"umask=0077"}},
		},
		swaps: []wantSwap{{device: "/dev/disk/by-partlabel/disk-main-swap"}},
	}
	s, err := parseProbe(probeMounted)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkMounted(s, e); err != nil {
		t.Errorf("checkMounted: %v", err)
	}
	if err := checkUnmounted(s, e); err == nil || !strings.Contains(err.Error(), "still mounted") || !strings.Contains(err.Error(), "swap is on") {
		t.Errorf("checkUnmounted of a mounted state: %v", err)
	}
	if err := checkFormatted(s, e); err == nil || !strings.Contains(err.Error(), "after format alone, mounted") {
		t.Errorf("checkFormatted of a mounted state: %v", err)
	}
	// The same state, but / is mounted from the ESP and twice, and /boot lost its mask.
	bad := strings.Replace(probeMounted, `"source": "/dev/vda2", "fstype": "ext4", "options": "rw,relatime", "fsroot": "/", "maj:min": "254:2"`,
		`"source": "/dev/vda1", "fstype": "ext4", "options": "rw,relatime", "fsroot": "/", "maj:min": "254:1"},
  {"target": "/mnt", "source": "/dev/vda2", "fstype": "ext4", "options": "rw,relatime", "fsroot": "/", "maj:min": "254:2"`, 1)
	bad = strings.Replace(bad, "fmask=0077,dmask=0077", "fmask=0022,dmask=0022", 1)
	s, err = parseProbe(bad)
	if err != nil {
		t.Fatal(err)
	}
	err = checkMounted(s, e)
	for _, want := range []string{"/mnt: mounted 2 times", `/mnt/boot: options ["umask=0077"]`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkMounted of a bad state: %v, want %q", err, want)
		}
	}
}

// TestCryptsetupStandIn checks the test-only cryptsetup: a cheap key derivation for
// luksFormat and luksAddKey unless the layout chose one, nothing else changed.
func TestCryptsetupStandIn(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"-q luksFormat /dev/vda2 --key-file /tmp/k", "--pbkdf pbkdf2 --pbkdf-force-iterations 1000 -q luksFormat /dev/vda2 --key-file /tmp/k"},
		{"luksAddKey /dev/vda2 /tmp/x --key-file /tmp/k", "--pbkdf pbkdf2 --pbkdf-force-iterations 1000 luksAddKey /dev/vda2 /tmp/x --key-file /tmp/k"},
		{"-q luksFormat /dev/vda2 --pbkdf argon2id --key-file /tmp/k", "-q luksFormat /dev/vda2 --pbkdf argon2id --key-file /tmp/k"},
		{"-q luksFormat /dev/vda2 --iter-time 1 --key-file /tmp/k", "-q luksFormat /dev/vda2 --iter-time 1 --key-file /tmp/k"},
		{"open /dev/vda2 crypted --key-file /tmp/k", "open /dev/vda2 crypted --key-file /tmp/k"},
		{"status crypted", "status crypted"},
	} {
		script := strings.Replace(cryptsetupStandIn, "exec /usr/sbin/cryptsetup", "echo", 1)
		out := runBash(t, script, strings.Fields(tc.args)...)
		if strings.TrimSpace(out) != tc.want {
			t.Errorf("cryptsetup %s runs %q, want %q", tc.args, out, tc.want)
		}
	}
}

// runBash runs script with bash and args, and returns its output.
func runBash(t *testing.T, script string, args ...string) string {
	t.Helper()
	out, err := exec.Command("bash", append([]string{"-c", script, "cryptsetup"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	return string(out)
}
