package probe

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// fakeRunner answers commands by their first matching prefix with recorded output.
type fakeRunner []struct{ prefix, out string }

func (f fakeRunner) Run(_ context.Context, cmd string, _ io.Reader, stdout, stderr io.Writer) error {
	for _, a := range f {
		if strings.HasPrefix(cmd, a.prefix) {
			if a.out == "FAIL" {
				io.WriteString(stderr, "blockdev: cannot open /dev/sdx: No such file or directory")
				return errors.New("exit status 1")
			}
			io.WriteString(stdout, a.out)
			return nil
		}
	}
	return errors.New("unexpected command " + cmd)
}

const sfdiskGPT = `{"partitiontable": {"label": "gpt", "id": "F3FD", "device": "/dev/sdx", "unit": "sectors",
 "firstlba": 2048, "lastlba": 2097118, "sectorsize": 512, "partitions": [
  {"node": "/dev/sdx1", "start": 2048, "size": 131072, "type": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "uuid": "aaaa", "name": "disk-main-ESP"},
  {"node": "/dev/sdx2", "start": 133120, "size": 65536, "type": "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "uuid": "bbbb", "name": "swap space"},
  {"node": "/dev/sdx3", "start": 198656, "size": 1898463, "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "uuid": "cccc", "name": "disk-main-root"}]}}`

func recorded() fakeRunner {
	return fakeRunner{
		{"findmnt", `{"filesystems": [
  {"target": "/mnt", "source": "/dev/sdx3[/rootfs]", "options": "rw,relatime,ssd,space_cache=v2,subvolid=256,subvol=/rootfs", "fsroot": "/rootfs"},
  {"target": "/mnt/home", "source": "/dev/sdx3[/home]", "options": "rw,relatime,compress=zstd:3,subvol=/home", "fsroot": "/home"},
  {"target": "/mnt/.swapvol", "source": "/dev/sdx3[/swap]", "options": "rw,relatime,subvol=/swap", "fsroot": "/swap"},
  {"target": "/boot", "source": "/dev/sda1", "options": "rw", "fsroot": "/"}]}`},
		{"readlink -f -- /dev/disk/by-id/x", "/dev/sdx\n1073741824\n512\n"},
		{"readlink -f -- /dev/gone", "FAIL"},
		{"if out=$(sfdisk --json -- /dev/sdx", sfdiskGPT},
		{"if [ -b /dev/sdx1 ]", "TYPE=vfat\nUUID=AB-CD\nstatus=0\n"},
		{"if [ -b /dev/sdx2 ]", "TYPE=swap\nstatus=0\n"},
		{"if [ -b /dev/sdx3 ]", "TYPE=btrfs\nUUID=1234\nstatus=0\n"},
		{"unshare --mount", "subvol rootfs\nsubvol home\nsubvol swap\nswapfile 16777216 swap/swapfile\n"},
	}
}

func TestProbeAndLayout(t *testing.T) {
	s, err := Probe(context.Background(), recorded(), map[string]string{"main": "/dev/disk/by-id/x", "gone": "/dev/gone"})
	if err != nil {
		t.Fatal(err)
	}
	if u := s.Disks["gone"].Unreadable; !strings.Contains(u, "No such file") {
		t.Errorf("an unreadable disk is reported as %q", u)
	}
	m := s.Disks["main"]
	if m.Path != "/dev/sdx" || m.Size != 1<<30 || m.SectorSize != 512 || m.Table == nil || len(m.Table.Partitions) != 3 {
		t.Fatalf("main: %+v", m)
	}
	root := m.Table.Partitions[2].Content
	if root.Type != "btrfs" || strings.Join(root.Subvolumes, ",") != "home,rootfs,swap" || root.Swapfiles["swap/swapfile"] != 16<<20 || len(root.Mounts) != 3 {
		t.Errorf("root content: %+v", root)
	}

	d, notes := s.Layout("/mnt")
	if len(notes) != 1 || !strings.Contains(notes[0], "disk gone") {
		t.Errorf("notes: %q", notes)
	}
	js, _ := json.Marshal(d.Disk["main"].Content)
	got := string(js)
	for _, want := range []string{
		`"ESP":{"type":"EF00","size":"64M","start":"2048s","priority":1,"content":{"type":"filesystem","format":"vfat"`,
		`"swap space":{"type":"8200","size":"32M","start":"133120s","priority":2,"label":"swap space","content":{"type":"swap"`,
		`"root":{"type":"8300","size":"100%","start":"198656s","priority":3`,
		`"/home":{"type":"btrfs_subvol","mountOptions":["compress=zstd:3"],"mountpoint":"/home"}`,
		`"/rootfs":{"type":"btrfs_subvol","mountOptions":["defaults"],"mountpoint":"/"}`,
		`"/swap":{"type":"btrfs_subvol","mountOptions":["defaults"],"mountpoint":"/.swapvol","swap":{"swapfile":{"size":"16M","options":["defaults"]}}}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("layout lacks %s:\n%s", want, got)
		}
	}
}

func TestBlkidAmbiguous(t *testing.T) {
	r := fakeRunner{{"blkid", "status=8\n"}}
	if _, err := blkid(context.Background(), r, "/dev/sdx", -1, -1); err == nil || !strings.Contains(err.Error(), "several signatures") {
		t.Errorf("blkid status 8: %v, want an error naming several signatures", err)
	}
	r = fakeRunner{{"blkid", "status=2\n"}}
	if c, err := blkid(context.Background(), r, "/dev/sdx", -1, -1); c != nil || err != nil {
		t.Errorf("blkid status 2 (nothing found): %+v %v", c, err)
	}
}

// TestLayoutUnmountedSwapfile: a swap file whose subvolume is not mounted is left out with
// a note, since a layout's swap file needs a mount point.
func TestLayoutUnmountedSwapfile(t *testing.T) {
	s := &State{Disks: map[string]*Disk{"main": {Device: "/dev/sdx", Path: "/dev/sdx", SectorSize: 512, Size: 1 << 30,
		Content: &Content{Type: "btrfs", Subvolumes: []string{"swap"}, Swapfiles: map[string]int64{"swap/swapfile": 1 << 20}}}}}
	d, notes := s.Layout("/mnt")
	if len(notes) != 1 || !strings.Contains(notes[0], "swap/swapfile") {
		t.Errorf("notes %q, want one about swap/swapfile", notes)
	}
	if sv := d.Disk["main"].Content.(*config.BTRFS).Subvolumes["/swap"]; sv == nil || len(sv.Swap) != 0 {
		t.Errorf("subvolume /swap: %+v", sv)
	}
}
