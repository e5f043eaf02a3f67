package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen/nixos"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// luksLVMLayout is the corpus' luks-lvm shape: an ESP, and LUKS (opened with a key
// file) holding an LVM volume group with an ext4 root. PBKDF2 keeps luksFormat cheap
// under TCG.
const luksLVMLayout = `{"disk":{"main":{"device":"/dev/sda","imageSize":"1G","content":{"type":"gpt","partitions":{
  "ESP":{"size":"64M","type":"EF00","content":{"type":"filesystem","format":"vfat","mountpoint":"/boot"}},
  "luks":{"size":"100%","content":{"type":"luks","name":"crypted","settings":{"keyFile":"/tmp/secret.key"},
    "extraFormatArgs":["--pbkdf","pbkdf2","--pbkdf-force-iterations","1000"],
    "content":{"type":"lvm_pv","vg":"pool"}}}}}}},
 "lvm_vg":{"pool":{"type":"lvm_vg","lvs":{"root":{"size":"100%FREE","content":{"type":"filesystem","format":"ext4","extraArgs":["-L","root"],"mountpoint":"/"}}}}}}`

// TestVMPathLUKSLVM builds a LUKS+LVM layout through the VM path with the stand-in NixOS
// system (--system), as disko's diskoImagesScript does with a NixOS toplevel: the
// layout's format script runs in a throwaway VM, with the key file from
// --pre-format-files, files from --post-format-files, the closure copied in and the
// bootloader installed there. A second VM opens the image: the container opens with the
// key, the volume group activates, the LVM root holds the files, the closure, the Nix
// database that registers it (nix path-info on the build machine reads it) and the
// system profile, all owned by root, and switch-to-configuration boot has put
// systemd-boot and a loader entry onto the ESP. Then the image boots alone under OVMF:
// the stand-in's initrd unlocks LUKS with the key file that switch-to-configuration
// appended to it from the installed root (boot.initrd.secrets), and the system answers
// over SSH with the layout's mounts. Run it under the shared lock (TCG: OVMF fails under
// KVM on these hosts):
//
//	DISKOANYWHERE_TESTVM_ACCEL=tcg flock /tmp/heavy.lock go test ./internal/image -run VMPath -v
func TestVMPathLUKSLVM(t *testing.T) {
	if testing.Short() {
		t.Skip("boots three VMs (minutes under TCG)")
	}
	for _, tool := range []string{"nix-build", "nix-store", "nix", "ssh-keygen"} {
		if _, err := toolPath(tool); err != nil {
			t.Skip(err)
		}
	}
	t.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false")
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	src := t.TempDir()
	rig := newBootRig(ctx, t, luksLVMLayout, testvm.SystemOptions{Hostname: "vmimaged",
		InitrdSecrets: map[string]string{"/tmp/secret.key": "/etc/secret.key"}}, src)
	closure, err := exec.Command("nix-store", "--query", "--requisites", rig.sys.Toplevel).Output()
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(src, "secret.key")
	os.WriteFile(key, []byte("image key"), 0o600)
	marker := filepath.Join(src, "marker")
	os.WriteFile(marker, []byte("built in the VM\n"), 0o644)

	out := t.TempDir()
	start := time.Now()
	paths, err := Build(ctx, load(t, luksLVMLayout), Options{
		OutDir:   out,
		Layout:   func(context.Context) ([]byte, error) { return []byte(luksLVMLayout), nil },
		PreFiles: []File{{Source: key, Dest: "/tmp/secret.key"}},
		Files: []File{{Source: marker, Dest: "/etc/marker"}, {Source: key, Dest: "/etc/secret.key"},
			{Source: rig.hostKey, Dest: "/etc/ssh/ssh_host_ed25519_key"}},
		System: rig.sys.Toplevel,
		Log:    testvm.LogT(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %v with the system in %.1fs", paths, time.Since(start).Seconds())
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Errorf("the output directory holds %d entries, want the image only", len(entries))
	}

	t.Run("opened", func(t *testing.T) {
		vm := testvm.StartT(t, testvm.Options{
			Image:      rig.img,
			Disks:      []testvm.DiskSpec{{Path: paths[0]}},
			ExtraFiles: []testvm.File{{GuestPath: "/tmp/secret.key", HostPath: key, Mode: 0o600}},
		})
		defer vm.Stop()
		got, _, err := vm.Run(ctx, `set -e
cryptsetup open --key-file /tmp/secret.key /dev/disk/by-partlabel/disk-main-luks crypted
vgchange -ay pool >/dev/null
mkdir -p /x && mount /dev/pool/root /x && mount /dev/disk/by-partlabel/disk-main-ESP /x/boot
blkid -s TYPE -o value /dev/disk/by-partlabel/disk-main-ESP
blkid -s LABEL -o value /dev/pool/root
cat /x/etc/marker
readlink /x/nix/var/nix/profiles/system /x/nix/var/nix/profiles/system-1-link
stat -c '%u:%g %a' /x/nix/store/`+filepath.Base(rig.sys.Toplevel)+` /x/etc/secret.key
test -f /x/boot/EFI/BOOT/BOOTX64.EFI && ls /x/boot/loader/entries`)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("vfat\nroot\nbuilt in the VM\nsystem-1-link\n%s\n0:0 555\n0:0 600\nnixos-generation-1.conf\n", rig.sys.Toplevel); string(got) != want {
			t.Errorf("the image opened in a VM:\n%s\nwant:\n%s", got, want)
		}
		db, err := vm.ReadFile(ctx, "/x/nix/var/nix/db/db.sqlite")
		if err != nil {
			t.Fatal(err)
		}
		dump := t.TempDir()
		os.MkdirAll(filepath.Join(dump, "nix/var/nix/db"), 0o755)
		os.WriteFile(filepath.Join(dump, "nix/var/nix/db/db.sqlite"), db, 0o644)
		info, err := exec.Command("nix", "path-info", "--recursive", "--store", "local?root="+dump, rig.sys.Toplevel).CombinedOutput()
		if n := strings.Count(string(closure), "\n"); err != nil || strings.Count(string(info), "\n") != n {
			t.Errorf("nix path-info in the image's database: %v, want the %d paths of the closure:\n%s", err, n, info)
		}
	})

	t.Run("uefi-boot", func(t *testing.T) {
		vm := testvm.StartT(t, testvm.Options{
			Image:       rig.img,
			Boot:        testvm.BootUEFI,
			HostKey:     rig.hostPub,
			Disks:       []testvm.DiskSpec{{Path: paths[0]}},
			BootTimeout: 4 * time.Minute,
		})
		t.Logf("UEFI boot of the LUKS+LVM image: sshd answered after %.1fs", vm.BootTime.Seconds())
		got, _, err := vm.Run(ctx, "hostname; readlink /run/current-system; findmnt -n -o FSTYPE /; findmnt -n -o FSTYPE /boot; test -b /dev/mapper/crypted && echo unlocked")
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("vmimaged\n%s\next4\nvfat\nunlocked\n", rig.sys.Toplevel); string(got) != want {
			t.Errorf("the booted image:\n%s\nwant hostname vmimaged, %s, an ext4 /, a vfat /boot, the LUKS container open", got, rig.sys.Toplevel)
		}
	})
}

// bootRig is what a test that boots an image needs: the VM rig's image, the stand-in
// NixOS system of a layout, whose root accepts the rig's client key, and a host key for
// the image to carry (--post-format-files), which the rig checks the booted system
// presents.
type bootRig struct {
	img     *testvm.Image
	sys     *testvm.System
	hostKey string // the private key's path
	hostPub ssh.PublicKey
}

// newBootRig builds the rig's image and the stand-in system of layout (so gives what
// the layout does not: hostname, initrd secrets), and writes the host key into keyDir.
// It skips the test when the rig cannot be built here.
func newBootRig(ctx context.Context, t *testing.T, layout string, so testvm.SystemOptions, keyDir string) bootRig {
	t.Helper()
	img, err := testvm.Build(ctx, testvm.BuildOptions{Log: testvm.LogT(t)})
	if err != nil {
		t.Skipf("the VM rig cannot be built here: %v", err)
	}
	clientPub, err := os.ReadFile(img.ClientKeyPath + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if so.NixOSConfig, err = nixos.JSON(load(t, layout)); err != nil {
		t.Fatal(err)
	}
	so.AuthorizedKeys = []string{strings.TrimSpace(string(clientPub))}
	so.Log = testvm.LogT(t)
	sys, err := testvm.BuildSystem(ctx, so)
	if err != nil {
		t.Fatal(err)
	}
	hostKey := filepath.Join(keyDir, "ssh_host_ed25519_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "image", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	hostPub, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return bootRig{img: img, sys: sys, hostKey: hostKey, hostPub: hostPub}
}
