package probe

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

var update = flag.Bool("update", false, "rewrite ../plan/testdata/zfs-probe.json from the ZFS fixtures")

// zfsFixture reads a file of testdata/zfs: what zpool and zfs print for a mirror pool
// zroot on two disks (a root dataset with canmount=off, a legacy-mounted root, /home with
// a quota, an encrypted dataset and a volume holding ext4). The files follow the tools'
// own output formats (tab-separated -H lines, -p numbers; zpool status with the column
// widths of zpool_main.c); this machine has no ZFS module, so they are not recorded.
func zfsFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "zfs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const sfdiskZFSMain = `{"partitiontable": {"label": "gpt", "id": "F3FD", "device": "/dev/sdx", "unit": "sectors",
 "firstlba": 2048, "lastlba": 2097118, "sectorsize": 512, "partitions": [
  {"node": "/dev/sdx1", "start": 2048, "size": 131072, "type": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "name": "disk-main-ESP"},
  {"node": "/dev/sdx2", "start": 133120, "size": 1963999, "type": "6A898CC3-1DD2-11B2-99A6-080020736631", "name": "disk-main-zfs"}]}}`

const sfdiskZFSSecond = `{"partitiontable": {"label": "gpt", "id": "F3FE", "device": "/dev/sdy", "unit": "sectors",
 "firstlba": 2048, "lastlba": 2097118, "sectorsize": 512, "partitions": [
  {"node": "/dev/sdy1", "start": 133120, "size": 1963999, "type": "6A898CC3-1DD2-11B2-99A6-080020736631", "name": "disk-second-zfs"}]}}`

const zfsMemberBlkid = "VERSION=5000\nLABEL=zroot\nUUID=7520174920465936102\nUUID_SUB=1289409311412346521\nTYPE=zfs_member\nUSAGE=filesystem\nstatus=0\n"

func zfsRunner(t *testing.T) fakeRunner {
	return fakeRunner{
		{"findmnt", `{"filesystems": [
  {"target": "/mnt", "source": "zroot/root", "options": "rw,relatime,xattr,noacl,casesensitive", "fsroot": "/"},
  {"target": "/mnt/home", "source": "zroot/home", "options": "rw,relatime,xattr,noacl,casesensitive", "fsroot": "/"},
  {"target": "/mnt/secret", "source": "zroot/secret", "options": "rw,relatime,xattr,noacl,casesensitive", "fsroot": "/"},
  {"target": "/mnt/boot", "source": "/dev/sdx1", "options": "rw,relatime,fmask=0022", "fsroot": "/"}]}`},
		{"readlink -f -- /dev/sdx", "/dev/sdx\n1073741824\n512\n"},
		{"readlink -f -- /dev/sdy", "/dev/sdy\n1073741824\n512\n"},
		{"if out=$(sfdisk --json -- /dev/sdx", sfdiskZFSMain},
		{"if out=$(sfdisk --json -- /dev/sdy", sfdiskZFSSecond},
		{"if [ -b /dev/sdx1 ]", "UUID=AB-CD\nTYPE=vfat\nstatus=0\n"},
		{"if [ -b /dev/sdx2 ]", zfsMemberBlkid},
		{"if [ -b /dev/sdy1 ]", strings.Replace(zfsMemberBlkid, "1289409311412346521", "9921040455731032216", 1)},
		{"command -v zpool", zfsFixture(t, "zpool-list-names")},
		{"zpool list -Hp -o name,size,health zroot", zfsFixture(t, "zpool-list")},
		{"zpool status -P zroot", zfsFixture(t, "zpool-status")},
		{"zpool get -Hp -o name,property,value,source all zroot", zfsFixture(t, "zpool-get")},
		{"zfs list -Hp -r -t filesystem,volume -o name,type,mountpoint,volsize zroot", zfsFixture(t, "zfs-list")},
		{"zfs get -Hp -r -t filesystem,volume -o name,property,value,source all zroot", zfsFixture(t, "zfs-get")},
		{"stat -L -c %F -- /dev/zvol/zroot/vol", "block special file\n"},
		{"blkid -p -o export -- /dev/zvol/zroot/vol", "UUID=5e1c\nTYPE=ext4\nstatus=0\n"},
	}
}

// TestProbeZFS reads the fixture pool through its members, and keeps the result as
// ../plan/testdata/zfs-probe.json for the plan's import round trip (go test -update).
func TestProbeZFS(t *testing.T) {
	s, err := Probe(context.Background(), zfsRunner(t), map[string]string{"main": "/dev/sdx", "second": "/dev/sdy"})
	if err != nil {
		t.Fatal(err)
	}
	p := s.Pools["zroot"]
	if p == nil || p.Unreadable != "" || !p.Imported || p.Size != 1002438656 || p.Health != "ONLINE" {
		t.Fatalf("pool: %+v", p)
	}
	if len(p.Vdevs) != 1 || p.Vdevs[0].Mode != "mirror" || strings.Join(p.Vdevs[0].Members, " ") != "/dev/disk/by-partlabel/disk-main-zfs /dev/disk/by-partlabel/disk-second-zfs" {
		t.Errorf("vdevs: %+v", p.Vdevs)
	}
	if len(p.Properties) != 5 || p.Properties["ashift"] != "12" || p.Properties["altroot"] != "/mnt" {
		t.Errorf("local pool properties: %v", p.Properties)
	}
	home := p.Datasets["zroot/home"]
	if home == nil || home.Mountpoint != "/mnt/home" || home.Local["quota"] != "10737418240" || home.Local["compression"] != "" || len(home.Mounts) != 1 || home.Fixed != nil {
		t.Errorf("zroot/home: %+v", home)
	}
	if sec := p.Datasets["zroot/secret"]; sec == nil || sec.Fixed["encryption"] != "aes-256-gcm" || sec.Fixed["keyformat"] != "passphrase" || sec.Local["keylocation"] != "file:///tmp/secret.key" {
		t.Errorf("zroot/secret: %+v", sec)
	}
	if vol := p.Datasets["zroot/vol"]; vol == nil || vol.Type != "volume" || vol.Volsize != 100<<20 || vol.Content == nil || vol.Content.Type != "ext4" {
		t.Errorf("zroot/vol: %+v", vol)
	}
	js, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	const golden = "../plan/testdata/zfs-probe.json"
	if *update {
		if err := os.WriteFile(golden, append(js, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want, err := os.ReadFile(golden); err != nil || string(want) != string(js)+"\n" {
		t.Errorf("%s differs from the probe of the fixtures (%v); go test ./internal/probe -run TestProbeZFS -update", golden, err)
	}
}

// TestProbeZFSMissingTools: without zpool and zfs the pool is unreadable, and so is the
// layout's view of its members (left out with a note), never guessed from the labels.
func TestProbeZFSMissingTools(t *testing.T) {
	r := zfsRunner(t)
	for i := range r {
		if r[i].prefix == "command -v zpool" {
			r[i].out = "FAIL"
		}
	}
	s, err := Probe(context.Background(), r, map[string]string{"main": "/dev/sdx", "second": "/dev/sdy"})
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Pools["zroot"]; p == nil || p.Unreadable == "" || p.Datasets != nil {
		t.Fatalf("pool without tools: %+v", p)
	}
	d, notes := s.Layout("/mnt")
	if d.Zpool != nil || len(notes) != 2 || !strings.Contains(notes[0], "the ZFS pool zroot could not be read") {
		t.Errorf("layout %+v, notes %q", d.Zpool, notes)
	}
}

// TestProbeZFSVolumeWithoutNode: a volume without a device node is reported unreadable
// (not blank), its content is left out of the import with a note.
func TestProbeZFSVolumeWithoutNode(t *testing.T) {
	r := zfsRunner(t)
	for i := range r {
		if strings.HasPrefix(r[i].prefix, "stat -L") {
			r[i].out = "missing\n"
		}
	}
	s, err := Probe(context.Background(), r, map[string]string{"main": "/dev/sdx", "second": "/dev/sdy"})
	if err != nil {
		t.Fatal(err)
	}
	vol := s.Pools["zroot"].Datasets["zroot/vol"]
	if vol.Content != nil || !strings.Contains(vol.Unreadable, "no device node /dev/zvol/zroot/vol") {
		t.Fatalf("volume without a node: %+v", vol)
	}
	d, notes := s.Layout("/mnt")
	if v := d.Zpool["zroot"].Datasets["vol"].(*config.ZFSVolume); v.Content != nil || len(notes) != 1 || !strings.Contains(notes[0], "zroot/vol") {
		t.Errorf("volume %+v, notes %q", v, notes)
	}
}

// TestZpoolStatusClasses reads the vdev classes of zpool status -P: logs (with its tab),
// a raidz vdev, cache and spares.
func TestZpoolStatusClasses(t *testing.T) {
	out := "  pool: tank\n state: ONLINE\nconfig:\n\n" +
		"\tNAME           STATE     READ WRITE CKSUM\n" +
		"\ttank           ONLINE       0     0     0\n" +
		"\t  raidz1-0     ONLINE       0     0     0\n" +
		"\t    /dev/sda1  ONLINE       0     0     0\n" +
		"\t    /dev/sdb1  ONLINE       0     0     0\n" +
		"\t    /dev/sdc1  ONLINE       0     0     0\n" +
		"\tlogs\t\n" +
		"\t  /dev/sdd1    ONLINE       0     0     0\n" +
		"\tcache\n" +
		"\t  /dev/sde1    ONLINE       0     0     0\n" +
		"\tspares\n" +
		"\t  /dev/sdf1    AVAIL   \n" +
		"\nerrors: No known data errors\n"
	v, err := parseZpoolStatus([]byte(out), "tank")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(v)
	want := `[{"mode":"raidz1","members":["/dev/sda1","/dev/sdb1","/dev/sdc1"]},{"class":"log","members":["/dev/sdd1"]},{"class":"cache","members":["/dev/sde1"]},{"class":"spare","members":["/dev/sdf1"]}]`
	if string(js) != want {
		t.Errorf("vdevs\n%s\nwant\n%s", js, want)
	}
}

// fakeTool is a shell script that answers the listed argument lists with the fixture
// files, as the real tool prints them for the fixture pool, and fails on anything else.
func fakeTool(t *testing.T, dir, name string, answers map[string]string) {
	t.Helper()
	fixtures, err := filepath.Abs(filepath.Join("testdata", "zfs"))
	if err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\ncase \"$*\" in\n"
	for args, file := range answers {
		script += "'" + args + "') cat '" + filepath.Join(fixtures, file) + "' ;;\n"
	}
	script += "*) echo \"" + name + ": no fixture for: $*\" >&2; exit 2 ;;\nesac\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestProbePoolFakeTools runs the pool's probe commands through sh with stand-ins for
// zpool, zfs and blkid on PATH that print the fixtures (not a real ZFS run: this machine
// has no ZFS module). The command lines, their quoting and the tools check work in a
// real shell, and give the same pool as the recorded probe; without the tools on PATH the
// pool is unreadable.
func TestProbePoolFakeTools(t *testing.T) {
	bin := t.TempDir()
	fakeTool(t, bin, "zpool", map[string]string{
		"list -H -o name":                                 "zpool-list-names",
		"list -Hp -o name,size,health zroot":              "zpool-list",
		"status -P zroot":                                 "zpool-status",
		"get -Hp -o name,property,value,source all zroot": "zpool-get",
	})
	fakeTool(t, bin, "zfs", map[string]string{
		"list -Hp -r -t filesystem,volume -o name,type,mountpoint,volsize zroot":  "zfs-list",
		"get -Hp -r -t filesystem,volume -o name,property,value,source all zroot": "zfs-get",
	})
	if err := os.WriteFile(filepath.Join(bin, "blkid"), []byte("#!/bin/sh\n[ \"$*\" = '-p -o export -- /dev/zvol/zroot/vol' ] || exit 4\nprintf 'UUID=5e1c\\nTYPE=ext4\\n'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "stat"), []byte("#!/bin/sh\n[ \"$*\" = '-L -c %F -- /dev/zvol/zroot/vol' ] || exit 1\necho 'block special file'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":/usr/bin:/bin")
	ctx := context.Background()
	mounts, err := readMounts(ctx, zfsRunner(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &Pool{Name: "zroot"}
	if err := probePool(ctx, Local{}, p, mounts); err != nil {
		t.Fatal(err)
	}
	var recorded State
	raw, err := os.ReadFile("../plan/testdata/zfs-probe.json")
	if err == nil {
		err = json.Unmarshal(raw, &recorded)
	}
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(p)
	want, _ := json.Marshal(recorded.Pools["zroot"])
	if string(got) != string(want) {
		t.Errorf("pool through sh and the stand-in tools:\n%s\nrecorded:\n%s", got, want)
	}

	shOnly := t.TempDir()
	if err := os.Symlink("/bin/sh", filepath.Join(shOnly, "sh")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", shOnly)
	err = probePool(ctx, Local{}, &Pool{Name: "zroot"}, mounts)
	if err == nil || !strings.Contains(err.Error(), "exit status 127: zpool and zfs are not installed") {
		t.Errorf("probe without zpool and zfs: %v, want an error saying they are not installed", err)
	}
}

// TestPoolMode: a pool of one data vdev (or a stripe of single devices) imports as a mode
// string, anything else as a topology with its classes.
func TestPoolMode(t *testing.T) {
	for _, c := range []struct {
		vdevs []PoolVdev
		want  string
	}{
		{[]PoolVdev{{Mode: "raidz2", Members: []string{"/a", "/b", "/c", "/d"}}}, `{"Topology":null}`},
		{[]PoolVdev{{Members: []string{"/a"}}, {Members: []string{"/b"}}}, `{"Topology":null}`},
		{[]PoolVdev{{Mode: "mirror", Members: []string{"/a", "/b"}}, {Mode: "mirror", Members: []string{"/c", "/d"}}, {Class: "log", Members: []string{"/e"}},
			{Class: "cache", Members: []string{"/f"}}, {Class: "spare", Members: []string{"/g"}}, {Class: "special", Mode: "mirror", Members: []string{"/h", "/i"}}},
			`{"Topology":{"type":"topology","vdev":[{"mode":"mirror","members":["/a","/b"]},{"mode":"mirror","members":["/c","/d"]}],"spare":["/g"],"log":[{"mode":"","members":["/e"]}],"special":[{"mode":"mirror","members":["/h","/i"]}],"cache":["/f"]}}`},
	} {
		m := poolMode(c.vdevs)
		js, _ := json.Marshal(struct{ Topology any }{m.Topology})
		if string(js) != c.want {
			t.Errorf("%+v: topology %s, want %s", c.vdevs, js, c.want)
		}
		if m.Topology == nil && m.Mode != c.vdevs[0].Mode {
			t.Errorf("%+v: mode %q", c.vdevs, m.Mode)
		}
	}
}
