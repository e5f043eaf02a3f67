package installvm

import (
	"archive/tar"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

func TestKexecCmdline(t *testing.T) {
	for _, tc := range []struct{ name, run, want, err string }{
		{"the stand-in's variable", "kernel_params=\"console=ttyS0 panic=-1\"\n\"$dir/kexec\" --load \"$dir/bzImage\" \\\n\t--initrd=\"$dir/initrd\" --no-checks --command-line \"$kernel_params\"\n",
			"console=ttyS0 panic=-1", ""},
		{"nixos-images' literal line", "\"$SCRIPT_DIR/kexec\" --load \"$SCRIPT_DIR/bzImage\" \\\n  --initrd=\"$SCRIPT_DIR/initrd\" --no-checks \\\n  --command-line \"init=/nix/store/abc-nixos-system-nixos-kexec/init  loglevel=4\"\n",
			"init=/nix/store/abc-nixos-system-nixos-kexec/init loglevel=4", ""},
		{"braces", "p=\"quiet\"\nkexec --command-line \"init=/x ${p}\"\n", "init=/x quiet", ""},
		{"no command line", "kexec --load bzImage\n", "", "no --command-line"},
		{"unset variable", "kexec --command-line \"$params\"\n", "", "uses $params"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := kexecCmdline([]byte(tc.run))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("%q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestUnpack(t *testing.T) {
	dir := t.TempDir()
	tarball := filepath.Join(dir, "k.tar.gz")
	write := func(members map[string]string) {
		f, err := os.Create(tarball)
		if err != nil {
			t.Fatal(err)
		}
		zw := gzip.NewWriter(f)
		tw := tar.NewWriter(zw)
		for name, data := range members {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))})
			tw.Write([]byte(data))
		}
		tw.Close()
		zw.Close()
		f.Close()
	}
	write(map[string]string{"kexec/bzImage": "K", "./kexec/initrd": "I", "kexec/run": "R", "kexec/ip": "x"})
	kernel, initrd, run, err := unpack(tarball, filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{kernel: "K", initrd: "I"} {
		if b, _ := os.ReadFile(p); string(b) != want {
			t.Errorf("%s holds %q, want %q", p, b, want)
		}
	}
	if string(run) != "R" {
		t.Errorf("run = %q", run)
	}
	write(map[string]string{"kexec/bzImage": "K", "kexec/run": "R"})
	if _, _, _, err := unpack(tarball, filepath.Join(dir, "out2")); err == nil || !strings.Contains(err.Error(), "no kexec/initrd") {
		t.Errorf("a tarball without an initrd: %v", err)
	}
	os.WriteFile(tarball, []byte("not gzip"), 0o644)
	if _, _, _, err := unpack(tarball, filepath.Join(dir, "out3")); err == nil || !strings.Contains(err.Error(), "not a .tar.gz") {
		t.Errorf("not a tarball: %v", err)
	}
}

// TestKernelArch: the VM's architecture comes from the installer kernel's header.
func TestKernelArch(t *testing.T) {
	dir := t.TempDir()
	image := func(at int, magic string) []byte {
		b := make([]byte, 0x400)
		copy(b[at:], magic)
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"x86 bzImage", image(0x202, "HdrS"), testvm.ArchX86_64},
		{"arm64 Image", image(0x38, "ARM\x64"), testvm.ArchAarch64},
		{"something else", image(0, "\x7fELF"), ""},
		{"too short", []byte("MZ"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := kernelArch(p)
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), "neither an x86 bzImage nor an arm64 Image") {
					t.Fatalf("%q, %v; want an error", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("%q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if vmlinuz, _ := filepath.Glob("/boot/vmlinuz-*"); len(vmlinuz) > 0 {
		if got, err := kernelArch(vmlinuz[0]); err != nil || got != testvm.HostArch() {
			t.Errorf("this machine's kernel %s: %q, %v; want %s", vmlinuz[0], got, err, testvm.HostArch())
		}
	}
}
