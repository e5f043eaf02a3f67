package installvm

import (
	"archive/tar"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
