package plan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/probe"
	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/testtarget"
)

// nsRunner runs commands in a private mount namespace held open by a sleeping process,
// so that the test's mounts never reach the host and vanish with the holder.
type nsRunner struct{ pid int }

func newNS(t *testing.T) nsRunner {
	t.Helper()
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "infinity")
	if err := holder.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	self, _ := os.Readlink("/proc/self/ns/mnt")
	for range 200 {
		if other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", holder.Process.Pid)); err == nil && other != self {
			return nsRunner{holder.Process.Pid}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the mount namespace did not appear")
	return nsRunner{}
}

func (n nsRunner) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := exec.CommandContext(ctx, "nsenter", "--target", fmt.Sprint(n.pid), "--mount", "--", "sh", "-c", cmd)
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	c.Env = append(os.Environ(), "DISKO_DEVICE_TIMEOUT=20")
	return c.Run()
}

func (n nsRunner) must(t *testing.T, cmd string, stdin []byte) string {
	t.Helper()
	var out bytes.Buffer
	if err := n.Run(context.Background(), cmd, bytes.NewReader(stdin), &out, &out); err != nil {
		t.Fatalf("%s: %v\n%s", firstLine(cmd), err, out.String())
	}
	return out.String()
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func requireLoopTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root for loop devices and mounts (running as uid %d)", os.Geteuid())
	}
	for _, tool := range []string{"losetup", "unshare", "nsenter", "sfdisk", "sgdisk", "parted", "partx", "blkid", "wipefs", "findmnt", "mkfs.ext4", "mkfs.xfs", "mkfs.btrfs", "mkswap", "btrfs", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
}

// loadLayout loads a layout whose disks must be the test's own loop devices.
func loadLayout(t *testing.T, js string) *config.Devices {
	t.Helper()
	d, err := config.Load([]byte(js), config.LoadOptions{})
	if err != nil {
		t.Fatalf("config.Load: %v\n%s", err, js)
	}
	for _, disk := range d.Disk {
		if err := testtarget.RefuseUnlessOwnLoop(disk.Device); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// v1 is the layout the disks are formatted with: a GPT disk with an ext4 /boot and a
// btrfs root (subvolumes / and /home) leaving free space, and an MBR disk with xfs on
// /data leaving free space.
const v1 = `{"disk": {
  "main": {"device": %[1]q, "content": {"type": "gpt", "partitions": {
    "boot": {"size": "64M", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/boot"}},
    "root": {"size": "400M", "content": {"type": "btrfs", "extraArgs": ["-f"], "subvolumes": {
      "/rootfs": {"mountpoint": "/"}, "/home": {"mountpoint": "/home"}%[3]s}}}%[4]s}}},
  "data": {"device": %[2]q, "content": {"type": "table", "format": "msdos", "partitions": [
    {"start": "1MiB", "end": "350MiB", "content": {"type": "filesystem", "format": %[5]q, "mountpoint": "/data"}}%[6]s]}}
}}`

// v2 adds a subvolume, a swap partition and an ext4 partition in the free space of the
// MBR disk.
func layouts(a, b string) (string, string, string) {
	const sub = `, "/new": {"mountpoint": "/new"}`
	const swap = `, "swap": {"size": "64M", "content": {"type": "swap"}}`
	const more = `, {"start": "350MiB", "end": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/data/more"}}`
	one := fmt.Sprintf(v1, a, b, "", "", "xfs", "")
	two := fmt.Sprintf(v1, a, b, sub, swap, "xfs", more)
	bad := fmt.Sprintf(v1, a, b, sub, swap, "ext4", more)
	return one, two, bad
}

// TestLoopIncremental is the "done when" on real loop devices: formatted with v1
// and holding data, v2 plans as exactly a new subvolume, a swap partition and a
// partition; apply keeps the data and mounts everything; a second plan is empty. A
// layout that changes a filesystem's format is refused at its option path and changes
// nothing. import of the disks gives a layout whose plan is empty.
func TestLoopIncremental(t *testing.T) {
	requireLoopTools(t)
	a, b := testtarget.LoopDevice(t, 1<<30), testtarget.LoopDevice(t, 700<<20)
	t.Cleanup(func() {
		for _, dev := range []string{a, b} {
			for i := 1; i <= 4; i++ {
				exec.Command("swapoff", fmt.Sprintf("%sp%d", dev, i)).Run()
			}
			exec.Command("partx", "-d", dev).Run()
		}
	})
	ns := newNS(t)
	root := filepath.Join(t.TempDir(), "mnt")
	opts := Options{RootMountpoint: root, Codegen: codegen.Options{RootMountpoint: root}}
	one, two, bad := layouts(a, b)
	d1 := loadLayout(t, one)
	s1, err := codegen.Generate(d1, opts.Codegen)
	if err != nil {
		t.Fatal(err)
	}
	ns.must(t, "bash -s", s1.Format)
	ns.must(t, "bash -s", s1.Mount)
	files := []string{"/home/file", "/boot/file", "/data/file", "/file"}
	for _, f := range files {
		ns.must(t, "head -c 3000000 /dev/urandom > "+root+f, nil)
	}
	sums := func() string {
		return ns.must(t, "cd "+root+" && sha256sum ."+strings.Join(files, " ."), nil)
	}
	before := sums()
	ctx := context.Background()

	// The formatted disks against their own layout: nothing to do.
	if p, err := Probe(ctx, ns, d1, opts); err != nil || len(p.Actions)+len(p.Refused) > 0 {
		t.Fatalf("v1 against the disks formatted with v1: %v %+v", err, p)
	}

	d2 := loadLayout(t, two)
	p, err := Probe(ctx, ns, d2, opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, act := range p.Actions {
		got = append(got, act.Path+" "+act.Action)
	}
	want := []string{
		`disko.devices.disk.data.content.partitions[1] create-partition`,
		`disko.devices.disk.main.content.partitions.root.content.subvolumes."/new" create-subvolume`,
		`disko.devices.disk.main.content.partitions.swap add-swap`,
	}
	slices.Sort(got)
	if !slices.Equal(got, want) || len(p.Refused) > 0 {
		t.Fatalf("plan of v2:\n got %q\nwant %q\nrefused %+v", got, want, p.Refused)
	}
	var log bytes.Buffer
	if _, err := Apply(ctx, ns, d2, opts, &log); err != nil {
		t.Fatalf("apply v2: %v\n%s", err, log.String())
	}
	t.Logf("apply v2:\n%s", log.String())
	if after := sums(); after != before {
		t.Errorf("data changed by apply:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	mounts := ns.must(t, "findmnt --list --noheadings --output TARGET", nil)
	for _, mp := range []string{"/new", "/data/more", "/home", "/boot", "/data"} {
		if !strings.Contains(mounts, root+mp+"\n") {
			t.Errorf("%s is not mounted after apply:\n%s", root+mp, mounts)
		}
	}
	if sig := ns.must(t, "blkid -p -o value -s TYPE "+a+"p3", nil); strings.TrimSpace(sig) != "swap" {
		t.Errorf("partition 3 of %s holds %q, want swap", a, sig)
	}
	p, err = Probe(ctx, ns, d2, opts)
	if err != nil || len(p.Actions)+len(p.Refused) > 0 {
		t.Fatalf("second plan of v2 is not empty: %v %+v", err, p)
	}
	var again bytes.Buffer
	if _, err := Apply(ctx, ns, d2, opts, &again); err != nil {
		t.Fatalf("apply v2 again: %v\n%s", err, again.String())
	}

	// import while mounted: a layout with these mount points, whose plan is empty.
	imported := importLayout(t, ctx, ns, d2, root)
	if p, err := Probe(ctx, ns, imported, opts); err != nil || len(p.Actions)+len(p.Refused) > 0 {
		t.Errorf("plan of the imported layout is not empty: %v %+v", err, p)
	}

	// Refusal: the data partition as ext4 instead of xfs, on the unmounted disks.
	ns.must(t, "bash -s", mustGenerate(t, d2, opts).Unmount)
	ns.must(t, "swapoff -a 2>/dev/null; :", nil)
	snapshot := testtarget.DiskEdges(t, a) + testtarget.DiskEdges(t, b)
	d3 := loadLayout(t, bad)
	p, err = Apply(ctx, ns, d3, opts, io.Discard)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("apply of a changed format: err = %v, want ErrRefused; plan %+v", err, p)
	}
	const wantPath = "disko.devices.disk.data.content.partitions[0].content.format"
	if len(p.Refused) != 1 || p.Refused[0].Path != wantPath || len(p.Actions) != 0 {
		t.Errorf("refusal of a changed format: %+v, want one refusal at %s", p, wantPath)
	}
	if after := testtarget.DiskEdges(t, a) + testtarget.DiskEdges(t, b); after != snapshot {
		t.Errorf("a refused apply changed the disks:\nbefore:\n%s\nafter:\n%s", snapshot, after)
	}

	// import while unmounted: no mount points, still an empty plan against the disks.
	imported = importLayout(t, ctx, ns, d2, "/")
	if p, err := Probe(ctx, ns, imported, opts); err != nil || len(p.Actions)+len(p.Refused) > 0 {
		t.Errorf("plan of the layout imported from unmounted disks is not empty: %v %+v", err, p)
	}
	ns.must(t, "bash -s", mustGenerate(t, d2, opts).Mount)
	if after := sums(); after != before {
		t.Errorf("data changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	ns.must(t, "bash -s", mustGenerate(t, d2, opts).Unmount)
}

func mustGenerate(t *testing.T, d *config.Devices, opts Options) *codegen.Scripts {
	t.Helper()
	s, err := codegen.Generate(d, opts.Codegen)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// importLayout probes the layout's disks and loads the layout import writes for them,
// refusing it unless its disks are this test's own loop devices.
func importLayout(t *testing.T, ctx context.Context, r probe.Runner, d *config.Devices, root string) *config.Devices {
	t.Helper()
	return loadLayout(t, string(importJSON(t, ctx, r, d, root)))
}

// importJSON probes the layout's disks and returns the layout import writes for them.
func importJSON(t *testing.T, ctx context.Context, r probe.Runner, d *config.Devices, root string) []byte {
	t.Helper()
	s, err := probe.Probe(ctx, r, Disks(d))
	if err != nil {
		t.Fatal(err)
	}
	layout, notes := s.Layout(root)
	if len(notes) > 0 {
		t.Logf("import notes: %q", notes)
	}
	js, err := json.Marshal(layout)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("imported (root %s): %s", root, js)
	return js
}

// TestLoopGrowAndRefuse grows an ext4 (offline: e2fsck, resize2fs), an xfs and a btrfs
// (through a temporary mount) into the free space after their partitions, keeping their
// files, then checks that layouts which would shrink, move, change the table type or drop
// a partition are refused at their option paths with the disks left byte-identical.
func TestLoopGrowAndRefuse(t *testing.T) {
	requireLoopTools(t)
	for _, tool := range []string{"xfs_growfs", "resize2fs", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	a, b := testtarget.LoopDevice(t, 1<<30), testtarget.LoopDevice(t, 512<<20)
	t.Cleanup(func() {
		for _, dev := range []string{a, b} {
			exec.Command("partx", "-d", dev).Run()
		}
	})
	ns := newNS(t)
	root := filepath.Join(t.TempDir(), "mnt")
	opts := Options{RootMountpoint: root, Codegen: codegen.Options{RootMountpoint: root}}
	layout := func(xSize, yStart, ySize, zSize, extra string) string {
		return fmt.Sprintf(`{"disk": {
  "a": {"device": %q, "content": {"type": "gpt", "partitions": {
    "x": {"size": %q, "priority": 1, "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/x"}},
    "y": {"start": %q, "size": %q, "priority": 2, "content": {"type": "filesystem", "format": "xfs", "mountpoint": "/y"}}}}},
  "b": {"device": %q, "content": {"type": "gpt", "partitions": {
    "z": {"size": %q, "content": {"type": "btrfs", "extraArgs": ["-f"], "mountpoint": "/z"}}%s}}}
}}`, a, xSize, yStart, ySize, b, zSize, extra)
	}
	d1 := loadLayout(t, layout("100M", "400M", "320M", "200M", ""))
	s1 := mustGenerate(t, d1, opts)
	ns.must(t, "bash -s", s1.Format)
	ns.must(t, "bash -s", s1.Mount)
	files := []string{"/x/file", "/y/file", "/z/file"}
	for _, f := range files {
		ns.must(t, "head -c 5000000 /dev/urandom > "+root+f, nil)
	}
	sums := func() string { return ns.must(t, "cd "+root+" && sha256sum ."+strings.Join(files, " ."), nil) }
	sizes := func() []string {
		var out []string
		for _, mp := range []string{"/x", "/y", "/z"} {
			out = append(out, strings.TrimSpace(ns.must(t, "df -B1M --output=size "+root+mp+" | tail -1", nil)))
		}
		return out
	}
	before, small := sums(), sizes()
	ns.must(t, "bash -s", s1.Unmount)

	ctx := context.Background()
	d2 := loadLayout(t, layout("300M", "400M", "100%", "100%", ""))
	p, err := Probe(ctx, ns, d2, opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, act := range p.Actions {
		got = append(got, act.Path+" "+act.Action)
	}
	want := []string{
		"disko.devices.disk.a.content.partitions.x.size grow-partition",
		"disko.devices.disk.a.content.partitions.y.size grow-partition",
		"disko.devices.disk.b.content.partitions.z.size grow-partition",
	}
	if !slices.Equal(got, want) || len(p.Refused) > 0 {
		t.Fatalf("plan of the grown layout:\n got %q\nwant %q\nrefused %+v", got, want, p.Refused)
	}
	var log bytes.Buffer
	if _, err := Apply(ctx, ns, d2, opts, &log); err != nil {
		t.Fatalf("apply: %v\n%s", err, log.String())
	}
	t.Logf("apply:\n%s", log.String())
	if after := sums(); after != before {
		t.Errorf("data changed by growing:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	big := sizes()
	for i, mp := range []string{"/x", "/y", "/z"} {
		var s, l int
		fmt.Sscan(small[i], &s)
		fmt.Sscan(big[i], &l)
		if l <= s+50 {
			t.Errorf("%s did not grow: %d MiB before, %d MiB after", mp, s, l)
		}
	}
	t.Logf("sizes in MiB before %v, after %v", small, big)
	if p, err := Probe(ctx, ns, d2, opts); err != nil || len(p.Actions)+len(p.Refused) > 0 {
		t.Fatalf("second plan is not empty: %v %+v", err, p)
	}
	ns.must(t, "bash -s", mustGenerate(t, d2, opts).Unmount)

	refusals := []struct{ name, layout, path string }{
		{"shrink", layout("50M", "400M", "100%", "100%", ""), "disko.devices.disk.a.content.partitions.x.size"},
		{"moved", layout("300M", "500M", "100%", "100%", ""), "disko.devices.disk.a.content.partitions.y.start"},
		{"table-type", fmt.Sprintf(`{"disk": {"b": {"device": %q, "content": {"type": "table", "format": "msdos", "partitions": [
			{"start": "1MiB", "end": "100%%", "content": {"type": "btrfs", "mountpoint": "/z"}}]}}}}`, b), "disko.devices.disk.b.content.format"},
		{"extra", fmt.Sprintf(`{"disk": {"b": {"device": %q, "content": {"type": "gpt", "partitions": {}}}}}`, b), "disko.devices.disk.b.content.partitions"},
		{"number-taken", layout("300M", "400M", "100%", "100%", `, "w": {"size": "100M"}`), "disko.devices.disk.b.content.partitions.w"},
		{"no-room", layout("300M", "400M", "100%", "100%", `, "zz": {"size": "100M", "priority": 9002}`), "disko.devices.disk.b.content.partitions.zz"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			snapshot := testtarget.DiskEdges(t, a) + testtarget.DiskEdges(t, b)
			d := loadLayout(t, r.layout)
			p, err := Apply(ctx, ns, d, opts, io.Discard)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("err = %v, want ErrRefused; plan %+v", err, p)
			}
			if !slices.ContainsFunc(p.Refused, func(x Refusal) bool { return x.Path == r.path }) {
				t.Errorf("no refusal at %s: %+v", r.path, p.Refused)
			}
			t.Logf("refused: %+v", p.Refused)
			if after := testtarget.DiskEdges(t, a) + testtarget.DiskEdges(t, b); after != snapshot {
				t.Errorf("a refused apply changed the disks:\nbefore:\n%s\nafter:\n%s", snapshot, after)
			}
		})
	}
	ns.must(t, "bash -s", mustGenerate(t, d2, opts).Mount)
	if after := sums(); after != before {
		t.Errorf("data changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	ns.must(t, "bash -s", mustGenerate(t, d2, opts).Unmount)
}

// TestLoopOverSSH plans and applies through internal/remote's SSH client to a real sshd
// (testtarget): the probe and the apply script run on the target as they run locally.
func TestLoopOverSSH(t *testing.T) {
	requireLoopTools(t)
	testtarget.Require(t, true)
	dev := testtarget.LoopDevice(t, 512<<20)
	t.Cleanup(func() { exec.Command("partx", "-d", dev).Run() })
	tt := testtarget.Start(t, testtarget.Options{})
	tg, err := remote.ParseTarget(tt.Destination())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := remote.Dial(ctx, tg, tt.ClientOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	layout := func(extra string) *config.Devices {
		return loadLayout(t, fmt.Sprintf(`{"disk": {"main": {"device": %q, "content": {"type": "gpt", "partitions": {
  "root": {"size": "200M", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}%s}}}}}`, dev, extra))
	}
	root := "/mnt/disko-plan-ssh-test"
	opts := Options{RootMountpoint: root, Codegen: codegen.Options{RootMountpoint: root}}
	ns := newNS(t)
	ns.must(t, "bash -s", mustGenerate(t, layout(""), opts).Format)

	d := layout(`, "swap": {"size": "100M", "content": {"type": "swap"}}`)
	p, err := Probe(ctx, c, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	local, err := Probe(ctx, ns, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(p) != fmt.Sprint(local) || len(p.Actions) != 1 || p.Actions[0].Action != "add-swap" {
		t.Fatalf("plan over SSH %+v, locally %+v; want one add-swap", p, local)
	}
	var log bytes.Buffer
	if _, err := Apply(ctx, c, d, opts, &log); err != nil {
		t.Fatalf("apply over SSH: %v\n%s", err, log.String())
	}
	t.Cleanup(func() { exec.Command("swapoff", dev+"p2").Run() })
	if p, err := Probe(ctx, c, d, opts); err != nil || len(p.Actions)+len(p.Refused) > 0 {
		t.Errorf("second plan over SSH is not empty: %v %+v", err, p)
	}
	if sig, _ := exec.Command("blkid", "-p", "-o", "value", "-s", "TYPE", dev+"p2").Output(); strings.TrimSpace(string(sig)) != "swap" {
		t.Errorf("partition 2 holds %q after the apply over SSH, want swap", sig)
	}
}
