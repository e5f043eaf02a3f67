package vmcycle

import (
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"path"
	"slices"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

const (
	// Root is where the scripts mount the layout in the guest.
	Root = "/mnt"
	// ToolDir is put in front of the scripts' PATH (codegen.Options.PathDirs, the way
	// the Nix package injects its tools) when Options.FastLUKS is set; it holds the
	// cryptsetup stand-in.
	ToolDir = "/opt/vmtest/bin"
	// f2fsModules holds the f2fs module files in the guest.
	f2fsModules = "/opt/vmtest/modules"
)

// ErrUnsupported marks layouts the guest cannot run: ZFS and bcachefs are not in
// Debian's kernel.
var ErrUnsupported = errors.New("ZFS and bcachefs are not in Debian's kernel; their scripts are checked by internal/codegen's golden tests")

// knownKeyFiles are key files layouts name, with the contents disko's own tests give
// them. Other key files a layout names get a content of their own (see GuestFiles).
var knownKeyFiles = map[string]string{
	"/tmp/secret.key":           "secretsecret",
	"/tmp/additionalSecret.key": "additionalSecret",
}

// Passphrase is what a layout that asks for its passphrase is told on the terminal.
const Passphrase = "typed passphrase"

// Layout is one layout ready for the cycle: its disks are the guest's virtio disks,
// in name order (Disks[i] is /dev/vd{a+i}).
type Layout struct {
	Name    string
	Disks   []string
	Devices *config.Devices
	Scripts *codegen.Scripts
	// DiskSizes are the bytes of the guest's disks, one per disk (set by the caller:
	// ImageSizes gives the layout's own).
	DiskSizes []int64
	// FastLUKS: the scripts run the cryptsetup stand-in of ToolDir (a cheap key
	// derivation), and key slots must show it.
	FastLUKS bool

	want *expect
	ask  bool // some LUKS container asks for its passphrase on the terminal
	f2fs bool // needs the f2fs module and mkfs.f2fs
}

// Options tune Compile.
type Options struct {
	// FastLUKS formats LUKS containers with PBKDF2 at 1000 iterations unless the layout
	// chooses a key derivation: argon2id, tuned to ~2 s per unlock on real hardware,
	// costs ~5 s per unlock and ~8 s per format under TCG, and the cycle unlocks each
	// container several times. The layout itself is not changed.
	FastLUKS bool
}

// Compile loads raw (the JSON of disko.devices) with each disk on a virtio disk of
// the guest, derives what the cycle checks and generates the scripts. A ZFS or
// bcachefs layout is an ErrUnsupported.
func Compile(name string, raw []byte, o Options) (*Layout, error) {
	plain, err := config.Load(raw, config.LoadOptions{})
	if err != nil {
		return nil, err
	}
	if len(plain.Zpool) > 0 || len(plain.BcachefsFilesystems) > 0 {
		return nil, fmt.Errorf("%s: %w", name, ErrUnsupported)
	}
	l := &Layout{Name: name, Disks: slices.Sorted(maps.Keys(plain.Disk)), FastLUKS: o.FastLUKS}
	if len(l.Disks) > 26 {
		return nil, fmt.Errorf("%d disks: more than /dev/vda../dev/vdz", len(l.Disks))
	}
	devices := map[string]string{}
	for i, disk := range l.Disks {
		devices[disk] = VirtioDisk(i)
	}
	if l.Devices, err = config.Load(raw, config.LoadOptions{DiskDevices: devices}); err != nil {
		return nil, err
	}
	if l.want, err = expectOf(l.Devices, Root); err != nil {
		return nil, err
	}
	for _, lk := range l.want.luks {
		l.ask = l.ask || lk.ask
	}
	walk(l.Devices, func(n config.Node) {
		if fs, ok := n.(*config.Filesystem); ok && fs.Format == "f2fs" {
			l.f2fs = true
		}
	})
	opts := codegen.Options{RootMountpoint: Root}
	if o.FastLUKS {
		opts.PathDirs = ToolDir
	}
	if l.Scripts, err = codegen.Generate(l.Devices, opts); err != nil {
		return nil, err
	}
	return l, nil
}

// VirtioDisk is the guest's i-th disk: /dev/vda for 0.
func VirtioDisk(i int) string {
	return "/dev/vd" + string(rune('a'+i))
}

// NeedsF2FS tells whether the guest needs mkfs.f2fs (Debian's f2fs-tools) for l.
func (l *Layout) NeedsF2FS() bool { return l.f2fs }

// ImageSizes are the layout's own disk sizes (disk.NAME.imageSize, default 2G).
func (l *Layout) ImageSizes() ([]int64, error) {
	var sizes []int64
	for _, name := range l.Disks {
		s, err := config.BinaryBytes(l.Devices.Disk[name].ImageSize)
		if err != nil {
			return nil, fmt.Errorf("disko.devices.disk.%s.imageSize: %w", name, err)
		}
		sizes = append(sizes, s)
	}
	return sizes, nil
}

// keyFiles are the files the layout's LUKS containers read their keys from, with the
// content each gets in the guest.
func (l *Layout) keyFiles() map[string]string {
	files := maps.Clone(knownKeyFiles)
	walk(l.Devices, func(n config.Node) {
		lk, ok := n.(*config.LUKS)
		if !ok {
			return
		}
		names := append([]string{lk.KeyFile, lk.PasswordFile}, lk.AdditionalKeyFiles...)
		if kf, ok := lk.Settings["keyFile"].(string); ok {
			names = append(names, kf)
		}
		for _, p := range names {
			if _, ok := files[p]; p != "" && !ok && path.IsAbs(p) && !strings.HasPrefix(p, "/dev/") {
				files[p] = "vmtest key " + p
			}
		}
	})
	return files
}

// cryptsetupStandIn is the cryptsetup of ToolDir: luksFormat and luksAddKey get PBKDF2
// with 1000 iterations unless the command line already chooses a key derivation (see
// Options.FastLUKS). Everything else goes to the real cryptsetup unchanged.
const cryptsetupStandIn = `#!/bin/bash
case " $* " in
*" luksFormat "* | *" luksAddKey "*)
	case " $* " in
	*" --pbkdf"* | *" --iter-time"* | *" -i "*) ;;
	*) set -- --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$@" ;;
	esac
	;;
esac
exec /usr/sbin/cryptsetup "$@"
`

// GuestFiles are what a guest needs before it boots to run the layouts ls: the probe,
// the cryptsetup stand-in, the key files they name, and, when one of them needs it,
// the f2fs kernel module with what it depends on (under f2fsModules, in load order),
// which the guest image may lack.
func GuestFiles(kernelRelease string, ls ...*Layout) ([]testvm.File, error) {
	files := []testvm.File{
		{GuestPath: probePath, Data: []byte(probeScript), Mode: 0o755},
		{GuestPath: ToolDir + "/cryptsetup", Data: []byte(cryptsetupStandIn), Mode: 0o755},
	}
	keys := maps.Clone(knownKeyFiles)
	f2fs := false
	for _, l := range ls {
		maps.Copy(keys, l.keyFiles())
		f2fs = f2fs || l.f2fs
	}
	for _, p := range slices.Sorted(maps.Keys(keys)) {
		files = append(files, testvm.File{GuestPath: p, Data: []byte(keys[p]), Mode: 0o600})
	}
	if !f2fs {
		return files, nil
	}
	out, err := exec.Command("modprobe", "--set-version", kernelRelease, "--show-depends", "f2fs").Output()
	if err != nil {
		return nil, fmt.Errorf("modprobe --show-depends f2fs for kernel %s: %w", kernelRelease, err)
	}
	var order []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "insmod" {
			continue
		}
		guest := fmt.Sprintf("%s/%02d-%s", f2fsModules, len(order), path.Base(f[1]))
		files = append(files, testvm.File{GuestPath: guest, HostPath: f[1], Mode: 0o644})
		order = append(order, guest)
	}
	files = append(files, testvm.File{GuestPath: f2fsModules + "/order", Data: []byte(strings.Join(order, "\n") + "\n"), Mode: 0o644})
	return files, nil
}
