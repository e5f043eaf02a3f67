package plan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/probe"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// vmRunner runs the probe's and apply's commands in a qemu guest (this machine's kernel
// has no device mapper and no md).
type vmRunner struct{ vm *testvm.VM }

func (v vmRunner) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	return v.vm.Exec(ctx, cmd, stdin, stdout, stderr)
}

func (v vmRunner) must(t *testing.T, ctx context.Context, cmd string) string {
	t.Helper()
	var out bytes.Buffer
	if err := v.Run(ctx, cmd, nil, &out, &out); err != nil {
		t.Fatalf("%s: %v\n%s", firstLine(cmd), err, out.String())
	}
	return out.String()
}

// stacked is a GPT disk with an ext4 /boot and a LUKS container holding an LVM volume
// group with an ext4 root LV, plus two disks whose partitions are the members of an md
// RAID1 with ext4 on /srv. Its arguments are the root LV's size, more LVs, more GPT
// partitions after the LUKS one, the array's level, the root LV's format, more volume
// groups and more arrays.
const stacked = `{"disk": {
  "main": {"device": "/dev/disk/by-id/virtio-plan0", "content": {"type": "gpt", "partitions": {
    "boot": {"size": "64M", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/boot"}},
    "crypt": {"size": "600M", "content": {"type": "luks", "name": "crypted", "passwordFile": "/tmp/secret.key",
      "content": {"type": "lvm_pv", "vg": "pool"}}}%[3]s}}},
  "m1": {"device": "/dev/disk/by-id/virtio-plan1", "content": {"type": "gpt", "partitions": {
    "r": {"size": "100%%", "content": {"type": "mdraid", "name": "arr"}}}}},
  "m2": {"device": "/dev/disk/by-id/virtio-plan2", "content": {"type": "gpt", "partitions": {
    "r": {"size": "100%%", "content": {"type": "mdraid", "name": "arr"}}}}}},
 "lvm_vg": {"pool": {"lvs": {
    "root": {"size": %[1]q, "content": {"type": "filesystem", "format": %[5]q, "mountpoint": "/"}}%[2]s}}%[6]s},
 "mdadm": {"arr": {"level": %[4]d, "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/srv"}}%[7]s}
}`

func stackedLayout(t *testing.T, rootSize, lvs, parts string, level int, rootFormat, vgs, arrays string) *config.Devices {
	t.Helper()
	js := fmt.Sprintf(stacked, rootSize, lvs, parts, level, rootFormat, vgs, arrays)
	d, err := config.Load([]byte(js), config.LoadOptions{})
	if err != nil {
		t.Fatalf("config.Load: %v\n%s", err, js)
	}
	return d
}

// TestVMStacked is the VM rig case for LUKS, LVM and mdadm: formatted with a
// LUKS + LVM disk and an md RAID1 holding files, a layout that grows the root LV, adds an
// LV and adds a partition next to the LUKS one plans as exactly those actions, applies
// with the files intact, and plans empty again. A changed RAID level and a changed LV
// format are refused with the disks' first and last MiB unchanged.
func TestVMStacked(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a qemu guest")
	}
	vm := testvm.StartT(t, testvm.Options{Disks: []testvm.DiskSpec{
		{Size: 1 << 30, Serial: "plan0"}, {Size: 256 << 20, Serial: "plan1"}, {Size: 256 << 20, Serial: "plan2"}}})
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	r := vmRunner{vm}
	opts := Options{RootMountpoint: "/mnt", Codegen: codegen.Options{RootMountpoint: "/mnt"}}

	r.must(t, ctx, "printf secret > /tmp/secret.key")
	v1 := stackedLayout(t, "100M", "", "", 1, "ext4", "", "")
	scripts, err := codegen.Generate(v1, opts.Codegen)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx, "bash -s", bytes.NewReader(scripts.FormatMount), io.Discard, testvm.LogT(t)); err != nil {
		t.Fatalf("format,mount: %v", err)
	}
	const files = "/mnt/keep /mnt/boot/keep /mnt/srv/keep"
	r.must(t, ctx, "for f in "+files+"; do head -c 3000000 /dev/urandom > $f; done; sync")
	sums := r.must(t, ctx, "sha256sum "+files)

	if p, err := Probe(ctx, r, v1, opts); err != nil || len(p.Actions)+len(p.Refused) > 0 {
		t.Fatalf("plan of the layout the disks were formatted with: %+v, %v", p, err)
	}

	const data = `, "data": {"size": "64M", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/data"}}`
	const more = `, "more": {"size": "64M", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/more"}}`
	v2 := stackedLayout(t, "200M", data, more, 1, "ext4", "", "")
	p, err := Probe(ctx, r, v2, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := actionsOf(p)
	want := []string{
		"create-partition disko.devices.disk.main.content.partitions.more",
		"grow-lv disko.devices.lvm_vg.pool.lvs.root.size",
		"create-lv disko.devices.lvm_vg.pool.lvs.data",
	}
	if !slices.Equal(got, want) || len(p.Refused) > 0 {
		t.Fatalf("plan v2:\n got %q\nwant %q\nrefused %+v", got, want, p.Refused)
	}

	// Refusals change nothing: the first and last MiB of every disk stay as they are.
	edges := "for d in /dev/disk/by-id/virtio-plan[012]; do n=$(blockdev --getsz $d); dd if=$d bs=512 count=2048 status=none | sha256sum; dd if=$d bs=512 skip=$((n-2048)) status=none | sha256sum; done"
	before := r.must(t, ctx, edges)
	for _, c := range []struct {
		d    *config.Devices
		row  Row
		path string
	}{
		{stackedLayout(t, "200M", data, more, 0, "ext4", "", ""), MDLevel, "disko.devices.mdadm.arr.level"},
		{stackedLayout(t, "50M", "", "", 1, "ext4", "", ""), LVShrink, "disko.devices.lvm_vg.pool.lvs.root.size"},
		{stackedLayout(t, "100M", "", "", 1, "xfs", "", ""), ContentDiffers, "disko.devices.lvm_vg.pool.lvs.root.content.format"},
	} {
		p, err := Apply(ctx, r, c.d, opts, testvm.LogT(t))
		if err == nil || !slices.ContainsFunc(p.Refused, func(x Refusal) bool { return x.Row == c.row.ID && x.Path == c.path }) {
			t.Errorf("want refusal %s at %s, got %v: %+v", c.row.ID, c.path, err, p)
		}
	}
	if after := r.must(t, ctx, edges); after != before {
		t.Errorf("a refused apply changed the disks' first or last MiB")
	}

	if _, err := Apply(ctx, r, v2, opts, testvm.LogT(t)); err != nil {
		t.Fatalf("apply v2: %v", err)
	}
	if after := r.must(t, ctx, "sha256sum "+files); after != sums {
		t.Errorf("files changed by apply:\nbefore %s\nafter  %s", sums, after)
	}
	if p, err := Probe(ctx, r, v2, opts); err != nil || len(p.Actions)+len(p.Refused) > 0 {
		t.Errorf("second plan is not empty: %+v, %v", p, err)
	}
	mounts := r.must(t, ctx, "findmnt -rno TARGET,SOURCE | sort; lvs --noheadings --units m -o lv_name,lv_size pool; df -m --output=target,size /mnt /mnt/data /mnt/more")
	flat := strings.Join(strings.Fields(mounts), " ")
	for _, w := range []string{"/mnt/data /dev/mapper/pool-data", "/mnt/more /dev/vda3", "/mnt/srv /dev/md127", "root 200.00m", "data 64.00m"} {
		if !strings.Contains(flat, w) {
			t.Errorf("after apply, no %q in:\n%s", w, mounts)
		}
	}
	t.Logf("after apply:\n%s", mounts)

	// Import describes the LUKS container, the volume group and the array with what they
	// hold, and plans empty against the same disks.
	s, err := probe.Probe(ctx, r, Disks(v2))
	if err != nil {
		t.Fatal(err)
	}
	state, _ := json.Marshal(s)
	t.Logf("probe: %s", state)
	layout, notes := s.Layout("/mnt")
	js, err := json.Marshal(layout)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("imported: %s\nnotes: %q", js, notes)
	for _, w := range []string{
		`"content":{"type":"luks","name":"crypted","initrdUnlock":true,"content":{"type":"lvm_pv","vg":"pool"}}`,
		`"root":{"size":"200M","content":{"type":"filesystem","format":"ext4"`,
		`"data":{"size":"64M","content":{"type":"filesystem","format":"ext4","mountOptions":["defaults"],"mountpoint":"/data"}}`,
		`"mdadm":{"arr":{"type":"mdadm","level":1,"metadata":"1.2","content":{"type":"filesystem","format":"ext4"`,
	} {
		if !strings.Contains(string(js), w) {
			t.Errorf("import lacks %s", w)
		}
	}
	imported, err := config.Load(js, config.LoadOptions{})
	if err != nil {
		t.Fatalf("the imported layout does not load: %v", err)
	}
	if p, err := Probe(ctx, r, imported, opts); err != nil || len(p.Actions)+len(p.Refused) > 0 {
		t.Errorf("plan of the imported layout is not empty: %+v, %v", p, err)
	}

	// A new partition that is the only PV of a new volume group with an LV, then two new
	// partitions that are the members of a new RAID1: each planned as exactly its
	// actions, applied with the files intact, then planned empty.
	const pv2 = more + `, "pv2": {"size": "64M", "content": {"type": "lvm_pv", "vg": "fresh"}}`
	const fresh = `, "fresh": {"lvs": {"v": {"size": "32M", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/fresh"}}}}`
	const members = pv2 + `, "rx": {"size": "40M", "content": {"type": "mdraid", "name": "newmd"}}, "ry": {"size": "40M", "content": {"type": "mdraid", "name": "newmd"}}`
	const newmd = `, "newmd": {"level": 1, "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/newmd"}}`
	// Then a new partition that is a second PV of the group fresh (named to be numbered
	// after rx and ry), whose new raid1 LV
	// needs both PVs; then a thin pool with a thin LV in the group pool.
	const zpv = members + `, "zpv": {"size": "64M", "content": {"type": "lvm_pv", "vg": "fresh"}}`
	const freshRaid = `, "fresh": {"lvs": {"v": {"size": "32M", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/fresh"}},
	  "r": {"size": "16M", "lvm_type": "raid1", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/r"}}}}`
	const thin = data + `, "tp": {"size": "64M", "lvm_type": "thin-pool"},
	  "thin": {"size": "32M", "lvm_type": "thinlv", "pool": "tp", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/thin"}}`
	// Last, a new partition as a third member of the RAID1 newmd.
	const zz = zpv + `, "zz": {"size": "40M", "content": {"type": "mdraid", "name": "newmd"}}`
	for _, step := range []struct {
		name       string
		d          *config.Devices
		want       []string
		check, has string // a command run after apply, and what its words must hold
	}{
		{"new volume group", stackedLayout(t, "200M", data, pv2, 1, "ext4", fresh, ""), []string{
			"create-partition disko.devices.disk.main.content.partitions.pv2",
			"create-vg disko.devices.lvm_vg.fresh",
			"create-lv disko.devices.lvm_vg.fresh.lvs.v",
		}, "findmnt -rno TARGET,SOURCE /mnt/fresh; vgs --noheadings -o vg_name,pv_count fresh", "/mnt/fresh /dev/mapper/fresh-v fresh 1"},
		{"new array", stackedLayout(t, "200M", data, members, 1, "ext4", fresh, newmd), []string{
			"create-partition disko.devices.disk.main.content.partitions.rx",
			"create-partition disko.devices.disk.main.content.partitions.ry",
			"create-array disko.devices.mdadm.newmd",
		}, "findmnt -rno TARGET /mnt/newmd; mdadm --detail --export /dev/md/newmd | grep -E '^MD_(LEVEL|DEVICES)='", "/mnt/newmd MD_LEVEL=raid1 MD_DEVICES=2"},
		{"new PV in a group and a raid1 LV", stackedLayout(t, "200M", data, zpv, 1, "ext4", freshRaid, newmd), []string{
			"create-partition disko.devices.disk.main.content.partitions.zpv",
			"extend-vg disko.devices.disk.main.content.partitions.zpv.content",
			"create-lv disko.devices.lvm_vg.fresh.lvs.r",
		}, "lvs --noheadings -o lv_name,segtype fresh/r; vgs --noheadings -o vg_name,pv_count fresh; findmnt -rno TARGET,SOURCE /mnt/r", "r raid1 fresh 2 /mnt/r /dev/mapper/fresh-r"},
		{"thin pool and thin LV", stackedLayout(t, "200M", thin, zpv, 1, "ext4", freshRaid, newmd), []string{
			"create-lv disko.devices.lvm_vg.pool.lvs.tp",
			"create-lv disko.devices.lvm_vg.pool.lvs.thin",
		}, "lvs --noheadings -o lv_name,segtype,pool_lv pool/thin; findmnt -rno TARGET,SOURCE /mnt/thin", "thin thin tp /mnt/thin /dev/mapper/pool-thin"},
		{"new member of a RAID1", stackedLayout(t, "200M", thin, zz, 1, "ext4", freshRaid, newmd), []string{
			"create-partition disko.devices.disk.main.content.partitions.zz",
			"add-members disko.devices.mdadm.newmd",
		}, "findmnt -rno TARGET /mnt/newmd; mdadm --detail --export /dev/md/newmd | grep -E '^MD_(LEVEL|DEVICES)='", "/mnt/newmd MD_LEVEL=raid1 MD_DEVICES=3"},
	} {
		p, err := Probe(ctx, r, step.d, opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := actionsOf(p); !slices.Equal(got, step.want) || len(p.Refused) > 0 {
			t.Fatalf("%s: plan:\n got %q\nwant %q\nrefused %+v", step.name, got, step.want, p.Refused)
		}
		if _, err := Apply(ctx, r, step.d, opts, testvm.LogT(t)); err != nil {
			t.Fatalf("%s: apply: %v", step.name, err)
		}
		if after := r.must(t, ctx, "sha256sum "+files); after != sums {
			t.Errorf("%s: files changed by apply:\nbefore %s\nafter  %s", step.name, sums, after)
		}
		if p, err := Probe(ctx, r, step.d, opts); err != nil || len(p.Actions)+len(p.Refused) > 0 {
			t.Errorf("%s: plan after apply is not empty: %+v, %v", step.name, p, err)
		}
		if out := r.must(t, ctx, step.check); !strings.Contains(strings.Join(strings.Fields(out), " "), step.has) {
			t.Errorf("%s: after apply, no %q in:\n%s", step.name, step.has, out)
		}
	}
}

// actionsOf is a plan's actions as "ACTION PATH".
func actionsOf(p *Plan) []string {
	var got []string
	for _, a := range p.Actions {
		got = append(got, a.Action+" "+a.Path)
	}
	return got
}
