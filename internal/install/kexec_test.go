package install

import (
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/facts"
)

func TestDefaultKexecURL(t *testing.T) {
	for _, c := range []struct{ arch, want, err string }{
		{"x86_64", "https://github.com/nix-community/nixos-images/releases/download/nixos-25.11/nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz", ""},
		{"aarch64", "https://github.com/nix-community/nixos-images/releases/download/nixos-25.11/nixos-kexec-installer-noninteractive-aarch64-linux.tar.gz", ""},
		{"riscv64", "", "no default kexec image for riscv64"},
	} {
		got, err := DefaultKexecURL(c.arch)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("DefaultKexecURL(%s) = %q, %v; want %q, %q", c.arch, got, err, c.want, c.err)
		}
	}
}

func TestKexecMemoryNeeded(t *testing.T) {
	const MiB = 1 << 20
	for _, c := range []struct {
		size int64
		want uint64
	}{
		{0, 900 * MiB},                   // unknown size: the 1 GB floor
		{79 * MiB, 900 * MiB},            // the test installer
		{350 * MiB, (3*350 + 384) * MiB}, // nixos-images' 350 MB image: ~1.4 GiB, nixos-anywhere's "1.5 GB"
	} {
		if got := KexecMemoryNeeded(c.size); got != c.want {
			t.Errorf("KexecMemoryNeeded(%d MiB) = %d MiB, want %d MiB", c.size/MiB, got/MiB, c.want/MiB)
		}
	}
}

func TestKexecProblems(t *testing.T) {
	ok := func() *facts.Facts {
		return &facts.Facts{Kernel: "Linux", Arch: "x86_64", MemTotal: 2 << 30,
			Kexec: facts.Kexec{Supported: true, Lockdown: "none"},
			Tools: map[string]string{"tar": "/bin/tar", "cpio": "/bin/cpio", "gzip": "/bin/gzip"}}
	}
	tarball := kexecSource{local: "/tmp/k.tar.gz", size: 350 << 20}
	for _, c := range []struct {
		name  string
		edit  func(*facts.Facts)
		wants []string
	}{
		{"ready", func(*facts.Facts) {}, nil},
		{"container", func(f *facts.Facts) { f.Container = "lxc" }, []string{"lxc container, which cannot kexec"}},
		{"no kexec", func(f *facts.Facts) { f.Kexec.Supported = false }, []string{"no kexec support"}},
		{"lockdown", func(f *facts.Facts) { f.Kexec.Lockdown = "integrity" }, []string{"locked down (integrity"}},
		{"small", func(f *facts.Facts) { f.MemTotal = 1 << 30 }, []string{"has 1.0 GiB of RAM (MemTotal), but kexec into a 350.0 MiB tarball needs 1.4 GiB"}},
		{"tools", func(f *facts.Facts) { delete(f.Tools, "cpio"); delete(f.Tools, "tar") }, []string{"lacks tar, cpio"}},
		{"all at once", func(f *facts.Facts) { f.Container = "docker"; f.Kexec.Supported = false; f.MemTotal = 512 << 20 },
			[]string{"docker container", "no kexec support", "512.0 MiB of RAM"}},
	} {
		f := ok()
		c.edit(f)
		got := kexecProblems(f, tarball)
		if len(got) != len(c.wants) {
			t.Errorf("%s: %d problems %q, want %d", c.name, len(got), got, len(c.wants))
			continue
		}
		for i, w := range c.wants {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: problem %q does not say %q", c.name, got[i], w)
			}
		}
	}
}
