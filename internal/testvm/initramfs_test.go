package testvm

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// kernelUnpack unpacks an initramfs image by the rules of Linux's
// init/initramfs.c (unpack_to_rootfs, write_buffer, flush_buffer) and
// returns the regular files it would create, by path. It fails where the
// kernel reports "Initramfs unpacking failed" and says why, in the kernel's
// words. The rules:
//   - the image is a sequence of members, back to back;
//   - a zero byte between members is skipped;
//   - a member that starts with '0' at a 4-byte aligned offset (of the whole
//     image) is an uncompressed newc cpio stream; any other byte starts a
//     compressed member, recognised by its magic, whose output is a newc
//     stream counted from its own start;
//   - in a newc stream every header starts 4-byte aligned, the name and the
//     data are padded to 4 bytes, and after each entry zeros are skipped but
//     must end at an aligned offset; TRAILER!!! ends nothing but hard links.
func kernelUnpack(img []byte) (map[string][]byte, error) {
	files := map[string][]byte{}
	for off := 0; off < len(img); {
		switch {
		case img[off] == '0' && off%4 == 0:
			n, err := newcStream(img[off:], off, false, files)
			if err != nil {
				return nil, fmt.Errorf("at byte %d: %w", off, err)
			}
			off += n
		case img[off] == 0:
			off++
		default:
			out, n, err := decompressMember(img[off:])
			if err != nil {
				return nil, fmt.Errorf("at byte %d: %w", off, err)
			}
			if _, err := newcStream(out, 0, true, files); err != nil {
				return nil, fmt.Errorf("in the compressed archive at byte %d: %w", off, err)
			}
			off += n
		}
	}
	return files, nil
}

// newcStream reads newc entries from b, whose first byte is at offset base
// of its stream, until a byte that is neither an entry nor zero padding,
// and returns how many bytes it read. In a compressed member such a byte is
// an error; at the top level it starts the next member.
func newcStream(b []byte, base int, compressed bool, files map[string][]byte) (int, error) {
	pos := 0
	for pos < len(b) && b[pos] == '0' {
		if len(b)-pos < 110 {
			return 0, errors.New("truncated cpio header")
		}
		h := b[pos : pos+110]
		if string(h[:6]) != "070701" && string(h[:6]) != "070702" {
			if string(h[:6]) == "070707" {
				return 0, errors.New("incorrect cpio method used: use -H newc option")
			}
			return 0, errors.New("no cpio magic")
		}
		field := func(i int) int {
			v, _ := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			return int(v)
		}
		mode, size, nameLen := field(1), field(6), field(11)
		nameStart := pos + 110
		dataStart := align4(uint32(base+nameStart+nameLen)) - base
		end := dataStart + size
		if nameLen < 1 || end > len(b) {
			return 0, errors.New("truncated cpio entry")
		}
		name := path.Clean(strings.TrimPrefix(string(b[nameStart:nameStart+nameLen-1]), "/"))
		if name != "TRAILER!!!" && mode&0o170000 == 0o100000 {
			files[name] = b[dataStart:end]
		}
		pos = min(align4(uint32(base+end))-base, len(b))
		for pos < len(b) && b[pos] == 0 {
			pos++
		}
		if pos < len(b) && (base+pos)%4 != 0 {
			return 0, errors.New("broken padding")
		}
	}
	if compressed && pos < len(b) {
		return 0, errors.New("junk within compressed archive")
	}
	return pos, nil
}

// decompressMember unpacks the compressed member at the start of b and
// returns its output and its length in b. Only gzip is implemented (what
// the rig writes); the other formats the kernel knows are named.
func decompressMember(b []byte) ([]byte, int, error) {
	magics := []struct{ magic, name string }{
		{"\x1f\x8b", "gzip"}, {"\x1f\x9e", "gzip"}, {"BZh", "bzip2"}, {"\x5d\x00\x00", "lzma"},
		{"\xfd7zXZ\x00", "xz"}, {"\x89LZO", "lzo"}, {"\x02\x21\x4c\x18", "lz4"}, {"\x28\xb5\x2f\xfd", "zstd"},
	}
	for _, m := range magics {
		if !bytes.HasPrefix(b, []byte(m.magic)) {
			continue
		}
		if m.name != "gzip" {
			return nil, 0, fmt.Errorf("a %s member: this parser reads only gzip", m.name)
		}
		// lib/decompress_inflate.c skips a 10-byte header and a file name;
		// any other optional field is read as compressed data.
		const fhcrc, fextra, fcomment = 0x02, 0x04, 0x10
		if len(b) < 10 || b[2] != 8 || b[3]&(fhcrc|fextra|fcomment) != 0 {
			return nil, 0, errors.New("uncompression error (a gzip header with more than a file name)")
		}
		r := bytes.NewReader(b) // an io.ByteReader: gzip reads no further than the member
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, 0, fmt.Errorf("decompressor failed: %w", err)
		}
		zr.Multistream(false)
		out, err := io.ReadAll(zr)
		if err != nil {
			return nil, 0, fmt.Errorf("decompressor failed: %w", err)
		}
		return out, len(b) - r.Len(), nil
	}
	return nil, 0, errors.New("invalid magic at start of compressed archive")
}

// gzipOfResidue is a gzip initrd holding files whose size is residue modulo
// 4 (a header file name of the right length shifts it).
func gzipOfResidue(t *testing.T, files map[string]string, residue int) []byte {
	t.Helper()
	tr := tree{}
	for p, c := range files {
		tr.addData(p, []byte(c), 0o644)
	}
	var archive bytes.Buffer
	if err := tr.writeCpio(&archive); err != nil {
		t.Fatal(err)
	}
	for name := "x"; ; name += "x" {
		z, err := gzipBytes(archive.Bytes(), name)
		if err != nil {
			t.Fatal(err)
		}
		if len(z)%4 == residue {
			return z
		}
	}
}

func newcArchive(t *testing.T, files map[string]string) []byte {
	t.Helper()
	tr := tree{}
	for p, c := range files {
		tr.addData(p, []byte(c), 0o400)
	}
	var b bytes.Buffer
	if err := tr.writeCpio(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestKernelUnpackRules checks the parser against what the kernel did to
// the demo (issue 12): a cpio appended right after a gzip initrd whose size
// is not a multiple of 4 is "invalid magic at start of compressed
// archive"; zero padding to the boundary makes it unpack.
func TestKernelUnpackRules(t *testing.T) {
	base := map[string]string{"/init": "stage 1"}
	secret := newcArchive(t, map[string]string{"/etc/secrets/initrd/secret.key": "k3y"})
	for residue := 0; residue < 4; residue++ {
		for _, padded := range []bool{false, true} {
			t.Run(fmt.Sprintf("size%%4=%d/padded=%v", residue, padded), func(t *testing.T) {
				img := gzipOfResidue(t, base, residue)
				if padded {
					img = append(img, make([]byte, (4-len(img)%4)%4)...)
				}
				img = append(img, secret...)
				files, err := kernelUnpack(img)
				if residue != 0 && !padded {
					if err == nil || !strings.Contains(err.Error(), "invalid magic at start of compressed archive") {
						t.Fatalf("want the kernel's invalid magic error, got %v", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if string(files["init"]) != "stage 1" || string(files["etc/secrets/initrd/secret.key"]) != "k3y" {
					t.Errorf("unpacked %q", files)
				}
			})
		}
	}
	// An uncompressed archive must be followed by an aligned member too.
	img := append(append(newcArchive(t, base), 0), gzipOfResidue(t, map[string]string{"/b": "b"}, 0)...)
	if _, err := kernelUnpack(img); err == nil || !strings.Contains(err.Error(), "broken padding") {
		t.Errorf("gzip member one byte after an archive: want broken padding, got %v", err)
	}
}

// TestStandInInitrdResidue checks that the stand-in's initrd needs the
// padding on every host (see initrdResidue).
func TestStandInInitrdResidue(t *testing.T) {
	for n := 0; n < 4; n++ {
		tr := tree{}
		tr.addData("/init", bytes.Repeat([]byte("x"), 1000+n*37), 0o755)
		out := filepath.Join(t.TempDir(), "initrd")
		if err := writeInitramfsGzip(tr, out); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(b)%4 != initrdResidue {
			t.Errorf("initrd of %d bytes: want %d mod 4", len(b), initrdResidue)
		}
		files, err := kernelUnpack(b)
		if err != nil || len(files["init"]) != 1000+n*37 {
			t.Errorf("unpacked: %v (%d files)", err, len(files))
		}
	}
}

// chrootRig is a directory to chroot into with the host's static busybox
// as every command, /dev/null and /dev/zero, and an empty tmpfs mounted on
// /boot in the private mount namespace the scripts run in.
type chrootRig struct{ root string }

func newChrootRig(t *testing.T) chrootRig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("chroot and mount namespaces need root")
	}
	for _, p := range []string{"unshare", "chroot", "/bin/busybox"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s: %v", p, err)
		}
	}
	root := t.TempDir()
	bin := filepath.Join(root, "sw/usr/bin")
	for _, d := range []string{bin, root + "/bin", root + "/tmp", root + "/boot", root + "/dev"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyFile("/bin/busybox", filepath.Join(bin, "busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			os.Symlink("busybox", filepath.Join(bin, a))
		}
	}
	os.Symlink("../sw/usr/bin/sh", filepath.Join(root, "bin/sh"))
	for _, d := range []struct{ name, minor string }{{"null", "3"}, {"zero", "5"}} {
		if out, err := exec.Command("mknod", "-m", "666", filepath.Join(root, "dev", d.name), "c", "1", d.minor).CombinedOutput(); err != nil {
			t.Fatalf("mknod: %v: %s", err, out)
		}
	}
	return chrootRig{root: root}
}

func (c chrootRig) write(t *testing.T, p string, data []byte, mode os.FileMode) {
	t.Helper()
	f := filepath.Join(c.root, p)
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, data, mode); err != nil {
		t.Fatal(err)
	}
}

// run runs argv in the chroot with /boot mounted, then copies the chroot's
// file keep (under /boot, which goes with the namespace) to keep's place
// in the host view, and returns the combined output.
func (c chrootRig) run(t *testing.T, keep string, argv ...string) (string, error) {
	t.Helper()
	script := `set -e; root=$1 keep=$2; shift 2
mount -t tmpfs tmpfs "$root/boot"
status=0; env -i PATH=/sw/usr/bin "$(command -v chroot)" "$root" "$@" || status=$?
if [ -n "$keep" ] && [ -e "$root$keep" ]; then mkdir -p "$root/kept"; cp "$root$keep" "$root/kept/"; fi
exit $status`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", c.root, keep}, argv...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestInitrdSecretsAppendAligned runs the stand-in's switch-to-configuration
// and the installer's kexec/run, the two scripts that append an archive to
// an initrd, against initrds of every size modulo 4, and checks that the
// result unpacks by the kernel's rules with both the old and the new files.
func TestInitrdSecretsAppendAligned(t *testing.T) {
	stc, err := guestFiles.ReadFile("guest/system/switch-to-configuration")
	if err != nil {
		t.Fatal(err)
	}
	stc = []byte(strings.NewReplacer("@out@", "/top", "@sw@", "/sw", "@boot@", "/boot-files").Replace(string(stc)))
	run, err := guestFiles.ReadFile("guest/kexec/run")
	if err != nil {
		t.Fatal(err)
	}
	run = bytes.ReplaceAll(run, []byte("@kernelParams@"), []byte(installerKernelParams))
	base := map[string]string{"/init": "stage 1", "/etc/stage-1.tab": "root /dev/pool/root ext4 defaults\n"}
	for residue := 0; residue < 4; residue++ {
		initrd := gzipOfResidue(t, base, residue)
		t.Run(fmt.Sprintf("switch-to-configuration/size%%4=%d", residue), func(t *testing.T) {
			c := newChrootRig(t)
			c.write(t, "top/bin/switch-to-configuration", stc, 0o755)
			c.write(t, "top/kernel-params", []byte("console=ttyS0\n"), 0o644)
			c.write(t, "top/initrd-secrets", []byte("/tmp/secret.key /etc/secrets/initrd/secret.key\n"), 0o644)
			c.write(t, "etc/secrets/initrd/secret.key", []byte("k3y\n"), 0o400)
			c.write(t, "boot-files/initrd", initrd, 0o444)
			c.write(t, "boot-files/kernel", []byte("kernel"), 0o444)
			c.write(t, "boot-files/systemd-bootx64.efi", []byte("efi"), 0o444)
			out, err := c.run(t, "/boot/EFI/nixos/top-initrd.efi", "/top/bin/switch-to-configuration", "boot")
			if err != nil {
				t.Fatalf("switch-to-configuration boot: %v\n%s", err, out)
			}
			checkUnpacks(t, filepath.Join(c.root, "kept/top-initrd.efi"), len(initrd), map[string]string{
				"init": "stage 1", "tmp/secret.key": "k3y\n"})
		})
		t.Run(fmt.Sprintf("kexec-run/size%%4=%d", residue), func(t *testing.T) {
			c := newChrootRig(t)
			c.write(t, "kexec/run", run, 0o755)
			c.write(t, "kexec/initrd", initrd, 0o644)
			c.write(t, "kexec/ip", []byte("#!/bin/sh\necho '[]'\n"), 0o755)
			// The load fails on purpose, after the append: nothing is kexec'd.
			c.write(t, "kexec/kexec", []byte("#!/bin/sh\nexit 1\n"), 0o755)
			os.Remove(filepath.Join(c.root, "sw/usr/bin/dmesg")) // run shows dmesg on failure: not this host's
			c.write(t, "sw/usr/bin/dmesg", []byte("#!/bin/sh\n"), 0o755)
			c.write(t, "root/.ssh/authorized_keys", []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDemo test\n"), 0o600)
			out, err := c.run(t, "", "/kexec/run")
			if err == nil || !strings.Contains(out, "kexec failed") {
				t.Fatalf("kexec/run with a failing kexec: %v\n%s", err, out)
			}
			checkUnpacks(t, filepath.Join(c.root, "kexec/initrd"), len(initrd), map[string]string{
				"init": "stage 1", "ssh/authorized_keys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDemo test\n"})
		})
	}
}

// checkUnpacks checks that the initrd file grew from baseLen and unpacks by
// the kernel's rules into at least the want files.
func checkUnpacks(t *testing.T, file string, baseLen int, want map[string]string) {
	t.Helper()
	img, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(img) <= baseLen {
		t.Fatalf("%s: %d bytes, nothing appended to the %d of the initrd", file, len(img), baseLen)
	}
	files, err := kernelUnpack(img)
	if err != nil {
		t.Fatalf("the kernel would fail to unpack the initrd (%d bytes appended at byte %d): %v", len(img)-baseLen, baseLen, err)
	}
	for p, c := range want {
		if got, ok := files[p]; !ok || string(got) != c {
			t.Errorf("%s: %q (present %v), want %q", p, got, ok, c)
		}
	}
}

// TestAppendArchive checks the ExtraFiles append (VM.prepareInitrd) after
// initrds of every size modulo 4.
func TestAppendArchive(t *testing.T) {
	for residue := 0; residue < 4; residue++ {
		base := gzipOfResidue(t, map[string]string{"/init": "stage 1"}, residue)
		f := filepath.Join(t.TempDir(), "initrd")
		if err := os.WriteFile(f, base, 0o644); err != nil {
			t.Fatal(err)
		}
		extra := tree{}
		extra.addData("/ssh/authorized_keys", []byte("key\n"), 0o600)
		if err := appendArchive(f, extra); err != nil {
			t.Fatal(err)
		}
		checkUnpacks(t, f, len(base), map[string]string{"init": "stage 1", "ssh/authorized_keys": "key\n"})
	}
}
