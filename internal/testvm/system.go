package testvm

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// A stand-in NixOS system: NixOS cannot be built here (no nixpkgs), so the
// end-to-end tests install this instead. It is a real Nix closure, built
// with Debian's Nix, shaped like a NixOS toplevel (init, bin/switch-to-
// configuration, kernel, initrd, system, nixos-version) and it boots:
//
//   - `switch-to-configuration boot` installs systemd-boot onto the ESP
//     mounted at /boot, with the kernel, the initrd (boot.initrd.secrets
//     appended from the installed root) and a loader entry;
//   - its initrd (stage 1) opens the layout's LUKS devices with their key
//     files, activates LVM, mounts / and starts the toplevel's init;
//   - its init (stage 2) links /run/current-system, /etc and /usr into the
//     store, mounts the other file systems, takes a DHCP lease and runs
//     sshd with the host keys installed for it (--copy-host-keys or
//     --extra-files).
//
// What to mount and unlock comes from the NixOS configuration that
// `disko-compile nixos-config` writes for the layout, as a NixOS system
// built with the disko module would.

// SystemOptions describe a stand-in system.
type SystemOptions struct {
	// NixOSConfig is `disko-compile nixos-config` output for the layout:
	// boot.initrd.luks.devices, boot.initrd.kernelModules, fileSystems,
	// swapDevices (JSON).
	NixOSConfig []byte
	Hostname    string // default "demo"
	// AuthorizedKeys are root's SSH keys (users.users.root.openssh.
	// authorizedKeys.keys), authorized_keys lines.
	AuthorizedKeys []string
	// InitrdSecrets maps a path in the initrd to the file on the installed
	// system it is copied from when the boot loader is installed (NixOS'
	// boot.initrd.secrets), e.g. a LUKS keyFile.
	InitrdSecrets map[string]string
	// DiskoScript is the layout's compiled destroy,format,mount script
	// (`disko-compile script destroy,format,mount`); it becomes a store path
	// that runs it without asking, as system.build.diskoScript does.
	DiskoScript []byte

	CacheDir string    // default DefaultCacheDir()
	Log      io.Writer // progress; nil discards
}

// System is a built stand-in system.
type System struct {
	Toplevel    string // /nix/store/…-nixos-system-…
	DiskoScript string // /nix/store/…-disko, when SystemOptions.DiskoScript was set
	Built       bool   // false when it came from the cache
	// Source is the directory the system was built from (default.nix, whose
	// toplevel and diskoScript attributes are the derivations, and their
	// inputs), kept in the cache: a flake that imports a copy of it builds the
	// same store paths, as a real NixOS configuration's flake would.
	Source string `json:"-"`
}

// systemModules are loaded by stage 1: the disks, the network, dm-crypt
// and its ciphers (cryptsetup reads LUKS2 keyslots through AF_ALG), and
// what the file systems need; more come from the layout.
var systemModules = []string{
	"virtio_pci", "virtio_blk", "virtio_net", "virtio_rng",
	"dm_mod", "dm_crypt", "aesni_intel", "xts", "sha256_generic", "crc32c_intel",
	"af_alg", "algif_skcipher", "algif_hash",
	"ext4", "vfat", "nls_cp437", "nls_ascii", "nls_utf8", "nls_iso8859_1",
}

// systemPrograms are the dynamically linked programs of the system's
// userland (busybox provides everything else), by host path.
var systemPrograms = []string{"/usr/sbin/sshd", "/usr/bin/ssh-keygen", "/usr/lib/openssh/sftp-server", "/usr/bin/findmnt", "/usr/bin/lsblk"}

// stage1Programs are what stage 1 runs besides busybox.
var stage1Programs = []string{"/usr/sbin/cryptsetup", "/usr/sbin/lvm"}

// systemPackages provide them; their versions are part of the cache key.
var systemPackages = []string{"busybox-static", "openssh-server", "openssh-client", "openssh-sftp-server", "util-linux",
	"cryptsetup-bin", "lvm2", "systemd-boot-efi", "nix-bin"}

const systemdBootEFI = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"

// nixosConfig is the part of a NixOS configuration the stand-in follows.
type nixosConfig struct {
	Boot struct {
		Initrd struct {
			KernelModules []string `json:"kernelModules"`
			Luks          struct {
				Devices map[string]struct {
					Device        string `json:"device"`
					KeyFile       string `json:"keyFile"`
					AllowDiscards bool   `json:"allowDiscards"`
				} `json:"devices"`
			} `json:"luks"`
		} `json:"initrd"`
	} `json:"boot"`
	FileSystems map[string]struct {
		Device  string   `json:"device"`
		FSType  string   `json:"fsType"`
		Options []string `json:"options"`
	} `json:"fileSystems"`
	SwapDevices []struct {
		Device string `json:"device"`
	} `json:"swapDevices"`
}

// BuildSystem builds the stand-in system (or finds it cached: the inputs'
// hash names the cache entry, and the store path is checked to exist).
func BuildSystem(ctx context.Context, o SystemOptions) (*System, error) {
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	if o.Hostname == "" {
		o.Hostname = "demo"
	}
	var cfg nixosConfig
	if err := json.Unmarshal(o.NixOSConfig, &cfg); err != nil {
		return nil, fmt.Errorf("testvm: stand-in system: the NixOS configuration: %w", err)
	}
	if _, ok := cfg.FileSystems["/"]; !ok {
		return nil, errors.New("testvm: stand-in system: the layout has no file system for /")
	}
	for name, d := range cfg.Boot.Initrd.Luks.Devices {
		if d.KeyFile == "" {
			return nil, fmt.Errorf("testvm: stand-in system: LUKS device %s has no keyFile; the stand-in opens LUKS with key files only", name)
		}
	}
	if _, err := exec.LookPath("nix-build"); err != nil {
		return nil, &MissingError{What: "nix-build", Packages: []string{"nix-bin"}}
	}
	rel, vmlinuz, kpkg, err := findKernel(ctx)
	if err != nil {
		return nil, err
	}
	versions, err := installedVersions(ctx, append([]string{kpkg}, systemPackages...))
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, p := range systemPackages {
		if versions[p] == "" {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return nil, &MissingError{What: "the stand-in system's packages " + strings.Join(missing, ", "), Packages: missing}
	}

	h := sha256.New()
	if err := hashRecipe(ctx, h); err != nil {
		return nil, err
	}
	fmt.Fprintf(h, "system\nkernel %s\n", rel)
	for _, k := range slices.Sorted(maps.Keys(versions)) {
		fmt.Fprintf(h, "pkg %s %s\n", k, versions[k])
	}
	opts, _ := json.Marshal(struct {
		Config  nixosConfig
		Host    string
		Keys    []string
		Secrets map[string]string
		Mods    []string
		Progs   []string
		Disko   []byte
	}{cfg, o.Hostname, o.AuthorizedKeys, o.InitrdSecrets, systemModules, append(slices.Clone(systemPrograms), stage1Programs...), o.DiskoScript})
	h.Write(opts)
	if err := hashEmbedded(h, "guest/system"); err != nil {
		return nil, err
	}
	key := hex.EncodeToString(h.Sum(nil))

	cacheDir := o.CacheDir
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("testvm: cache dir %s: %w", cacheDir, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(cacheDir, "lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	dir := filepath.Join(cacheDir, "system-"+key[:16])
	if b, err := os.ReadFile(filepath.Join(dir, "result")); err == nil {
		var sys System
		if json.Unmarshal(b, &sys) == nil && statOK(sys.Toplevel) && (sys.DiskoScript == "" || statOK(sys.DiskoScript)) {
			sys.Source = dir
			now := time.Now()
			os.Chtimes(filepath.Join(dir, "result"), now, now)
			return &sys, nil
		}
	}

	start := time.Now()
	fmt.Fprintf(logw, "testvm: building the stand-in system %s\n", key[:16])
	os.RemoveAll(dir)
	tmp, err := os.MkdirTemp(cacheDir, "build-system-")
	if err != nil {
		return nil, fmt.Errorf("testvm: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := writeSystemSources(ctx, tmp, rel, vmlinuz, &cfg, o); err != nil {
		return nil, fmt.Errorf("testvm: stand-in system: %w", err)
	}
	args := []string{"--no-out-link", filepath.Join(tmp, "default.nix"), "-A", "toplevel"}
	if o.DiskoScript != nil {
		args = append(args, "-A", "diskoScript")
	}
	cmd := exec.CommandContext(ctx, "nix-build", args...)
	// Root without nixbld users (a fresh Debian): build as root.
	cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =\nbuild-users-group =\nexperimental-features = nix-command flakes")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("testvm: stand-in system: nix-build: %w", err)
	}
	paths := strings.Fields(string(out))
	sys := &System{Built: true}
	if len(paths) > 0 {
		sys.Toplevel = paths[0]
	}
	if len(paths) > 1 {
		sys.DiskoScript = paths[1]
	}
	res, _ := json.Marshal(sys)
	if err := os.WriteFile(filepath.Join(tmp, "result"), res, 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("testvm: publish %s: %w", dir, err)
	}
	sys.Source = dir
	fmt.Fprintf(logw, "testvm: built the stand-in system %s in %.1fs\n", sys.Toplevel, time.Since(start).Seconds())
	return sys, nil
}

func statOK(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// writeSystemSources writes the inputs of the toplevel's derivation into
// dir: sw/ (the userland), boot/ (kernel, initrd, systemd-boot), files/
// (scripts and /etc) and default.nix.
func writeSystemSources(ctx context.Context, dir, rel, vmlinuz string, cfg *nixosConfig, o SystemOptions) error {
	// The userland, in the store: busybox, sshd, findmnt, … with libraries.
	sw := tree{}
	sw.addFile("/usr/bin/busybox", "/bin/busybox", 0o755)
	if err := addPrograms(ctx, sw, systemPrograms); err != nil {
		return err
	}
	if err := addBusybox(ctx, sw); err != nil {
		return err
	}
	sw.addSymlink("/usr/bin/sh", "busybox")
	if err := sw.writeDir(filepath.Join(dir, "sw")); err != nil {
		return err
	}

	// Stage 1.
	s1 := tree{}
	s1.addFile("/usr/bin/busybox", "/bin/busybox", 0o755)
	if err := addPrograms(ctx, s1, stage1Programs); err != nil {
		return err
	}
	if err := addBusybox(ctx, s1); err != nil {
		return err
	}
	for _, d := range []string{"bin", "sbin", "lib", "lib64"} {
		s1.addSymlink("/"+d, "usr/"+d)
	}
	s1.addSymlink("/usr/bin/sh", "busybox")
	init, err := guestFiles.ReadFile("guest/system/stage-1-init")
	if err != nil {
		return err
	}
	s1.addData("/init", init, 0o755)
	s1[("/dev/console")] = &entry{kind: kindCharDev, mode: 0o600, major: 5, minor: 1}
	for _, d := range []string{"/dev", "/proc", "/sys", "/run", "/tmp", "/sysroot"} {
		s1.addDir(d, 0o755)
	}
	s1.addData("/etc/lvm/lvm.conf", []byte("global { use_lvmpolld = 0 }\ndevices { obtain_device_list_from_udev = 0 }\n"+
		"activation {\n\tudev_sync = 0\n\tudev_rules = 0\n\tmonitoring = 0\n}\n"), 0o644)
	mods := slices.Clone(systemModules)
	for _, fs := range cfg.FileSystems {
		if m := fsModule(fs.FSType); m != "" && !slices.Contains(mods, m) {
			mods = append(mods, m)
		}
	}
	mods = append(mods, cfg.Boot.Initrd.KernelModules...)
	if err := addModules(ctx, s1, rel, dir, mods); err != nil {
		return err
	}
	order, err := moduleLoadOrder(ctx, rel, mods)
	if err != nil {
		return err
	}
	var tab strings.Builder
	for _, m := range order {
		fmt.Fprintf(&tab, "module %s\n", guestPath(m))
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Boot.Initrd.Luks.Devices)) {
		d := cfg.Boot.Initrd.Luks.Devices[name]
		discard := 0
		if d.AllowDiscards {
			discard = 1
		}
		fmt.Fprintf(&tab, "luks %s %s %s %d\n", name, d.Device, d.KeyFile, discard)
	}
	root := cfg.FileSystems["/"]
	fmt.Fprintf(&tab, "root %s %s %s\n", root.Device, root.FSType, mountOptions(root.Options))
	s1.addData("/etc/stage-1.tab", []byte(tab.String()), 0o644)

	bootDir := filepath.Join(dir, "boot")
	if err := os.MkdirAll(bootDir, 0o755); err != nil {
		return err
	}
	// Compressed: the firmware reads it from the ESP and the install copies
	// it, both slower per byte than the kernel's gunzip.
	if err := writeInitramfsGzip(s1, filepath.Join(bootDir, "initrd")); err != nil {
		return err
	}
	if err := copyFile(vmlinuz, filepath.Join(bootDir, "kernel"), 0o644); err != nil {
		return err
	}
	if err := copyFile(systemdBootEFI, filepath.Join(bootDir, "systemd-bootx64.efi"), 0o644); err != nil {
		return err
	}

	// Scripts and /etc.
	files := tree{}
	if err := addEmbedded(files, "guest/system"); err != nil {
		return err
	}
	delete(files, "/stage-1-init")
	files.addData("/etc/hostname", []byte(o.Hostname+"\n"), 0o644)
	files.addData("/etc/hosts", []byte("127.0.0.1\tlocalhost\n127.0.1.1\t"+o.Hostname+"\n::1\tlocalhost\n"), 0o644)
	files.addData("/etc/ssh/authorized_keys.d/root", []byte(strings.Join(o.AuthorizedKeys, "\n")+"\n"), 0o444)
	var fstab strings.Builder
	mps := slices.Sorted(maps.Keys(cfg.FileSystems))
	sort.SliceStable(mps, func(i, j int) bool { return strings.Count(mps[i], "/") < strings.Count(mps[j], "/") })
	for _, mp := range mps {
		if mp == "/" {
			continue // stage 1 mounted it
		}
		fs := cfg.FileSystems[mp]
		fmt.Fprintf(&fstab, "%s %s %s %s 0 0\n", fs.Device, mp, fs.FSType, mountOptions(fs.Options))
	}
	for _, s := range cfg.SwapDevices {
		fmt.Fprintf(&fstab, "%s none swap sw 0 0\n", s.Device)
	}
	files.addData("/etc/fstab", []byte(fstab.String()), 0o644)
	files.addData("/kernel-params", []byte("console=ttyS0 loglevel=4 no_timer_check\n"), 0o644)
	var secrets strings.Builder
	for _, dest := range slices.Sorted(maps.Keys(o.InitrdSecrets)) {
		src := o.InitrdSecrets[dest]
		if !path.IsAbs(dest) || !path.IsAbs(src) || strings.ContainsAny(dest+src, " \t\n") {
			return fmt.Errorf("initrd secret %q <- %q: both paths must be absolute, without spaces", dest, src)
		}
		fmt.Fprintf(&secrets, "%s %s\n", dest, src)
	}
	files.addData("/initrd-secrets", []byte(secrets.String()), 0o644)
	if err := files.writeDir(filepath.Join(dir, "files")); err != nil {
		return err
	}

	if o.DiskoScript != nil {
		if err := os.WriteFile(filepath.Join(dir, "disko.sh"), o.DiskoScript, 0o755); err != nil {
			return err
		}
	}
	nix := fmt.Sprintf(`# The stand-in NixOS system (written by internal/testvm/system.go).
let
  sw = builtins.path { path = ./sw; name = "nixos-stand-in-sw"; };
  boot = builtins.path { path = ./boot; name = "nixos-stand-in-boot"; };
  tmpl = builtins.path { path = ./files; name = "nixos-stand-in-files"; };
in
{
  toplevel = derivation {
    name = "nixos-system-%s-25.11-stand-in";
    system = "x86_64-linux";
    builder = "${sw}/usr/bin/busybox";
    args = [ "sh" "-e" "${tmpl}/builder.sh" ];
    inherit sw boot tmpl;
  };
  # As the disko module's system.build.diskoScript: wipe, format and mount
  # without asking (nixos-anywhere runs it as is).
  diskoScript = derivation {
    name = "disko";
    system = "x86_64-linux";
    builder = "${sw}/usr/bin/busybox";
    script = builtins.path { path = ./disko.sh; name = "disko-destroy-format-mount"; };
    args = [ "sh" "-c" ''
      ${sw}/usr/bin/printf '#!/usr/bin/env bash\nexec bash %%s --yes-wipe-all-disks "$@"\n' "$script" >$out
      ${sw}/usr/bin/chmod 555 $out
    '' ];
  };
}
`, o.Hostname)
	return os.WriteFile(filepath.Join(dir, "default.nix"), []byte(nix), 0o644)
}

// initrdResidue is what the stand-in's gzip initrd's size leaves modulo 4.
// Its size follows the host's package versions, and switch-to-configuration
// appends the initrd secrets to it, which the kernel finds only after padding
// to a 4-byte boundary: fixing the residue at 1 (a gzip header file name of
// the right length) makes every boot of the stand-in need that padding,
// instead of 3 hosts in 4. (A file name, not a comment: the kernel's gunzip
// skips only that field of a gzip header.)
const initrdResidue = 1

// writeInitramfsGzip writes the tree as a gzip compressed cpio whose size is
// initrdResidue modulo 4.
func writeInitramfsGzip(t tree, out string) error {
	var archive bytes.Buffer
	if err := t.writeCpio(&archive); err != nil {
		return err
	}
	plain, err := gzipBytes(archive.Bytes(), "")
	if err != nil {
		return err
	}
	name := "initrd"
	for (len(plain)+len(name)+1)%4 != initrdResidue { // +1: the name's NUL
		name += "_"
	}
	z, err := gzipBytes(archive.Bytes(), name)
	if err != nil {
		return err
	}
	return os.WriteFile(out, z, 0o644)
}

// gzipBytes compresses data into one gzip member with the given file name
// in its header.
func gzipBytes(data []byte, name string) ([]byte, error) {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	zw.Name = name
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// addPrograms adds host programs (by their host paths) and their libraries.
func addPrograms(ctx context.Context, t tree, programs []string) error {
	for _, p := range programs {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("program %s: %w", p, err)
		}
		t.addFile(guestPath(p), p, 0o755)
	}
	return addLibraries(ctx, t, programs, nil)
}

// fsModule is the kernel module a file system type needs.
func fsModule(fstype string) string {
	switch fstype {
	case "ext2", "ext3", "ext4":
		return "ext4"
	case "vfat", "xfs", "btrfs", "f2fs":
		return fstype
	}
	return ""
}

func mountOptions(opts []string) string {
	if len(opts) == 0 {
		return "defaults"
	}
	return strings.Join(opts, ",")
}
