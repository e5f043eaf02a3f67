package image

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// TestVMPathLUKSLVM builds a LUKS+LVM layout through the VM path (the layout's format
// script in a throwaway VM, with the key file from --pre-format-files and a file from
// --post-format-files), then boots another VM on the image alone and opens it: the
// container opens with the key, the volume group activates, and the root holds the file.
// Run it under the shared lock:
//
//	flock /tmp/heavy.lock go test ./internal/image -run VMPath -v
func TestVMPathLUKSLVM(t *testing.T) {
	if testing.Short() {
		t.Skip("boots two VMs (minutes under TCG)")
	}
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	img, err := testvm.Build(ctx, testvm.BuildOptions{Log: testvm.LogT(t)})
	if err != nil {
		t.Skipf("the VM rig cannot be built here: %v", err)
	}
	src := t.TempDir()
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
		Files:    []File{{Source: marker, Dest: "/etc/marker"}},
		Log:      testvm.LogT(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %v in %.1fs", paths, time.Since(start).Seconds())
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Errorf("the output directory holds %d entries, want the image only", len(entries))
	}

	vm := testvm.StartT(t, testvm.Options{
		Image:      img,
		Disks:      []testvm.DiskSpec{{Path: paths[0]}},
		ExtraFiles: []testvm.File{{GuestPath: "/tmp/secret.key", HostPath: key, Mode: 0o600}},
	})
	got, _, err := vm.Run(ctx, `set -e
cryptsetup open --key-file /tmp/secret.key /dev/disk/by-partlabel/disk-main-luks crypted
vgchange -ay pool >/dev/null
mkdir -p /x && mount /dev/pool/root /x
blkid -s TYPE -o value /dev/disk/by-partlabel/disk-main-ESP
blkid -s LABEL -o value /dev/pool/root
cat /x/etc/marker`)
	if err != nil {
		t.Fatal(err)
	}
	if want := "vfat\nroot\nbuilt in the VM\n"; string(got) != want {
		t.Errorf("the image opened in a VM:\n%s\nwant:\n%s", got, want)
	}
}
