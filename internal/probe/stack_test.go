package probe

import (
	"context"
	"slices"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

const sfdiskStacked = `{"partitiontable": {"label": "gpt", "id": "F3FD", "device": "/dev/sdx", "unit": "sectors",
 "firstlba": 2048, "lastlba": 2097118, "sectorsize": 512, "partitions": [
  {"node": "/dev/sdx1", "start": 2048, "size": 1048576, "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "name": "disk-main-crypt"},
  {"node": "/dev/sdx2", "start": 1050624, "size": 262144, "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "name": "disk-main-md"}]}}`

// TestProbeStacks follows a partition's LUKS container into its LVM group and LVs, and a
// member into its md array, with the output of the real tools.
func TestProbeStacks(t *testing.T) {
	r := fakeRunner{
		{"findmnt", `{"filesystems": [
  {"target": "/mnt", "source": "/dev/mapper/pool-root", "options": "rw,relatime", "fsroot": "/"},
  {"target": "/mnt/srv", "source": "/dev/md127p1", "options": "rw,noatime", "fsroot": "/"}]}`},
		{"readlink -f -- /dev/sdx", "/dev/sdx\n1073741824\n512\n"},
		{"if out=$(sfdisk --json -- /dev/sdx", sfdiskStacked},
		{"if [ -b /dev/sdx1 ]", "TYPE=crypto_LUKS\nstatus=0\n"},
		{"if [ -b /dev/sdx2 ]", "TYPE=linux_raid_member\nstatus=0\n"},
		{`n=$(basename "$(readlink -f -- /dev/sdx1)")`, "crypted\n"},
		{"blkid -p -o export -- /dev/mapper/crypted", "TYPE=LVM2_member\nstatus=0\n"},
		{"pvs --reportformat json -o pv_name,vg_name -- /dev/mapper/crypted", `{"report": [{"pv": [{"pv_name":"/dev/mapper/crypted", "vg_name":"pool"}]}]}`},
		{"pvs --reportformat json --units b --nosuffix -o pv_name,pv_free -S vg_name=pool", `{"report": [{"pv": [{"pv_name":"/dev/mapper/crypted", "pv_free":"427819008"}]}]}`},
		{"vgs --reportformat json", `{"report": [{"vg": [{"vg_name":"pool", "vg_size":"532676608", "vg_free":"427819008", "vg_extent_size":"4194304"}]}]}`},
		{"lvs --reportformat json", `{"report": [{"lv": [
  {"lv_name":"root", "lv_size":"104857600", "lv_path":"/dev/pool/root", "lv_dm_path":"/dev/mapper/pool-root", "lv_active":"active", "segtype":"linear"},
  {"lv_name":"off", "lv_size":"4194304", "lv_path":"/dev/pool/off", "lv_dm_path":"/dev/mapper/pool-off", "lv_active":"", "segtype":"linear"}]}]}`},
		{"blkid -p -o export -- /dev/mapper/pool-root", "TYPE=ext4\nstatus=0\n"},
		{"mdadm --examine --export /dev/sdx2", "MD_LEVEL=raid1\nMD_DEVICES=2\nMD_NAME=host:arr\nMD_UUID=1:2:3:4\n"},
		{"if [ -b /dev/md/arr ]", "/dev/md127\n"},
		{"mdadm --detail --export /dev/md127", "MD_LEVEL=raid1\nMD_DEVICES=2\n"},
		{"d=/sys/class/block/md127/md; ", "2\n0\n130048\n2048\n2048\n"},
		{"blkid -p -o export -- /dev/md127", "PTTYPE=gpt\nstatus=0\n"},
		{"readlink -f -- /dev/md127", "/dev/md127\n133169152\n512\n"},
		{"if out=$(sfdisk --json -- /dev/md127", sfdiskArray},
		{"if [ -b /dev/md127p1 ]", "TYPE=ext4\nstatus=0\n"},
	}
	s, err := Probe(context.Background(), r, map[string]string{"main": "/dev/sdx"})
	if err != nil {
		t.Fatal(err)
	}
	parts := s.Disks["main"].Table.Partitions
	luks := parts[0].Content
	if luks.Unreadable != "" || luks.Opened == nil || luks.Opened.Mapper != "/dev/mapper/crypted" || luks.Opened.Content.VG != "pool" {
		t.Fatalf("LUKS: %+v (opened %+v)", luks, luks.Opened)
	}
	vg := s.VGs["pool"]
	if vg == nil || vg.Unreadable != "" || vg.Free != 408<<20 || vg.ExtentSize != 4<<20 || !slices.Equal(vg.PVFree, []int64{408 << 20}) || len(vg.LVs) != 2 {
		t.Fatalf("VG: %+v", vg)
	}
	if root := vg.LVs["root"]; !root.Active || root.Size != 100<<20 || root.Content == nil || root.Content.Type != "ext4" || len(root.Content.Mounts) != 1 {
		t.Errorf("LV root: %+v", root)
	}
	if off := vg.LVs["off"]; off.Active || off.Content != nil {
		t.Errorf("inactive LV off: %+v", off)
	}
	if parts[1].Content.Array != "arr" {
		t.Errorf("md member: %+v", parts[1].Content)
	}
	a := s.Arrays["arr"]
	if a == nil || !a.Active || a.Level != "raid1" || a.Device != "/dev/md127" || a.Devices != 2 || a.Degraded != 0 || a.MemberBytes != 128<<20 || a.Content == nil || a.Content.Type != PartitionTable+"gpt" {
		t.Fatalf("array: %+v", a)
	}
	if a.Content.Unreadable != "" || a.Partitioned == nil || a.Partitioned.Table == nil || len(a.Partitioned.Table.Partitions) != 1 {
		t.Fatalf("the array's partition table: %+v (%s)", a.Partitioned, a.Content.Unreadable)
	}
	if p := a.Partitioned.Table.Partitions[0]; p.Name != "mdadm-arr-srv" || p.Content == nil || p.Content.Type != "ext4" || len(p.Content.Mounts) != 1 || p.Content.Mounts[0].Target != "/mnt/srv" {
		t.Errorf("the array's partition: %+v (content %+v)", p, p.Content)
	}
	layout, _ := s.Layout("/mnt")
	g, ok := layout.MDADM["arr"].Content.(*config.GPT)
	if !ok || g.Partitions["srv"] == nil || g.Partitions["srv"].Label != "" {
		t.Fatalf("import of the array's GPT: %+v", layout.MDADM["arr"].Content)
	}
	if fs, ok := g.Partitions["srv"].Content.(*config.Filesystem); !ok || fs.Format != "ext4" || fs.Mountpoint != "/srv" {
		t.Errorf("import of the array's partition: %+v", g.Partitions["srv"].Content)
	}
}

// sfdiskArray is the GPT on the md array of TestProbeStacks, as the format script writes it.
const sfdiskArray = `{"partitiontable": {"label": "gpt", "id": "A1B2", "device": "/dev/md127", "unit": "sectors",
 "firstlba": 2048, "lastlba": 260062, "sectorsize": 512, "partitions": [
  {"node": "/dev/md127p1", "start": 2048, "size": 258015, "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "name": "mdadm-arr-srv"}]}}`
