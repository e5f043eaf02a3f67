package testvm

import (
	"archive/tar"
	"bytes"
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
// loader and libraries. kexec/initrd is the image's initramfs as one zstd
// frame, and the gzip layer only stores (a compressed-looking tarball that
// the guest unpacks without inflating).
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
	var payload int64 // bytes in the members: a stored gzip is larger
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[hdr.Name] = true
		payload += hdr.Size
		if hdr.Name == "kexec/initrd" {
			checkZstdInitrd(t, tr, inst.Image.Initrd)
			continue
		}
		if hdr.Typeflag != tar.TypeReg || strings.HasSuffix(hdr.Name, "bzImage") {
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
	if st, err := f.Stat(); err != nil || st.Size() < payload {
		t.Errorf("the tarball (%v) is smaller than the %d bytes of its members: its gzip layer compresses (%v)", st, payload, err)
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

// checkZstdInitrd checks that the tarball's initrd r is zstd and decompresses
// to the image's initramfs.
func checkZstdInitrd(t *testing.T, r io.Reader, want string) {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x28\xb5\x2f\xfd")) {
		t.Fatalf("kexec/initrd starts with %x, not the zstd magic", b[:min(4, len(b))])
	}
	cmd := exec.Command("zstd", "-dcq")
	cmd.Stdin = bytes.NewReader(b)
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("zstd -d of kexec/initrd: %v", err)
	}
	img, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, img) {
		t.Errorf("kexec/initrd decompresses to %d bytes that are not the image's initramfs (%d bytes)", len(got), len(img))
	}
}
