package testvm

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallerTarball builds the installer and checks the tarball without
// a VM (internal/e2e kexecs into it): the nixos-images layout, a run script
// that sh parses, and bundled kexec and ip that run through their own
// loader and libraries.
func TestInstallerTarball(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the installer image; skipped in -short mode")
	}
	ctx, cancel := ContextT(t)
	defer cancel()
	inst, err := BuildInstaller(ctx, BuildOptions{Log: &testLog{t: t}})
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("VM test skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(inst.Tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tr := tar.NewReader(zr)
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[hdr.Name] = true
		if hdr.Typeflag != tar.TypeReg || strings.HasSuffix(hdr.Name, "initrd") || strings.HasSuffix(hdr.Name, "bzImage") {
			continue
		}
		p := filepath.Join(dir, hdr.Name)
		b, err := io.ReadAll(tr)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(p), 0o755)
		}
		if err == nil {
			err = os.WriteFile(p, b, os.FileMode(hdr.Mode))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"kexec/run", "kexec/kexec", "kexec/bzImage", "kexec/initrd", "kexec/ip", "kexec/lib/ld-linux-x86-64.so.2"} {
		if !seen[want] {
			t.Errorf("the tarball has no %s", want)
		}
	}
	run, err := os.ReadFile(filepath.Join(dir, "kexec/run"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(run), "@kernelParams@") || !strings.Contains(string(run), "machine will boot into nixos") {
		t.Errorf("kexec/run: parameters not substituted or no announcement")
	}
	for _, c := range [][]string{
		{"sh", "-n", filepath.Join(dir, "kexec/run")},
		{filepath.Join(dir, "kexec/kexec"), "--version"},
		{filepath.Join(dir, "kexec/ip"), "-json", "link", "show", "lo"},
	} {
		if out, err := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
}
