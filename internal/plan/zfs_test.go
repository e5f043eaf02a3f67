package plan

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen/nixos"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/probe"
)

// ZFS cases of the decision table: a partition "zfs" that is a member of the pool zroot,
// whose probed datasets are given per case.
const (
	zfsPart  = `"zfs": {"size": "100M", "content": {"type": "zfs", "pool": "zroot"}}`
	zpoolPth = "disko.devices.zpool.zroot"
)

func zpoolOf(datasets string) string {
	return `, "zpool": {"zroot": {"options": {"ashift": "12"}, "datasets": {` + datasets + `}}}`
}

// zfsState is the member partition with the imported pool zroot (ashift=12 set locally)
// holding the given datasets besides its root dataset.
func zfsState(datasets ...*probe.Dataset) *probe.State {
	s := gpt(part(1, "zfs", 1, 100, &probe.Content{Type: "zfs_member", Pool: "zroot"}))
	p := &probe.Pool{Name: "zroot", Imported: true, Properties: map[string]string{"ashift": "12", "altroot": "/mnt"},
		Datasets: map[string]*probe.Dataset{"zroot": {Name: "zroot", Type: "filesystem"}}}
	for _, ds := range datasets {
		p.Datasets[ds.Name] = ds
	}
	s.Pools = map[string]*probe.Pool{"zroot": p}
	return s
}

func zfsFS(name string, local map[string]string) *probe.Dataset {
	return &probe.Dataset{Name: name, Type: "filesystem", Local: local}
}

func zvol(name string, mib int64, c *probe.Content) *probe.Dataset {
	return &probe.Dataset{Name: name, Type: "volume", Volsize: mib << 20, Local: map[string]string{"volsize": ""}, Content: c}
}

func init() {
	unimported := zfsState()
	unimported.Pools["zroot"] = &probe.Pool{Name: "zroot"}
	noTools := zfsState()
	noTools.Pools["zroot"] = &probe.Pool{Name: "zroot", Unreadable: "zpool and zfs are not installed"}
	home := `"home": {"type": "zfs_fs", "mountpoint": "/home"}`
	vol := func(size, content string) string {
		return `"vol": {"type": "zfs_volume", "size": "` + size + `", "content": ` + content + `}`
	}
	ext4 := `{"type": "filesystem", "format": "ext4"}`
	homeHere := zfsFS("zroot/home", map[string]string{"mountpoint": "/mnt/home"})
	rowCases = append(rowCases, []struct {
		row     Row
		content string
		extra   string
		state   *probe.State
		path    string
	}{
		{ZFSPoolSame, gptLayout(zfsPart), zpoolOf(""), zfsState(), ""},
		{ZFSPoolDiffers, gptLayout(zfsPart), `, "zpool": {"zroot": {"mode": "mirror"}}`, func() *probe.State {
			s := zfsState()
			s.Pools["zroot"].Vdevs = []probe.PoolVdev{{Mode: "raidz1", Members: []string{"/dev/sdx1", "/dev/sdy1", "/dev/sdz1"}}, {Class: "log", Members: []string{"/dev/sdw1"}}}
			return s
		}(), zpoolPth + ".mode"},
		{ZFSPoolSame, gptLayout(zfsPart), `, "zpool": {"zroot": {"mode": "raidz"}}`, func() *probe.State {
			s := zfsState()
			s.Pools["zroot"].Vdevs = []probe.PoolVdev{{Mode: "raidz1", Members: []string{"/dev/sdx1", "/dev/sdy1", "/dev/sdz1"}}, {Class: "log", Members: []string{"/dev/sdw1"}}}
			return s
		}(), ""},
		{ZFSPoolMissing, gptLayout(zfsPart), zpoolOf(""), gpt(), zpoolPth},
		{ZFSPoolUnreadable, gptLayout(zfsPart), zpoolOf(""), unimported, zpoolPth},
		{ZFSPoolUnreadable, gptLayout(zfsPart), zpoolOf(""), noTools, zpoolPth},
		{ZFSMemberUnread, gptLayout(zfsPart), zpoolOf(""), func() *probe.State {
			s := zfsState()
			s.Disks["main"].Table.Partitions[0].Content.Unreadable = "blkid reads no pool name on the ZFS member /dev/sdx1"
			return s
		}(), "disko.devices.disk.main.content.partitions.zfs.content"},
		{MemberElsewhere, gptLayout(zfsPart), zpoolOf(""), func() *probe.State {
			s := zfsState()
			s.Disks["main"].Table.Partitions[0].Content.Pool = "tank"
			return s
		}(), "disko.devices.disk.main.content.partitions.zfs.content.pool"},
		{DatasetSame, gptLayout(zfsPart), zpoolOf(home), zfsState(homeHere), ""},
		{DatasetMissing, gptLayout(zfsPart), zpoolOf(home), zfsState(), zpoolPth + ".datasets.home"},
		{DatasetMissing, gptLayout(zfsPart), zpoolOf(vol("10M", ext4)), zfsState(), zpoolPth + ".datasets.vol"},
		{ContentNoCreate, gptLayout(zfsPart), zpoolOf(vol("10M", `{"type": "luks", "name": "v"}`)), zfsState(), zpoolPth + ".datasets.vol.content"},
		{DatasetDiffers, gptLayout(zfsPart), zpoolOf(home), zfsState(zvol("zroot/home", 10, nil)), zpoolPth + ".datasets.home.type"},
		{DatasetExtra, gptLayout(zfsPart), zpoolOf(home), zfsState(homeHere, zfsFS("zroot/old", nil)), ""},
		{ZFSPropertySame, gptLayout(zfsPart), zpoolOf(`"home": {"type": "zfs_fs", "options": {"quota": "10G", "encryption": "on"}}`),
			zfsState(&probe.Dataset{Name: "zroot/home", Type: "filesystem", Local: map[string]string{"quota": "10737418240"}, Fixed: map[string]string{"encryption": "aes-256-gcm"}}), ""},
		{ZFSPropertyDiffers, gptLayout(zfsPart), zpoolOf(`"home": {"type": "zfs_fs", "options": {"compression": "zstd"}}`),
			zfsState(zfsFS("zroot/home", map[string]string{"compression": "lz4"})), zpoolPth + ".datasets.home.options.compression"},
		{ZFSPropertyDiffers, gptLayout(zfsPart), zpoolOf(home), zfsState(zfsFS("zroot/home", map[string]string{"mountpoint": "/mnt/srv"})), zpoolPth + ".datasets.home.mountpoint"},
		{ZFSPropertyDiffers, gptLayout(zfsPart), `, "zpool": {"zroot": {"options": {"autotrim": "on"}}}`, zfsState(), zpoolPth + ".options.autotrim"},
		{ZFSPropertyDiffers, gptLayout(zfsPart), `, "zpool": {"zroot": {"rootFsOptions": {"compression": "zstd"}}}`, zfsState(), zpoolPth + ".rootFsOptions.compression"},
		{ZFSPropertyFixed, gptLayout(zfsPart), zpoolOf(`"home": {"type": "zfs_fs", "options": {"encryption": "aes-256-gcm"}}`), zfsState(homeHere), zpoolPth + ".datasets.home.options.encryption"},
		{VolumeGrow, gptLayout(zfsPart), zpoolOf(vol("200M", ext4)), zfsState(zvol("zroot/vol", 100, fs("ext4"))), zpoolPth + ".datasets.vol.size"},
		{VolumeGrowBlocked, gptLayout(zfsPart), zpoolOf(vol("200M", `{"type": "swap"}`)), zfsState(zvol("zroot/vol", 100, fs("swap"))), zpoolPth + ".datasets.vol.size"},
		{VolumeShrink, gptLayout(zfsPart), zpoolOf(vol("50M", ext4)), zfsState(zvol("zroot/vol", 100, fs("ext4"))), zpoolPth + ".datasets.vol.size"},
		{ContentDiffers, gptLayout(zfsPart), zpoolOf(vol("100M", ext4)), zfsState(zvol("zroot/vol", 100, fs("xfs"))), zpoolPth + ".datasets.vol.content.format"},
		{ContentUnreadable, gptLayout(zfsPart), zpoolOf(vol("100M", ext4)), zfsState(func() *probe.Dataset {
			v := zvol("zroot/vol", 100, nil)
			v.Unreadable = "the volume has no device node /dev/zvol/zroot/vol"
			return v
		}()), zpoolPth + ".datasets.vol.content"},
	}...)
}

// TestZFSScripts checks the commands of the ZFS actions: the format script's zfs create
// arguments, zfs set -u for a dataset property, zpool set for a pool property, zfs set
// volsize and the growth of the volume's filesystem.
func TestZFSScripts(t *testing.T) {
	d := layoutOf(t, gptLayout(zfsPart), `, "zpool": {"zroot": {"options": {"autotrim": "on"}, "datasets": {`+
		`"home": {"type": "zfs_fs", "mountpoint": "/home", "options": {"compression": "zstd"}}, `+
		`"data": {"type": "zfs_fs", "options": {"mountpoint": "legacy", "recordsize": "1M"}}, `+
		`"vol": {"type": "zfs_volume", "size": "200M", "content": {"type": "filesystem", "format": "ext4"}}, `+
		`"swap": {"type": "zfs_volume", "size": "64M", "options": {"volblocksize": "4096"}, "content": {"type": "swap"}}}}}`)
	s := zfsState(zfsFS("zroot/home", map[string]string{"mountpoint": "/mnt/home", "compression": "lz4"}), zvol("zroot/vol", 100, fs("ext4")))
	p := Make(d, s, Options{RootMountpoint: "/mnt"})
	if len(p.Refused) > 0 {
		t.Fatalf("refused: %+v", p.Refused)
	}
	script := string(p.Script())
	for _, want := range []string{
		"zpool set autotrim=on zroot\n",
		"zfs set -u compression=zstd zroot/home\n",
		"zfs create -up zroot/data -o mountpoint=legacy -o recordsize=1M >/dev/null\n",
		"zfs create zroot/swap -o volblocksize=4096 -V 64M >/dev/null\nnode=/dev/zvol/zroot/swap\n",
		"mkswap \"$node\" >/dev/null\n",
		"zfs set volsize=200M zroot/vol\nnode=/dev/zvol/zroot/vol\n",
		"e2fsck -f -p /dev/zvol/zroot/vol >/dev/null\nresize2fs /dev/zvol/zroot/vol",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("the apply script lacks %q:\n%s", want, script)
		}
	}
}

// TestImportZFS imports the probe of the ZFS fixtures (internal/probe/testdata/zfs, not
// a run of real ZFS: this machine has no ZFS module): the pool with its mode, local pool
// properties, root dataset options and datasets goes into the layout, which loads,
// renders as Nix, and plans empty against the same probe.
func TestImportZFS(t *testing.T) {
	s := recordedState(t, "zfs-probe.json")
	layout, notes := s.Layout("/mnt")
	if len(notes) > 0 {
		t.Errorf("notes: %q", notes)
	}
	js, err := json.Marshal(layout)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"content":{"type":"zfs","pool":"zroot"}`,
		`"zpool":{"zroot":{"type":"zpool","mode":"mirror","options":{"ashift":"12","autotrim":"on","feature@async_destroy":"enabled"},"rootFsOptions":{"canmount":"off","compression":"lz4","mountpoint":"none","xattr":"sa"}`,
		`"home":{"type":"zfs_fs","options":{"com.sun:auto-snapshot":"true","quota":"10737418240"},"mountpoint":"/home"`,
		`"root":{"type":"zfs_fs","options":{"mountpoint":"legacy"},"mountpoint":"/"`,
		`"secret":{"type":"zfs_fs","options":{"encryption":"aes-256-gcm","keyformat":"passphrase","keylocation":"file:///tmp/secret.key","pbkdf2iters":"350000"},"mountpoint":"/secret"`,
		`"vol":{"type":"zfs_volume","size":"100M","mountOptions":["defaults"],"content":{"type":"filesystem","format":"ext4"`,
	} {
		if !strings.Contains(string(js), want) {
			t.Errorf("import lacks %s\n%s", want, js)
		}
	}
	d, err := config.Load(js, config.LoadOptions{})
	if err != nil {
		t.Fatalf("the imported layout does not load: %v\n%s", err, js)
	}
	var tree any
	if err := json.Unmarshal(js, &tree); err != nil {
		t.Fatal(err)
	}
	expr, err := nixos.Expr(map[string]any{"disko": map[string]any{"devices": tree}})
	if err != nil || !strings.Contains(expr, `mode = "mirror";`) {
		t.Errorf("Nix of the import (%v):\n%s", err, expr)
	}
	if p := Make(d, &s, Options{RootMountpoint: "/mnt"}); len(p.Actions)+len(p.Refused) > 0 {
		t.Errorf("plan of the imported layout is not empty: %+v\n%s", p, js)
	}
}

// TestZFSApplyScriptRuns runs the apply script of dataset and property actions in bash
// with stand-ins for zfs and zpool on PATH that log their arguments and, like the real
// tools on success, print nothing (not a real ZFS run: no ZFS module here). The tools
// get exactly the words the plan says.
func TestZFSApplyScriptRuns(t *testing.T) {
	d := layoutOf(t, gptLayout(zfsPart), `, "zpool": {"zroot": {"options": {"autotrim": "on"}, "datasets": {`+
		`"home": {"type": "zfs_fs", "mountpoint": "/home", "options": {"com.sun:auto-snapshot": "true"}}, `+
		`"srv/my data": {"type": "zfs_fs", "options": {"mountpoint": "legacy"}}}}}`)
	p := Make(d, zfsState(zfsFS("zroot/home", map[string]string{"mountpoint": "/mnt/home"})), Options{RootMountpoint: "/mnt"})
	if len(p.Refused) > 0 || len(p.Actions) != 3 {
		t.Fatalf("plan: %+v", p)
	}
	bin := t.TempDir()
	log := filepath.Join(bin, "log")
	for _, tool := range []string{"zfs", "zpool"} {
		script := "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]' \"$a\"; done >>\"$ZFS_LOG\"\necho >>\"$ZFS_LOG\"\n"
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(strings.Replace(script, "[%s]", tool+"[%s]", 1)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", "-s")
	cmd.Stdin = strings.NewReader(string(p.Script()))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "ZFS_LOG="+log)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apply script: %v\n%s", err, out)
	}
	got, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := "zpool[set]zpool[autotrim=on]zpool[zroot]\n" +
		"zfs[set]zfs[-u]zfs[com.sun:auto-snapshot=true]zfs[zroot/home]\n" +
		"zfs[create]zfs[-up]zfs[zroot/srv/my data]zfs[-o]zfs[mountpoint=legacy]\n"
	if string(got) != want {
		t.Errorf("the tools were called with\n%s\nwant\n%s", got, want)
	}
}
