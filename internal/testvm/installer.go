package testvm

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Installer is a kexec installer tarball in the layout of nix-community/
// nixos-images (kexec/{run,kexec,bzImage,initrd,ip}), made from Debian
// packages: NixOS itself cannot be built here, and `anywhere` must be
// proven against the real format. Its system is the test guest's plus Nix
// (Debian's nix-bin), ssh-keygen and iproute2; it says it is a NixOS
// installer (os-release ID=nixos, VARIANT_ID=installer, /etc/is_kexec).
//
// kexec/run does what nixos-images' run does: it carries root's authorized
// keys, the host keys, the network configuration (`ip -json addr/route`)
// and the machine id into the installer by appending a cpio archive to
// kexec/initrd, loads the kernel and runs `kexec -e` 6 s later, detached.
// The installer restores them at boot (guest/installer/etc/testvm), so it
// answers on the same address with the same host key. kexec and ip are
// Debian's binaries with their libraries in kexec/lib, run through the
// bundled dynamic loader, so the tarball works on any x86_64 Linux.
//
// kexec/initrd is the image's initramfs compressed once with zstd, as a
// real NixOS initrd is (run's gzip archive is appended after the zstd
// frame), and the tarball's gzip layer only stores: under TCG, inflating a
// gzip -1 tarball of the plain initramfs (76 MB) plus kexec's load took 27 s
// in the guest, longer than its upload. zstd -9 makes the initrd 49 MB
// (gzip -1: 65 MB), so the upload shrinks too, and the kernel unpacks it at
// boot with its fast zstd decoder (host: 0.4 s, against 2.3 s for gunzip).
type Installer struct {
	Tarball string // the .tar.gz
	Image   *Image // its kernel and initrd (no SSH keys are baked in)
}

// InstallerTarballName is the file name nixos-images' releases use.
const InstallerTarballName = "nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz"

// installerKernelParams is the installer's kernel command line (the test
// guest's, so the rig's console markers and modules work the same).
const installerKernelParams = "console=ttyS0 panic=-1 quiet loglevel=4 no_timer_check"

var installerFlavor = flavor{
	name:     "installer",
	overlays: []string{"guest/rootfs", "guest/installer"},
	hashed:   []string{"guest/kexec"},
	packages: []string{"nix-bin", "openssh-client", "iproute2", "jq"},
	finish:   writeKexecTarball,
}

// BuildInstaller returns the kexec installer tarball for the packages
// installed on this machine, from the cache when it has one (a build takes
// ~10-20 s). opts.ExtraPackages adds more host packages to the installer.
func BuildInstaller(ctx context.Context, opts BuildOptions) (*Installer, error) {
	img, err := buildFlavor(ctx, opts, installerFlavor)
	if err != nil {
		return nil, err
	}
	return &Installer{Tarball: filepath.Join(img.Dir, InstallerTarballName), Image: img}, nil
}

// writeKexecTarball packs the kernel, the initramfs, run and the bundled
// kexec and ip into dir/InstallerTarballName.
func writeKexecTarball(ctx context.Context, dir, cacheDir string, in *inputs, logw io.Writer) error {
	kexecBin, libDirs, err := kexecBinary(ctx, cacheDir, in.kexecDownload, logw)
	if err != nil {
		return err
	}
	ipBin := "/bin/ip"
	if _, err := os.Stat(ipBin); err != nil {
		return &MissingError{What: "iproute2's ip", Packages: []string{"iproute2"}}
	}
	libs, err := sharedLibraries(ctx, []string{kexecBin, ipBin}, libDirs)
	if err != nil {
		return err
	}
	initrd := filepath.Join(dir, "initrd.zst")
	if err := compressInitrd(ctx, filepath.Join(dir, "initrd.img"), initrd); err != nil {
		return err
	}
	defer os.Remove(initrd)
	run, err := guestFiles.ReadFile("guest/kexec/run")
	if err != nil {
		return err
	}
	run = []byte(strings.ReplaceAll(string(run), "@kernelParams@", installerKernelParams))
	wrapper := func(name string) []byte {
		b, _ := guestFiles.ReadFile("guest/kexec/" + name)
		return b
	}
	type member struct {
		name string
		host string // file to copy, or
		data []byte
		mode int64
	}
	members := []member{
		{name: "kexec/run", data: run, mode: 0o755},
		{name: "kexec/kexec", data: wrapper("kexec"), mode: 0o755},
		{name: "kexec/ip", data: wrapper("ip"), mode: 0o755},
		{name: "kexec/bzImage", host: filepath.Join(dir, "vmlinuz"), mode: 0o644},
		{name: "kexec/initrd", host: initrd, mode: 0o644},
		{name: "kexec/libexec/kexec", host: kexecBin, mode: 0o755},
		{name: "kexec/libexec/ip", host: ipBin, mode: 0o755},
	}
	var names []string
	for l := range libs {
		names = append(names, l)
	}
	slices.Sort(names)
	for _, l := range names {
		real, err := filepath.EvalSymlinks(l)
		if err != nil {
			return err
		}
		members = append(members, member{name: "kexec/lib/" + filepath.Base(l), host: real, mode: 0o755})
	}

	out := filepath.Join(dir, InstallerTarballName)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, gzip.NoCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	mtime := time.Unix(0, 0)
	dirs := map[string]bool{}
	for _, m := range members {
		for _, d := range []string{"kexec/", filepath.Dir(m.name) + "/"} {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		var r io.Reader
		size := int64(len(m.data))
		if m.host != "" {
			hf, err := os.Open(m.host)
			if err != nil {
				return err
			}
			defer hf.Close()
			st, err := hf.Stat()
			if err != nil {
				return err
			}
			r, size = hf, st.Size()
		} else {
			r = strings.NewReader(string(m.data))
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: m.name, Mode: m.mode, Size: size, ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if n, err := io.Copy(tw, io.LimitReader(r, size)); err != nil || n != size {
			return fmt.Errorf("tarball member %s: %d of %d bytes: %v", m.name, n, size, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// compressInitrd writes the uncompressed cpio in as one zstd frame to out.
// Level 9 packs 150 MB in ~5 s on two cores; higher levels cost far more
// build time for little less upload. No long-distance matching: the
// kernel's decompressor limits the window size.
func compressInitrd(ctx context.Context, in, out string) error {
	if _, err := exec.LookPath("zstd"); err != nil {
		return &MissingError{What: "zstd (compresses the installer's initrd)", Packages: []string{"zstd"}}
	}
	cmd := exec.CommandContext(ctx, "zstd", "-q", "-f", "-9", "-T0", "-o", out, in)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("zstd %s: %v: %s", in, err, b)
	}
	return nil
}
