package testvm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestGuest boots ONE guest (boots cost ~10-20 s under TCG) and checks in it
// everything the disk-layout tests rely on, each as a subtest, then kexecs
// it into the same image and reconnects.
func TestGuest(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM; skipped in -short mode")
	}
	ctx, cancel := ContextT(t)
	defer cancel()
	img, err := Build(ctx, BuildOptions{Log: &testLog{t: t}})
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			t.Skipf("VM test skipped: %v", err)
		}
		t.Fatal(err)
	}
	vm := StartT(t, Options{
		Image:      img,
		Disks:      []DiskSpec{{Size: 1 * GiB}, {Size: 1 * GiB, Serial: "second"}},
		Shares:     []Share{{HostDir: img.Dir, GuestDir: "/run/testvm/image"}},
		ExtraFiles: []File{{GuestPath: "/etc/testvm/extra", Data: []byte("there before boot\n")}},
	})
	t.Logf("boot: %.1fs from qemu start to the first ssh command", vm.BootTime.Seconds())
	measureLatency(t, ctx, vm)

	run := func(t *testing.T, cmd string) string {
		t.Helper()
		out, _, err := vm.Run(ctx, cmd)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	// Later subtests use what earlier ones made; stop at the first failure.
	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"lsblk", func(t *testing.T) {
			var got lsblkJSON
			decode(t, run(t, "lsblk --json --bytes --nodeps -o NAME,SIZE,TYPE,SERIAL"), &got)
			want := []blockDev{
				{Name: "vda", Size: GiB, Type: "disk", Serial: "testvm0"},
				{Name: "vdb", Size: GiB, Type: "disk", Serial: "second"},
			}
			if !slices.EqualFunc(got.Blockdevices, want, blockDev.Equal) {
				t.Fatalf("lsblk: got %+v, want %+v", got.Blockdevices, want)
			}
		}},
		{"files and scripts", func(t *testing.T) {
			if got := run(t, "cat /etc/testvm/extra"); got != "there before boot\n" {
				t.Fatalf("ExtraFiles: /etc/testvm/extra = %q", got)
			}
			if err := vm.WriteFile(ctx, "/run/x/y/file", []byte("a'b\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			if got := run(t, "stat -c %a /run/x/y/file && cat /run/x/y/file"); got != "640\na'b\n" {
				t.Fatalf("WriteFile: got %q", got)
			}
			if err := vm.CopyIn(ctx, img.ClientKeyPath+".pub", "/run/x/key.pub", 0); err != nil {
				t.Fatal(err)
			}
			if got, err := vm.ReadFile(ctx, "/run/x/key.pub"); err != nil || !strings.HasPrefix(string(got), "ssh-ed25519 ") {
				t.Fatalf("CopyIn + ReadFile: %q, %v", got, err)
			}
			out, _, err := vm.RunScript(ctx, []byte("#!/bin/bash\nset -eu\necho \"$#:$1:$2\"\n"), "one arg", "it's")
			if err != nil || string(out) != "2:one arg:it's\n" {
				t.Fatalf("RunScript: %q, %v", out, err)
			}
			_, _, err = vm.Run(ctx, "echo oops >&2; exit 3")
			var ce *CommandError
			if !errors.As(err, &ce) || ce.ExitStatus != 3 || !strings.Contains(err.Error(), "oops") {
				t.Fatalf("failing command: %v, want exit status 3 with its stderr", err)
			}
		}},
		{"util-linux first on PATH", func(t *testing.T) {
			// busybox applets must not shadow util-linux (umount -R, findmnt, ...).
			got := strings.Fields(run(t, "for c in mount umount findmnt lsblk blkid losetup sh; do readlink -f $(command -v $c); done"))
			want := []string{"/usr/bin/mount", "/usr/bin/umount", "/usr/bin/findmnt", "/usr/bin/lsblk",
				"/usr/sbin/blkid", "/usr/sbin/losetup", "/usr/bin/bash"}
			if !slices.Equal(got, want) {
				t.Fatalf("commands resolve to %q, want %q", got, want)
			}
		}},
		{"partlabels via udev", func(t *testing.T) {
			run(t, "sgdisk -o -n1:0:+64M -t1:EF00 -c1:disk-main-ESP -n2:0:+256M -t2:8309 -c2:disk-main-luks "+
				"-n3:0:+256M -t3:8E00 -c3:disk-main-lvm -n4:0:+128M -t4:FD00 -c4:disk-main-md /dev/vda")
			run(t, "sgdisk -o -n1:0:+128M -t1:FD00 -c1:disk-second-md /dev/vdb")
			run(t, "udevadm settle --timeout=20")
			got := strings.Fields(run(t, "readlink -f /dev/disk/by-partlabel/disk-main-ESP /dev/disk/by-partlabel/disk-main-md /dev/disk/by-partlabel/disk-second-md /dev/disk/by-id/virtio-second-part1"))
			want := []string{"/dev/vda1", "/dev/vda4", "/dev/vdb1", "/dev/vdb1"}
			if !slices.Equal(got, want) {
				t.Fatalf("by-partlabel links resolve to %q, want %q", got, want)
			}
			var parts lsblkJSON
			decode(t, run(t, "lsblk --json -o NAME,PARTLABEL,PARTTYPE /dev/vda"), &parts)
			if n := len(parts.Blockdevices[0].Children); n != 4 {
				t.Fatalf("vda has %d partitions, want 4: %+v", n, parts)
			}
		}},
		{"vfat", func(t *testing.T) {
			run(t, "mkfs.vfat -F 32 -n ESP /dev/disk/by-partlabel/disk-main-ESP && mkdir -p /mnt/esp && "+
				"mount /dev/disk/by-partlabel/disk-main-ESP /mnt/esp && echo hello > /mnt/esp/x")
			var got struct {
				Filesystems []struct{ Target, Source, Fstype string }
			}
			decode(t, run(t, "findmnt --json /mnt/esp"), &got)
			run(t, "umount /mnt/esp")
			if len(got.Filesystems) != 1 || got.Filesystems[0].Fstype != "vfat" || got.Filesystems[0].Source != "/dev/vda1" {
				t.Fatalf("findmnt: %+v, want vfat from /dev/vda1", got)
			}
		}},
		{"luks", func(t *testing.T) {
			run(t, "printf secret > /run/key && cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 "+
				"--pbkdf-force-iterations 1000 /dev/disk/by-partlabel/disk-main-luks /run/key && "+
				"cryptsetup open --key-file /run/key /dev/disk/by-partlabel/disk-main-luks crypted")
			var got lsblkJSON
			decode(t, run(t, "lsblk --json -o NAME,TYPE /dev/vda2"), &got)
			if len(got.Blockdevices) != 1 || len(got.Blockdevices[0].Children) != 1 ||
				!got.Blockdevices[0].Children[0].Equal(blockDev{Name: "crypted", Type: "crypt"}) {
				t.Fatalf("lsblk /dev/vda2: %+v, want a crypt child named crypted", got)
			}
			run(t, "mkfs.ext4 -q /dev/mapper/crypted && cryptsetup close crypted")
		}},
		{"lvm", func(t *testing.T) {
			run(t, "pvcreate -q /dev/disk/by-partlabel/disk-main-lvm && vgcreate -q vg0 /dev/disk/by-partlabel/disk-main-lvm && "+
				"lvcreate -q -y -L 100M -n root vg0 && mkfs.ext4 -q /dev/vg0/root")
			var got struct {
				Report []struct {
					LV []struct {
						Name string `json:"lv_name"`
						VG   string `json:"vg_name"`
						Size string `json:"lv_size"`
					} `json:"lv"`
				} `json:"report"`
			}
			decode(t, run(t, "lvs --reportformat json --units m vg0"), &got)
			if len(got.Report) != 1 || len(got.Report[0].LV) != 1 || got.Report[0].LV[0].Name != "root" ||
				got.Report[0].LV[0].Size != "100.00m" {
				t.Fatalf("lvs: %+v, want vg0/root of 100m", got)
			}
			if link := strings.TrimSpace(run(t, "readlink -f /dev/vg0/root")); !strings.HasPrefix(link, "/dev/dm-") {
				t.Fatalf("/dev/vg0/root -> %q, want a dm device", link)
			}
			run(t, "vgchange -q -an vg0")
		}},
		{"mdadm raid1", func(t *testing.T) {
			devs := "/dev/disk/by-partlabel/disk-main-md /dev/disk/by-partlabel/disk-second-md"
			run(t, "mdadm --create /dev/md/r1 --run --level=1 --raid-devices=2 --metadata=1.2 --homehost=any "+devs+
				" && udevadm settle && mdadm --stop /dev/md/r1 && mdadm --assemble /dev/md/r1 "+devs)
			detail := parseExport(run(t, "mdadm --detail --export /dev/md/r1"))
			if detail["MD_LEVEL"] != "raid1" || detail["MD_DEVICES"] != "2" {
				t.Fatalf("mdadm --detail: %v, want a raid1 of 2 devices", detail)
			}
			var got lsblkJSON
			decode(t, run(t, "lsblk --json -o NAME,TYPE /dev/vdb1"), &got)
			if len(got.Blockdevices) != 1 || len(got.Blockdevices[0].Children) != 1 || got.Blockdevices[0].Children[0].Type != "raid1" {
				t.Fatalf("lsblk /dev/vdb1: %+v, want a raid1 child", got)
			}
			run(t, "mdadm --stop /dev/md/r1")
		}},
		{"kexec", func(t *testing.T) {
			if out := run(t, "kexec --version"); !strings.HasPrefix(out, "kexec-tools") {
				t.Fatalf("kexec --version: %q", out)
			}
			run(t, "kexec -l /run/testvm/image/vmlinuz --initrd=/run/testvm/image/initrd.img "+
				"--append=\"$(cat /proc/cmdline) testvm.kexeced=1\"")
			before := time.Now()
			// kexec -e never returns; start it detached so this command does.
			run(t, "setsid sh -c 'sleep 1; kexec -e' </dev/null >/dev/null 2>&1 &")
			if err := vm.Reconnect(ctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("kexec: guest answered again after %.1fs", time.Since(before).Seconds())
			if cmdline := run(t, "cat /proc/cmdline"); !strings.Contains(cmdline, "testvm.kexeced=1") {
				t.Fatalf("after kexec, /proc/cmdline = %q", cmdline)
			}
			if parts := run(t, "readlink -f /dev/disk/by-partlabel/disk-main-ESP"); strings.TrimSpace(parts) != "/dev/vda1" {
				t.Fatalf("after kexec, disk-main-ESP -> %q", parts)
			}
		}},
	}
	for _, s := range steps {
		start := time.Now()
		ok := t.Run(s.name, s.f)
		t.Logf("%-26s %.2fs", s.name, time.Since(start).Seconds())
		if !ok {
			break
		}
	}
}

// measureLatency reports the cost of a trivial guest command over the
// VM's persistent connection and, when OpenSSH is installed, with a new ssh
// process per command (what a shell-script harness would pay).
func measureLatency(t *testing.T, ctx context.Context, vm *VM) {
	const n = 10
	var d []time.Duration
	for range n {
		s := time.Now()
		if _, _, err := vm.Run(ctx, "true"); err != nil {
			t.Fatal(err)
		}
		d = append(d, time.Since(s))
	}
	slices.Sort(d)
	msg := fmt.Sprintf("latency of `true`: persistent connection median %v (min %v, max %v)",
		d[n/2].Round(time.Millisecond), d[0].Round(time.Millisecond), d[n-1].Round(time.Millisecond))
	if _, err := exec.LookPath("ssh"); err == nil {
		var p []time.Duration
		for range 3 {
			s := time.Now()
			cmd := exec.CommandContext(ctx, "ssh", append(vm.SSHArgs(), "root@127.0.0.1", "true")...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("ssh %s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
			}
			p = append(p, time.Since(s))
		}
		slices.Sort(p)
		msg += fmt.Sprintf("; new ssh process median %v (%.0fx slower)", p[1].Round(time.Millisecond),
			float64(p[1])/float64(d[n/2]))
	}
	t.Log(msg)
}

type lsblkJSON struct {
	Blockdevices []blockDev `json:"blockdevices"`
}

type blockDev struct {
	Name     string     `json:"name"`
	Size     int64      `json:"size,omitempty"`
	Type     string     `json:"type,omitempty"`
	Serial   string     `json:"serial,omitempty"`
	Children []blockDev `json:"children,omitempty"`
}

func (a blockDev) Equal(b blockDev) bool {
	return a.Name == b.Name && a.Size == b.Size && a.Type == b.Type && a.Serial == b.Serial && len(a.Children) == len(b.Children)
}

func decode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

// parseExport reads KEY=VALUE lines (mdadm --export, blkid -o export).
func parseExport(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestBuildCache checks that a second Build with the same packages is a
// cache hit, and how much faster it is than building.
func TestBuildCache(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 75 MB image; skipped in -short mode")
	}
	ctx, cancel := ContextT(t)
	defer cancel()
	dir := t.TempDir()
	start := time.Now()
	first, err := Build(ctx, BuildOptions{CacheDir: dir, Log: &testLog{t: t}})
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			t.Skipf("VM image build skipped: %v", err)
		}
		t.Fatal(err)
	}
	cold := time.Since(start)
	start = time.Now()
	second, err := Build(ctx, BuildOptions{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	hit := time.Since(start)
	t.Logf("build: cold %v, cache hit %v (%.0fx faster)", cold.Round(time.Millisecond), hit.Round(time.Millisecond),
		float64(cold)/float64(hit))
	if !first.Built || second.Built || second.Dir != first.Dir {
		t.Fatalf("first built=%v, second built=%v (%s vs %s): want a build, then a hit on the same entry",
			first.Built, second.Built, first.Dir, second.Dir)
	}
	if string(second.HostKey.Marshal()) != string(first.HostKey.Marshal()) {
		t.Fatal("the pinned host key changed between builds of the same entry")
	}
	// A ratio, not a bound in seconds: other load on the machine slows both.
	if hit*10 > cold {
		t.Errorf("cache hit took %v, not 10 times less than the build (%v)", hit, cold)
	}
}

// TestBootTimeout checks what a test sees when a guest does not come up: an
// error naming the wait, with the console's tail and a kept copy of it.
func TestBootTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("starts qemu; skipped in -short mode")
	}
	ctx, cancel := ContextT(t)
	defer cancel()
	dir := t.TempDir()
	_, err := Start(ctx, Options{BootTimeout: 2 * time.Second, Dir: dir, Accel: "tcg"})
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("VM test skipped: %v", err)
	}
	if err == nil {
		t.Fatal("a guest answered ssh within 2 s under TCG; want a timeout")
	}
	msg := err.Error()
	for _, want := range []string{"did not answer ssh", "boot timeout of 2s", "--- console"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	t.Log(msg)
}

// TestWaitOver checks when a boot wait gives up: at the limit when qemu had
// as much CPU time, else at three times the limit.
func TestWaitOver(t *testing.T) {
	for _, c := range []struct {
		wall, cpu time.Duration
		want      bool
	}{
		{59 * time.Second, 100 * time.Second, false},
		{60 * time.Second, 60 * time.Second, true},
		{60 * time.Second, 30 * time.Second, false}, // a starved qemu: wait on
		{179 * time.Second, 30 * time.Second, false},
		{180 * time.Second, 30 * time.Second, true},
	} {
		if got := waitOver(c.wall, c.cpu, time.Minute); got != c.want {
			t.Errorf("after %v with %v of CPU: over %v, want %v", c.wall, c.cpu, got, c.want)
		}
	}
}

// TestCPUClock checks that the clock reads a process's CPU time from /proc.
func TestCPUClock(t *testing.T) {
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	vm := &VM{cmd: cmd}
	c := vm.newCPUClock()
	deadline := time.Now().Add(20 * time.Second)
	for c.used() < 200*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("a busy loop used %v of CPU in 20 s", c.used())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
