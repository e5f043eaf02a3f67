package codegen

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// preflightDisks is the preflight tests' layout: disk a is fine in every case, disk b is where
// a precondition fails.
func preflightDisks(a, b string) string {
	return fmt.Sprintf(`{"disk": {
  "a": {"device": %q, "content": {"type": "gpt", "partitions": {
    "ESP": {"size": "32M", "type": "EF00", "content": {"type": "filesystem", "format": "vfat"}},
    "root": {"size": "100%%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}},
  "b": {"device": %q, "content": {"type": "gpt", "partitions": {
    "data": {"size": "320M", "content": {"type": "filesystem", "format": "xfs", "mountpoint": "/data"}},
    "rest": {"size": "100%%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/rest"}}}}}}}`, a, b)
}

// ends is what a format writes first on a disk: sha256 of its first and its last MiB
// (protective MBR, both GPTs, the superblocks at the start of the first partition).
func ends(t *testing.T, dev string) string {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		t.Fatal(err)
	}
	var sums []string
	for _, off := range []int64{0, size - mib} {
		buf := make([]byte, mib)
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		sums = append(sums, fmt.Sprintf("%x", sha256.Sum256(buf)))
	}
	return strings.Join(sums, " ")
}

// withoutTool is a PATH directory with every program the scripts run, and bash, except
// tool.
func withoutTool(t *testing.T, s *Scripts, tool string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range append(s.Tools, "bash") {
		if name == tool {
			continue
		}
		p, err := exec.LookPath(name)
		if err != nil {
			continue // one the script only runs after checking for it (zpool)
		}
		if err := os.Symlink(p, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLoopAllOrNothing formats two loop disks where a precondition fails on the second
// one only: too small, foreign data on it, a missing disk, a mkfs missing from PATH. The
// format must stop before it writes anything: both disks keep every byte of their first
// and last MiB, the exit status is not 0, and the message says what is wrong in the
// layout's terms. Then, with nothing wrong, the same format succeeds.
func TestLoopAllOrNothing(t *testing.T) {
	requireRoot(t, "mkfs.ext4", "mkfs.xfs", "mkfs.vfat")
	cases := []struct {
		name   string
		sizeB  int64
		prep   func(t *testing.T, b string)
		layout func(a, b string) string
		path   func(t *testing.T, s *Scripts) string
		want   []string
	}{
		{name: "too-small", sizeB: 64 << 20,
			want: []string{"disko.devices.disk.b: {b} is 64 MiB, the layout needs at least 322 MiB (data 320M + rest the rest)"}},
		{name: "foreign-data", sizeB: 400 << 20,
			prep: func(t *testing.T, b string) {
				if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "precious", b).CombinedOutput(); err != nil {
					t.Fatalf("mkfs.ext4: %v\n%s", err, out)
				}
			},
			want: []string{"refusing to create a GPT partition table on {b} (disko.devices.disk.b.content)", "LABEL=precious"}},
		{name: "missing-disk", sizeB: 400 << 20,
			layout: func(a, b string) string { return preflightDisks(a, "/dev/disk/by-id/disko-test-missing") },
			want:   []string{"disko.devices.disk.b: /dev/disk/by-id/disko-test-missing does not exist (waited 1s"}},
		{name: "missing-mkfs", sizeB: 400 << 20,
			path: func(t *testing.T, s *Scripts) string { return withoutTool(t, s, "mkfs.xfs") },
			want: []string{"mkfs.xfs is not on PATH (Debian package xfsprogs, nixpkgs xfsprogs)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := newLoop(t, 256<<20), newLoop(t, c.sizeB)
			if c.prep != nil {
				c.prep(t, b)
			}
			text := preflightDisks(a, b)
			if c.layout != nil {
				text = c.layout(a, b)
			}
			d, err := config.Load([]byte(text), config.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ns := newNamespace(t)
			s, err := Generate(d, Options{RootMountpoint: ns.root})
			if err != nil {
				t.Fatal(err)
			}
			env := []string{"DISKO_DEVICE_TIMEOUT=1"}
			if c.path != nil {
				env = append(env, "PATH="+c.path(t, s))
			}
			f := filepath.Join(t.TempDir(), "format.sh")
			if err := os.WriteFile(f, s.Format, 0o700); err != nil {
				t.Fatal(err)
			}
			beforeA, beforeB := ends(t, a), ends(t, b)
			out, err := ns.run(env, "bash", f)
			if err == nil {
				t.Fatalf("the format succeeded:\n%s", out)
			}
			for _, w := range append(c.want, "nothing was written on any disk") {
				if w = strings.ReplaceAll(w, "{b}", b); !strings.Contains(out, w) {
					t.Errorf("the output lacks %q:\n%s", w, out)
				}
			}
			if ends(t, a) != beforeA || ends(t, b) != beforeB {
				t.Errorf("a disk changed although a precondition failed:\n%s", out)
			}
			if strings.Contains(out, "writing a GPT") {
				t.Errorf("the format began writing:\n%s", out)
			}
		})
	}
	t.Run("all-hold", func(t *testing.T) {
		a, b := newLoop(t, 256<<20), newLoop(t, 400<<20)
		ns := newNamespace(t)
		s, err := Generate(layout(t, preflightDisks(a, b), a, b), Options{RootMountpoint: ns.root})
		if err != nil {
			t.Fatal(err)
		}
		ns.mustScript(t, "format", s.Format)
		if got := probe(t, b); !strings.Contains(got, "PTTYPE=gpt") {
			t.Errorf("disk b holds no GPT after the format:\n%s", got)
		}
	})
}
